"""Token log-probabilities recorded while ``transformers`` decodes (the LLM's own score of a program).

Used by :mod:`vpd.programs.sampler_transformers`; the mean over a completion's tokens is
``Completion.mean_logprob`` (:func:`vpd.programs.sampler_base.mean_logprob`).
"""

from __future__ import annotations

from typing import Any


class LogprobRecorder:
    """Logits processor that records each generated token's log-probability under the model.

    Called once per decoding step with the scores ``generate`` has processed so far. transformers
    (5.x) runs custom processors after its own processors (repetition penalty, minimum length …;
    none under the sampler's settings) and *before* the sampling warpers (temperature, top-k,
    top-p), so these are the model's raw logits: the score is the untempered model's, whatever the
    sampling temperature (a test checks it against teacher forcing). A step's distribution is kept
    until the next call, whose ``input_ids`` end with the token chosen from it; :meth:`finish` takes
    the last chosen token. Memory: one (B, V) float tensor.
    """

    def __init__(self) -> None:
        self._prev: Any = None
        self._steps: list[Any] = []  # per step: (B,) log-probabilities of the chosen tokens

    def _take(self, tokens: Any) -> None:
        if self._prev is not None:
            self._steps.append(self._prev.gather(1, tokens.view(-1, 1).to(self._prev.device)).squeeze(1))

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        self._take(input_ids[:, -1])
        self._prev = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def finish(self, last_tokens: Any) -> list[list[float]]:
        """Per row, the log-probability of every generated token (padding after a row's end too)."""
        import torch

        self._take(last_tokens)
        self._prev = None
        if not self._steps:
            return [[] for _ in range(int(last_tokens.shape[0]))]
        return torch.stack(self._steps, dim=1).tolist()
