"""Program-writing prompts: the API, few-shot examples, then the question to complete.

Completion style (works for base models; chat models answer with a full function, which
:mod:`vpd.programs.extract` also handles)::

    # API ... (rendered from the tool registry: vpd.tools.api_prompt.render_api)
    class ImagePatch: ...

    # Examples ...
    # Question: How many red cubes are there?
    def execute_command(image):
        image_patch = ImagePatch(image)
        ...

    # Question: <the question>
    # Choices: A) red B) blue …            (multiple choice only)
    def execute_command(image):
        image_patch = ImagePatch(image)      <- the prompt ends here; the model writes the rest

Examples are the ``k`` nearest by question structure (most similar **last**), or a fixed set
(``mode="fixed"``, for comparison); ``exclude_same_template`` leaves out examples written for the
question's own template (leave-template-out, :func:`vpd.programs.retrieval.same_template`). A token
budget drops examples — the least similar first — and never the API. :data:`PROMPT_VERSION` is
written into every result; :func:`prompt_fingerprint` hashes what a prompt is actually made of (API
section, library, fixed set, stops), so a resumed run notices a prompt change that nobody versioned.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

from vpd.programs.library import Library, LibraryProgram, load_library, question_header
from vpd.programs.retrieval import Retriever, same_template
from vpd.programs.sampler_base import estimate_tokens

#: Bump on any change to the prompt text, the library or retrieval.
PROMPT_VERSION = "vpd-programs-v2"  # v2: 32 general composition programs (source: general)

#: The code every prompt ends with; the completion continues it.
CODE_PREFIX = "def execute_command(image):\n    image_patch = ImagePatch(image)\n"

#: Stop strings: the model starting the next example or leaving the function.
STOP: tuple[str, ...] = ("\n# Question", "\ndef ", "\nclass ", "\n```", "\n#", "\nprint(",
                         "\nif __name__", "\nexecute_command(")

#: One example per major question type (``mode="fixed"``), in prompt order.
FIXED_EXAMPLE_IDS: tuple[str, ...] = ("shapes_count_color_shape_1", "shapes_exists_color_shape_1",
                                      "shapes_spatial_left_1", "shapes_choice_color_1")

API_INTRO = ("# Python API for answering questions about an image. `ImagePatch(image)` is the whole image;\n"
             "# every method below runs a vision tool on a patch.\n")
EXAMPLES_INTRO = ("# Each program below answers the question above it with the API. It returns the answer\n"
                  "# as a short string: a number as digits, yes/no, a word, or the letter of the right choice.\n")

MODES = ("nearest", "fixed")


@dataclass(frozen=True, kw_only=True)
class Prompt:
    """A built prompt. ``text`` ends with :data:`CODE_PREFIX`; ``example_ids`` in prompt order.

    ``cache_prefix`` is the text every prompt of its builder starts with (the API section and the
    examples' intro), a hint for samplers that cache prompt prefixes (``Sampler.warm``).
    ``n_tokens`` is the prompt length by the counter used for the budget; ``dropped_ids`` are
    examples removed to fit ``budget_tokens``; ``over_budget`` is True when even the API and the
    question alone exceed it (the prompt is still returned; the sampler reports a too-long prompt).
    """

    text: str
    version: str = PROMPT_VERSION
    example_ids: tuple[str, ...] = ()
    mode: str = "nearest"
    prefix: str = CODE_PREFIX
    stop: tuple[str, ...] = STOP
    n_tokens: int = 0
    dropped_ids: tuple[str, ...] = ()
    over_budget: bool = False
    cache_prefix: str = ""


class PromptBuilder:
    """Builds prompts for one toolbox; holds the rendered API and the retriever (reuse it).

    Thread-safe: the retriever is created once under a lock; :meth:`warm` builds it (and its
    MiniLM and library matrix) eagerly, before prompts are built from several threads."""

    def __init__(self, tools: Sequence[str] | None = None, *, library: Library | None = None,
                 retriever: Retriever | None = None,
                 count_tokens: Callable[[str], int] | None = None) -> None:
        from vpd.tools.api_prompt import render_api

        self.tools = None if tools is None else sorted(set(tools))
        self.library = library if library is not None else load_library()
        self.usable = self.library.usable(self.tools)
        self._retriever = retriever
        self.count_tokens = count_tokens or estimate_tokens
        self.api = API_INTRO + render_api(self.tools)
        self._lock = threading.Lock()

    @property
    def fingerprint(self) -> str:
        """``PROMPT_VERSION+<12 hex>``: a hash of the API section, the usable library examples, the
        fixed set, the intro, code prefix and stop strings — everything but the question."""
        h = hashlib.sha1()
        for part in (self.api, EXAMPLES_INTRO, CODE_PREFIX, *STOP, *FIXED_EXAMPLE_IDS,
                     *(p.id + "\0" + p.render() for p in self.usable)):
            h.update(part.encode("utf-8") + b"\x1f")
        return f"{PROMPT_VERSION}+{h.hexdigest()[:12]}"

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            with self._lock:
                if self._retriever is None:
                    self._retriever = Retriever(self.library)
        return self._retriever

    def warm(self, questions: Sequence[tuple[str, Sequence[str] | None]] = (), mode: str = "nearest") -> None:
        """Build what ``mode`` needs now (for ``nearest``: the retriever, MiniLM, the library
        matrix, and the embeddings of ``questions``), so that no thread builds a model later."""
        if mode == "nearest":
            self.retriever.warm(questions)

    def examples(self, question: str, choices: Sequence[str] | None, k: int, mode: str,
                 exclude_same_template: bool = False) -> list[LibraryProgram]:
        """The examples for a question, in prompt order (most similar last for ``nearest``)."""
        if mode == "nearest":
            return self.retriever.nearest(question, choices, k, tools=self.tools,
                                          exclude_same_template=exclude_same_template)
        if mode == "fixed":
            usable = {p.id for p in self.usable
                      if not (exclude_same_template and same_template(p, question, choices))}
            fixed = [self.library.get(i) for i in FIXED_EXAMPLE_IDS if i in usable]
            extra = [p for p in self.usable if p not in fixed]
            return (fixed + extra)[:k]
        raise ValueError(f"prompt mode must be one of {MODES}, not {mode!r}")

    def build(self, question: str, choices: Sequence[str] | None = None, *, k_examples: int = 4,
              mode: str = "nearest", budget_tokens: int | None = None,
              exclude_same_template: bool = False) -> Prompt:
        examples = self.examples(question, choices, k_examples, mode, exclude_same_template)
        tail = question_header(question, tuple(choices) if choices else None) + CODE_PREFIX
        fixed_cost = self.count_tokens(self.api + "\n" + EXAMPLES_INTRO + "\n" + tail)
        costs = [self.count_tokens(ex.render() + "\n") for ex in examples]
        dropped: list[str] = []
        if budget_tokens is not None:
            while examples and fixed_cost + sum(costs) > budget_tokens:
                dropped.append(examples.pop(0).id)  # the least similar comes first
                costs.pop(0)
        parts = [self.api, "", EXAMPLES_INTRO]
        shared = "\n".join(parts) + "\n"
        parts += [ex.render() for ex in examples]
        parts.append(tail)
        text = "\n".join(parts)
        n = self.count_tokens(text)
        return Prompt(text=text, example_ids=tuple(ex.id for ex in examples), mode=mode, n_tokens=n,
                      dropped_ids=tuple(dropped),
                      over_budget=budget_tokens is not None and n > budget_tokens,
                      cache_prefix=shared if text.startswith(shared) else "")


_BUILDERS: dict[tuple, PromptBuilder] = {}
_BUILDERS_LOCK = threading.Lock()


def _builder(tools: Sequence[str] | None, count_tokens: Callable[[str], int] | None,
             library: str | None = None) -> PromptBuilder:
    key = (None if tools is None else tuple(sorted(set(tools))), count_tokens, library)
    builder = _BUILDERS.get(key)
    if builder is None:
        with _BUILDERS_LOCK:  # one builder (one retriever, one MiniLM) per key, whichever thread asks first
            builder = _BUILDERS.get(key)
            if builder is None:
                lib = load_library(library) if library is not None else None
                builder = _BUILDERS[key] = PromptBuilder(tools, library=lib, count_tokens=count_tokens)
    return builder


def warm_prompts(questions: Sequence[tuple[str, Sequence[str] | None]], tools: Sequence[str] | None = None, *,
                 mode: str = "nearest", count_tokens: Callable[[str], int] | None = None,
                 library: str | None = None) -> None:
    """Build the shared prompt builder for ``tools`` and everything it needs (see
    :meth:`PromptBuilder.warm`) in the calling thread, before prompts are built concurrently."""
    _builder(tools, count_tokens, library).warm(questions, mode)


def prompt_fingerprint(tools: Sequence[str] | None = None, library: str | None = None) -> str:
    """The :attr:`PromptBuilder.fingerprint` of the prompts for a toolbox's ``tools`` (and a library
    folder other than the packaged one)."""
    return _builder(tools, None, library).fingerprint


def build_program_prompt(question: str, choices: Sequence[str] | None = None,
                         tools: Sequence[str] | None = None, k_examples: int = 4,
                         mode: str = "nearest", budget_tokens: int | None = None, *,
                         count_tokens: Callable[[str], int] | None = None,
                         exclude_same_template: bool = False, library: str | None = None) -> Prompt:
    """Build one prompt (a cached :class:`PromptBuilder` per ``tools`` / ``count_tokens`` / ``library``).

    ``tools``: the tool names of the toolbox (e.g. ``Toolbox.tools``); None means every tool.
    ``budget_tokens``: the most prompt tokens allowed, by ``count_tokens`` (e.g.
    ``sampler.count_tokens``; default a ~3.5 chars/token estimate). Leave room for the completion:
    ``context - max_tokens``. ``library``: a program library folder (default: the packaged one).
    """
    return _builder(tools, count_tokens, library).build(question, choices, k_examples=k_examples, mode=mode,
                                               budget_tokens=budget_tokens, exclude_same_template=exclude_same_template)
