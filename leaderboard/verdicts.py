"""The leaderboard's rule: a verdict per defense entry against ``none``, and the order of entries.

Input: per entry, its runs paired with the baseline's by seed (``leaderboard.pairing.Paired``: per
seed, the baseline's ranking statistic minus the entry's). Per entry of one setup:

* **Test** — ``benchmark.core.stats.paired.paired_test`` over the paired seeds: the paired t-test
  and the exact sign-flip test; its ``p`` is the larger of the two. The sign-flip test joins from
  the number of pairs at which it can reach Holm's strictest threshold for the family
  (``exact_from``: 6 pairs for one entry, 7 for two or three, 8 for four to six), so that one more
  seed never makes a verdict unreachable by arithmetic alone; below that, the t-test alone.
* **Verdict** — with fewer than :data:`MIN_SEEDS` paired seeds: *needs more seeds* (shown, not
  ranked). The others form one family: Holm's correction across them
  (``benchmark.core.stats.paired.holm``); adjusted p < :data:`ALPHA` and a positive mean
  reduction: *better*; adjusted p < :data:`ALPHA` and a negative one: *worse*; else *not shown*.
* **Overshoot** — a reduction beyond the baseline's own statistic (on the same seeds) means the
  entry's statistic went below zero. The effect used for ordering is capped at the baseline's
  statistic, always: removing more than all of the leakage earns nothing. The row is marked
  *overshoot* where that is more than noise (the entry's own statistic over the paired seeds is
  negative with p < :data:`ALPHA`), not where an entry that removes all leakage lands just past
  the cap by chance.
* **Order** — *better* first, then *not shown* with an effect >= 0, then *not shown* with a
  negative effect and *worse* together, then *needs more seeds*; within each by the capped
  effect (largest first), then by the width of the interval (narrowest first), then by name.
  *Worse* does not form a tier below *not shown*: a wider interval would then lift a harmful
  entry (its verdict turns *not shown*), and no entry may gain standing from a wider interval.
  With this order a wider interval (noisier runs) can only cost an entry its *better* verdict or
  its tie-break, and a larger effect never moves an entry down (``tests/test_verdicts.py``).

References (``leaderboard.references``) get the same test, uncorrected and without a verdict:
they are not in the family and never ranked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from benchmark.core.stats.paired import MIN_EXACT, exact_from, holm, paired_test
from leaderboard.pairing import Paired

BETTER, NOT_SHOWN, WORSE, MORE_SEEDS = "better", "not shown", "worse", "needs more seeds"
VERDICTS = (BETTER, NOT_SHOWN, WORSE, MORE_SEEDS)
RANKED = (BETTER, NOT_SHOWN, WORSE)
MIN_SEEDS = 5
ALPHA = 0.05


@dataclass(frozen=True)
class Assessment:
    """One entry's paired comparison with the baseline, and its verdict."""

    n: int  # paired seeds
    verdict: str
    effect: float | None = None  # mean reduction over the paired seeds (baseline − entry)
    ci: tuple[float, float] | None = None  # its 95 % t-interval over seeds
    p_t: float | None = None
    p_sign_flip: float | None = None
    p: float | None = None  # the larger of the two (the t-test alone below ``exact_from`` pairs)
    p_holm: float | None = None  # Holm-adjusted within the setup's family (None outside it)
    baseline: float | None = None  # the baseline's statistic on the same seeds (mean)
    overshoot: bool = False
    score: float | None = None  # the effect used for ordering: capped at ``baseline``

    @property
    def ranked(self) -> bool:
        return self.verdict in RANKED


def compare(p: Paired, min_exact: int = MIN_EXACT) -> dict[str, Any] | None:
    """The paired test of one comparison; None without a paired seed."""
    return paired_test(p.diff, min_exact=min_exact) if p.n else None


def assess(pairs: dict[str, Paired], alpha: float = ALPHA) -> dict[str, Assessment]:
    """Verdicts for the defense entries of one setup (all of them one Holm family)."""
    family = sorted(e for e, p in pairs.items() if p.n >= MIN_SEEDS)
    k = exact_from(len(family), alpha)
    tests = {e: compare(p, k) for e, p in pairs.items()}
    ps = [t["p"] for e in family if (t := tests[e]) is not None]  # every member has a test
    adjusted = dict(zip(family, holm(ps, alpha), strict=True))
    return {e: _assessment(pairs[e], tests[e], adjusted.get(e), alpha) for e in pairs}


def describe(p: Paired) -> Assessment:
    """A reference's comparison with the baseline: the same test, no correction, no verdict."""
    return _assessment(p, compare(p), None, ALPHA, verdict="reference")


def _assessment(
    p: Paired, t: dict[str, Any] | None, adjusted: float | None, alpha: float, verdict: str = ""
) -> Assessment:
    if t is None:
        return Assessment(n=0, verdict=verdict or MORE_SEEDS)
    effect = float(t["mean"])
    if not verdict:
        if adjusted is None:
            verdict = MORE_SEEDS
        elif adjusted < alpha:
            verdict = BETTER if effect > 0 else WORSE if effect < 0 else NOT_SHOWN
        else:
            verdict = NOT_SHOWN
    base = float(p.ref.mean())
    mine = paired_test(p.mine) if p.n >= 2 else None
    below = mine is not None and mine["mean"] < 0 and mine["p_t"] < alpha
    return Assessment(
        n=p.n,
        effect=effect,
        ci=None if t["ci"] is None else (float(t["ci"][0]), float(t["ci"][1])),
        p_t=t["p_t"],
        p_sign_flip=t["p_sign_flip"],
        p=t["p"],
        p_holm=adjusted,
        verdict=verdict,
        baseline=base,
        overshoot=effect > base and below,
        score=min(effect, base),
    )


def tier(a: Assessment) -> int:
    """0 better; 1 not shown, effect >= 0; 2 not shown with a negative effect, or worse; 3 needs
    more seeds (and anything unranked)."""
    if a.verdict == BETTER:
        return 0
    if a.verdict == NOT_SHOWN:
        return 1 if (a.score or 0.0) >= 0 else 2
    return 2 if a.verdict == WORSE else 3


def order_key(name: str, a: Assessment) -> tuple[int, float, float, str]:
    width = a.ci[1] - a.ci[0] if a.ci else math.inf
    score = a.score if a.score is not None else -math.inf
    return (tier(a), -score, width, name)


def order(assessments: dict[str, Assessment]) -> list[str]:
    """The entries best first (see the module docstring); independent of the input order."""
    return sorted(assessments, key=lambda e: order_key(e, assessments[e]))


def positions(assessments: dict[str, Assessment]) -> dict[str, int | None]:
    """1, 2, ... for ranked entries in order; None for the others (needs more seeds)."""
    ranked = [e for e in order(assessments) if assessments[e].ranked]
    return {e: (ranked.index(e) + 1 if e in ranked else None) for e in assessments}
