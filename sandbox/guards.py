"""Runtime guards and the curated namespace a program runs in (worker side).

RestrictedPython rewrites ``a.b`` to ``_getattr_(a, "b")``, ``a[b]`` to ``_getitem_(a, b)``,
``a.b = c`` to ``_write_(a).b = c``, ``print`` to ``_print._call_print`` and so on; this module
supplies those functions:

* ``_getattr_`` refuses ``_*`` names, frame/code/generator attributes and ``mro``, never returns
  a frame, code object, traceback or module, and answers ``str.format``/``format_map`` with a
  formatter whose field lookups go through the same guards (no ``"{0.__class__}"`` walks,
  CVE-2023-41039 / CVE-2024-47532);
* ``_write_`` lets programs mutate only their own ``list``/``dict``/``set`` objects;
* ``print`` writes into a bounded buffer (:class:`BoundedText`), never to a file.

Builtins are an allow-list (:data:`SAFE_BUILTIN_NAMES`); no ``type``, ``object``, ``vars``,
``getattr`` without the guard, ``open``, ``__import__`` …; ``math`` is a read-only namespace of
the module's public functions and constants.
"""

from __future__ import annotations

import builtins
import math
import operator
import string
import types
from _string import formatter_field_name_split as _formatter_field_name_split  # string.Formatter's C helper
from typing import Any, Callable

from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence

from vpd.sandbox.policy import attribute_denied

#: Objects of these types are never handed to a program, whichever attribute produced them.
_FORBIDDEN_RESULT_TYPES = (types.FrameType, types.CodeType, types.TracebackType, types.ModuleType,
                           types.CellType, types.MappingProxyType)

SAFE_BUILTIN_NAMES = (
    "None", "True", "False", "abs", "all", "any", "ascii", "bin", "bool", "callable", "chr",
    "complex", "dict", "divmod", "enumerate", "filter", "float", "format", "frozenset", "hash",
    "hex", "int", "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next",
    "oct", "ord", "pow", "range", "repr", "reversed", "round", "set", "slice", "sorted", "str",
    "sum", "tuple", "zip",
    # exceptions a program may raise or catch
    "ArithmeticError", "AssertionError", "AttributeError", "Exception", "IndexError", "KeyError",
    "LookupError", "NameError", "NotImplementedError", "OverflowError", "RuntimeError",
    "StopIteration", "TypeError", "ValueError", "ZeroDivisionError", "RecursionError",
    "MemoryError", "UnboundLocalError",
)


class BoundedText:
    """A write-only text sink holding at most ``cap`` characters; the rest is counted and dropped."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def write(self, text: str) -> int:
        text = str(text)
        room = self.cap - self.size
        if room > 0:
            piece = text[:room]
            self.parts.append(piece)
            self.size += len(piece)
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def getvalue(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n[stdout truncated: {self.dropped} more characters]"
        return out


class _PrintCollector:
    """What RestrictedPython's ``_print_`` returns: ``print(...)`` goes to the bounded buffer."""

    def __init__(self, sink: BoundedText) -> None:
        self._sink = sink

    def _call_print(self, *objects: Any, sep: Any = " ", end: Any = "\n", **_ignored: Any) -> None:
        sep = " " if sep is None else str(sep)
        end = "\n" if end is None else str(end)
        self._sink.write(sep.join(str(o) for o in objects) + end)

    def __call__(self) -> str:  # the `printed` variable of RestrictedPython
        return "".join(self._sink.parts)


