"""Render the API section of a program-writing prompt from the tool registry.

Only the methods and functions powered by tools the toolbox really has are shown, each with its
real signature and docstring (introspected from :mod:`vpd.tools.image_patch`), so the prompt can
never drift from the code.
"""

from __future__ import annotations

import inspect
import textwrap
from typing import Callable, Iterable

from vpd.tools import image_patch as ip
from vpd.tools.specs import BUILTIN_TOOLS, TOOLS

#: Always shown: pure-Python helpers that need no tool.
_ALWAYS_FUNCTIONS = ("distance", "bool_to_yesno", "coerce_to_numeric", "formatting_answer")


def _render_function(fn: Callable, indent: str = "") -> str:
    sig = str(inspect.signature(fn)).replace("'", "")
    doc = inspect.getdoc(fn) or ""
    body = textwrap.indent(f'"""{doc}\n"""', indent + "    ") if doc else indent + "    ..."
    return f"{indent}def {fn.__name__}{sig}:\n{body}\n"


def render_api(tools: Iterable[str] | None = None) -> str:
    """The ``ImagePatch`` class and free functions available with ``tools`` (default: all tools)."""
    names = set(TOOLS.names() if tools is None else tools) | BUILTIN_TOOLS
    methods: list[str] = []
    functions: list[str] = []
    for spec in (TOOLS.get(n) for n in TOOLS.in_order() if n in names):
        methods += [m for m in spec.patch_methods if m not in methods]
        functions += [f for f in spec.functions if f not in functions]
    if "detect" in names and "count" not in methods:
        methods.append("count")
    cls_doc = inspect.getdoc(ip.ImagePatch) or ""
    parts = ["class ImagePatch:", textwrap.indent(f'"""{cls_doc}\n"""', "    "), ""]
    parts.append(_render_function(ip.ImagePatch.__init__, "    ").replace(
        "(self, image: Any, left: int | None = None, lower: int | None = None, right: int | None = None, "
        "upper: int | None = None, parent_left: int = 0, parent_lower: int = 0, queues: Any = None, "
        "parent_img_patch: Any = None)",
        "(self, image, left: int | None = None, lower: int | None = None, right: int | None = None, upper: int | None = None)"))
    for m in methods:
        parts.append(_render_function(getattr(ip.ImagePatch, m), "    "))
    for f in list(functions) + [f for f in _ALWAYS_FUNCTIONS if f not in functions]:
        parts.append(_render_function(getattr(ip, f)))
    return "\n".join(parts).rstrip() + "\n"
