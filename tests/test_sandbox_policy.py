"""Compile-time policy and runtime guards, in-process (AST analysis and guard functions only)."""

from __future__ import annotations

import pytest

from vpd.sandbox import guards, policy

OK_PROGRAMS = [
    "def execute_command(image):\n    x: int = 5\n    return x",
    "def execute_command(image) -> List[ImagePatch]:\n    return [p for p in range(3) if p]",
    "def execute_command(image):\n    try:\n        return 1\n    except (ValueError, KeyError) as e:\n        return str(e)\n    finally:\n        pass",
    "def execute_command(image):\n    d = {k: v for k, v in [(1, 2)]}\n    d[1] += 1\n    del d[1]\n    return d",
    "def execute_command(image):\n    if (n := 3) > 2:\n        return f'{n!r:>4}'",
    "def execute_command(image):\n    a, *b = [1, 2, 3]\n    return sorted(b, key=lambda v: -v)",
    "def execute_command(image):\n    open = image\n    return open",  # a program's own variable named like a builtin
    "def execute_command(image):\n    global counter\n    counter = 1\n    return counter",
]

BAD_PROGRAMS = {
    "import": "import os",
    "class": "class A:\n    pass",
    "with": "with x:\n    pass",
    "yield": "def g():\n    yield 1",
    "async": "async def g():\n    pass",
    "match": "match x:\n    case 1:\n        pass",
    "trystar": "try:\n    pass\nexcept* ValueError:\n    pass",
    "decorator": "@f\ndef g():\n    pass",
    "posonly": "def f(_getattr_, /):\n    pass",
    "underscore-attr": "x = y._z",
    "frame-attr": "x = y.gi_frame",
    "f-prefix": "x = y.f_locals",
    "mro": "x = int.mro()",
    "eval": "eval('1')",
    "nonlocal": "def f():\n    x = 1\n    def g():\n        nonlocal x\n        x = 2",
}


@pytest.mark.parametrize("src", OK_PROGRAMS)
def test_allowed_programs_compile(src):
    assert policy.compile_program(src) is not None


@pytest.mark.parametrize("name", list(BAD_PROGRAMS))
def test_forbidden_constructs_rejected(name):
    with pytest.raises(policy.PolicyViolation):
        policy.compile_program(BAD_PROGRAMS[name])


def test_nul_byte_rejected():
    with pytest.raises(policy.PolicyViolation):
        policy.check_source("x = 1\x00")


def test_too_long_rejected():
    with pytest.raises(policy.PolicyViolation):
        policy.check_source("#" * (policy.MAX_SOURCE_CHARS + 1))


def test_syntax_error_is_syntax_error():
    with pytest.raises(SyntaxError):
        policy.check_source("def f(:\n")


def test_violation_lists_every_reason():
    with pytest.raises(policy.PolicyViolation) as info:
        policy.check_source("import os\nx = y.__class__\n")
    assert len(info.value.reasons) == 2


@pytest.mark.parametrize("name", ["__class__", "_x", "gi_frame", "f_back", "tb_frame", "co_code", "mro", "cr_frame"])
def test_guarded_getattr_denies(name):
    with pytest.raises(AttributeError):
        guards.guarded_getattr((x for x in []), name)


def test_guarded_getattr_rejects_non_str_names():
    class Name(str):
        pass

    with pytest.raises(TypeError):
        guards.guarded_getattr(1, Name("real"))


def test_safe_format_allows_plain_fields():
    assert guards.guarded_getattr("{} and {x}", "format")(1, x=[2]) == "1 and [2]"


@pytest.mark.parametrize("template", ["{0.__class__}", "{0._x}", "{0.gi_frame}", "{0:{0.__class__}}"])
def test_safe_format_blocks_traversal(template):
    with pytest.raises(AttributeError):
        guards.guarded_getattr(template, "format")(guards)


def test_format_map_blocks_traversal():
    with pytest.raises(AttributeError):
        guards.guarded_getattr("{a.__dict__}", "format_map")({"a": guards})


def test_getattr_never_returns_a_module():
    class Holder:
        mod = guards

    with pytest.raises(AttributeError):
        guards.guarded_getattr(Holder(), "mod")


def test_write_guard_only_for_own_containers():
    assert guards.guarded_write([1]) == [1]
    with pytest.raises(TypeError):
        guards.guarded_write((1,))[0] = 2


def test_print_output_is_bounded():
    sink = guards.BoundedText(10)
    guards._PrintCollector(sink)._call_print("x" * 100)
    assert sink.getvalue().startswith("x" * 10 + "\n[stdout truncated: 91")


def test_safe_math_is_read_only():
    assert guards.SAFE_MATH.sqrt(16) == 4.0
    with pytest.raises(TypeError):
        guards.SAFE_MATH.pi = 3
