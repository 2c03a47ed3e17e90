"""Paired comparisons over replicate runs: is one arm's statistic lower than another's, run by run?

The leaderboard compares each defense with the no-defense baseline on the seeds both ran. Each
seed gives one paired difference ``d_s`` (the baseline's statistic minus the defense's, the same
prompts, teacher samples and training seed on both sides), and the test is over those runs, the
unit of replication::

    from benchmark.core.stats.paired import holm, paired_test, ratio_ci
    res = paired_test([0.12, 0.08, 0.15, 0.02, 0.11, 0.09])
    res["mean"], res["ci"], res["p_t"], res["p_sign_flip"], res["p"]
    holm([0.01, 0.04, 0.30])                       # Holm-adjusted p-values, same order
    ratio_ci(d, b)                                 # share of the baseline removed, Fieller CI

* :func:`paired_test` — the paired t-test over runs (``scipy.stats.ttest_rel`` on the two sides
  gives the same p and interval) and, from :data:`MIN_EXACT` pairs on, the exact sign-flip
  permutation test (:func:`sign_flip_p`), which needs no normality: under "no effect" each
  difference is as likely positive as negative. ``p`` is the larger of the two, so an effect is
  only claimed when both tests see it. Below :data:`MIN_EXACT` pairs the smallest possible
  sign-flip p is above 0.05 (2/32 at five pairs), so the t-test stands alone there; in a family
  of comparisons corrected together it joins later (:func:`exact_from`).
* :func:`holm` — Holm's step-down correction (``statsmodels``) across the comparisons of one
  family (all defenses compared with one baseline).
* :func:`ratio_ci` — Fieller's interval for a ratio of paired means (the share of the baseline's
  statistic a defense removes). It is bounded exactly when the denominator's own t-test rejects 0
  at the same level; otherwise the share is undefined and None is returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

from benchmark.core.stats.leakage import t_summary

MIN_EXACT = 6  # pairs from which the sign-flip test joins the t-test (2/2**6 < 0.05)
MAX_EXACT = 20  # 2**20 sign vectors; above this the sign-flip p is a seeded Monte Carlo estimate
_DRAWS = 1 << 20
_TOL = 1e-12  # flipped means this close to the observed one count as equal (float round-off)


def min_sign_flip_p(n: int) -> float:
    """The smallest p the exact sign-flip test can give with ``n`` differences (2/2**n: all of one
    sign, and the mirror). A rule needing p below it with ``n`` runs can never be met."""
    return 2.0 / 2**n


def exact_from(family: int, alpha: float = 0.05) -> int:
    """Pairs from which the sign-flip test joins the t-test for one of ``family`` comparisons
    corrected together (Holm): the fewest at or above :data:`MIN_EXACT` whose floor 2/2**n is below
    the strictest corrected threshold ``alpha / family``. Joining earlier would make *better*
    unreachable by arithmetic at some numbers of pairs (6 of a family of 3: 3 × 2/64 > 0.05)
    while fewer pairs could reach it, so one more seed could cost an entry its verdict."""
    n = MIN_EXACT
    while min_sign_flip_p(n) >= alpha / max(family, 1):
        n += 1
    return n


def sign_flip_p(d: Sequence[float] | np.ndarray) -> float:
    """Two-sided p of the sign-flip permutation test of ``mean(d) = 0``: the share of the 2**n
    sign vectors whose flipped mean is at least as far from 0 as the observed one (exact up to
    :data:`MAX_EXACT` values; beyond, over 2**20 seeded random sign vectors)."""
    x = np.asarray(d, dtype=float)
    if x.size == 0:
        raise ValueError("sign_flip_p needs at least one difference")
    if x.size <= MAX_EXACT:
        bits = (np.arange(1 << x.size)[:, None] >> np.arange(x.size)) & 1
    else:
        bits = np.random.default_rng(0).integers(0, 2, size=(_DRAWS, x.size))
    sums = (1 - 2 * bits) @ x
    observed = abs(float(x.sum()))
    return float(np.mean(np.abs(sums) >= observed - _TOL * max(1.0, observed)))


def paired_test(
    d: Sequence[float] | np.ndarray, confidence: float = 0.95, min_exact: int = MIN_EXACT
) -> dict[str, Any]:
    """Mean of the paired differences ``d`` (one per run), its t-interval, the t-test's p, the
    sign-flip p (None below ``min_exact`` pairs) and ``p``, the larger of the two. With one
    difference there is no interval and no test (``ci`` and every p are None)."""
    x = np.asarray(d, dtype=float)
    n = int(x.size)
    if n == 0:
        raise ValueError("paired_test needs at least one difference")
    if n < 2:
        return {
            "n": n,
            "mean": float(x[0]),
            "ci": None,
            "p_t": None,
            "p_sign_flip": None,
            "p": None,
        }
    mean, ci, p_t = t_summary(x, confidence)
    p_sf = sign_flip_p(x) if n >= min_exact else None
    return {
        "n": n,
        "mean": mean,
        "ci": [ci[0], ci[1]],
        "p_t": p_t,
        "p_sign_flip": p_sf,
        "p": p_t if p_sf is None else max(p_t, p_sf),
    }


def holm(pvalues: Sequence[float], alpha: float = 0.05) -> list[float]:
    """Holm-adjusted p-values of one family of tests, in the order given (an empty list stays
    empty). A comparison is significant after correction when its adjusted p is below ``alpha``."""
    if len(pvalues) == 0:
        return []
    return [float(v) for v in multipletests(list(pvalues), alpha=alpha, method="holm")[1]]


def ratio_ci(
    num: Sequence[float] | np.ndarray, den: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float] | None:
    """``mean(num) / mean(den)`` of paired runs with Fieller's interval: the ratios ``r`` whose
    paired t-test of ``num - r * den`` does not reject at ``1 - confidence``. None when fewer than
    two pairs, or when the interval is unbounded (the denominator's mean is not significantly
    different from 0 at that level: the ratio is then undefined)."""
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"ratio_ci needs two paired 1-d samples, got {a.shape} and {b.shape}")
    n = a.size
    if n < 2:
        return None
    t2 = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) ** 2
    cov = np.cov(np.vstack([a, b]), ddof=1) / n  # covariance matrix of the two means
    ma, mb = float(a.mean()), float(b.mean())
    qa = mb * mb - t2 * cov[1, 1]
    if qa <= 0:
        return None
    qb = -2.0 * (ma * mb - t2 * cov[0, 1])
    qc = ma * ma - t2 * cov[0, 0]
    root = math.sqrt(max(0.0, qb * qb - 4.0 * qa * qc))
    return ma / mb, (-qb - root) / (2 * qa), (-qb + root) / (2 * qa)
