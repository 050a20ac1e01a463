"""Backends implement tools. A backend declares its runtime needs as data; the server stays generic.

To add one::

    @BACKENDS.register("mydet")
    class MyDetector(Backend):
        provides = frozenset({"detect"})
        batchable = frozenset({"detect"})
        max_batch = 8
        def detect(self, image, query): ...
        def detect_batch(self, images, queries): ...   # optional

Every tool method takes a PIL RGB image (already cropped to the patch) first, then the tool's
arguments (see :mod:`vpd.tools.specs`). Boxes are returned in pixels of *that* image.

**Image analyses.** A backend whose tools all come from one query-independent pass over the
image (a closed-vocabulary detector finds every object once; the query only filters them) lists
those tools in ``analysed`` and implements ``analyse(image) -> JSON`` (the model pass) and the
class method ``answer_from(context, tool, analysis, **args)`` (cheap, no model; ``context`` is the
JSON of :meth:`Backend.answer_context`, e.g. the detector's class names). The toolbox then caches
the analysis per image next to the tool results, so another query on an analysed image costs no
backend invocation; because answering needs no model, a host that only holds the analysis (a Ray
synth shard whose models live in a tool actor) answers locally::

    analysed = frozenset({"detect", "count"})
    def analyse(self, image): return [[x0, y0, x1, y1, score, cls], ...]   # every object
    def answer_context(self): return {"classes": self.class_names}       # optional
    @classmethod
    def answer_from(cls, context, tool, analysis, query): ...            # filter by query

**Settings and cache keys.** A backend lists every option it accepts in ``settings`` (name ->
default) and sorts each into ``key_settings`` (can change an answer: thresholds, prompts,
``max_new_tokens``, dtype …) or ``runtime_settings`` (cannot: device, batch size, timeouts);
options naming weights (``weight_options``, or a model backend's ``weight_keys``) are keyed by the
*content* of the files, never by their path. Deny by default: registration refuses a setting left
unsorted or a sorted name that is not a setting, and construction refuses an unknown option
("did you mean …"). :meth:`Backend.cache_tag` = name, version, a digest of the effective key
settings (defaults filled in) and the full-content weight hash::

    settings = {"threshold": 0.3, "max_batch": 8}
    key_settings = frozenset({"threshold"})
    runtime_settings = frozenset({"max_batch"})
"""

from __future__ import annotations

import difflib
from typing import Any, ClassVar, Mapping

from PIL import Image

from vpd.registry import Registry
from vpd.tools.cache_keys import TEXT_MODES, normalise_value, settings_digest
from vpd.tools.errors import ToolError
from vpd.tools.specs import TOOLS


