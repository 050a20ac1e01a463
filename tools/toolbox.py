"""The Toolbox: which backend serves which tool, plus the cache hook; and ``load(spec)``.

Specs accepted by :func:`load`:

* a backend name: ``"shapes"`` -> that backend for every tool it provides;
* a comma list with overrides: ``"shapes,llm_query=gemma"``;
* a mapping (or a path to a YAML/JSON file holding one)::

      default: shapes                 # optional: backend for tools not listed
      detect: groundingdino           # tool -> backend name
      vqa: {backend: blip2, model_path: /models/blip2}   # tool -> backend with options
      backends:                       # optional: shared options per backend
        groundingdino: {checkpoint: /models/gdino.pth, text_encoder: /models/bert-base-uncased}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Protocol

from PIL import Image

from vpd.images import image_digest, load_image
from vpd.tools.backend import BACKENDS, Backend
from vpd.tools.cache_keys import args_json, normalise_value, with_defaults
from vpd.tools.errors import ToolError, ToolNotAvailable
from vpd.tools.specs import BUILTIN_TOOLS, TOOLS
from vpd.types import Box


class ToolCacheLike(Protocol):
    def get(self, key: str) -> Any | None: ...
    def put(self, key: str, value: Any) -> None: ...


def boxes_to_json(boxes: list[Box]) -> list[list[Any]]:
    """``[x0, y0, x1, y1, score, label]`` rows (pixels, origin top-left)."""
    return [[float(b.x0), float(b.y0), float(b.x1), float(b.y1), float(b.score), str(b.label)] for b in boxes]


def boxes_from_json(rows: list[list[Any]]) -> list[Box]:
    return [Box(x0=r[0], y0=r[1], x1=r[2], y1=r[3], score=r[4], label=r[5]) for r in rows]


def to_json_result(tool: str, value: Any) -> Any:
    """Convert a backend result to the tool's JSON result type (see :mod:`vpd.tools.specs`)."""
    spec = TOOLS.get(tool)
    if spec.returns_boxes:
        return boxes_to_json(list(value))
    if tool == "count":
        return int(value)
    if tool == "verify_property":
        return bool(value)
    if tool == "depth":
        return float(value)
    return str(value)


def normalise_args(args: Mapping[str, Any], mode: str = "exact") -> str:
    """Canonical JSON of tool arguments (sorted keys; strings normalised by ``mode``, see
    :data:`vpd.tools.cache_keys.TEXT_MODES`). Cache keys use the backend's own
    :meth:`~vpd.tools.backend.Backend.canonical_args` instead."""
    return args_json(normalise_value(dict(args), mode))


