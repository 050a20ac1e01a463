"""Optional in-process llama.cpp sampler (``llamacpp:PATH.gguf``), ~5x faster than transformers on CPU.

Needs ``llama-cpp-python`` (an sdist: ``pip install llama-cpp-python`` builds llama.cpp, ~5 min on
2 cores). ``llamacpp:gemma`` uses the packaged Gemma 3 270M GGUF file. Requests run one after the
other (llama.cpp has no batched sampling here); ``n`` completions are ``n`` calls, each seeded with
``seed + i`` when a seed is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from vpd.programs.sampler_base import SAMPLERS, Completion, Sampler, truncate_at_stop

INSTALL_HINT = ("the llamacpp sampler needs llama-cpp-python: `pip install llama-cpp-python` "
                "(builds llama.cpp from source, ~5 min on 2 cores)")


class LlamaCppSampler(Sampler):
    kind = "llamacpp"

    def __init__(self, path: str | Path, *, n_ctx: int = 8192, n_threads: int | None = None,
                 n_batch: int = 512) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise RuntimeError(INSTALL_HINT) from exc
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"llamacpp sampler: no GGUF file at {p}")
        super().__init__(name=f"llamacpp:{p.name}")
        self.path = p
        self.llm = Llama(model_path=str(p), n_ctx=n_ctx, n_threads=n_threads, n_batch=n_batch,
                         verbose=False)

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    @property
    def context_tokens(self) -> int | None:
        return int(self.llm.n_ctx())

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "path": str(self.path),
                "context_tokens": self.context_tokens}

    def generate(self, prompts: Sequence[str], *, n: int = 1, temperature: float = 0.0,
                 max_tokens: int = 256, stop: Sequence[str] | None = None,
                 seed: int | None = None) -> list[list[Completion]]:
        out: list[list[Completion]] = []
        for i, prompt in enumerate(prompts):
            comps: list[Completion] = []
            runs = 1 if temperature <= 0 else max(1, n)
            for j in range(runs):
                try:
                    kw: dict[str, Any] = {"max_tokens": max_tokens, "temperature": float(temperature),
                                          "top_k": 0, "top_p": 1.0, "stop": list(stop or []) or None}
                    if seed is not None:
                        kw["seed"] = int(seed) + i * 1000 + j
                    r = self.llm.create_completion(prompt, **kw)
                    text = truncate_at_stop(r["choices"][0]["text"], stop)[0]
                    u = r.get("usage") or {}
                    comps.append(Completion(text=text, prompt_tokens=int(u.get("prompt_tokens", 0)),
                                            completion_tokens=int(u.get("completion_tokens", 0))))
                except Exception as exc:  # never raise out of generate
                    comps.append(Completion(text="", error=f"{type(exc).__name__}: {str(exc)[:300]}"))
            out.append(comps * n if runs == 1 else comps)
        return out

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None and hasattr(llm, "close"):
            llm.close()


def _factory(rest: str, **options: Any) -> LlamaCppSampler:
    if rest in ("", "gemma"):
        from vpd.programs.gemma import assemble_gguf

        rest = str(assemble_gguf(options.pop("cache_dir", None)))
    return LlamaCppSampler(rest, **options)


SAMPLERS.add("llamacpp", _factory)
