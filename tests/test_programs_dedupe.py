"""AST-normalised dedupe."""

from vpd.programs.dedupe import dedupe, normalise_program, program_key

A = '''def execute_command(image):
    # count the cubes
    image_patch = ImagePatch(image)
    cubes = image_patch.find("red cube")
    return str(len(cubes))
'''
B = '''def execute_command(img) -> str:
    """Counts."""
    patch = ImagePatch(img)
    xs = patch.find('red cube')    # same, renamed and reformatted
    return str( len(xs) )
'''


def test_renamed_reformatted_commented_programs_are_duplicates():
    assert program_key(A) == program_key(B)
    assert normalise_program(A) == normalise_program(B)


def test_different_constants_or_calls_are_kept():
    assert program_key(A) != program_key(A.replace("red cube", "blue cube"))
    assert program_key(A) != program_key(A.replace("str(len(cubes))", "len(cubes)"))
    assert program_key(A) != program_key(A.replace("find", "exists"))


def test_dedupe_indices_skip_none_and_keep_unparsable_distinct():
    progs = [A, B, None, A.replace("red", "blue"), "def (", "def (", A]
    assert dedupe(progs) == [0, 3, 4]


def test_global_names_are_not_renamed():
    norm = normalise_program(A)
    assert "ImagePatch" in norm and "v0" in norm and "cubes" not in norm
