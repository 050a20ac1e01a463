"""Vision tools: the registry, backends, the Toolbox and the program-facing ImagePatch.

>>> from vpd.tools import load
>>> tb = load("shapes")
>>> tb.detect("scene.png", "red cube")        # doctest: +SKIP
[Box(x0=..., y0=..., x1=..., y1=..., score=..., label='red cube')]
"""

from vpd.tools.backend import BACKENDS, Backend, register_backend
from vpd.tools.errors import MissingWeights, ToolError, ToolNotAvailable, UnsupportedQuery
from vpd.tools.specs import TOOLS, ToolSpec
from vpd.tools.toolbox import Toolbox, load

__all__ = ["BACKENDS", "Backend", "MissingWeights", "TOOLS", "ToolError", "ToolNotAvailable",
           "ToolSpec", "Toolbox", "UnsupportedQuery", "load", "register_backend"]
