"""Built-in backends. Importing this package registers them; heavy libraries load lazily."""

import importlib
import logging

_log = logging.getLogger(__name__)

#: Modules that register backends. Each imports its heavy dependencies only when instantiated.
BACKEND_MODULES = ("shapes", "owl", "clip", "depth", "blip", "paligemma", "groundingdino", "yolo", "ocr", "nudity", "openai_vlm", "vpd_vlm", "llm")

for _name in BACKEND_MODULES:
    importlib.import_module(f"{__name__}.{_name}")
