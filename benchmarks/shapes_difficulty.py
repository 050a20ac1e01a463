"""The ``shapes`` world's difficulty dial: how hard its pixels are for the pixel detector.

``easy`` is the world as it always was (scenes and images byte-identical for a seed). ``medium``
and ``hard`` keep the same objects, vocabulary, questions and split rule, and add what makes real
detectors miss, merge and mislabel:

* **scene** (:func:`vpd.benchmarks.shapes.generate_scene`): heavier corner occlusion
  (``max_overlap`` of each side of the smaller box), objects placed touching a neighbour (two of
  the same colour then read as one blob), and *tiny* small objects (``tiny_range`` px, near the
  detector's minimum area);
* **image** (:mod:`vpd.benchmarks.shapes_effects`): per-object paint hue jitter and a tinted light
  (close colour pairs — orange/red, cyan/blue, purple/blue — drift towards each other), a light
  falloff and dark cast shadows that fall onto neighbouring objects, clutter of unknown shapes
  (rings, crosses, bars, stars; not objects), Gaussian blur, stronger pixel noise and JPEG
  re-encoding.

Scene records stay exact ground truth (amodal boxes, true colour/shape/size); clutter is never an
object. Units: pixels of the 320x240 image, hues in degrees, ``*_prob`` are probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpd.registry import Registry


@dataclass(frozen=True, kw_only=True)
class Difficulty:
    """Generator and renderer settings of one difficulty level (defaults = ``easy``)."""

    name: str
    # -- scene sampling ------------------------------------------------------------------
    overlap_prob: float = 0.35  # chance that a new object tucks a corner under/over another one
    max_overlap: float = 0.3  # of each side of the smaller box
    same_color_gap: int = 6  # px between boxes of the same colour (0: they may touch)
    adjacent_prob: float = 0.0  # chance that a new object is placed 0-2 px from a neighbour
    tiny_prob: float = 0.0  # chance that a "small" object is drawn tiny
    tiny_range: tuple[int, int] = (11, 15)  # px, longer side of a tiny object
    # -- rendering -----------------------------------------------------------------------
    hue_jitter_deg: float = 0.0  # max paint hue shift per object
    tint: float = 0.0  # max per-channel gain deviation of the light colour
    falloff: float = 0.0  # max darkening towards one side of the image (light gradient)
    cast_shadow: float = 0.0  # darkness (0..1) of shadows cast onto other objects
    clutter: tuple[int, int] = (0, 0)  # unknown-shape distractors per image (min, max)
    blur_px: tuple[float, float] = (0.0, 0.0)  # Gaussian blur radius range
    extra_noise: float = 0.0  # pixel noise sigma added on top of the base noise
    jpeg_quality: tuple[int, int] | None = None  # JPEG re-encoding quality range, None: none

    @property
    def is_easy(self) -> bool:
        """True when nothing differs from the original world (the byte-identical path)."""
        return self == Difficulty(name=self.name)


DIFFICULTIES: Registry[Difficulty] = Registry("difficulty")

DIFFICULTIES.register("easy")(Difficulty(name="easy"))
DIFFICULTIES.register("medium")(Difficulty(
    name="medium", overlap_prob=0.4, max_overlap=0.35, same_color_gap=3, adjacent_prob=0.08, tiny_prob=0.1,
    hue_jitter_deg=6.0, tint=0.06, falloff=0.25, cast_shadow=0.35, clutter=(0, 3), blur_px=(0.3, 0.6),
    extra_noise=3.0, jpeg_quality=(55, 80)))
DIFFICULTIES.register("hard")(Difficulty(
    name="hard", overlap_prob=0.5, max_overlap=0.45, same_color_gap=0, adjacent_prob=0.15, tiny_prob=0.2,
    hue_jitter_deg=10.0, tint=0.12, falloff=0.4, cast_shadow=0.55, clutter=(1, 4), blur_px=(0.5, 1.0),
    extra_noise=5.0, jpeg_quality=(35, 65)))

#: Levels in order of difficulty (the registry's names).
LEVELS: tuple[str, ...] = ("easy", "medium", "hard")


def get_difficulty(name: str) -> Difficulty:
    """The settings of level ``name`` (unknown names fail with "did you mean …")."""
    return DIFFICULTIES.get(name)
