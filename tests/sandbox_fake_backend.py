"""A Fake tool backend for the sandbox tests only (registered as ``fake-sandbox-test``).

Deterministic answers for every tool, so ViperGPT-style programs run their whole path; boxes are
in pixels of the (cropped) image it is given, as a real backend's would be.
"""

from __future__ import annotations

from vpd.tools.backend import BACKENDS, Backend, register_backend
from vpd.tools.toolbox import Toolbox
from vpd.types import Box

NAME = "fake-sandbox-test"


class FakeSandboxBackend(Backend):
    provides = frozenset({"detect", "vqa", "verify_property", "best_text_match", "depth", "llm_query", "caption"})

    def detect(self, image, query):
        w, h = image.size
        return [Box(x0=0, y0=0, x1=w // 4, y1=h // 4, score=0.9, label=query),
                Box(x0=w // 2, y0=h // 2, x1=w - 1, y1=h - 1, score=0.8, label=query)]

    def vqa(self, image, question):
        return "yes" if question.lower().startswith(("is", "are", "does")) else "red"

    def verify_property(self, image, name, prop):
        return True

    def best_text_match(self, image, options):
        return options[0]

    def depth(self, image, box=None):
        """The patch width (the host passes the whole image and the patch as ``box``)."""
        return float(box[2] - box[0]) if box is not None else float(image.size[0])

    def llm_query(self, question, long_answer=True):
        return "paris"

    def caption(self, image):
        return "a test image"


if NAME not in BACKENDS:
    register_backend(NAME)(FakeSandboxBackend)


def fake_toolbox() -> Toolbox:
    backend = FakeSandboxBackend()
    return Toolbox({tool: backend for tool in backend.provides})
