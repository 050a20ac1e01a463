"""In-process execution of trusted programs: a :class:`ToolClient` that calls a :class:`ToolHost` directly.

Use it to run ``ImagePatch`` programs you trust (library programs, tests, notebooks) without a
sandbox worker; untrusted, model-written programs go through :mod:`vpd.sandbox`.

>>> from vpd.tools import load
>>> from vpd.tools.host import ToolHost
>>> client = LocalClient(ToolHost(load("shapes")))
>>> image = client.open("scene.png")                       # doctest: +SKIP
>>> ImagePatch(image).find("red cube")                     # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from vpd.tools.errors import ToolError
from vpd.tools.host import ToolHost
from vpd.tools.image_patch import ImageHandle, bind_client


class LocalClient:
    """Sends tool requests to ``host`` in the same process; tool errors are raised as ToolError."""

    def __init__(self, host: ToolHost) -> None:
        self.host = host

    def call(self, tool: str, image_id: str | None, box: tuple[int, int, int, int] | None,
             args: dict[str, Any]) -> Any:
        reply = self.host.handle({"tool": tool, "image_id": image_id, "box": box, "args": args})
        if not reply["ok"]:
            raise ToolError(reply["error"])
        return reply["result"]

    def open(self, image: Image.Image | str | Path) -> ImageHandle:
        """Register ``image`` with the host and return the handle a program receives."""
        image_id, width, height = self.host.add_image(image)
        return ImageHandle(image_id, width, height, self)

    def run(self, source: str, image: Image.Image | str | Path, *, entry: str = "execute_command") -> Any:
        """Execute trusted program ``source`` on ``image``; returns its raw return value.

        The host's trace is reset first; read it afterwards with ``self.host.trace(output)``.
        """
        from vpd.tools.image_patch import PROGRAM_API

        import math

        handle = self.open(image)
        self.host.reset_trace()
        namespace: dict[str, Any] = {**PROGRAM_API, "math": math}
        bind_client(self)
        try:
            exec(compile(source, "<program>", "exec"), namespace)
            if entry not in namespace:
                raise ValueError(f"program defines no function {entry!r}")
            return namespace[entry](handle)
        finally:
            bind_client(None)
            self.host.drop_image(handle._id)
