# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | sha1sum | cut -c1-12)
SIZE ?= small
PYTEST_ARGS ?=

.PHONY: demo test test-fast test-all setup browser clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

setup: $(STAMP)

# Debian's chromium for the report viewer's browser tests (skipped silently if already there).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "could not install chromium"

## Run the whole pipeline end to end on the offline default (shapes world, packaged Gemma 3 270M).
demo: setup
	$(BIN)/vpd demo --size $(SIZE)

## The test suite CI runs (everything, slow integration tests included).
test: setup browser
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## Only the quick tests (no slow integration tests).
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
