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
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from PIL import Image

from vpd.registry import Registry
from vpd.tools.cache_keys import TEXT_MODES, normalise_value
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

    def __init__(self, **options: Any) -> None:
        self.options = options

    # -- identity (used in tool-cache keys) -------------------------------------------------
    def weight_hash(self) -> str:
        """A short hash of the weights in use ('' when the backend has none)."""
        return ""

    def cache_tag(self) -> str:
        return f"{self.name}:{self.version}:{self.weight_hash()}"

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

    # -- generic dispatch ----------------------------------------------------------------
    def run(self, tool: str, image: Image.Image | None, **args: Any) -> Any:
        if tool not in self.provides:
            raise ToolError(f"backend {self.name!r} does not provide tool {tool!r}")
        fn = getattr(self, tool)
        return fn(**args) if not TOOLS.get(tool).needs_image else fn(image, **args)

    def run_batch(self, tool: str, images: list[Image.Image | None], args: list[dict[str, Any]]) -> list[Any]:
        """Run a tool on many inputs. Uses ``<tool>_batch`` when defined, else one by one.

        Returns one result per input; an input that fails yields its exception object.
        """
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
        BACKENDS.add(name, cls)
        return cls

    return deco
