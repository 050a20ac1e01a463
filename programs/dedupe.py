"""AST-normalised program dedupe.

Two programs are duplicates when their ASTs match after removing comments, docstrings, formatting
and type annotations, and after renaming the variables each function binds (arguments,
assignment targets, loop and comprehension variables) to ``v0, v1, …`` in order of first binding.
Names a program does not bind (``ImagePatch``, ``bool_to_yesno``, builtins), attributes and
string constants are kept, so ``find("red cube")`` and ``find("blue cube")`` stay different.
"""

from __future__ import annotations

import ast
import hashlib
from typing import Iterable


class _Normaliser(ast.NodeTransformer):
    def __init__(self, bound: set[str]) -> None:
        self.bound = bound
        self.names: dict[str, str] = {}

    def _rename(self, name: str) -> str:
        if name not in self.bound:
            return name
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.copy_location(ast.Name(id=self._rename(node.id), ctx=node.ctx), node)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        return ast.copy_location(ast.arg(arg=self._rename(node.arg), annotation=None), node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.returns = None
        node.body = _strip_docstring(node.body)
        self.generic_visit(node)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is None:
            return ast.Pass()
        return self.visit(ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node))

    def visit_Expr(self, node: ast.Expr) -> ast.AST | None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return None  # a bare string statement (docstring-like) does nothing
        return self.generic_visit(node)


def _strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:] or [ast.Pass()]
    return body


def _bound_names(tree: ast.AST) -> set[str]:
    """Names bound inside functions (arguments and stores), excluding the function names themselves."""
    out: set[str] = set()
    for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda))):
        for a in ast.walk(fn.args):
            if isinstance(a, ast.arg):
                out.add(a.arg)
        for n in ast.walk(fn):
            if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
                out.add(n.id)
    return out


def normalise_program(source: str) -> str | None:
    """The canonical form of ``source`` (``ast.unparse`` of the normalised tree); None if it does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    tree.body = _strip_docstring(tree.body)
    tree = _Normaliser(_bound_names(tree)).visit(tree)
    ast.fix_missing_locations(tree)
    return ast.unparse(tree)


def program_key(source: str) -> str:
    """A short hash of the normalised program (of the raw text when it does not parse)."""
    norm = normalise_program(source)
    text = norm if norm is not None else "\0raw\0" + source.strip()
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def dedupe(programs: Iterable[str | None]) -> list[int]:
    """Indices of the first occurrence of each distinct program (``None`` entries are skipped)."""
    seen: set[str] = set()
    keep: list[int] = []
    for i, p in enumerate(programs):
        if p is None:
            continue
        k = program_key(p)
        if k not in seen:
            seen.add(k)
            keep.append(i)
    return keep
