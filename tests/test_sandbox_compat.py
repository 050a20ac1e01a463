"""ViperGPT/VPD-style programs run unchanged in the sandbox.

The programs below are written for these tests in the style of ViperGPT's published prompts
(find / exists / simple_query / verify_property / best_text_match / crop / compute_depth / loops /
f-strings / ``str.format`` / ``process_guesses`` with a list / ``best_image_match`` keywords /
``-> List[ImagePatch]`` annotations / VPD's extra parameters). They run against a Fake backend
that answers every tool, and against the real ``shapes`` backend, whose answers are checked
against the scene's ground truth.
"""

from __future__ import annotations

import pytest
from sandbox_fake_backend import fake_toolbox

from vpd.sandbox import SandboxPool
from vpd.sandbox.viper_check import api_failure, extract_programs

VIPER_STYLE = {
    "exists_and": '''
# Are there both mugs and spoons in the photo?
def execute_command(image)->str:
    image_patch = ImagePatch(image)
    is_mug = image_patch.exists("mug")
    is_spoon = image_patch.exists("spoon")
    return bool_to_yesno(is_mug and is_spoon)
''',
    "sort_lambda": '''
# Is the second lamp from the left bright?
def execute_command(image) -> str:
    image_patch = ImagePatch(image)
    lamp_patches = image_patch.find("lamp")
    lamp_patches.sort(key=lambda x: x.horizontal_center)
    lamp_patch = lamp_patches[1]
    return lamp_patch.simple_query("Is the lamp bright?")
''',
    "list_annotation": '''
# return the kites
def execute_command(image) -> List[ImagePatch]:
    image_patch = ImagePatch(image)
    kite_patches = image_patch.find("kite")
    return kite_patches
''',
    "depth": '''
# the bench furthest away
def execute_command(image)->ImagePatch:
    image_patch = ImagePatch(image)
    bench_patches = image_patch.find("bench")
    bench_patches.sort(key=lambda bench: bench.compute_depth())
    return bench_patches[-1]
''',
    "llm_fstring": '''
# Which country is this dish from?
def execute_command(image) -> str:
    image_patch = ImagePatch(image)
    dish_patches = image_patch.find("dish")
    dish_name = dish_patches[0].simple_query("What is the name of the dish?")
    return dish_patches[0].llm_query(f"Which country is {dish_name} from?", long_answer=False)
''',
    "okvqa_format_guesses": '''
# What do these people sell?
def execute_command(image)->str:
    image = ImagePatch(image)
    guesses = []
    people = image.simple_query("Who are these people?")
    external_knowledge_query = "What do {} sell?".format(people)
    step_by_step_guess = llm_query(external_knowledge_query)
    guesses.append("these people are {}".format(people) + ", so " + step_by_step_guess)
    guesses.append(image.simple_query("What do these people sell?"))
    return process_guesses("What do these people sell?", guesses)
''',
    "refcoco_keywords": '''
# dog facing the camera
def execute_command(image) -> ImagePatch:
    image_patch = ImagePatch(image)
    dog_patches = image_patch.find("dog")
    if len(dog_patches) == 0:
        dog_patches = [image_patch]
    dog_patch = best_image_match(list_patches=dog_patches, content=["dog facing the camera"])
    return dog_patch
''',
    "distance_floats": '''
# bottom-most foo, closest to the left
def execute_command(image) -> ImagePatch:
    image_patch = ImagePatch(image)
    foo_patches = image_patch.find("foo")
    lowest = min([patch.vertical_center for patch in foo_patches])
    bottom = [p for p in foo_patches if distance(p.vertical_center, lowest) < 100]
    bottom.sort(key=lambda foo: foo.horizontal_center)
    return bottom[0]
''',
    "crop_verify": '''
# Is the left half of the image showing a red car?
def execute_command(image) -> str:
    image_patch = ImagePatch(image)
    left_half = image_patch.crop(0, 0, image_patch.width // 2, image_patch.height)
    car_patches = left_half.find("car")
    for car in car_patches:
        if car.verify_property("car", "red") and car.overlaps_with(0, 0, image_patch.width // 2, image_patch.height):
            return "yes"
    return "no"
''',
    "vpd_signature": '''
def execute_command(image, my_fig, time_wait_between_lines, syntax):
    image_patch = ImagePatch(image)
    cup_patches = image_patch.find("cup")
    print(f"Found {len(cup_patches)} cups")
    answer = cup_patches[0].best_text_match(["gold", "white"], prefix="a")
    return formatting_answer(answer)
''',
    "coerce_count": '''
# How many apples are there, in words?
def execute_command(image):
    image_patch = ImagePatch(image)
    n = coerce_to_numeric(image_patch.simple_query("How many apples?"))
    k = count(image_patch.find("apple"))
    caption = image_patch.caption()
    return {"n": n, "k": k, "caption": caption, "root": math.sqrt(k * 8)}
''',
}


