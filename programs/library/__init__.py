"""The few-shot program library: ``programs/library/*.py`` (this package), one example per file.

Each file is a docstring header, then ``def execute_command(image):``::

    \"\"\"Question: How many red cubes are there?
    Choices: red | blue          (optional: the option texts, in order, for multiple choice)
    Answer: a number as digits   (the answer style)
    Qtype: count_simple
    Template: How many {color} {shape}s are there?   (optional: the shapes template it covers)
    Source: shapes
    \"\"\"

    def execute_command(image):
        ...

The tools an example needs are read from its code (the ``ImagePatch`` methods and free functions
it calls, mapped through :data:`vpd.tools.specs.TOOLS`), so a prompt only shows examples the
toolbox can run.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from vpd.tools.specs import BUILTIN_TOOLS, TOOLS

LIBRARY_DIR = Path(__file__).resolve().parent
LETTERS = "ABCDEFGHIJ"
_FIELDS = ("question", "choices", "answer", "qtype", "template", "source")


class LibraryError(ValueError):
    """A library file is malformed; the message names the file."""


@dataclass(frozen=True, kw_only=True)
class LibraryProgram:
    """One example: its header fields, the program source (no docstring) and the tools it uses."""

    id: str
    question: str
    program: str
    qtype: str = ""
    answer_style: str = ""
    choices: tuple[str, ...] | None = None
    template: str = ""
    source: str = ""
    tools: frozenset[str] = frozenset()
    path: str = ""

    def render(self) -> str:
        """The example as it appears in a prompt: ``# Question: …`` (and ``# Choices: …``) then the code."""
        return question_header(self.question, self.choices) + self.program


def format_choices(choices: tuple[str, ...] | list[str]) -> str:
    """``("red", "blue")`` -> ``"A) red B) blue"`` (the form programs copy into ``.split()``)."""
    return " ".join(f"{LETTERS[i]}) {c}" for i, c in enumerate(choices))


def question_header(question: str, choices: tuple[str, ...] | list[str] | None = None) -> str:
    """The comment lines that introduce a program in a prompt (ending with a newline)."""
    head = f"# Question: {' '.join(question.split())}\n"
    if choices:
        head += f"# Choices: {format_choices(choices)}\n"
    return head


def _tool_of_name() -> dict[str, str]:
    out: dict[str, str] = {}
    for name, spec in TOOLS.items():
        for m in (*spec.patch_methods, *spec.functions):
            out.setdefault(m, name)
    out["count"] = "detect"  # ImagePatch.count and count() only need detection
    return out


def tools_used(program: str) -> frozenset[str]:
    """Tools a program calls, from the ``ImagePatch`` methods / free functions it names."""
    table = _tool_of_name()
    used: set[str] = set()
    for node in ast.walk(ast.parse(program)):
        name = None
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
        if name in table and table[name] not in BUILTIN_TOOLS:
            used.add(table[name])
    if "count" in used:
        used.discard("count")
        used.add("detect")
    return frozenset(used)


def parse_library_file(path: Path) -> LibraryProgram:
    text = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise LibraryError(f"{path}: does not parse: {exc}") from exc
    doc = ast.get_docstring(tree)
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "execute_command"]
    if not doc or not fns:
        raise LibraryError(f"{path}: needs a docstring header and def execute_command(image)")
    fields: dict[str, str] = {}
    for line in doc.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in _FIELDS:
            fields[key.strip().lower()] = value.strip()
    if not fields.get("question"):
        raise LibraryError(f"{path}: header has no 'Question:' line")
    start = min([fns[0].lineno] + [d.lineno for d in fns[0].decorator_list])
    program = "\n".join(text.splitlines()[start - 1:]).strip("\n") + "\n"
    choices = tuple(c.strip() for c in fields["choices"].split("|")) if fields.get("choices") else None
    return LibraryProgram(id=path.stem, question=fields["question"], program=program,
                          qtype=fields.get("qtype", ""), answer_style=fields.get("answer", ""),
                          choices=choices, template=fields.get("template", ""),
                          source=fields.get("source", ""), tools=tools_used(program), path=str(path))


@dataclass(frozen=True)
class Library:
    """The loaded examples, in file-name order."""

    programs: tuple[LibraryProgram, ...]

    def __len__(self) -> int:
        return len(self.programs)

    def __iter__(self):
        return iter(self.programs)

    def get(self, program_id: str) -> LibraryProgram:
        for p in self.programs:
            if p.id == program_id:
                return p
        raise KeyError(f"no library program {program_id!r}")

    def usable(self, tools: set[str] | frozenset[str] | list[str] | None) -> "Library":
        """Only the examples whose tools are all in ``tools`` (all examples when None)."""
        if tools is None:
            return self
        have = set(tools) | set(BUILTIN_TOOLS)
        if "detect" in have:
            have.add("count")
        return Library(tuple(p for p in self.programs if p.tools <= have))


def load_library(directory: str | Path | None = None) -> Library:
    """Load every ``*.py`` example (except ``__init__.py``) of ``directory`` (default: the packaged one)."""
    return _load(str(Path(directory) if directory is not None else LIBRARY_DIR))


@lru_cache(maxsize=8)
def _load(directory: str) -> Library:
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"program library folder not found: {d}")
    files = sorted(p for p in d.glob("*.py") if p.name != "__init__.py")
    return Library(tuple(parse_library_file(p) for p in files))
