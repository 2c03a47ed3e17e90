"""The one statistics package: every number the suite, ``slb validate`` and the leaderboard report.

* ``leakage`` — how far the trait student moved toward the trait against its control: the paired
  per-question difference with intervals over questions and over seeds (:func:`paired_leakage`,
  :func:`leakage_vs_base`), the own-animal statistic of placebo-controlled cells
  (:func:`own_animal_leakage`), and the building blocks the leaderboard pools with.
* ``specificity`` — whether that movement is about the trait: the same statistic for every other
  ordered pair of candidate animals of the same two students, and the trait pair's rank among them
  (:func:`pair_specificity`).
* ``paired`` — one defense against the baseline over paired seeds: the paired t-test, the exact
  sign-flip test, Holm's correction, and the interval of a share of the baseline removed.

Import from here (``from benchmark.core.stats import paired_leakage``); the submodules are the
implementation.
"""

from benchmark.core.stats.leakage import (
    Scores,
    bootstrap_ci,
    leakage_vs_base,
    own_animal_leakage,
    own_animal_per_question,
    paired_leakage,
    paired_summary,
    rate_ci,
    run_spread,
    t_summary,
)
from benchmark.core.stats.paired import MIN_EXACT, holm, paired_test, ratio_ci, sign_flip_p
from benchmark.core.stats.specificity import (
    CandidateTable,
    animal_shifts,
    candidate_table,
    pair_specificity,
    pooled_specificity,
)

__all__ = [
    "MIN_EXACT",
    "holm",
    "paired_test",
    "ratio_ci",
    "sign_flip_p",
    "Scores",
    "animal_shifts",
    "bootstrap_ci",
    "leakage_vs_base",
    "own_animal_leakage",
    "own_animal_per_question",
    "pair_specificity",
    "pooled_specificity",
    "candidate_table",
    "CandidateTable",
    "paired_leakage",
    "paired_summary",
    "rate_ci",
    "run_spread",
    "t_summary",
]
