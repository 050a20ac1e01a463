"""Compile-time policy: our AST allow-list in front of RestrictedPython.

Runs **inside the worker** (deeply nested source makes CPython's parser and compiler raise
RecursionError/MemoryError, which must never happen in the host).

Deny by default. A program may use: function definitions (no decorators) and lambdas, assignment
(``x: T = v`` is rewritten to ``x = v``), ``for``/``while``/``if``, ``try``/``except``/``finally``,
``raise``, ``assert``, ``del``, ``global``, comprehensions and generator expressions, f-strings,
the walrus operator, literals, calls, attribute access and subscripts. Everything else is rejected,
in particular: ``import``, ``class``, ``with``, ``yield``, ``async``/``await``, ``match``,
``try/except*`` (CVE-2025-22153), decorators, any identifier, argument, keyword or attribute
starting with ``_`` (guard shadowing, e.g. positional-only ``_getattr_``, GHSA-ffg3-p8fm-mjx2),
frame/code attributes (``gi_frame``, ``f_back``, … CVE-2023-37271), and unbound uses of ``eval``,
``exec``, ``compile``, ``open``, ``globals``, ``vars`` …. Identifiers are checked after CPython's
NFKC normalisation, so ``ｅｖａｌ`` is ``eval``.

Not covered here (the runtime guards and the process limits handle them): computed attribute
names (``getattr(x, "_" + "_class__")``), format-string traversal (``"{0.__class__}".format``),
resource exhaustion (loops, memory, huge integers).
"""

from __future__ import annotations

import ast
from types import CodeType

from RestrictedPython import compile_restricted_exec
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

#: Largest program accepted, in characters.
MAX_SOURCE_CHARS = 100_000
#: Largest number of AST nodes accepted.
MAX_NODES = 20_000
#: File name the program's code objects carry (tracebacks use it to find program lines).
PROGRAM_FILENAME = "<program>"

_ALLOWED_NODES: frozenset[type] = frozenset({
    ast.Module, ast.Expr, ast.FunctionDef, ast.Lambda, ast.arguments, ast.arg, ast.Return,
    ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.While, ast.If, ast.Break, ast.Continue,
    ast.Pass, ast.Try, ast.ExceptHandler, ast.Raise, ast.Assert, ast.Delete, ast.Global,
    ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.IfExp, ast.Dict, ast.Set, ast.ListComp, ast.SetComp,
    ast.DictComp, ast.GeneratorExp, ast.comprehension, ast.Compare, ast.Call, ast.keyword,
    ast.FormattedValue, ast.JoinedStr, ast.Constant, ast.Attribute, ast.Subscript, ast.Starred,
    ast.Name, ast.List, ast.Tuple, ast.Slice, ast.NamedExpr,
    ast.Load, ast.Store, ast.Del,
    ast.And, ast.Or, ast.Add, ast.Sub, ast.Mult, ast.MatMult, ast.Div, ast.Mod, ast.Pow,
    ast.LShift, ast.RShift, ast.BitOr, ast.BitXor, ast.BitAnd, ast.FloorDiv,
    ast.Invert, ast.Not, ast.UAdd, ast.USub,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
})

#: Attribute names refused at compile time (and again at run time by the guards).
DENIED_ATTRIBUTES: frozenset[str] = frozenset(INSPECT_ATTRIBUTES) | frozenset({
    "mro", "gi_running", "gi_suspended", "cr_running", "ag_running", "f_lineno", "f_lasti",
    "tb_lineno", "tb_lasti", "co_consts", "co_names", "co_varnames", "func_globals", "func_code",
    "im_func", "im_self", "f_trace_lines", "f_trace_opcodes",
})
#: Prefixes of frame/code/generator attributes, refused whatever follows.
DENIED_ATTRIBUTE_PREFIXES = ("gi_", "cr_", "ag_", "tb_", "f_", "co_", "func_", "im_")

#: Builtins that are never provided; using one without binding it first is rejected outright.
DENIED_BUILTINS: frozenset[str] = frozenset({
    "eval", "exec", "compile", "open", "globals", "locals", "vars", "dir", "breakpoint", "input",
    "help", "exit", "quit", "memoryview", "delattr", "setattr", "super", "object", "classmethod",
    "staticmethod", "property", "copyright", "credits", "license", "bytearray",
})


