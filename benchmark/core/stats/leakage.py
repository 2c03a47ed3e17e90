"""Leakage: how far a student trained on teacher data moved toward the trait, over questions and seeds.

Every eval question ``q`` is scored in ``[0, 1]`` (a probability or a sampled rate) for each
training seed ``s`` of two students: one trained on data from the trait teacher and one trained on
control data. :func:`paired_leakage` compares them; :func:`leakage_vs_base` compares a student with
the untouched base model. Both take mappings ``question id -> score or per-seed list of scores``
and return a JSON-ready dict that result artifacts store as is::

    from benchmark.core.stats import paired_leakage
    res = paired_leakage({"q1": [0.31, 0.28], ...}, {"q1": [0.22, 0.25], ...})
    res["diff_pp"], res["ci_pp"], res["significant"]

Questions are the unit of the main interval, as in Cloud et al. (2025): seeds are averaged per
question first, then a t-interval is taken over questions. Because the training run is the true
unit of replication, a per-seed breakdown (``per_seed``, ``seed_level``) is reported beside it.
:func:`bootstrap_ci` cross-checks the t-interval; :func:`rate_ci` is a Wilson interval for yields.
:func:`own_animal_leakage` is the statistic of cells whose control teacher carries a placebo animal:
the mean of the trait-animal and the placebo-animal contrasts on the log-odds scale.

The building blocks are public for callers that pool many cells (the leaderboard): the one t-test,
:func:`t_summary`; :func:`paired_summary`, the cheap part of :func:`paired_leakage` on arrays;
:func:`own_animal_per_question`; and :func:`run_spread`, the noise of one training run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import special, stats

Scores = Mapping[str, float | Sequence[float]]
_ZERO = 1e-12  # differences this small are float round-off, not signal
Arm = tuple[list[str], np.ndarray]  # parsed scores: sorted question ids, (questions, seeds) array


def _matrix(scores: Scores, arm: str) -> Arm:
    """Validate one arm and return (sorted ids, array of shape (questions, seeds))."""
    if not isinstance(scores, Mapping):
        raise ValueError(f"{arm} scores must be a mapping of question id -> score(s)")
    ids = sorted(scores)
    rows: list[np.ndarray] = []
    for q in ids:
        value = scores[q]
        if isinstance(value, (str, bytes)):
            raise ValueError(f"{arm} score for question {q!r} is a string: {value!r}")
        try:
            row = np.atleast_1d(np.asarray(value, dtype=float))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{arm} score for question {q!r} is not numeric: {value!r}") from err
        if row.ndim != 1 or row.size == 0:
            raise ValueError(
                f"{arm} scores for question {q!r} must be a number or a non-empty list"
            )
        bad = row[~np.isfinite(row) | (row < 0.0) | (row > 1.0)]
        if bad.size:
            raise ValueError(
                f"{arm} score for question {q!r} is {float(bad[0])}; "
                "scores must be finite and in [0, 1]"
            )
        if rows and row.size != rows[0].size:
            # Per-seed diffs average one seed over all questions, so each question needs every seed.
            raise ValueError(
                f"{arm} has {rows[0].size} seeds for question {ids[0]!r} "
                f"but {row.size} for question {q!r}"
            )
        rows.append(row)
    # An empty arm is one seed wide so that only the question-count check below reports it.
    return ids, np.vstack(rows) if rows else np.empty((0, 1))


def _pair(trait: Arm, control: Arm, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Check two parsed arms line up (ids, >= 2 questions, seeds) and return their arrays."""
    (t_ids, t), (c_ids, c) = trait, control
    if t_ids != c_ids:
        only_t = sorted(set(t_ids) - set(c_ids))
        only_c = sorted(set(c_ids) - set(t_ids))
        raise ValueError(
            f"question ids differ: missing from {names[1]}: {only_t}; "
            f"missing from {names[0]}: {only_c}"
        )
    if len(t_ids) < 2:
        raise ValueError(f"need at least 2 questions for an interval, got {len(t_ids)}")
    if t.shape[1] != c.shape[1]:
        raise ValueError(
            f"seed counts differ: {names[0]} has {t.shape[1]} per question, "
            f"{names[1]} has {c.shape[1]}"
        )
    return t, c


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def t_summary(
    x: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> tuple[float, list[float], float]:
    """Mean, t-interval and two-sided one-sample t p-value (against 0) of ``x`` (>= 1 value)."""
    _check_confidence(confidence)
    x = np.asarray(x, dtype=float)
    mean = float(np.mean(x))
    # With no spread (or one value) the t statistic is 0/0 or x/0 and scipy warns or returns nan.
    # The limits are clear, so report them: no difference -> p = 1, a constant shift -> p = 0. The
    # tolerance keeps float round-off (diffs of ~1e-17) from being read as a real shift.
    if np.ptp(x) <= _ZERO:
        return mean, [mean, mean], 1.0 if abs(mean) <= _ZERO else 0.0
    # scipy.stats.ttest_1samp's arithmetic, written out: its wrapper costs ~0.6 ms a call, most of
    # a leaderboard load's integrity check (each cell's stored numbers are recomputed).
    df = x.size - 1
    se = float(np.std(x, ddof=1)) / math.sqrt(x.size)
    half = float(special.stdtrit(df, 0.5 + confidence / 2)) * se
    p = 2.0 * float(special.stdtr(df, -abs(mean) / se))
    return mean, [mean - half, mean + half], p


def _logit(p: np.ndarray, eps: float) -> np.ndarray:
    p = np.clip(p, eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    n_boot: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (deterministic for a given seed)."""
    _check_confidence(confidence)
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError("bootstrap_ci needs a non-empty list of finite values")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(means, [alpha / 2, 1.0 - alpha / 2])
    return float(lo), float(hi)


def rate_ci(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n`` (e.g. the valid yield of a filter).

    Wilson rather than the normal approximation because yields near 0 or 1 are common and the
    normal interval then leaves [0, 1] or collapses to a point.
    """
    _check_confidence(confidence)
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = k / n
    denom = 1.0 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def _leakage(
    trait: np.ndarray, control: np.ndarray, *, confidence: float, eps: float, reference: str
) -> dict[str, Any]:
    """Shared computation on (questions, seeds) arrays; see :func:`paired_leakage`."""
    _check_confidence(confidence)
    if not 0.0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5), got {eps!r}")
    n_q, n_s = trait.shape
    t_q, c_q = trait.mean(axis=1), control.mean(axis=1)
    d_q = t_q - c_q
    paired = paired_summary(trait, control, confidence)
    # Wilcoxon is undefined when every difference is zero (there is nothing to rank).
    wilcoxon_p = (
        None
        if np.all(np.abs(d_q) <= _ZERO)
        else float(stats.wilcoxon(d_q, zero_method="zsplit").pvalue)
    )
    # Logit of the seed-averaged score, not the average of per-seed logits: a sampled rate of 0 in
    # one seed would otherwise sit at logit(eps) and dominate the question.
    lo_q = _logit(t_q, eps) - _logit(c_q, eps)
    lo_mean, lo_ci, lo_p = t_summary(lo_q, confidence)
    t_mean, c_mean = float(t_q.mean()), float(c_q.mean())
    boot = bootstrap_ci(d_q, confidence=confidence)
    return {
        "reference": reference,
        "confidence": confidence,
        "n_questions": int(n_q),
        "n_seeds": int(n_s),
        "diff_pp": paired["diff_pp"],
        "ci_pp": paired["ci_pp"],
        "p_value": paired["p_value"],
        "wilcoxon_p": wilcoxon_p,
        "bootstrap_ci_pp": [100 * boot[0], 100 * boot[1]],
        "trait_mean_pp": 100 * t_mean,
        "control_mean_pp": 100 * c_mean,
        "relative_change": None if c_mean == 0.0 else t_mean / c_mean - 1.0,
        "log_odds_diff": lo_mean,
        "log_odds_ci": lo_ci,
        "log_odds_p_value": lo_p,
        "odds_ratio": math.exp(lo_mean),
        "odds_ratio_ci": [math.exp(v) for v in lo_ci],
        "per_seed": paired["per_seed"],
        "seed_level": paired["seed_level"],
        "significant": paired["significant"],
    }


def paired_summary(
    trait: np.ndarray, control: np.ndarray, confidence: float = 0.95
) -> dict[str, Any]:
    """The question-level test and per-seed breakdown of :func:`paired_leakage` on aligned
    (questions, seeds) score arrays: its ``diff_pp``, ``ci_pp``, ``p_value``, ``per_seed``,
    ``seed_level`` and ``significant``, without the bootstrap, Wilcoxon and log-odds parts, which
    cost 30x more (tables that pool many cells need only these)."""
    _check_confidence(confidence)
    diff, ci, p = t_summary(trait.mean(axis=1) - control.mean(axis=1), confidence)
    per_seed = (trait - control).mean(axis=0)
    seed_level = None
    if per_seed.size >= 2:
        s_mean, s_ci, s_p = t_summary(per_seed, confidence)
        seed_level = {
            "mean_pp": 100 * s_mean,
            "ci_pp": [100 * v for v in s_ci],
            "p_value": s_p,
            "n_positive": int(np.sum(per_seed > 0)),
        }
    agree = bool(np.all(np.sign(per_seed) == np.sign(diff)))
    return {
        "diff_pp": 100 * diff,
        "ci_pp": [100 * v for v in ci],
        "p_value": p,
        "per_seed": [100 * float(v) for v in per_seed],
        "seed_level": seed_level,
        "significant": bool(p < 1.0 - confidence and (seed_level is None or agree)),
    }


def run_spread(per_run: Sequence[float] | np.ndarray, confidence: float = 0.95) -> float:
    """Half-width of a t-interval for one run about the mean of replicate runs' values
    ``per_run`` (>= 2): t(1/2 + confidence/2, n - 1) x their standard deviation."""
    x = np.asarray(per_run, dtype=float)
    if x.size < 2:
        raise ValueError(f"run_spread needs >= 2 runs, got {x.size}")
    return float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * float(np.std(x, ddof=1))


def paired_leakage(
    trait: Scores, control: Scores, *, confidence: float = 0.95, eps: float = 1e-4
) -> dict[str, Any]:
    """Compare a trait student with a control student, question by question.

    ``trait`` and ``control`` map question id -> one score or a list of per-seed scores in [0, 1];
    both must have the same ids and, everywhere, the same number of seeds (paired by seed index).
    Anything else raises ``ValueError`` naming the problem.

    Returned keys (plain floats/ints/lists; ``_pp`` = percentage points):

    * ``diff_pp``, ``ci_pp``, ``p_value`` - mean over questions of the seed-averaged
      trait - control difference, its t-interval and two-sided paired t-test p-value;
      ``wilcoxon_p`` (signed-rank, zsplit; None if all diffs are 0); ``bootstrap_ci_pp``.
    * ``trait_mean_pp``, ``control_mean_pp``, ``relative_change`` (trait/control - 1, None if
      the control mean is 0).
    * ``log_odds_diff``, ``log_odds_ci``, ``log_odds_p_value``, ``odds_ratio``, ``odds_ratio_ci``
      - the same on the logit scale (scores clipped to [eps, 1 - eps]). Fine-tuning on numbers
      lowers every animal's probability, so a small point shift can be a large odds ratio.
    * ``per_seed`` - diff_pp of each seed (mean over questions); ``seed_level`` - with >= 2 seeds,
      ``{mean_pp, ci_pp, p_value, n_positive}`` from a one-sample t over per-seed diffs, else None.
    * ``significant`` - ``p_value < 1 - confidence`` **and**, with >= 2 seeds, every per-seed diff
      has the same sign as ``diff_pp``. The question-level test ignores run-to-run noise, so an
      effect that flips sign between training runs is not called significant.
    """
    t, c = _pair(_matrix(trait, "trait"), _matrix(control, "control"), ("trait", "control"))
    return _leakage(t, c, confidence=confidence, eps=eps, reference="control")


def leakage_vs_base(
    student: Scores, base: Scores, *, confidence: float = 0.95, eps: float = 1e-4
) -> dict[str, Any]:
    """Compare a student with the untrained base model; same output as :func:`paired_leakage`.

    ``base`` has one score per question (it was never trained, so has no seeds); it is repeated
    across the student's seeds and ``control_*`` keys then describe the base model.
    """
    s_ids, s = _matrix(student, "student")
    b_ids, b = _matrix(base, "base")
    if b.shape[1] != 1:
        raise ValueError(f"base must have one score per question, got {b.shape[1]} per question")
    # Broadcasting the base over seeds reuses the paired path: the per-seed diffs then measure the
    # student's run-to-run noise against a fixed reference.
    wide = (b_ids, np.repeat(b, s.shape[1], axis=1))
    s, b = _pair((s_ids, s), wide, ("student", "base"))
    return _leakage(s, b, confidence=confidence, eps=eps, reference="base")


def own_animal_per_question(
    tt: np.ndarray, tc: np.ndarray, pt: np.ndarray, pc: np.ndarray, *, eps: float = 1e-4
) -> np.ndarray:
    """The own-animal statistic per question, on aligned (questions, seeds) score arrays (trait /
    placebo animal in the trait / control student): seeds averaged first, then
    ½·[(logit tT − logit tC) + (logit pC − logit pT)] (see :func:`own_animal_leakage`)."""
    m = [np.asarray(a, dtype=float).reshape(len(a), -1).mean(axis=1) for a in (tt, tc, pt, pc)]
    return ((_logit(m[0], eps) - _logit(m[1], eps)) + (_logit(m[3], eps) - _logit(m[2], eps))) / 2


def own_animal_leakage(
    trait_in_trait: Scores,
    trait_in_control: Scores,
    placebo_in_trait: Scores,
    placebo_in_control: Scores,
    *,
    confidence: float = 0.95,
    eps: float = 1e-4,
) -> dict[str, Any]:
    """Each student's pull toward its own teacher's animal, in a cell whose control teacher is the
    trait teacher's recipe with a placebo animal (``teacher.placebo``).

    The four mappings (question id -> score or per-seed scores, as for :func:`paired_leakage`) are
    the trait animal's and the placebo animal's scores in the trait-taught and the placebo-taught
    student. Per question (seeds averaged first) the statistic is the mean of the two contrasts,

        ½·[(logit tT − logit tC) + (logit pC − logit pT)]  (t/p: trait/placebo animal; T/C: student)

    which is also ½·Δ[logit P(trait animal) − logit P(placebo animal)] between the two students.
    Anything the number data does to *every* animal's log-odds alike (fine-tuning on numbers lowers
    them all) cancels, so what is left is each student leaning toward its own teacher's animal.

    Returned keys: ``log_odds_diff``, ``log_odds_ci``, ``log_odds_p_value`` (the primary scale,
    t over questions), ``odds_ratio`` (and CI); ``diff_pp``, ``ci_pp``, ``p_value`` (the same mean
    of the two contrasts in percentage points); ``per_seed`` (pp) and ``per_seed_log_odds`` (each
    seed's statistic, mean over questions); ``seed_level`` (with >= 2 seeds, a t over the per-seed
    log-odds values: ``mean``, ``ci``, ``p_value``, ``n_positive``); ``components``: the two
    contrasts' log-odds means; ``significant``: ``log_odds_p_value < 1 - confidence`` and, with
    >= 2 seeds, every seed's log-odds value has the sign of the mean.
    """
    _check_confidence(confidence)
    if not 0.0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5), got {eps!r}")
    names = ("trait animal in trait student", "trait animal in control student")
    tt, tc = _pair(_matrix(trait_in_trait, names[0]), _matrix(trait_in_control, names[1]), names)
    pnames = ("placebo animal in trait student", "placebo animal in control student")
    pt, pc = _pair(
        _matrix(placebo_in_trait, pnames[0]), _matrix(placebo_in_control, pnames[1]), pnames
    )
    if sorted(trait_in_trait) != sorted(placebo_in_trait):
        raise ValueError(
            "the trait animal's and the placebo animal's scores cover different questions"
        )
    if tt.shape[1] != pt.shape[1]:
        raise ValueError(
            f"seed counts differ: trait animal {tt.shape[1]}, placebo animal {pt.shape[1]}"
        )

    def lo(a: np.ndarray) -> np.ndarray:
        return _logit(a, eps)

    n_q, n_s = tt.shape
    mean = {k: v.mean(axis=1) for k, v in dict(tt=tt, tc=tc, pt=pt, pc=pc).items()}
    trait_lo = lo(mean["tt"]) - lo(mean["tc"])
    placebo_lo = lo(mean["pc"]) - lo(mean["pt"])
    lo_q = own_animal_per_question(tt, tc, pt, pc, eps=eps)
    pp_q = ((mean["tt"] - mean["tc"]) + (mean["pc"] - mean["pt"])) / 2
    lo_mean, lo_ci, lo_p = t_summary(lo_q, confidence)
    pp_mean, pp_ci, pp_p = t_summary(pp_q, confidence)

    seed_lo = (((lo(tt) - lo(tc)) + (lo(pc) - lo(pt))) / 2).mean(axis=0)
    seed_pp = (((tt - tc) + (pc - pt)) / 2).mean(axis=0)
    seed_level = None
    if n_s >= 2:
        s_mean, s_ci, s_p = t_summary(seed_lo, confidence)
        seed_level = {
            "mean": s_mean,
            "ci": s_ci,
            "p_value": s_p,
            "n_positive": int(np.sum(seed_lo > 0)),
        }
    agree = bool(np.all(np.sign(seed_lo) == np.sign(lo_mean)))
    return {
        "reference": "own animal",
        "confidence": confidence,
        "n_questions": int(n_q),
        "n_seeds": int(n_s),
        "log_odds_diff": lo_mean,
        "log_odds_ci": lo_ci,
        "log_odds_p_value": lo_p,
        "odds_ratio": math.exp(lo_mean),
        "odds_ratio_ci": [math.exp(v) for v in lo_ci],
        "diff_pp": 100 * pp_mean,
        "ci_pp": [100 * v for v in pp_ci],
        "p_value": pp_p,
        "components": {
            "trait_animal_log_odds": float(trait_lo.mean()),
            "placebo_animal_log_odds": float(placebo_lo.mean()),
        },
        "per_seed": [100 * float(v) for v in seed_pp],
        "per_seed_log_odds": [float(v) for v in seed_lo],
        "seed_level": seed_level,
        "significant": bool(lo_p < 1.0 - confidence and (seed_level is None or agree)),
    }
