"""In-process sampler on a transformers causal LM (the offline default ``gemma`` uses it).

Batched: the ``len(prompts) * n`` sequences are generated ``batch_size`` at a time with left
padding. Greedy (``temperature == 0``) generates each prompt once and repeats it ``n`` times.
Sampling is pure temperature sampling (no top-k / top-p); with ``seed`` set, batch ``b`` is seeded
with ``seed + b``, so a call is reproducible for the same prompts, ``n`` and ``batch_size``.
:meth:`TransformersSampler.generate_k` decodes the greedy candidate in the same batch as the
sampled ones (its row is held to the arg-max), so the shared prompt is prefilled once.
Stop strings end a sequence as soon as they appear in its text and are cut from the result.
Each completion carries ``mean_logprob``: the mean log-probability of its generated tokens (up to
end-of-sequence; a stop string's tokens included) under the untempered model, recorded while
decoding (:class:`vpd.programs.token_logprobs.LogprobRecorder`), for ``vpd synth --select score``.

Prompt prefixes are cached as KV caches: :meth:`~TransformersSampler.warm` pins the API section
every prompt starts with, so a new question costs only its own examples and question.

Weights run in ``dtype``: ``auto`` (the default; env ``VPD_LLM_DTYPE`` overrides) picks bfloat16
on CPUs with native bf16 matrix units (AVX512-BF16 / AMX; ~2-3x faster decoding there) and on
GPUs, float32 otherwise.
"""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

from vpd.programs.sampler_base import SAMPLERS, Completion, Sampler, mean_logprob, truncate_at_stop
from vpd.programs.token_logprobs import LogprobRecorder


