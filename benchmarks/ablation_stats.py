"""Confidence intervals for the ablation: over seeds (Student's t) and within one run (Wilson).

All accuracies are fractions in [0, 1]; intervals are two-sided 95%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True, kw_only=True)
class Interval:
    """``mean`` with a 95% interval ``[low, high]``; ``n`` values (seeds or questions)."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def to_dict(self) -> dict:
        return {"mean": round(self.mean, 4), "low": round(self.low, 4), "high": round(self.high, 4), "n": self.n}

    def pct(self) -> str:
        """``"61.3 ± 2.4"`` in percentage points (``"61.3"`` for a single value)."""
        if self.n < 2 or not math.isfinite(self.half_width):
            return f"{100 * self.mean:.1f}"
        if abs((self.high - self.mean) - (self.mean - self.low)) > 1e-9:  # asymmetric (Wilson)
            return f"{100 * self.mean:.1f} [{100 * self.low:.1f}, {100 * self.high:.1f}]"
        return f"{100 * self.mean:.1f} ± {100 * self.half_width:.1f}"


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean of ``values`` (e.g. one accuracy per seed) with Student's t interval."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n == 1:
        return Interval(mean=mean, low=float("nan"), high=float("nan"), n=1)
    from scipy.stats import t

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean=mean, low=mean - half, high=mean + half, n=n)


def wilson(correct: int, n: int, z: float = 1.959964) -> Interval:
    """Wilson score interval of a proportion (one run on ``n`` questions)."""
    if n == 0:
        return Interval(mean=0.0, low=0.0, high=1.0, n=0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # clamped so that low <= p <= high exactly (at 0 or n correct, rounding leaves a sliver either side)
    return Interval(mean=p, low=min(p, max(0.0, centre - half)), high=max(p, min(1.0, centre + half)), n=n)


def paired_difference(a: Sequence[float], b: Sequence[float]) -> Interval:
    """``a - b`` per seed (same seed = same labelled subset and data order), t interval of the mean."""
    if len(a) != len(b):
        raise ValueError("paired values need the same seeds")
    return t_interval([x - y for x, y in zip(a, b)])


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value for paired right/wrong outcomes on the same questions:
    ``only_a`` questions right in A only, ``only_b`` right in B only (a binomial test at 1/2)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2 ** n
    return min(1.0, 2 * tail)
