"""The few-shot library: coverage, well-formed files, only the real ImagePatch API."""

from __future__ import annotations

import ast
import builtins

import pytest

from vpd.programs.library import LibraryError, load_library, parse_library_file, tools_used
from vpd.tools.image_patch import PROGRAM_API, ImagePatch

LIB = load_library()


def test_size_and_coverage():
    from vpd.benchmarks.shapes_questions import TEMPLATE_QTYPE, TEMPLATES

    assert len(LIB) >= 40
    templates = {p.template for p in LIB}
    assert set(TEMPLATES) <= templates, set(TEMPLATES) - templates
    for p in LIB:
        if p.template:
            assert p.qtype == TEMPLATE_QTYPE[p.template], p.id
    qtypes = {p.qtype for p in LIB}
    assert {"count_simple", "count_complex", "exists", "attribute", "spatial", "compare", "choice",
            "ocr", "knowledge", "moderation"} <= qtypes
    used = set().union(*(p.tools for p in LIB))
    assert {"detect", "ocr", "llm_query", "vqa", "nudity", "verify_property", "depth", "best_text_match"} <= used


@pytest.mark.parametrize("prog", LIB.programs, ids=[p.id for p in LIB.programs])
def test_program_uses_only_the_api(prog):
    tree = ast.parse(prog.program)
    assert [n.name for n in tree.body if isinstance(n, ast.FunctionDef)] == ["execute_command"]
    allowed = set(PROGRAM_API) | set(dir(builtins)) | {"math"}
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    bound |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments) for a in n.args}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            assert node.id in allowed | bound, f"{prog.id}: unknown name {node.id}"
        assert not isinstance(node, (ast.Import, ast.ImportFrom)), prog.id
    patch_attrs = {a for a in dir(ImagePatch) if not a.startswith("_")} | {
        "left", "right", "lower", "upper", "width", "height", "horizontal_center", "vertical_center"}
    str_methods = set(dir(str)) | set(dir(list))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            assert node.attr in patch_attrs | str_methods, f"{prog.id}: unknown attribute {node.attr}"
    assert prog.question.endswith("?") and prog.answer_style and prog.qtype


def test_choices_and_render():
    p = LIB.get("shapes_choice_color_1")
    assert p.choices == ("blue", "red", "yellow", "green")
    text = p.render()
    assert text.startswith("# Question: What color is the cylinder?\n# Choices: A) blue B) red C) yellow D) green\ndef execute_command(image):")


def test_tools_used_and_usable_filter():
    assert tools_used("def execute_command(image):\n    return ImagePatch(image).ocr()") == {"ocr"}
    assert tools_used("def execute_command(image):\n    return llm_query('x')") == {"llm_query"}
    only_detect = LIB.usable({"detect"})
    assert 40 <= len(only_detect) < len(LIB)
    assert all(p.tools <= {"detect"} for p in only_detect)


def test_malformed_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def execute_command(image):\n    return 1\n")
    with pytest.raises(LibraryError, match="bad.py"):
        parse_library_file(bad)
    (tmp_path / "broken.py").write_text('"""Question: x?"""\ndef execute_command(image:\n')
    with pytest.raises(LibraryError, match="does not parse"):
        parse_library_file(tmp_path / "broken.py")