class TransformersSampler(Sampler):
    """Wraps a loaded ``(model, tokenizer)`` pair; see :meth:`from_path`."""

    kind = "transformers"

    def __init__(self, model: Any, tokenizer: Any, *, name: str, batch_size: int = 8,
                 stop_window_tokens: int = 24, prefix_cache: bool = True,
                 min_prefix_tokens: int = 64, prefix_cache_entries: int = 4,
                 extend_min_tokens: int = 16, dtype: str | None = None) -> None:
        super().__init__(name=name)
        self.dtype = resolve_dtype(dtype)
        self.model, self.tokenizer = _to_dtype(model, self.dtype), tokenizer
        self.batch_size = max(1, int(batch_size))
        self.stop_window_tokens = stop_window_tokens
        self.prefix_cache = prefix_cache
        self.min_prefix_tokens = min_prefix_tokens
        self.prefix_cache_entries = prefix_cache_entries
        self.extend_min_tokens = extend_min_tokens
        self._prefixes: OrderedDict[tuple[int, ...], Any] = OrderedDict()  # prefix ids -> KV cache
        self._pinned: set[tuple[int, ...]] = set()  # warmed prefixes, never evicted
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.stats = {"sequences": 0, "generated_tokens": 0, "batches": 0, "prefill_tokens": 0,
                      "prefix_hits": 0}

    @classmethod
    def from_path(cls, path: str | Path, **options: Any) -> "TransformersSampler":
        """Load a local model folder (``config.json``, weights, tokenizer files)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        p = Path(path).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"transformers sampler: no model folder at {p} "
                                    "(put a causal-LM folder with config.json, weights and tokenizer there)")
        tok = AutoTokenizer.from_pretrained(p)
        model = AutoModelForCausalLM.from_pretrained(p, dtype=resolve_dtype(options.get("dtype"))).eval()
        return cls(model, tok, name=f"transformers:{p}", **options)

    # -- Sampler API -----------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def context_tokens(self) -> int | None:
        n = getattr(self.model.config, "max_position_embeddings", None)
        return int(n) if n else None

    def describe(self) -> dict[str, Any]:
        n_params = sum(p.numel() for p in self.model.parameters())
        return {"kind": self.kind, "name": self.name, "batch_size": self.batch_size,
                "prefix_cache": self.prefix_cache, "dtype": self.dtype,
                "model_type": getattr(self.model.config, "model_type", ""), "parameters": n_params,
                "context_tokens": self.context_tokens}

    def close(self) -> None:
        self.model = None
        self._prefixes.clear()
        self._pinned.clear()

    mixes_greedy_in_one_request = True

    def warm(self, prefix: str) -> None:
        """Compute and pin the KV cache of ``prefix`` (its last two tokens are left out, so the key
        stays a token prefix of prompts where the boundary tokenises differently)."""
        if not self.prefix_cache or self.model is None:
            return
        ids = tuple(self.tokenizer(prefix)["input_ids"][:-2])
        if len(ids) < self.min_prefix_tokens or ids in self._prefixes:
            return
        import torch

        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([list(ids)]), use_cache=True, logits_to_keep=1)
        self.stats["prefill_tokens"] += len(ids)
        self._prefixes[ids] = out.past_key_values
        self._pinned.add(ids)

    def generate_k(self, prompts: Sequence[str], *, k: int, temperature: float, greedy_first: bool = False,
                   max_tokens: int = 256, stop: Sequence[str] | None = None,
                   seed: int | None = None) -> list[list[Completion]]:
        if not (greedy_first and temperature > 0 and k > 1):
            return super().generate_k(prompts, k=k, temperature=temperature, greedy_first=greedy_first,
                                      max_tokens=max_tokens, stop=stop, seed=seed)
        jobs = [(i, p, j == 0) for i, p in enumerate(prompts) for j in range(k)]
        return self._run_jobs(jobs, len(prompts), temperature, max_tokens, stop, seed)

    def generate(self, prompts: Sequence[str], *, n: int = 1, temperature: float = 0.0,
                 max_tokens: int = 256, stop: Sequence[str] | None = None,
                 seed: int | None = None) -> list[list[Completion]]:
        n = max(1, int(n))
        greedy = temperature <= 0.0
        copies = 1 if greedy else n
        jobs = [(i, p, False) for i, p in enumerate(prompts) for _ in range(copies)]
        results = self._run_jobs(jobs, len(prompts), temperature, max_tokens, stop, seed)
        if greedy:
            results = [r * n for r in results]
        return results

    def _run_jobs(self, jobs: list[tuple[int, str, bool]], n_prompts: int, temperature: float, max_tokens: int,
                  stop: Sequence[str] | None, seed: int | None) -> list[list[Completion]]:
        """Run ``(prompt index, prompt, greedy row)`` jobs ``batch_size`` at a time, in order."""
        results: list[list[Completion]] = [[] for _ in range(n_prompts)]
        for b, start in enumerate(range(0, len(jobs), self.batch_size)):
            batch = jobs[start:start + self.batch_size]
            try:
                comps = self._generate_batch([p for _, p, _ in batch], temperature, max_tokens,
                                             list(stop or ()), None if seed is None else seed + b,
                                             greedy_rows=[g for _, _, g in batch])
            except Exception as exc:  # never raise out of generate
                msg = f"{type(exc).__name__}: {str(exc)[:300]}"
                comps = [Completion(text="", error=msg) for _ in batch]
            for (i, _, _), c in zip(batch, comps):
                results[i].append(c)
        return results

    # -- internals -------------------------------------------------------------------------
    def _shared_prefix(self, rows: list[list[int]]) -> tuple[tuple[int, ...], Any]:
        """The KV cache of the prefix shared by every row; ``((), None)`` if it is too short.

        The few-shot prompts of a run share the API section and often examples, so their prefill
        is computed once and reused (each row keeps at least one own token). A cached prefix is
        reused as is when the rows share at most ``extend_min_tokens`` more; otherwise it is
        extended (only the extra tokens are computed) and the longer prefix is cached too — e.g.
        the ``n`` sampled copies of one prompt share the whole prompt.
        """
        import torch

        limit = min(len(r) for r in rows) - 1
        lcp = min(_common_prefix(rows), limit)
        best: tuple[int, ...] = ()
        for key in self._prefixes:
            if len(best) < len(key) <= limit and all(tuple(r[:len(key)]) == key for r in rows):
                best = key
        if best and lcp - len(best) < self.extend_min_tokens:
            self._prefixes.move_to_end(best)
            self.stats["prefix_hits"] += 1
            return best, self._prefixes[best]
        if lcp < self.min_prefix_tokens:
            return (), None
        key = tuple(rows[0][:lcp])
        start = len(best)  # extend the best cached prefix rather than starting over
        with torch.inference_mode():
            if best:
                out = self.model(input_ids=torch.tensor([list(key[start:])]), use_cache=True,
                                 past_key_values=copy.deepcopy(self._prefixes[best]), logits_to_keep=1)
            else:
                out = self.model(input_ids=torch.tensor([list(key)]), use_cache=True, logits_to_keep=1)
        self.stats["prefill_tokens"] += lcp - start
        self._prefixes[key] = out.past_key_values
        while len(self._prefixes) > self.prefix_cache_entries + len(self._pinned):
            oldest = next(k for k in self._prefixes if k not in self._pinned)
            del self._prefixes[oldest]
        return key, out.past_key_values

    def _generate_batch(self, prompts: list[str], temperature: float, max_tokens: int,
                        stop: list[str], seed: int | None,
                        greedy_rows: list[bool] | None = None) -> list[Completion]:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        if self.model is None:
            raise RuntimeError("sampler is closed")
        tok = self.tokenizer
        rows = [tok(p)["input_ids"] for p in prompts]
        ctx = self.context_tokens
        longest = max(len(r) for r in rows)
        if ctx is not None and longest + max_tokens > ctx:
            raise ValueError(f"prompt of {longest} tokens + max_tokens {max_tokens} exceeds the "
                             f"model context of {ctx} tokens")
        prefix, cache = self._shared_prefix(rows) if self.prefix_cache else ((), None)
        P = len(prefix)
        # Layout per row: [shared prefix][pads][own suffix]. Pads sit between the prefix and the
        # suffix (masked out; positions come from the mask, so real tokens keep their positions).
        suffixes = [r[P:] for r in rows]
        W = max(len(x) for x in suffixes)
        pad = tok.pad_token_id
        input_ids = torch.tensor([list(prefix) + [pad] * (W - len(x)) + list(x) for x in suffixes])
        mask = torch.tensor([[1] * P + [0] * (W - len(x)) + [1] * len(x) for x in suffixes])
        width = P + W
        prompt_lens = [len(r) for r in rows]
        kw: dict[str, Any] = {"max_new_tokens": int(max_tokens), "pad_token_id": pad}
        if cache is not None:
            batch_cache = copy.deepcopy(cache)
            if len(rows) > 1:
                batch_cache.batch_repeat_interleave(len(rows))
            kw["past_key_values"] = batch_cache
        recorder = LogprobRecorder()
        processors: list[Any] = [recorder]  # first of ours: it sees the logits before _ArgmaxRows
        if temperature > 0:
            kw.update(do_sample=True, temperature=float(temperature), top_k=0, top_p=1.0)
            if greedy_rows and any(greedy_rows):
                processors.append(_ArgmaxRows(greedy_rows))
        else:
            kw.update(do_sample=False, temperature=None, top_k=None, top_p=None)
        kw["logits_processor"] = LogitsProcessorList(processors)
        if stop:
            kw["stopping_criteria"] = StoppingCriteriaList([_StopOnStrings(tok, width, stop,
                                                                           self.stop_window_tokens)])
        if seed is not None:
            torch.manual_seed(int(seed))
        self.stats["prefill_tokens"] += len(rows) * W
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, **kw)
        new = out[:, width:]
        token_lps = recorder.finish(out[:, -1]) if new.shape[1] else [[] for _ in rows]
        eos = _eos_ids(self.model, tok)
        comps = []
        for row, p_len, lps in zip(new.tolist(), prompt_lens, token_lps):
            used = len(row)
            for j, t in enumerate(row):
                if t in eos:
                    used = j
                    break
            text = tok.decode(row[:used], skip_special_tokens=True)
            text, _ = truncate_at_stop(text, stop)
            comps.append(Completion(text=text, prompt_tokens=int(p_len), completion_tokens=used,
                                    mean_logprob=mean_logprob(lps[:used])))
            self.stats["generated_tokens"] += used
        self.stats["sequences"] += len(prompts)
        self.stats["batches"] += 1
        return comps


class _ArgmaxRows:
    """Logits processor: the marked rows keep only their arg-max token, so sampling them is greedy."""

    def __init__(self, rows: list[bool]) -> None:
        self.rows = [i for i, g in enumerate(rows) if g]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self.rows:
            idx = torch.tensor(self.rows, device=scores.device)
            sub = scores[idx]
            keep = torch.full_like(sub, float("-inf"))
            keep.scatter_(1, sub.argmax(dim=-1, keepdim=True), 0.0)
            scores = scores.clone()
            scores[idx] = sub + keep
        return scores


def resolve_dtype(dtype: str | None) -> str:
    """``bfloat16`` | ``float32`` from ``dtype`` / ``$VPD_LLM_DTYPE`` / ``auto`` (see the module docstring)."""
    import torch

    name = (dtype or os.environ.get("VPD_LLM_DTYPE") or "auto").lower()
    if name in ("bf16", "bfloat16"):
        return "bfloat16"
    if name in ("fp32", "float32"):
        return "float32"
    if name != "auto":
        raise ValueError(f"LLM dtype must be auto, bfloat16 or float32, not {dtype!r}")
    if torch.cuda.is_available():
        return "bfloat16"
    try:
        fast_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        fast_bf16 = False
    return "bfloat16" if fast_bf16 else "float32"


def _to_dtype(model: Any, dtype: str) -> Any:
    import torch

    target = getattr(torch, dtype)
    return model.to(target) if next(model.parameters()).dtype != target else model


def _common_prefix(rows: list[list[int]]) -> int:
    n = min(len(r) for r in rows)
    first = rows[0]
    for i in range(n):
        t = first[i]
        if any(r[i] != t for r in rows):
            return i
    return n


def _eos_ids(model: Any, tok: Any) -> set[int]:
    ids: set[int] = set()
    for src in (getattr(model, "generation_config", None), model.config):
        e = getattr(src, "eos_token_id", None) if src is not None else None
        if isinstance(e, int):
            ids.add(e)
        elif isinstance(e, (list, tuple)):
            ids.update(int(x) for x in e)
    if tok.eos_token_id is not None:
        ids.add(int(tok.eos_token_id))
    if tok.pad_token_id is not None:
        ids.add(int(tok.pad_token_id))
    return ids


class _StopOnStrings:
    """Per-sequence stopping: true once a stop string appears in the last few decoded tokens."""

    def __init__(self, tok: Any, prompt_width: int, stops: list[str], window: int) -> None:
        self.tok, self.width, self.stops, self.window = tok, prompt_width, [s for s in stops if s], window

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        new = input_ids[:, self.width:]
        tail = new[:, -self.window:].tolist()
        texts = self.tok.batch_decode(tail, skip_special_tokens=True)
        done = [any(s in t for s in self.stops) for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _transformers_factory(rest: str, **options: Any) -> TransformersSampler:
    if not rest:
        raise ValueError("transformers sampler spec needs a path: transformers:PATH")
    return TransformersSampler.from_path(rest, **options)


def _gemma_factory(rest: str, **options: Any) -> TransformersSampler:
    from vpd.programs.gemma import MODEL_ID, load_gemma

    model, tok = load_gemma(rest or options.pop("cache_dir", None))  # fp32; the sampler casts to its dtype
    return TransformersSampler(model, tok, name=f"gemma:{MODEL_ID}", **options)


SAMPLERS.add("transformers", _transformers_factory)
SAMPLERS.add("gemma", _gemma_factory)
