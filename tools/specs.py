"""The tool registry: every tool is declared once, with its host-side signature and docstring.

A *tool* is what a backend implements and what the host runs (``detect(image, query)``). The
program-facing API (``ImagePatch.find`` …) is built on the tools; each :class:`ToolSpec` names the
``ImagePatch`` methods and free functions it powers, so the prompt's API section can be rendered
from the tools a toolbox really has (:func:`vpd.tools.api_prompt.render_api`).

Result conventions (what the host returns to programs, JSON):
``detect``/``ocr``/``nudity`` -> list of ``[x0, y0, x1, y1, score, label]`` in pixels of the full
image (origin top-left, y down); ``count`` -> int; ``vqa``/``caption``/``best_text_match``/
``llm_query`` -> str; ``verify_property`` -> bool; ``depth`` -> float (median relative depth of the
patch, larger is farther, unitless).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vpd.registry import Registry


@dataclass(frozen=True, kw_only=True)
class ToolSpec:
    """A registered tool: name, host signature, docstring, and the program API it powers."""

    name: str
    signature: str
    doc: str
    needs_image: bool = True
    patch_methods: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    returns_boxes: bool = False
    #: The backend sees the whole image plus ``box`` (pixels of the full image) instead of a crop, so
    #: results for different patches of one image are comparable (depth maps are relative per image).
    whole_image: bool = False
    #: Default values of optional arguments, as ``(name, value)`` pairs: the toolbox fills them in
    #: before calling a backend (and before making a cache key), so spelled-out and omitted agree.
    defaults: tuple[tuple[str, Any], ...] = ()

    @property
    def default_args(self) -> dict[str, Any]:
        return dict(self.defaults)


TOOLS: Registry[ToolSpec] = Registry("tool")


def _tool(**kw: object) -> ToolSpec:
    spec = ToolSpec(**kw)  # type: ignore[arg-type]
    TOOLS.add(spec.name, spec)
    return spec


_tool(name="detect", signature="detect(image, query: str) -> list[Box]",
      doc="Open-vocabulary detection: boxes of every object matching `query` (e.g. 'red cube').",
      patch_methods=("find", "exists"), returns_boxes=True)
_tool(name="count", signature="count(image, query: str) -> int",
      doc="Number of objects matching `query` (by default the number of `detect` boxes).",
      patch_methods=("count",), functions=("count",))
_tool(name="crop", signature="crop(image, box) -> image",
      doc="A sub-image. Pure geometry, done by ImagePatch without a model call.",
      patch_methods=("crop", "overlaps_with"), needs_image=False)
_tool(name="vqa", signature="vqa(image, question: str) -> str",
      doc="Short answer to a question about the image.",
      patch_methods=("simple_query", "visual_question_answering"))
_tool(name="caption", signature="caption(image) -> str", doc="A one-sentence description of the image.",
      patch_methods=("caption",))
_tool(name="verify_property", signature="verify_property(image, name: str, prop: str) -> bool",
      doc="Whether the object `name` in the image has the property `prop`.",
      patch_methods=("verify_property",))
_tool(name="best_text_match", signature="best_text_match(image, options: list[str]) -> str",
      doc="The option that best describes the image.",
      patch_methods=("best_text_match",), functions=("best_image_match",))
_tool(name="depth", signature="depth(image) -> float",
      doc=("Median relative depth inside the patch (larger is farther, unitless). The backend gets the "
           "whole image and the patch as `box` [x0, y0, x1, y1] in pixels, as ViperGPT computes depth "
           "on the full image and takes the median inside the box."),
      patch_methods=("compute_depth",), whole_image=True)
_tool(name="llm_query", signature="llm_query(question: str, long_answer: bool) -> str",
      doc="Ask a language model a knowledge question (no image).", needs_image=False,
      defaults=(("long_answer", True),),
      patch_methods=("llm_query",), functions=("llm_query", "process_guesses"))
_tool(name="ocr", signature="ocr(image) -> list[Box]",
      doc="Text lines in the image; each box's label is the text, score the confidence.",
      patch_methods=("ocr",), returns_boxes=True)
_tool(name="nudity", signature="nudity(image) -> list[Box]",
      doc="Nudity detections; each box's label is the body-part class, score the confidence.",
      patch_methods=("detect_nudity",), returns_boxes=True)

#: Tools every toolbox has without a backend (pure geometry).
BUILTIN_TOOLS = frozenset({"crop"})
