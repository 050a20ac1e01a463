"""Depth runs on the whole image with the patch as ``box`` (ViperGPT semantics), never on a crop."""

from __future__ import annotations

from PIL import Image

from vpd.tools.backend import Backend
from vpd.tools.host import ToolHost
from vpd.tools.image_patch import ImagePatch
from vpd.tools.local_client import LocalClient
from vpd.tools.toolbox import Toolbox


class FakeDepthBackend(Backend):
    """Depth = mean x of the box; records what it was given (a fake inside a test of the host)."""

    name = "fake_depth"
    provides = frozenset({"depth"})

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[tuple[int, int], list[int] | None]] = []

    def depth(self, image: Image.Image, box: list[int] | None = None) -> float:
        self.seen.append((image.size, box))
        return float((box[0] + box[2]) / 2) if box else -1.0


def test_depth_sees_full_image_and_patch_box() -> None:
    backend = FakeDepthBackend()
    client = LocalClient(ToolHost(Toolbox({"depth": backend})))
    handle = client.open(Image.new("RGB", (100, 50), "white"))
    whole = ImagePatch(handle)
    left = whole.crop(0, 0, 40, 50)
    right = whole.crop(60, 0, 100, 50)
    assert left.compute_depth() < right.compute_depth()
    assert backend.seen == [((100, 50), [0, 0, 40, 50]), ((100, 50), [60, 0, 100, 50])]
    calls = client.host.trace().calls
    assert [c.box.ints() for c in calls] == [(0, 0, 40, 50), (60, 0, 100, 50)]
