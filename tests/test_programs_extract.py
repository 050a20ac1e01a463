"""Code extraction from what LLMs really write."""

from __future__ import annotations

import ast

import pytest

from vpd.programs.extract import extract_program
from vpd.programs.prompt import CODE_PREFIX

BODY = "    cube_patches = image_patch.find('red cube')\n    return str(len(cube_patches))\n"


def _defines_entry(src: str) -> bool:
    return any(isinstance(n, ast.FunctionDef) and n.name == "execute_command" for n in ast.parse(src).body)


def test_completion_continuing_the_prompt():
    r = extract_program(BODY + "\n# Question: How many blue spheres are there?\ndef execute_command(image):\n", prefix=CODE_PREFIX)
    assert r.status == "ok" and not r.truncated
    assert r.program == CODE_PREFIX + BODY
    assert _defines_entry(r.program)


def test_fenced_with_prose_around():
    text = ("Sure! Here is a program:\n\n```python\ndef execute_command(image):\n    image_patch = ImagePatch(image)\n"
            + BODY + "```\n\nIt counts the red cubes.")
    r = extract_program(text, prefix=CODE_PREFIX)
    assert r.status == "ok"
    assert r.program.startswith("def execute_command(image):\n    image_patch = ImagePatch(image)\n")
    assert "Sure" not in r.program and "counts the" not in r.program


def test_unclosed_fence_truncated_output():
    text = "```python\ndef execute_command(image):\n    image_patch = ImagePatch(image)\n" + BODY + "    x = image_patch.find('blu"
    r = extract_program(text)
    assert r.status == "ok" and r.truncated
    assert "blu" not in r.program and "return str(len(cube_patches))" in r.program


def test_bare_code_with_prose_before_and_after():
    text = "The answer needs counting.\ndef execute_command(image):\n    image_patch = ImagePatch(image)\n" + BODY + "This returns 3."
    r = extract_program(text)
    assert r.status == "ok" and "This returns" not in r.program and "needs counting" not in r.program


def test_several_functions_keeps_entry_and_called_helpers_only():
    text = ("def unused(x):\n    return x\n\n"
            "def helper(patches):\n    return str(len(patches))\n\n"
            "def execute_command(image):\n    image_patch = ImagePatch(image)\n    return helper(image_patch.find('cube'))\n\n"
            "def execute_command_v2(image):\n    return 'no'\n")
    r = extract_program(text)
    assert r.status == "ok"
    tree = ast.parse(r.program)
    assert [n.name for n in tree.body] == ["helper", "execute_command"]


def test_two_entry_points_takes_the_first_that_parses():
    text = ("```python\ndef execute_command(image):\n    return (\n```\n"
            "```python\ndef execute_command(image):\n    return 'yes'\n```")
    r = extract_program(text)
    assert r.status == "ok" and "return 'yes'" in r.program


@pytest.mark.parametrize("text,status", [
    ("I'm sorry, I cannot write code for that.", "no_code"),
    ("", "no_code"),
    ("# Question: How many cubes?", "no_code"),
    ("def execute_command(image):\n    x = = 1\n    y = 2\n    return y\n", "syntax"),
    ("def execute_command(image):\n    return ((", "syntax"),
])
def test_failures_are_classified(text, status):
    r = extract_program(text)
    assert r.program is None and r.status == status and r.detail


def test_prose_completion_after_prefix_is_no_code():
    r = extract_program("The image shows three cubes.", prefix=CODE_PREFIX)
    assert r.status == "no_code" and r.program is None


def test_mid_body_syntax_error_is_not_hidden_by_truncation():
    body = "    a = image_patch.find('cube'\n    b = 2\n    c = 3\n    return str(b)\n"
    r = extract_program(body, prefix=CODE_PREFIX)
    assert r.status == "syntax"


def test_tabs_and_crlf():
    r = extract_program("def execute_command(image):\r\n\treturn 'yes'\r\n")
    assert r.status == "ok" and r.program == "def execute_command(image):\n    return 'yes'\n"


def test_completion_whose_only_line_is_broken_is_syntax_not_the_bare_prefix():
    r = extract_program("    return ((", prefix=CODE_PREFIX)
    assert r.status == "syntax" and r.program is None
