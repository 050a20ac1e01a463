"""A 95% confidence interval for one AUROC: DeLong's nonparametric variance (DeLong, DeLong &
Clarke-Pearson, Biometrics 1988), Wald interval ``A ± z·SE`` clipped to [0, 1].

``A`` is the Mann-Whitney AUROC of :func:`vpd.benchmarks.hateful_memes.auroc` (ties count one
half). With ``P`` positives ``x_i`` and ``N`` negatives ``y_j`` and ``ψ(x, y) = 1 if x > y, ½ if
x = y, else 0``: the structural components are ``V10_i = mean_j ψ(x_i, y_j)`` and ``V01_j = mean_i
ψ(x_i, y_j)``; ``Var(A) = s²(V10) / P + s²(V01) / N`` with sample variances (denominator ``n - 1``).
Not covered: fewer than two items of either class (the variance is undefined; ``None``), and the
Wald interval's known optimism near ``A = 1`` with few memes (``SE`` is then 0).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from vpd.benchmarks.ablation_stats import Interval

#: Two-sided 95% normal quantile.
Z95 = 1.959964


def delong_variance(scores: Sequence[float], labels: Sequence[int]) -> tuple[float, float] | None:
    """``(AUROC, DeLong variance)`` of ``scores`` (higher = more positive) against 0/1 ``labels``;
    None with fewer than two positives or two negatives."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    pos, neg = s[y == 1], s[y != 1]
    if len(pos) < 2 or len(neg) < 2:
        return None
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])  # P x N
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    area = float(psi.mean())
    return area, float(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))


def auroc_interval(scores: Sequence[float], labels: Sequence[int], z: float = Z95) -> Interval | None:
    """AUROC with its DeLong interval ``[A - z·SE, A + z·SE]`` clipped to [0, 1] (``n`` = items);
    None when the variance is undefined (see :func:`delong_variance`)."""
    res = delong_variance(scores, labels)
    if res is None:
        return None
    area, var = res
    half = z * math.sqrt(max(var, 0.0))
    return Interval(mean=area, low=max(0.0, area - half), high=min(1.0, area + half), n=len(scores))
