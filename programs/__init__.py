"""vpd.programs — program-writing prompts, the few-shot library, retrieval, LLM samplers,
code extraction and dedupe.

>>> from vpd.programs import build_program_prompt, load_sampler, sample_programs
>>> prompt = build_program_prompt("How many red cubes are there?", tools=["detect"])  # doctest: +SKIP
>>> cands = sample_programs(load_sampler("gemma"), [prompt], k=4, temperature=0.7)    # doctest: +SKIP
"""

from vpd.programs.dedupe import dedupe, normalise_program, program_key
from vpd.programs.extract import Extraction, extract_program
from vpd.programs.prompt import PROMPT_VERSION, Prompt, PromptBuilder, build_program_prompt
from vpd.programs.sampler_base import SAMPLERS, Completion, Sampler, load_sampler
from vpd.programs.sampling import SampledProgram, sample_programs

__all__ = ["PROMPT_VERSION", "SAMPLERS", "Completion", "Extraction", "Prompt", "PromptBuilder",
           "SampledProgram", "Sampler", "build_program_prompt", "dedupe", "extract_program",
           "load_sampler", "normalise_program", "program_key", "sample_programs"]
