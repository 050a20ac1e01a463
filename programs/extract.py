"""Pull the ``execute_command`` program out of an LLM completion.

Handles what models really write: a completion-style body that continues the prompt's
``def execute_command(image):`` header, fenced code (```` ```python ```` … possibly unclosed when
the output was truncated), bare code, prose around the code, several functions (keeps
``execute_command`` and the top-level helper functions it calls), and truncated output (drops
trailing lines until the function parses). The result says why nothing usable was found.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

ENTRY = "execute_command"
_DEF_RE = re.compile(rf"^([ \t]*)(?:async\s+)?def\s+{ENTRY}\s*\(", re.M)
_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.S)


@dataclass(frozen=True, kw_only=True)
class Extraction:
    """``program`` is Python source defining ``execute_command`` (None when ``status != "ok"``).

    ``status``: ``ok`` | ``no_code`` (no ``execute_command`` and no function body) | ``syntax``
    (code found but it does not parse, even cut short). ``truncated`` is True when trailing lines
    had to be dropped to make it parse.
    """

    program: str | None
    status: str
    detail: str = ""
    truncated: bool = False


def extract_program(text: str, *, prefix: str = "") -> Extraction:
    """Extract the program from ``text``.

    ``prefix`` is the code the prompt ended with (e.g. ``"def execute_command(image):\\n"``); a
    completion that does not define ``execute_command`` itself is taken as its continuation.
    """
    text = (text or "").replace("\r\n", "\n").replace("\t", "    ")
    blocks = [m.group(2) for m in _FENCE_RE.finditer(text)]
    continuation: Extraction | None = None
    if prefix and _DEF_RE.search(prefix) and _has_body(text):  # the completion continues the prompt
        start = _DEF_RE.search(prefix).start()  # type: ignore[union-attr]
        continuation = _from_definition(prefix[start:] + text, 0)
        if continuation.status == "ok" and continuation.program.strip() == prefix[start:].strip():
            continuation = Extraction(program=None, status="syntax",
                                      detail=_syntax_error(prefix[start:] + text))  # nothing of its own parses
        if continuation.status == "ok":
            return continuation
    sources = [b for b in blocks if _DEF_RE.search(b)] or ([text] if _DEF_RE.search(text) else [])
    last_error = ""
    for src in sources:  # fenced blocks with the function first, else the whole text
        for m in _DEF_RE.finditer(src):
            result = _from_definition(src, m.start())
            if result.status == "ok":
                return result
            last_error = result.detail
    if continuation is not None:
        return continuation
    if sources:
        return Extraction(program=None, status="syntax", detail=last_error or "execute_command does not parse")
    if prefix and _DEF_RE.search(prefix):
        body = blocks[0] if blocks else text
        if not _has_body(body):
            return Extraction(program=None, status="no_code", detail="completion has no indented body")
        start = _DEF_RE.search(prefix).start()  # type: ignore[union-attr]
        return _from_definition(prefix[start:] + body, 0)
    return Extraction(program=None, status="no_code", detail=f"no 'def {ENTRY}' in the completion")


def _has_body(text: str) -> bool:
    for line in text.split("\n"):
        if line.strip():
            return line.startswith((" ", "\t"))
    return False


def _from_definition(src: str, start: int) -> Extraction:
    """The function starting at ``start`` (plus the helpers it calls, defined elsewhere in ``src``)."""
    lines = src[start:].split("\n")
    indent = len(lines[0]) - len(lines[0].lstrip())
    lines = [ln[indent:] if ln[:indent].strip() == "" else ln for ln in lines]
    fn: list[str] = [lines[0]]
    for ln in lines[1:]:  # the body: indented lines and blank lines, up to the first dedent
        if ln.strip() == "" or ln.startswith((" ", "\t")):
            fn.append(ln)
        else:
            break
    while len(fn) > 1 and not fn[-1].strip():
        fn.pop()
    code, truncated = _parse_prefix_named(fn, ENTRY)
    if code is None:
        return Extraction(program=None, status="syntax", detail=_syntax_error("\n".join(fn)))
    helpers = _helpers(src, code)
    program = (helpers + "\n\n" + code if helpers else code).strip("\n") + "\n"
    return Extraction(program=program, status="ok", truncated=truncated,
                      detail="cut to the last complete statement" if truncated else "")


def _syntax_error(code: str) -> str:
    try:
        ast.parse(code)
    except SyntaxError as exc:
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    return "execute_command has no body"


_ANY_DEF_RE = re.compile(r"^def\s+([A-Za-z_]\w*)\s*\(", re.M)


def _helpers(src: str, code: str) -> str:
    """Top-level functions in ``src`` (other than ``execute_command``) that ``code`` calls, in order.

    Each helper is cut out and parsed on its own, so prose elsewhere in ``src`` does not matter.
    """
    defs: dict[str, tuple[int, str]] = {}
    for m in _ANY_DEF_RE.finditer(src):
        name = m.group(1)
        if name == ENTRY or name in defs:
            continue
        lines = src[m.start():].split("\n")
        fn = [lines[0]] + [ln for ln in _takewhile_body(lines[1:])]
        helper, _ = _parse_prefix_named(fn, name)
        if helper is not None:
            defs[name] = (m.start(), helper)
    wanted: list[str] = []
    todo = [code]
    while todo:
        for sub in ast.walk(ast.parse(todo.pop())):
            if isinstance(sub, ast.Name) and sub.id in defs and sub.id not in wanted:
                wanted.append(sub.id)
                todo.append(defs[sub.id][1])
    return "\n\n".join(defs[n][1].rstrip("\n") for n in sorted(wanted, key=lambda n: defs[n][0]))


def _takewhile_body(lines: list[str]) -> list[str]:
    out = []
    for ln in lines:
        if ln.strip() == "" or ln.startswith((" ", "\t")):
            out.append(ln)
        else:
            break
    return out


def _parse_prefix_named(fn: list[str], name: str) -> tuple[str | None, bool]:
    while len(fn) > 1 and not fn[-1].strip():
        fn = fn[:-1]
    try:
        ast.parse("\n".join(fn))
    except SyntaxError as exc:  # only an error at the very end looks like truncated output
        if (exc.lineno or 0) < len(fn) - 2:
            return None, False
    for end in range(len(fn), 1, -1):
        code = "\n".join(fn[:end]).rstrip() + "\n"
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        if tree.body and isinstance(tree.body[0], ast.FunctionDef) and tree.body[0].name == name:
            return code, end < len(fn)
    return None, False