class Backend:
    """Base class. Subclasses set the class attributes and implement one method per tool."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    provides: ClassVar[frozenset[str]] = frozenset()
    batchable: ClassVar[frozenset[str]] = frozenset()
    max_batch: ClassVar[int] = 1
    memory_class: ClassVar[str] = "cpu-small"  # cpu-small | cpu-large | gpu-small | gpu-large
    needs: ClassVar[str] = ""  # human-readable: packages / weights it needs
    #: How each tool's text arguments may be normalised in cache keys (tool -> ``exact`` | ``space``
    #: | ``fold``, see :data:`vpd.tools.cache_keys.TEXT_MODES`); unlisted tools are ``exact``.
    #: Declare a mode only if the backend itself treats the text that way (prompt and echoed labels).
    text_args: ClassVar[Mapping[str, str]] = {}

    #: Tools answered from :meth:`analyse` + :meth:`answer` (see the module docstring).
    analysed: ClassVar[frozenset[str]] = frozenset()

    #: Every option the backend accepts (name -> default; ``None`` = unset). Read with :meth:`setting`.
    settings: ClassVar[Mapping[str, Any]] = {}
    #: The settings that can change an answer: their effective values are part of every cache key.
    key_settings: ClassVar[frozenset[str]] = frozenset()
    #: The settings that cannot change an answer (device, batch size, timeouts, cache sizes).
    runtime_settings: ClassVar[frozenset[str]] = frozenset()
    #: Options naming weight files/folders: keyed by content (:meth:`weight_hash`), not by path.
    weight_options: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - self.option_names())
        if unknown:
            known = sorted(self.option_names())
            close = difflib.get_close_matches(unknown[0], known, n=2, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ToolError(f"backend {self.name or type(self).__name__!r}: unknown option(s) "
                            f"{', '.join(repr(u) for u in unknown)}{hint} (options: {', '.join(known) or 'none'})")
        self.options = options

    @classmethod
    def weight_option_names(cls) -> frozenset[str]:
        """The options naming weight files/folders."""
        return frozenset(cls.weight_options)

    @classmethod
    def option_names(cls) -> frozenset[str]:
        """Every option the constructor accepts: the settings plus the weight options."""
        return frozenset(cls.settings) | cls.weight_option_names()

    def setting(self, name: str) -> Any:
        """The effective value of setting ``name``: the option as given, else the declared default;
        coerced to the default's type when that is a number or a string."""
        if name not in self.settings:
            raise KeyError(f"backend {self.name!r} reads undeclared setting {name!r} (declare it in `settings`)")
        default = self.settings[name]
        value = self.options.get(name, default)
        if value is None or default is None or isinstance(default, bool):
            return value
        try:
            if isinstance(default, (int, float, str)):
                return type(default)(value)
        except (TypeError, ValueError):
            raise ToolError(f"backend {self.name!r}: option {name!r} must be a {type(default).__name__}, "
                            f"got {value!r}") from None
        return value

    # -- identity (used in tool-cache keys) -------------------------------------------------
    def weight_hash(self) -> str:
        """A short full-content hash of the weights in use ('' when the backend has none)."""
        return ""

    def effective_setting(self, name: str) -> Any:
        """A key setting's value as it acts on answers (override to resolve, e.g. ``dtype: auto``)."""
        return self.setting(name)

    def effective_settings(self) -> dict[str, Any]:
        """``{name: effective value}`` of every key setting (defaults filled in)."""
        return {k: self.effective_setting(k) for k in sorted(self.key_settings)}

    def cache_tag(self) -> str:
        """``name:version:settings digest:weight hash`` (``-`` for a backend without key settings)."""
        return f"{self.name}:{self.version}:{settings_digest(self.effective_settings())}:{self.weight_hash()}"

    def canonical_args(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments as the cache key sees them: equal only if this backend answers equally.

        Default: strings normalised by the tool's ``text_args`` mode. Override to parse queries.
        """
        mode = self.text_args.get(tool, "exact")
        if mode not in TEXT_MODES:
            raise ValueError(f"backend {self.name!r}: unknown text mode {mode!r} for tool {tool!r}")
        return {k: normalise_value(v, mode) for k, v in args.items()}

    @classmethod
    def weights_status(cls, options: dict[str, Any] | None = None) -> str:
        """For `vpd tools list`: 'n/a', 'found: PATH' or 'missing: PATH'."""
        return "n/a"

    # -- image analyses -------------------------------------------------------------------
    @classmethod
    def uses_analysis(cls, tool: str, args: Mapping[str, Any]) -> bool:
        """Whether this call is answered from :meth:`analyse` of its image (default: ``tool in analysed``).

        A class method: it may depend on the tool and its arguments only (remote hosts decide it
        without the model)."""
        return tool in cls.analysed

    def analyse(self, image: Image.Image) -> Any:
        """The query-independent pass over ``image`` that the ``analysed`` tools are answered from.

        Returns a JSON-serialisable value (it is stored in the tool cache), never None. Backends
        with ``analysed`` tools override it (checked at registration).
        """
        raise ToolError(f"backend {self.name!r} has no image analysis (its analysed tools: none)")

    def analyse_batch(self, images: list[Image.Image]) -> list[Any]:
        """:meth:`analyse` of many images (one result or exception object per image). Override to batch."""
        out: list[Any] = []
        for image in images:
            try:
                out.append(self.analyse(image))
            except Exception as exc:  # recorded per input, never fatal for the batch
                out.append(exc)
        return out

    def answer_context(self) -> dict[str, Any]:
        """JSON that :meth:`answer_from` needs besides the analysis (e.g. class names); ``{}`` by default."""
        return {}

    @classmethod
    def answer_from(cls, context: Mapping[str, Any], tool: str, analysis: Any, **args: Any) -> Any:
        """The result of ``tool`` with ``args`` from an image's :meth:`analyse` value and this backend's
        :meth:`answer_context`: no model, no instance, so any host can answer. Backends with
        ``analysed`` tools override it (checked at registration)."""
        raise ToolError(f"backend {cls.name!r} answers no tool from an image analysis")

    def answer(self, tool: str, analysis: Any, **args: Any) -> Any:
        """The result of ``tool`` with ``args`` from an image's :meth:`analyse` value (no model call)."""
        return type(self).answer_from(self.answer_context(), tool, analysis, **args)

    # -- generic dispatch ----------------------------------------------------------------
    def run(self, tool: str, image: Image.Image | None, **args: Any) -> Any:
        if tool not in self.provides:
            raise ToolError(f"backend {self.name!r} does not provide tool {tool!r}")
        if image is not None and self.uses_analysis(tool, args):
            return self.answer(tool, self.analyse(image), **args)
        fn = getattr(self, tool)
        return fn(**args) if not TOOLS.get(tool).needs_image else fn(image, **args)

    def run_batch(self, tool: str, images: list[Image.Image | None], args: list[dict[str, Any]]) -> list[Any]:
        """Run a tool on many inputs. Uses ``<tool>_batch`` when defined, else one by one.

        Returns one result per input; an input that fails yields its exception object.
        """
        if tool in self.analysed and all(im is not None and self.uses_analysis(tool, a)
                                         for im, a in zip(images, args)):
            return self._answer_batch(tool, self.analyse_batch(list(images)), args)  # type: ignore[arg-type]
        batch_fn = getattr(self, f"{tool}_batch", None)
        if batch_fn is not None and tool in self.batchable:
            return list(batch_fn(images, args))
        out: list[Any] = []
        for image, a in zip(images, args):
            try:
                out.append(self.run(tool, image, **a))
            except Exception as exc:  # recorded per input, never fatal for the batch
                out.append(exc)
        return out

    def _answer_batch(self, tool: str, analyses: list[Any], args: list[dict[str, Any]]) -> list[Any]:
        out: list[Any] = []
        for analysis, a in zip(analyses, args):
            if isinstance(analysis, BaseException):
                out.append(analysis)
                continue
            try:
                out.append(self.answer(tool, analysis, **a))
            except Exception as exc:  # recorded per input, never fatal for the batch
                out.append(exc)
        return out

    def close(self) -> None:
        """Release models / processes."""


BACKENDS: Registry[type[Backend]] = Registry("backend")


def register_backend(name: str):
    """Class decorator: register a backend under ``name`` (also sets ``cls.name``)."""

    def deco(cls: type[Backend]) -> type[Backend]:
        cls.name = name
        unknown = set(cls.provides) - set(TOOLS.names())
        if unknown:
            raise ValueError(f"backend {name!r} provides unknown tools {sorted(unknown)}")
        if not set(cls.analysed) <= set(cls.provides):
            raise ValueError(f"backend {name!r}: analysed tools {sorted(set(cls.analysed) - set(cls.provides))} "
                             "are not among the tools it provides")
        if cls.analysed and (cls.analyse is Backend.analyse
                             or cls.answer_from.__func__ is Backend.answer_from.__func__):  # type: ignore[attr-defined]
            raise ValueError(f"backend {name!r} declares analysed tools {sorted(cls.analysed)} but does not "
                             "implement both analyse() and answer_from()")
        check_settings(cls)
        BACKENDS.add(name, cls)
        return cls

    return deco


def check_settings(cls: type[Backend]) -> None:
    """Refuse a backend whose settings are not each sorted into exactly one of ``key_settings`` /
    ``runtime_settings``, whose sorted names are not settings, or whose settings shadow weight options."""
    name, settings = cls.name or cls.__name__, set(cls.settings)
    problems = []
    for attr in ("key_settings", "runtime_settings"):
        bad = set(getattr(cls, attr)) - settings
        if bad:
            problems.append(f"{attr} {sorted(bad)} are not settings")
    both = set(cls.key_settings) & set(cls.runtime_settings)
    if both:
        problems.append(f"{sorted(both)} are both key and runtime settings")
    unsorted = settings - set(cls.key_settings) - set(cls.runtime_settings)
    if unsorted:
        problems.append(f"settings {sorted(unsorted)} are in neither key_settings nor runtime_settings")
    shadow = settings & set(cls.weight_option_names())
    if shadow:
        problems.append(f"settings {sorted(shadow)} are also weight options")
    if problems:
        raise ValueError(f"backend {name!r}: " + "; ".join(problems))