class _SafeFormatter(string.Formatter):
    """``str.format`` whose ``{a.b}`` / ``{a[b]}`` field lookups go through the guards."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, Any]:
        first, rest = _formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attr, key in rest:
            obj = guarded_getattr(obj, key) if is_attr else guarded_getitem(obj, key)
        return obj, first


_FORMATTER = _SafeFormatter()


def _safe_format(template: str) -> Callable[..., str]:
    def format(*args: Any, **kwargs: Any) -> str:  # noqa: A001 (shadows the builtin on purpose)
        return _FORMATTER.vformat(template, args, kwargs)

    return format


def _safe_format_map(template: str) -> Callable[[Any], str]:
    def format_map(mapping: Any) -> str:
        return _FORMATTER.vformat(template, (), mapping)

    return format_map


def _unbound_format(template: Any, *args: Any, **kwargs: Any) -> str:
    if type(template) is not str:
        raise TypeError("str.format needs a str")
    return _FORMATTER.vformat(template, args, kwargs)


def _unbound_format_map(template: Any, mapping: Any) -> str:
    if type(template) is not str:
        raise TypeError("str.format_map needs a str")
    return _FORMATTER.vformat(template, (), mapping)


_MISSING = object()


def guarded_getattr(obj: Any, name: Any, default: Any = _MISSING) -> Any:
    """``getattr`` for programs: no ``_*``, frame or code attributes; safe ``str.format``."""
    if type(name) is not str:
        raise TypeError("attribute name must be a str")
    if attribute_denied(name):
        raise AttributeError(f"attribute {name!r} is not allowed in the sandbox")
    if isinstance(obj, types.ModuleType):
        raise AttributeError("module attributes are not available in the sandbox")
    if name in ("format", "format_map"):
        if isinstance(obj, str):
            return _safe_format(str(obj)) if name == "format" else _safe_format_map(str(obj))
        if isinstance(obj, type) and issubclass(obj, str):
            return _unbound_format if name == "format" else _unbound_format_map
    if isinstance(obj, string.Formatter) or (isinstance(obj, type) and issubclass(obj, string.Formatter)):
        raise AttributeError("string.Formatter is not available in the sandbox")
    try:
        value = getattr(obj, name)
    except AttributeError:
        if default is _MISSING:
            raise
        return default
    if isinstance(value, _FORBIDDEN_RESULT_TYPES):
        raise AttributeError(f"attribute {name!r} yields a {type(value).__name__}, not allowed")
    return value


def guarded_hasattr(obj: Any, name: Any) -> bool:
    try:
        guarded_getattr(obj, name)
    except (AttributeError, TypeError):
        return False
    return True


def guarded_getitem(obj: Any, key: Any) -> Any:
    value = obj[key]
    if isinstance(value, _FORBIDDEN_RESULT_TYPES):
        raise TypeError(f"item yields a {type(value).__name__}, not allowed")
    return value


_WRITABLE = (list, dict, set)


class _ReadOnly:
    __slots__ = ("_type",)

    def __init__(self, ob: Any) -> None:
        object.__setattr__(self, "_type", type(ob).__name__)

    def _deny(self, *_args: Any) -> None:
        raise TypeError(f"cannot modify a {object.__getattribute__(self, '_type')} object in the sandbox")

    __setattr__ = __delattr__ = __setitem__ = __delitem__ = _deny


def guarded_write(ob: Any) -> Any:
    """Programs may mutate their own lists, dicts and sets; nothing else (patches, the image, math)."""
    if type(ob) in _WRITABLE:
        return ob
    return _ReadOnly(ob)


_INPLACE = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
    ">>=": operator.irshift, "|=": operator.ior, "^=": operator.ixor, "&=": operator.iand,
    "@=": operator.imatmul,
}


def guarded_inplacevar(op: str, x: Any, y: Any) -> Any:
    return _INPLACE[op](x, y)


def guarded_apply(f: Any, *args: Any, **kwargs: Any) -> Any:
    return f(*args, **kwargs)


def guarded_iter(ob: Any) -> Any:
    return iter(ob)


class SafeNamespace:
    """A read-only bag of public values standing in for a module (``math``)."""

    __slots__ = ("_name", "_values")

    def __init__(self, name: str, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        try:
            return object.__getattribute__(self, "_values")[name]
        except KeyError:
            raise AttributeError(f"{object.__getattribute__(self, '_name')} has no attribute {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("read-only namespace")

    def __repr__(self) -> str:
        return f"<module {object.__getattribute__(self, '_name')!r} (sandboxed)>"


SAFE_MATH = SafeNamespace("math", {k: getattr(math, k) for k in dir(math) if not k.startswith("_")})


def build_globals(api: dict[str, Any], stdout: BoundedText) -> dict[str, Any]:
    """A fresh namespace for one program run: curated builtins, guards, the program API, ``math``."""
    safe_builtins = {name: getattr(builtins, name) for name in SAFE_BUILTIN_NAMES}
    safe_builtins["getattr"] = guarded_getattr
    safe_builtins["hasattr"] = guarded_hasattr
    glb: dict[str, Any] = {
        "__builtins__": safe_builtins,
        "__name__": "program",
        "__metaclass__": None,
        "_getattr_": guarded_getattr,
        "_getitem_": guarded_getitem,
        "_getiter_": guarded_iter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": guarded_write,
        "_inplacevar_": guarded_inplacevar,
        "_apply_": guarded_apply,
        "_print_": lambda _getattr=None: _PrintCollector(stdout),
        "math": SAFE_MATH,
    }
    glb.update(api)
    return glb
