"""Registries: registration, did-you-mean lookups, and the tool/backend registries' contents."""

from __future__ import annotations

import pytest

from vpd.registry import Registry, UnknownNameError
from vpd.tools import BACKENDS, TOOLS, load
from vpd.tools.api_prompt import render_api


def test_register_and_lookup():
    reg: Registry[object] = Registry("widget")

    @reg.register("alpha")
    class Alpha: ...

    reg.add("beta", 2)
    assert reg.get("alpha") is Alpha and reg.get("beta") == 2
    assert "alpha" in reg and "gamma" not in reg
    assert reg.names() == ["alpha", "beta"] and list(reg) == ["alpha", "beta"]
    assert reg.in_order() == ["alpha", "beta"]
    reg.add("alpha", Alpha)  # re-adding the same object is fine
    with pytest.raises(ValueError, match="already registered"):
        reg.add("alpha", object())


def test_unknown_name_suggests_close_matches():
    reg: Registry[int] = Registry("benchmark")
    for i, name in enumerate(("pope", "tallyqa", "mmbench")):
        reg.add(name, i)
    with pytest.raises(UnknownNameError) as err:
        reg.get("poep")
    msg = str(err.value)
    assert "unknown benchmark 'poep'" in msg and "did you mean 'pope'" in msg and "known: mmbench, pope, tallyqa" in msg
    with pytest.raises(KeyError):  # still a KeyError for callers that catch that
        reg.get("zzz")
    assert "did you mean" not in str(pytest.raises(UnknownNameError, reg.get, "zzz").value)


def test_tool_registry_has_the_contract_tools():
    for name in ("detect", "count", "crop", "vqa", "caption", "verify_property", "best_text_match",
                 "depth", "llm_query", "ocr"):
        spec = TOOLS.get(name)
        assert spec.signature.startswith(name + "(") and spec.doc
    with pytest.raises(UnknownNameError, match="did you mean 'detect'"):
        TOOLS.get("detcet")


def test_shapes_backend_is_registered():
    load("shapes")  # imports the built-in backends
    cls = BACKENDS.get("shapes")
    assert cls.name == "shapes"
    assert {"detect", "vqa", "depth"} <= cls.provides <= set(TOOLS.names())


def test_api_prompt_is_rendered_from_the_registry():
    api = render_api(["detect", "vqa"])
    assert "class ImagePatch" in api and "def find(self, object_name: str)" in api
    assert "def simple_query" in api and "def bool_to_yesno" in api
    assert "def compute_depth" not in api  # no depth tool -> not offered
    assert "def compute_depth" in render_api()