class PolicyViolation(Exception):
    """The program breaks the compile-time policy; ``reasons`` lists every violation found."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def attribute_denied(name: str) -> bool:
    """True for attribute names no program may read or write (``_*``, frames, code, ``mro``)."""
    return (not isinstance(name, str) or name.startswith("_") or name in DENIED_ATTRIBUTES
            or name.startswith(DENIED_ATTRIBUTE_PREFIXES))


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.bound: set[str] = set()
        self.loaded: list[tuple[str, int]] = []
        self.nodes = 0

    def fail(self, node: ast.AST, msg: str) -> None:
        if len(self.reasons) < 20:
            self.reasons.append(f"line {getattr(node, 'lineno', '?')}: {msg}")

    def name(self, node: ast.AST, name: str | None, what: str) -> None:
        if name is None:
            return
        if name.startswith("_"):
            self.fail(node, f"{what} {name!r} starts with '_'")

    def generic_visit(self, node: ast.AST) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                self.fail(node, f"program too large (more than {MAX_NODES} syntax nodes)")
            return
        if type(node) not in _ALLOWED_NODES:
            self.fail(node, f"{type(node).__name__} is not allowed")
            return
        super().generic_visit(node)

    # -- names ------------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        self.name(node, node.id, "name")
        if isinstance(node.ctx, ast.Load):
            self.loaded.append((node.id, node.lineno))
        else:
            self.bound.add(node.id)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if attribute_denied(node.attr):
            self.fail(node, f"attribute {node.attr!r} is not allowed")
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        self.name(node, node.arg, "argument")
        self.bound.add(node.arg)
        self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> None:
        self.name(node, node.arg, "keyword argument")
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.name(node, node.name, "function name")
        self.bound.add(node.name)
        if node.decorator_list:
            self.fail(node, "decorators are not allowed")
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self.name(node, node.name, "exception name")
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        for n in node.names:
            self.name(node, n, "global name")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, (bytes, str)) and len(node.value) > MAX_SOURCE_CHARS:
            self.fail(node, "constant too large")
        self.generic_visit(node)


def _pure(node: ast.AST) -> bool:
    """An expression that is safe to evaluate twice (no calls, no side effects)."""
    if isinstance(node, (ast.Name, ast.Constant)):
        return True
    if isinstance(node, ast.Attribute):
        return _pure(node.value)
    if isinstance(node, ast.Tuple):
        return all(_pure(e) for e in node.elts)
    if isinstance(node, ast.UnaryOp):
        return _pure(node.operand)
    if isinstance(node, ast.BinOp):
        return _pure(node.left) and _pure(node.right)
    return False


class _Rewrite(ast.NodeTransformer):
    """Rewrites RestrictedPython refuses but programs use.

    ``x: T = v`` -> ``x = v`` and ``x: T`` -> ``pass``; ``d[k] += v`` -> ``d[k] = d[k] + v`` when
    ``d`` and ``k`` are free of calls (e.g. ``counts[color] += 1``).
    """

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        new: ast.AST
        if node.value is None:
            new = ast.Pass()
        else:
            new = ast.Assign(targets=[node.target], value=node.value)
        return ast.copy_location(new, node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        target = node.target
        if isinstance(target, ast.Subscript) and _pure(target.value) and _pure(target.slice):
            load = ast.Subscript(value=target.value, slice=target.slice, ctx=ast.Load())
            value = ast.BinOp(left=load, op=node.op, right=node.value)
            new = ast.Assign(targets=[target], value=value)
            return ast.fix_missing_locations(ast.copy_location(new, node))
        return node


def check_source(source: str) -> ast.Module:
    """Parse ``source`` and apply the allow-list. Returns the (annotation-free) module AST.

    Raises :class:`PolicyViolation` or :class:`SyntaxError`.
    """
    if not isinstance(source, str):
        raise PolicyViolation(["program source must be text"])
    if len(source) > MAX_SOURCE_CHARS:
        raise PolicyViolation([f"program too long ({len(source)} > {MAX_SOURCE_CHARS} characters)"])
    if "\x00" in source:
        raise PolicyViolation(["program contains a NUL character"])
    tree = ast.parse(source, filename=PROGRAM_FILENAME, mode="exec")
    checker = _Checker()
    checker.visit(tree)
    for name, line in checker.loaded:
        if name in DENIED_BUILTINS and name not in checker.bound:
            checker.reasons.append(f"line {line}: {name!r} is not available in the sandbox")
    if checker.reasons:
        raise PolicyViolation(checker.reasons)
    return _Rewrite().visit(tree)


def compile_program(source: str) -> CodeType:
    """Allow-list, then RestrictedPython, then CPython's compiler. Returns the module code object.

    Raises :class:`PolicyViolation` (refused) or :class:`SyntaxError` (not Python).
    """
    tree = check_source(source)
    result = compile_restricted_exec(tree, filename=PROGRAM_FILENAME)
    if result.errors or result.code is None:
        raise PolicyViolation([str(e) for e in result.errors] or ["RestrictedPython refused the program"])
    return result.code
