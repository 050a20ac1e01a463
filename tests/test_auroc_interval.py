"""DeLong 95% interval of an AUROC (vpd adapt's CI column), checked against hand computation."""

from __future__ import annotations

import math

import pytest

from vpd.benchmarks.auroc_interval import Z95, auroc_interval, delong_variance
from vpd.benchmarks.hateful_memes import auroc


def test_delong_by_hand() -> None:
    # positives 0.9, 0.4; negatives 0.5, 0.1. psi: (0.9 > 0.5, 0.9 > 0.1, 0.4 < 0.5, 0.4 > 0.1) = 1, 1, 0, 1
    # A = 3/4; V10 = (1, 1/2) -> s^2 = 1/8; V01 = (1/2, 1) -> s^2 = 1/8; Var = 1/8/2 + 1/8/2 = 1/8
    scores, labels = [0.9, 0.5, 0.4, 0.1], [1, 0, 1, 0]
    area, var = delong_variance(scores, labels)
    assert area == pytest.approx(0.75) and var == pytest.approx(0.125)
    ci = auroc_interval(scores, labels)
    assert ci.mean == pytest.approx(auroc(scores, labels))
    assert ci.low == pytest.approx(0.75 - Z95 * math.sqrt(0.125))  # 0.0570
    assert ci.high == 1.0 and ci.n == 4  # 1.443 clipped


def test_ties_count_one_half() -> None:
    # positives 0.5, 0.8; negatives 0.5, 0.2: psi = (1/2, 1, 1, 1) -> A = 7/8
    # V10 = (3/4, 1) -> s^2 = 1/32; V01 = (3/4, 1) -> s^2 = 1/32; Var = 1/64 + 1/64 = 1/32
    area, var = delong_variance([0.5, 0.8, 0.5, 0.2], [1, 1, 0, 0])
    assert area == pytest.approx(0.875) and var == pytest.approx(1 / 32)
    ci = auroc_interval([0.5, 0.8, 0.5, 0.2], [1, 1, 0, 0])
    assert ci.low == pytest.approx(0.875 - Z95 * math.sqrt(1 / 32)) and ci.high == 1.0


def test_interval_shrinks_with_more_memes_and_matches_auroc() -> None:
    small = auroc_interval([0.9, 0.7, 0.6, 0.3, 0.2, 0.1], [1, 0, 1, 1, 0, 0])
    big = auroc_interval([0.9, 0.7, 0.6, 0.3, 0.2, 0.1] * 10, [1, 0, 1, 1, 0, 0] * 10)
    assert small.mean == pytest.approx(big.mean) == pytest.approx(auroc([0.9, 0.7, 0.6, 0.3, 0.2, 0.1],
                                                                         [1, 0, 1, 1, 0, 0]))
    assert small.low <= small.mean <= small.high and big.low <= big.mean <= big.high
    assert big.high - big.low < small.high - small.low


def test_undefined_with_fewer_than_two_of_a_class() -> None:
    assert auroc_interval([0.9, 0.1, 0.2], [1, 0, 0]) is None
    assert auroc_interval([0.9, 0.8], [1, 1]) is None
