"""``vpd.programs.samplers``: the sampler API in one import (see :mod:`vpd.programs.sampler_base`).

>>> from vpd.programs.samplers import load_sampler
>>> s = load_sampler("openai:qwen2.5-coder@http://127.0.0.1:8000/v1")   # doctest: +SKIP
>>> s.generate(["def add(a, b):\\n"], n=4, temperature=0.7, max_tokens=64)  # doctest: +SKIP
"""

from vpd.programs.sampler_base import (SAMPLERS, Completion, Sampler, SamplerOptionError, _import_samplers,
                                       estimate_tokens, load_sampler, parse_spec, sampler_identity, split_options,
                                       truncate_at_stop)

_import_samplers()  # every sampler kind registered (their heavy imports stay lazy)

__all__ = ["SAMPLERS", "Completion", "Sampler", "SamplerOptionError", "estimate_tokens", "load_sampler",
           "parse_spec", "sampler_identity", "split_options", "truncate_at_stop"]