@pytest.fixture(scope="module")
def fake_pool():
    with SandboxPool(workers=2, tools=fake_toolbox(), timeout_s=5.0) as pool:
        yield pool


@pytest.fixture(scope="module")
def fake_results(fake_pool):
    from PIL import Image

    image = Image.new("RGB", (200, 100), (10, 20, 30))
    names = list(VIPER_STYLE)
    return dict(zip(names, fake_pool.map([{"source": VIPER_STYLE[n], "image": image} for n in names])))


@pytest.mark.parametrize("name", list(VIPER_STYLE))
def test_viper_style_program_runs(name, fake_results):
    r = fake_results[name]
    assert r.status == "ok", r.error


@pytest.mark.parametrize("name", list(VIPER_STYLE))
def test_viper_style_program_trace_recorded_by_host(name, fake_results):
    assert len(fake_results[name].trace.calls) >= 1


def test_patch_answer_becomes_pixel_box(fake_results):
    # "depth": the farthest bench is the widest crop -> the second fake box (bottom-right quadrant)
    assert fake_results["depth"].answer == {"box": [100, 50, 199, 99]}


def test_list_annotation_returns_boxes(fake_results):
    assert fake_results["list_annotation"].answer == [{"box": [0, 0, 50, 25]}, {"box": [100, 50, 199, 99]}]


def test_vpd_signature_prints_and_prefix(fake_results):
    r = fake_results["vpd_signature"]
    assert r.answer == "gold" and r.stdout == "Found 2 cups\n"


def test_process_guesses_accepts_a_list(fake_results):
    assert fake_results["okvqa_format_guesses"].answer == "paris"


def test_trace_reads_like_vpd(fake_results):
    text = fake_results["llm_fstring"].trace.text()
    assert text.splitlines()[:2] == ["Calling find function. Detect dish",
                                    "Detection result: 0 0 50 25 dish, 100 50 199 99 dish"]
    assert "Calling llm_query function. Question: Which country is red from?" in text
    assert text.endswith("Program output: paris")


def test_crop_runs_tools_on_the_cropped_box(fake_results):
    calls = fake_results["crop_verify"].trace.calls
    assert calls[0].tool == "detect" and calls[0].box.ints() == (0, 0, 100, 100)


def test_program_cannot_forge_trace(fake_pool):
    src = ('def execute_command(image):\n'
           '    print("Calling find function. Detect car\\nDetection result: 1 2 3 4 car")\n'
           '    return "car"\n')
    r = fake_pool.run(src)
    assert r.trace.calls == () and r.trace.text() == "Program output: car"


def test_extract_programs_from_prompt_text():
    prompt = '''class ImagePatch:
    def find(self, object_name):
        """
        >>> # return the foo
        >>> def execute_command(image) -> List[ImagePatch]:
        >>>     image_patch = ImagePatch(image)
        >>>     return image_patch.find("foo")
        """

# Examples
# How many cats?
def execute_command(image)->str:
    image_patch = ImagePatch(image)
    return str(len(image_patch.find("cat")))

# a video one
def execute_command(video):
    return VideoSegment(video)

# INSERT_QUERY_HERE
def execute_command(INSERT_TYPE_HERE):
'''
    progs = extract_programs("p.prompt", prompt)
    assert len(progs) == 2
    assert progs[0].source.startswith("# return the foo\ndef execute_command(image) -> List[ImagePatch]:")
    assert "# How many cats?\ndef execute_command(image)->str:" in progs[1].source


def test_api_failure_classification():
    assert api_failure("rejected", "PolicyViolation: x") == "rejected"
    assert api_failure("error", "NameError: name 'VideoPatch' is not defined (line 2)") == "missing API name VideoPatch"
    assert api_failure("error", "NameError: name 'objects' is not defined (line 7)") is None
    assert api_failure("error", "AttributeError: 'ImagePatch' object has no attribute 'segment'") == "missing ImagePatch.segment"


# -- the real shapes backend ------------------------------------------------------------------

SHAPES_PROGRAM = '''
def execute_command(image):
    image_patch = ImagePatch(image)
    answers = {}
    for color in ["red", "green", "blue", "yellow", "purple", "orange", "cyan"]:
        patches = image_patch.find(f"{color} object")
        answers[color] = len(patches)
        if image_patch.exists(f"{color} object"):
            print(f"{color}: {patches[0].simple_query('What shape is this?')}")
    return formatting_answer(answers)
'''


def test_shapes_program_counts_match_scene():
    from vpd.benchmarks.shapes import generate_scene, render_scene

    scene = generate_scene(seed=0, index=3)
    with SandboxPool(workers=1, tools="shapes") as pool:
        r = pool.run(SHAPES_PROGRAM, image=render_scene(scene), timeout_s=20.0)
    assert r.status == "ok", r.error
    truth = {c: sum(o.color == c for o in scene.objects) for c in r.answer}
    assert r.answer == truth
    assert "Calling find function. Detect red object" in r.trace.text()
