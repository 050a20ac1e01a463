"""Settings-aware tool-cache keys: every backend's answer-changing settings (declared once, as data)
and a full-content weight hash go into its cache tag; settings that cannot change an answer do not.

Per backend (built for real: tiny random-init checkpoints, packaged ONNX models, an endpoint that is
never contacted): changing any ``key_settings`` option changes the tag; changing any
``runtime_settings`` option, spelling out a default, or moving the weights to another path does not.
GroundingDINO's and vpd_vlm's cases live in their own test files (their checkpoints are slow to build).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

import vpd.tools.backends  # noqa: F401  (registers the built-in backends)
from vpd.tools import load
from vpd.tools.backend import BACKENDS, Backend, check_settings, register_backend
from vpd.tools.backends import _weights
from vpd.tools.cache_keys import settings_digest
from vpd.tools.errors import ToolError
from vpd.tools.tiny_models import make_tiny

#: backend -> (a tool it provides, tiny model kind or None, extra base options)
CASES: dict[str, tuple[str, str | None, dict]] = {
    "shapes": ("detect", None, {}),
    "owlv2": ("detect", "owlv2", {}),
    "owlvit": ("detect", "owlvit", {}),
    "clip": ("verify_property", "clip", {}),
    "siglip": ("verify_property", "siglip", {}),
    "blip": ("vqa", "blip_vqa", {}),
    "blip2": ("vqa", "blip2", {}),
    "paligemma": ("vqa", "paligemma", {}),
    "depth_anything": ("depth", "depth_anything", {}),
    "dpt": ("depth", "dpt", {}),
    "ultralytics": ("detect", None, {"model_path": "yolov8n.yaml"}),
    "yolo_world": ("detect", "clip512", {"model_path": "yolov8s-worldv2.yaml"}),
    "rapidocr": ("ocr", None, {}),
    "easyocr": ("ocr", None, {}),
    "nudenet": ("nudity", None, {}),
    "openai_vlm": ("vqa", None, {"model": "vpd-vqa", "base_url": "http://127.0.0.1:9/v1"}),
    "llm": ("llm_query", None, {"llm": "fake-spec"}),
}
#: Covered in tests/test_backends_groundingdino.py and tests/test_backends_vpd_vlm.py.
ELSEWHERE = {"groundingdino", "vpd_vlm"}

#: A changed value per setting name where "default + a bit" does not fit.
VARIANTS = {"dtype": "bfloat16", "output": "metric", "classes": ["FEET_EXPOSED"], "resolution": 640,
            "imgsz": 320, "base_url": "http://127.0.0.1:10/v1", "llm": "other-spec", "model": "other-model",
            "caption_model": "other-caption", "llm_model": "other-llm", "device": "cpu", "max_batch": 3,
            "concurrency": 2, "api_key_env": "VPD_TEST_UNSET_KEY", "cache_size": 3}


def other(name: str, default):
    """A value of setting ``name`` different from ``default`` (same type)."""
    if name in VARIANTS:
        return VARIANTS[name]
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 1
    if isinstance(default, float):
        return round(default + 0.05, 4)
    if isinstance(default, str):
        return default + " please"  # keeps any {placeholder}
    if isinstance(default, (tuple, list)):
        return list(default)[:-1]
    raise AssertionError(f"no variant for setting {name!r} (default {default!r})")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-keys")
    built: dict[str, str] = {}

    def get(kind: str) -> str:
        if kind not in built:
            built[kind] = str(make_tiny(kind, root / kind))
        return built[kind]

    return get


def _base(name: str, tiny) -> dict:
    tool, kind, extra = CASES[name]
    opts = dict(extra)
    if kind == "clip512":
        opts["clip_text_model"] = tiny(kind)
    elif kind is not None:
        opts["model_path"] = tiny(kind)
    return opts


def _tag(name: str, opts: dict) -> str:
    tool = CASES[name][0]
    return load({tool: {"backend": name, **opts}}).backends[tool].cache_tag()


def test_every_registered_backend_has_a_key_test():
    builtin = {n for n, cls in BACKENDS.items() if cls.__module__.startswith("vpd.tools.backends.")}
    assert builtin - ELSEWHERE == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_key_settings_change_the_tag_runtime_settings_do_not(name, tiny):
    cls = BACKENDS.get(name)
    base = _base(name, tiny)
    tag = _tag(name, base)
    assert tag.startswith(f"{name}:{cls.version}:")
    defaults = {k: v for k, v in cls.settings.items() if v is not None and k not in base}
    assert _tag(name, {**base, **defaults}) == tag  # defaults spelled out = left out
    for key in sorted(cls.key_settings):
        if (name, key) == ("easyocr", "languages"):
            continue  # only English recognition weights exist offline: see test_easyocr_languages_is_keyed
        value = other(key, cls.settings[key] if key not in base else base[key])
        if (name, key) == ("ultralytics", "dtype") or (name, key) == ("yolo_world", "dtype"):
            with pytest.raises(ToolError, match="bfloat16"):  # Ultralytics has no bfloat16
                _tag(name, {**base, key: value})
            # float16 is asked for but runs only on a GPU: on this CPU the answers (and key) stay float32
            assert _tag(name, {**base, key: "float16"}) == tag
            continue
        assert _tag(name, {**base, key: value}) != tag, f"{name}: changing {key} kept the key"
    for key in sorted(cls.runtime_settings):
        value = other(key, cls.settings[key] if key not in base else base[key])
        assert _tag(name, {**base, key: value}) == tag, f"{name}: changing runtime setting {key} changed the key"


def test_easyocr_languages_is_keyed():
    """Only English recognition weights ship offline, so no second language can be built here; the
    setting must still be keyed, and its spellings ("en" / ["en"]) must agree."""
    from vpd.tools.backends.ocr import EasyOcrBackend

    assert "languages" in EasyOcrBackend.key_settings
    assert _tag("easyocr", {"languages": "en"}) == _tag("easyocr", {"languages": ["en"]})
    be = load({"ocr": {"backend": "easyocr"}}).backends["ocr"]
    assert be.effective_settings()["languages"] == ["en"]


def test_dtype_keys_what_auto_resolves_to(tiny):
    path = tiny("owlv2")
    auto = _tag("owlv2", {"model_path": path})
    assert _tag("owlv2", {"model_path": path, "dtype": "float32"}) == auto  # CPU: auto is float32
    assert _tag("owlv2", {"model_path": path, "half": False}) == auto  # the older spelling
    assert _tag("owlv2", {"model_path": path, "half": True}) == _tag("owlv2", {"model_path": path, "dtype": "float16"})
    assert _tag("owlv2", {"model_path": path, "dtype": "float16"}) != auto


def test_openai_endpoint_defaults_resolve(monkeypatch):
    """An unset ``caption_model`` is ``model``, so spelling it out keys the same."""
    base = CASES["openai_vlm"][2]
    assert _tag("openai_vlm", base) == _tag("openai_vlm", {**base, "caption_model": base["model"],
                                                            "llm_model": base["model"]})


def test_weights_keyed_by_content_not_path(tiny, tmp_path):
    src = Path(tiny("owlv2"))
    copy = tmp_path / "elsewhere" / "owl"
    shutil.copytree(src, copy)
    assert _tag("owlv2", {"model_path": str(copy)}) == _tag("owlv2", {"model_path": str(src)})
    (copy / ".git").mkdir()
    (copy / ".git" / "HEAD").write_text("ref: main")  # hidden files are not weights
    assert _tag("owlv2", {"model_path": str(copy)}) == _tag("owlv2", {"model_path": str(src)})
    cfg = copy / "processor_config.json"  # processor settings change answers too
    data = json.loads(cfg.read_text())
    data["image_processor"]["image_mean"] = [0.25, 0.25, 0.25]
    cfg.write_text(json.dumps(data))
    assert _tag("owlv2", {"model_path": str(copy)}) != _tag("owlv2", {"model_path": str(src)})


# -- the weight hash ------------------------------------------------------------------------------
@pytest.fixture
def memo_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VPD_CACHE_DIR", str(tmp_path / "cache"))
    _weights.forget_memo()
    yield tmp_path / "cache"
    _weights.forget_memo()


def test_weight_hash_reads_every_byte(tmp_path, memo_dir):
    a, b = tmp_path / "a" / "w.bin", tmp_path / "b" / "w.bin"
    for p in (a, b):
        p.parent.mkdir()
    data = bytearray(os.urandom(5 << 20))
    a.write_bytes(bytes(data))
    data[-1] ^= 0xFF  # past the first 4 MiB, same size
    b.write_bytes(bytes(data))
    assert _weights.weight_hash(a) != _weights.weight_hash(b)
    assert len(_weights.weight_hash(a)) == 12


def test_weight_hash_is_computed_once_per_file_version(tmp_path, memo_dir):
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"x" * 1000)
    reads = _weights.STATS["files_read"]
    h1 = _weights.weight_hash(f)
    assert _weights.STATS["files_read"] == reads + 1
    assert _weights.weight_hash(f) == h1 and _weights.STATS["files_read"] == reads + 1  # in-process memo
    _weights.forget_memo()  # as a new process: the on-disk memo answers
    assert _weights.weight_hash(f) == h1 and _weights.STATS["files_read"] == reads + 1
    assert (memo_dir / "weight-hashes.sqlite").is_file()
    f.write_bytes(b"y" * 1000)  # same size, new content and mtime
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert _weights.weight_hash(f) != h1 and _weights.STATS["files_read"] == reads + 2


def test_unusable_memo_degrades_to_memory(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("VPD_CACHE_DIR", str(blocker))
    _weights.forget_memo()
    f = tmp_path / "w.bin"
    f.write_bytes(b"abc")
    assert len(_weights.weight_hash(f)) == 12
    assert "weight-hash memo" in caplog.text
    _weights.forget_memo()


# -- declarations: deny by default ----------------------------------------------------------------
class FakeDeclared(Backend):
    provides = frozenset({"vqa"})
    settings = {"threshold": 0.5, "max_batch": 4}
    key_settings = frozenset({"threshold"})
    runtime_settings = frozenset({"max_batch"})

    def vqa(self, image, question):
        return str(self.setting("threshold"))


@pytest.mark.parametrize("attrs,match", [
    ({"key_settings": frozenset({"threshold", "treshold"})}, "not settings"),
    ({"runtime_settings": frozenset({"max_batch", "device"})}, "not settings"),
    ({"key_settings": frozenset()}, "neither key_settings nor runtime_settings"),
    ({"runtime_settings": frozenset({"max_batch", "threshold"})}, "both key and runtime"),
    ({"weight_options": frozenset({"threshold"})}, "also weight options"),
])
def test_registration_refuses_bad_declarations(attrs, match):
    bad = type("FakeBad", (FakeDeclared,), dict(attrs))
    with pytest.raises(ValueError, match=match):
        register_backend("fake-bad-settings")(bad)
    assert "fake-bad-settings" not in BACKENDS


def test_every_builtin_declaration_is_complete():
    for name, cls in BACKENDS.items():
        check_settings(cls)  # raises on any unsorted or unknown name
        assert cls.key_settings | cls.runtime_settings == set(cls.settings), name


def test_unknown_option_is_refused_with_a_suggestion(tiny):
    with pytest.raises(ToolError, match="unknown option.*'cache_sise'.*did you mean 'cache_size'"):
        load({"detect": {"backend": "shapes", "cache_sise": 3}})
    with pytest.raises(ToolError, match="did you mean 'threshold'"):
        load({"detect": {"backend": "owlv2", "model_path": tiny("owlv2"), "treshold": 0.3}})
    with pytest.raises(ToolError, match="must be a float"):
        load({"detect": {"backend": "owlv2", "model_path": tiny("owlv2"), "threshold": "high"}})


def test_fake_key_follows_effective_settings():
    a, b, c = FakeDeclared(), FakeDeclared(threshold=0.5, max_batch=1), FakeDeclared(threshold="0.7")
    assert a.cache_tag() == b.cache_tag() != c.cache_tag()
    assert c.setting("threshold") == 0.7 and c.effective_settings() == {"threshold": 0.7}
    with pytest.raises(KeyError, match="undeclared setting"):
        a.setting("device")


def test_settings_digest_is_canonical():
    assert settings_digest({}) == "-"
    assert settings_digest({"a": (1, 2), "b": {"y": 1, "x": 2}}) == settings_digest({"b": {"x": 2, "y": 1}, "a": [1, 2]})
    assert settings_digest({"c": frozenset({"y", "x"})}) == settings_digest({"c": ["x", "y"]})
    assert settings_digest({"t": 0.5}) != settings_digest({"t": 0.55})


_OPTION_READ = re.compile(r"""options(?:\.get\(|\[)\s*["']([a-z_]+)["']""")


def test_backends_read_only_declared_options():
    """Source guard: every ``options.get("x")`` / ``options["x"]`` in a backend module names an option
    some backend in that module declares (a setting or a weight option)."""
    root = Path(vpd.tools.backends.__file__).parent
    for path in sorted(root.glob("*.py")):
        names = set(_OPTION_READ.findall(path.read_text()))
        module = f"vpd.tools.backends.{path.stem}"
        declared = set().union(*[cls.option_names() for _, cls in BACKENDS.items() if cls.__module__ == module],
                               {"half", "dtype"})  # the older spelling, folded into dtype
        assert names <= declared, f"{path.name} reads undeclared options {sorted(names - declared)}"
