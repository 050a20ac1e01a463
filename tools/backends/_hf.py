"""Base class of the model backends that load local checkpoints (transformers and friends).

Options every such backend accepts: ``device`` (``auto`` | ``cpu`` | ``cuda`` | ``cuda:1`` …),
``dtype`` (``auto``: bfloat16 on a GPU that supports it, float32 elsewhere; or ``float32`` |
``bfloat16`` | ``float16``; the older ``half: true`` means float16), ``max_batch`` (overrides the
class default), and one path option per entry of :attr:`ModelBackend.weight_keys` (defaults are the
standard locations under ``/models`` used by ``tools/gpu_tools.yaml``). Paths are resolved when the
backend is built, so a missing checkpoint fails at ``vpd.tools.load`` with the key and path in the
message.

transformers models load through :meth:`ModelBackend.load_pretrained`: in the chosen dtype and
straight onto the device (``from_pretrained(dtype=…, device_map=…)``), never materialised at full
precision on the host and cast afterwards, so transformers' ``_keep_in_fp32_modules`` (BLIP-2's
Q-Former, T5's ``wo``) stay float32 under float16.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from vpd.tools.backend import Backend
from vpd.tools.backends._runtime import (dtype_option, pick_device, pick_dtype, resolve_weights, weight_hash,
                                         weights_found)


class ModelBackend(Backend):
    """A backend with local weights. Subclasses set ``weight_keys`` and implement ``_load``."""

    #: option key -> default local path; the first key is required at construction time.
    weight_keys: ClassVar[dict[str, str]] = {}
    #: option keys resolved lazily (e.g. a second model only some tools need).
    lazy_keys: ClassVar[frozenset[str]] = frozenset()
    weight_kind: ClassVar[str] = "dir"
    #: per-key override of ``weight_kind`` ("file" | "dir" | "any").
    weight_kinds: ClassVar[dict[str, str]] = {}
    memory_class = "gpu-small"
    settings = {"device": "auto", "dtype": "auto", "max_batch": None}
    key_settings = frozenset({"dtype"})  # resolved: auto -> bfloat16 / float32 (see effective_setting)
    runtime_settings = frozenset({"device", "max_batch"})

    def __init__(self, **options: Any) -> None:
        if "half" in options:  # the older spelling: half: true = float16, half: false = float32
            options = {**{k: v for k, v in options.items() if k != "half"}, "dtype": dtype_option(options)}
        super().__init__(**options)
        self.device = pick_device(self.setting("device"))
        self.dtype = pick_dtype(self.device, self.setting("dtype"))
        self.max_batch = int(self.setting("max_batch") or type(self).max_batch)
        self.paths: dict[str, Path] = {}
        for key in self.weight_keys:
            if key not in self.lazy_keys:
                self.paths[key] = self.path(key)
        self._hash: str | None = None
        self._load()

    def path(self, key: str) -> Path:
        """Resolve weight option ``key`` (raises MissingWeights naming ``key`` and the path)."""
        if key not in self.paths:
            value = self.options.get(key, self.weight_keys.get(key))
            self.paths[key] = resolve_weights(self.name, key, value,
                                              kind=self.weight_kinds.get(key, self.weight_kind),
                                              hint=f"see `vpd tools list` and tools/gpu_tools.yaml for {self.name!r}")
        return self.paths[key]

    @classmethod
    def weight_option_names(cls) -> frozenset[str]:
        return frozenset(cls.weight_options) | frozenset(cls.weight_keys)

    def effective_setting(self, name: str) -> Any:
        if name == "dtype":
            return str(self.dtype).removeprefix("torch.")  # what ``auto`` resolved to on this device
        return super().effective_setting(name)

    def _load(self) -> None:
        """Load the model(s) of the eagerly resolved keys."""

    def load_pretrained(self, model_cls: Any, path: Path, **kw: Any):
        """``model_cls.from_pretrained(path)`` in :attr:`dtype`, placed on :attr:`device` while loading
        (transformers keeps ``_keep_in_fp32_modules`` in float32 under float16), in eval mode."""
        return model_cls.from_pretrained(path, dtype=self.dtype, device_map={"": self.device}, **kw).eval()

    def weight_hash(self) -> str:
        if self._hash is None:
            self._hash = weight_hash(*(self.paths[k] for k in sorted(self.paths)))
        return self._hash

    @classmethod
    def weights_status(cls, options: dict[str, Any] | None = None) -> str:
        opts = options or {}
        return weights_found(cls.name, {k: opts.get(k, d) for k, d in cls.weight_keys.items()},
                             {k: cls.weight_kinds.get(k, cls.weight_kind) for k in cls.weight_keys})

    def inputs_to_device(self, batch):
        """Move a processor output to the device; floating tensors take the model dtype (modules
        transformers keeps in float32 cast their inputs themselves)."""
        import torch

        out = {}
        for k, v in dict(batch).items():
            if isinstance(v, torch.Tensor):
                v = v.to(self.device, dtype=self.dtype) if v.is_floating_point() else v.to(self.device)
            out[k] = v
        return out

    def close(self) -> None:
        for attr in list(vars(self)):
            if attr.endswith("model") or attr.endswith("processor"):
                setattr(self, attr, None)
        if str(self.device).startswith("cuda"):
            import torch

            torch.cuda.empty_cache()


def chunked(fn: Callable[[list[Any], list[dict[str, Any]]], list[Any]], images: Sequence[Any],
            args: Sequence[dict[str, Any]], size: int) -> list[Any]:
    """Apply a batched ``fn`` in chunks of ``size``; a failing chunk falls back to one-by-one so that
    one bad input yields its own exception object and never costs the others their results."""
    out: list[Any] = []
    for i in range(0, len(images), max(1, size)):
        imgs, ars = list(images[i:i + size]), list(args[i:i + size])
        try:
            out.extend(fn(imgs, ars))
        except Exception:
            for im, a in zip(imgs, ars):
                try:
                    out.extend(fn([im], [a]))
                except Exception as exc:
                    out.append(exc)
    return out
