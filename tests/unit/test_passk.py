"""The unbiased pass@k estimator against hand-computed values and the exact binomial form."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import pytest

from fleetbench.scoring.passk import mean_pass_at_k, pass_at_k, pass_at_ks


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
        (5, 2, 1, 0.4),  # c / n
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (5, 2, 3, 0.9),  # 1 - C(3,3)/C(5,3) = 1 - 1/10
        (5, 2, 4, 1.0),  # n - c < k: every draw of 4 holds a correct sample
        (10, 1, 10, 1.0),
        (10, 0, 10, 0.0),
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (20, 3, 10, 17 / 19),  # 1 - C(17,10)/C(20,10) = 1 - 19448/184756 = 1 - 2/19
    ],
)
def test_hand_computed(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_matches_the_exact_binomial_ratio() -> None:
    for n in range(1, 16):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - Fraction(comb(n - c, k), comb(n, k))
                assert pass_at_k(n, c, k) == pytest.approx(float(exact), abs=1e-12)


def test_large_n_is_stable() -> None:
    """C(1000, 100) overflows a float; the product form does not."""
    exact = 1 - Fraction(comb(997, 100), comb(1000, 100))
    assert pass_at_k(1000, 3, 100) == pytest.approx(float(exact), rel=1e-12)
    assert 0.27 < pass_at_k(1000, 3, 100) < 0.28
    assert pass_at_k(200, 0, 100) == 0.0


@pytest.mark.parametrize(("n", "c", "k"), [(3, 4, 1), (3, -1, 1), (3, 1, 0), (3, 1, 4)])
def test_invalid_arguments(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_mean_over_problems() -> None:
    counts = [(5, 2), (5, 0), (5, 5)]
    assert mean_pass_at_k(counts, 1) == pytest.approx((0.4 + 0 + 1) / 3)
    assert mean_pass_at_k(counts, 2) == pytest.approx((0.7 + 0 + 1) / 3)
    assert mean_pass_at_k(counts, 10) is None  # some problem has fewer than 10 samples
    assert mean_pass_at_k([], 1) is None
    assert mean_pass_at_k([(10, 3), (2, 1)], 1) == pytest.approx((0.3 + 0.5) / 2)


def test_only_computable_ks_are_reported() -> None:
    counts = [(10, 3), (10, 0)]
    assert list(pass_at_ks(counts, (100, 1, 10))) == [1, 10]  # ascending, 100 > n dropped
    assert pass_at_ks(counts, (10,)) == {10: pytest.approx(0.5)}