class Toolbox:
    """Tools bound to backends. Typed helpers (``detect``, ``vqa`` …) accept a PIL image or a path.

    With a cache, a tool result is looked up first; a miss on a tool its backend answers from an
    image analysis (:attr:`Backend.analysed <vpd.tools.backend.Backend.analysed>`) then looks up
    the image's cached analysis, so only the first call per image reaches the backend
    (``share_analyses=False`` turns that second level off, for comparison). ``stats``:
    ``calls``; ``cache_hits`` (tool result cached); ``analysis_hits`` (answered from a cached
    analysis); ``backend_calls`` (backend invocations: tool runs plus analyses).
    """

    def __init__(self, backends: Mapping[str, Backend], *, cache: ToolCacheLike | None = None,
                 share_analyses: bool = True) -> None:
        self.backends: dict[str, Backend] = dict(backends)
        self.cache = cache
        self.share_analyses = share_analyses
        self.stats: dict[str, int] = {"calls": 0, "cache_hits": 0, "analysis_hits": 0, "backend_calls": 0}

    @property
    def tools(self) -> list[str]:
        return sorted(set(self.backends) | BUILTIN_TOOLS)

    def backend_for(self, tool: str) -> Backend:
        TOOLS.get(tool)  # unknown tool name -> UnknownNameError with suggestions
        try:
            return self.backends[tool]
        except KeyError:
            raise ToolNotAvailable(
                f"no backend provides tool {tool!r} in this toolbox (has: {', '.join(self.tools)})"
            ) from None

    def cache_key(self, tool: str, image: Image.Image | None, args: Mapping[str, Any]) -> str:
        """``image content hash | tool | canonical args | backend name:version:weights``.

        Arguments are the tool's defaults filled in, then the backend's
        :meth:`~vpd.tools.backend.Backend.canonical_args` (what it declares it cannot tell apart).
        """
        backend = self.backend_for(tool)
        digest = image_digest(image) if image is not None else "-"
        canon = backend.canonical_args(tool, with_defaults(TOOLS.get(tool).default_args, args))
        return f"{digest}|{tool}|{args_json(canon)}|{backend.cache_tag()}"

    @staticmethod
    def analysis_key(backend: Backend, image: Image.Image) -> str:
        """``image content hash | @analysis | backend name:version:weights``."""
        return f"{image_digest(image)}|@analysis|{backend.cache_tag()}"

    def shares_analysis(self, backend: Backend, tool: str, image: Image.Image | None,
                        args: Mapping[str, Any]) -> bool:
        """Whether this call goes through the image's cached analysis."""
        return (self.share_analyses and self.cache is not None and image is not None
                and backend.uses_analysis(tool, args))

    def call_json(self, tool: str, image: Image.Image | str | Path | None, **args: Any) -> tuple[Any, bool]:
        """Run ``tool`` and return ``(json_result, cached)`` — ``cached``: no backend invocation was
        needed. Raises :class:`ToolError` subclasses."""
        backend = self.backend_for(tool)
        spec = TOOLS.get(tool)
        img = load_image(image) if (spec.needs_image and image is not None) else None
        if spec.needs_image and img is None:
            raise ToolError(f"tool {tool!r} needs an image")
        args = with_defaults(spec.default_args, args)
        self.stats["calls"] += 1
        key = self.cache_key(tool, img, args) if self.cache is not None else ""
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.stats["cache_hits"] += 1
                return hit, True
        if self.shares_analysis(backend, tool, img, args):
            assert img is not None and self.cache is not None
            akey = self.analysis_key(backend, img)
            analysis = self.cache.get(akey)
            cached = analysis is not None
            if cached:
                self.stats["analysis_hits"] += 1
            else:
                self.stats["backend_calls"] += 1
                analysis = backend.analyse(img)
                self.cache.put(akey, analysis)
            value = to_json_result(tool, backend.answer(tool, analysis, **args))
        else:
            self.stats["backend_calls"] += 1
            value, cached = to_json_result(tool, backend.run(tool, img, **args)), False
        if self.cache is not None:
            self.cache.put(key, value)
        return value, cached

    def call(self, tool: str, image: Image.Image | str | Path | None, **args: Any) -> Any:
        return self.call_json(tool, image, **args)[0]

    # -- typed helpers -------------------------------------------------------------------
    def detect(self, image: Image.Image | str | Path, query: str) -> list[Box]:
        return boxes_from_json(self.call("detect", image, query=query))

    def count(self, image: Image.Image | str | Path, query: str) -> int:
        if "count" in self.backends:
            return int(self.call("count", image, query=query))
        return len(self.detect(image, query))

    def vqa(self, image: Image.Image | str | Path, question: str) -> str:
        return self.call("vqa", image, question=question)

    def caption(self, image: Image.Image | str | Path) -> str:
        return self.call("caption", image)

    def verify_property(self, image: Image.Image | str | Path, name: str, prop: str) -> bool:
        return self.call("verify_property", image, name=name, prop=prop)

    def best_text_match(self, image: Image.Image | str | Path, options: list[str]) -> str:
        return self.call("best_text_match", image, options=list(options))

    def depth(self, image: Image.Image | str | Path, box: list[int] | None = None) -> float:
        """Median relative depth inside ``box`` (pixels, x0,y0,x1,y1; whole image if None)."""
        return self.call("depth", image, **({"box": list(box)} if box is not None else {}))

    def llm_query(self, question: str, long_answer: bool = True) -> str:
        return self.call("llm_query", None, question=question, long_answer=long_answer)

    def ocr(self, image: Image.Image | str | Path) -> list[Box]:
        return boxes_from_json(self.call("ocr", image))

    def nudity(self, image: Image.Image | str | Path) -> list[Box]:
        return boxes_from_json(self.call("nudity", image))

    def describe(self) -> dict[str, str]:
        """tool -> backend cache tag, for manifests."""
        return {t: b.cache_tag() for t, b in sorted(self.backends.items())}

    def close(self) -> None:
        for b in {id(b): b for b in self.backends.values()}.values():
            b.close()


def _parse_spec(spec: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(spec, Mapping):
        return dict(spec)
    text = str(spec)
    if text.endswith((".yaml", ".yml", ".json")) or Path(text).is_file():
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"tools config not found: {path}")
        import yaml

        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"tools config {path} must be a mapping of tool -> backend")
        return data
    out: dict[str, Any] = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        if "=" in part:
            tool, backend = (s.strip() for s in part.split("=", 1))
            out[tool] = backend
        else:
            out["default"] = part
    return out


def load(spec: str | Path | Mapping[str, Any] = "shapes", *, cache: ToolCacheLike | None = None,
         share_analyses: bool = True) -> Toolbox:
    """Build a :class:`Toolbox` from a backend spec (see the module docstring)."""
    import vpd.tools.backends  # noqa: F401  (registers the built-in backends)

    cfg = _parse_spec(spec)
    shared: dict[str, dict[str, Any]] = {k: dict(v or {}) for k, v in (cfg.pop("backends", {}) or {}).items()}
    for name in shared:
        BACKENDS.get(name)
    instances: dict[str, Backend] = {}

    def instance(name: str, options: dict[str, Any]) -> Backend:
        opts = {**shared.get(name, {}), **options}
        key = name + json.dumps(opts, sort_keys=True, default=str)
        if key not in instances:
            instances[key] = BACKENDS.get(name)(**opts)
        return instances[key]

    mapping: dict[str, Backend] = {}
    default = cfg.pop("default", None)
    if default is not None:
        b = instance(str(default), {})
        for tool in b.provides:
            mapping[tool] = b
    for tool, value in cfg.items():
        TOOLS.get(tool)
        if isinstance(value, Mapping):
            opts = dict(value)
            name = str(opts.pop("backend"))
        else:
            name, opts = str(value), {}
        b = instance(name, opts)
        if tool not in b.provides:
            raise ToolError(f"backend {name!r} does not provide tool {tool!r} (provides: {', '.join(sorted(b.provides))})")
        mapping[tool] = b
    if not mapping:
        raise ValueError(f"tools spec {spec!r} selects no backend")
    return Toolbox(mapping, cache=cache, share_analyses=share_analyses)
