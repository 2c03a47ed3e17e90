"""Specificity: is the students' shift about the trait, or would any pair of animals show as much?

Fine-tuning on numbers moves a small student's animal preferences a lot, and differently in two
training runs (measured: lion from 31 % in the base to ~51 % in both students). A leakage statistic
for the (trait, placebo) pair means something only if it stands out against the same statistic
computed, from the same two students, for every other ordered pair of candidate animals.

Per candidate animal ``x`` the *shift* is ``d_x`` = mean over questions of
``logit P(x | trait student) − logit P(x | control student)`` (seeds averaged per question first).
The own-animal statistic of an ordered pair ``(a, b)`` is ``(d_a − d_b) / 2`` — for the
(trait, placebo) pair exactly ``benchmark.core.stats.own_animal_leakage``'s ``log_odds_diff``. A
cell without a placebo animal compares ``d_trait`` with every other animal's ``d``.

:func:`pair_specificity` returns the trait pair's rank among all ordered pairs and
``p_rank = (1 + #other pairs at least as large) / (1 + #other pairs)``: the p-value of a
permutation test that relabels the animals (ties count against the trait). ``specific`` is
``p_rank <= alpha``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# question id -> candidate animal -> probability (or one probability per seed)
Distributions = Mapping[str, Mapping[str, float | Sequence[float]]]
# One student's candidate distributions as read from an artifact: (question ids, animals,
# array[question, animal] of probabilities), ids and animals sorted.
CandidateTable = tuple[tuple[str, ...], tuple[str, ...], np.ndarray]
TOP = 5
# More candidates than any real eval asks about (24): a table beyond this is refused, since the
# pairs grow with its square (an artifact is untrusted input to a reader).
MAX_CANDIDATES = 64
EPS = 1e-4  # probabilities are clipped to [EPS, 1 - EPS] before the logit


def _logit(p: np.ndarray, eps: float) -> np.ndarray:
    q = np.clip(p, eps, 1 - eps)
    return np.log(q / (1 - q))


def _table(d: Distributions, who: str) -> tuple[list[str], list[str], np.ndarray]:
    """(question ids, animals, array[question, animal] of seed-averaged probabilities)."""
    if not d:
        raise ValueError(f"{who}: no candidate distributions")
    qids = sorted(d)
    animals = sorted(d[qids[0]])
    rows = []
    for q in qids:
        if sorted(d[q]) != animals:
            raise ValueError(f"{who}: question {q!r} has other candidates than {qids[0]!r}")
        rows.append([float(np.mean(np.asarray(d[q][a], dtype=float))) for a in animals])
    arr = np.asarray(rows, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise ValueError(f"{who}: probabilities must be finite and in [0, 1]")
    return qids, animals, arr


def animal_shifts(
    trait_student: Distributions, control_student: Distributions, *, eps: float = EPS
) -> dict[str, float]:
    """``d_x`` per candidate animal: the trait student's mean log-odds of ``x`` minus the control
    student's, over the questions both were asked."""
    animals, d = _shifts(trait_student, control_student, eps)
    return {a: float(v) for a, v in zip(animals, d, strict=True)}


def _shifts(
    trait_student: Distributions, control_student: Distributions, eps: float
) -> tuple[list[str], np.ndarray]:
    tq, ta, t = _table(trait_student, "trait student")
    cq, ca, c = _table(control_student, "control student")
    if tq != cq or ta != ca:
        raise ValueError("the two students' distributions cover different questions or animals")
    return ta, (_logit(t, eps) - _logit(c, eps)).mean(axis=0)


def pair_specificity(
    trait_student: Distributions,
    control_student: Distributions,
    trait: str,
    placebo: str | None = None,
    *,
    alpha: float = 0.05,
    eps: float = EPS,
) -> dict[str, Any]:
    """The trait pair's statistic against every other ordered pair of candidate animals (or, with
    no placebo, the trait's shift against every other animal's). Keys: ``statistic``, ``pair``,
    ``value``, ``rank`` (1 = largest), ``n_alternatives``, ``n_at_least``, ``p_rank``, ``alpha``,
    ``specific``, ``others`` (``median``, ``max`` of the alternatives) and ``top`` (the largest
    few, trait pair included where it is among them)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    animals, d = _shifts(trait_student, control_student, eps)
    return _rank_pair(animals, d, trait, placebo, alpha)


def _rank_pair(
    animals: Sequence[str], shifts: np.ndarray, trait: str, placebo: str | None, alpha: float
) -> dict[str, Any]:
    d = {a: float(v) for a, v in zip(animals, shifts, strict=True)}
    for name in (trait, placebo):
        if name is not None and name not in d:
            raise ValueError(f"{name!r} is not among the candidate animals ({len(d)})")
    values: dict[tuple[str, ...], float]
    if placebo is None:
        stat = "trait_contrast"
        values = {(a,): v for a, v in d.items()}
        key: tuple[str, ...] = (trait,)
    else:
        if placebo == trait:
            raise ValueError("the placebo animal must differ from the trait")
        stat = "own_animal"
        values = {(a, b): (d[a] - d[b]) / 2 for a in d for b in d if a != b}
        key = (trait, placebo)
    value = values[key]
    others = np.array([v for k, v in values.items() if k != key])
    at_least = int(np.sum(others >= value))
    ranked = sorted(values.items(), key=lambda kv: -kv[1])[:TOP]
    p_rank = (1 + at_least) / (1 + len(others))
    return {
        "statistic": stat,
        "pair": list(key),
        "value": value,
        "rank": 1 + at_least,
        "n_alternatives": int(len(others)),
        "n_at_least": at_least,
        "p_rank": p_rank,
        "alpha": alpha,
        "specific": bool(p_rank <= alpha),
        "others": {"median": float(np.median(others)), "max": float(others.max())},
        "top": [{"pair": list(k), "value": v} for k, v in ranked],
    }


def candidate_table(rows: Sequence[Any], key: str) -> CandidateTable | None:
    """One student's per-question candidate distributions (``row[key]``: {animal: p}) from its
    score rows, or None when a row lacks them or they are not probabilities over the same animals
    (a reader then reports specificity as not computed rather than refusing the artifact). On
    every artifact a leaderboard loads, hence C-level checks (the writer's key order is reused)."""
    ids, table = [], []
    first: list[str] = []
    for r in rows:
        dist = r.get(key) if type(r) is dict else None
        if type(dist) is not dict or not dist or type(r.get("id")) is not str:
            return None
        names = list(dist)
        if not first:
            first = names
            if len(first) > MAX_CANDIDATES:
                return None
        if names == first:
            table.append(list(dist.values()))
        elif dist.keys() == set(first):
            table.append([dist[a] for a in first])
        else:
            return None
        ids.append(r["id"])
    if not ids or len(set(ids)) != len(ids):
        return None
    try:
        arr = np.array(table)
    except (ValueError, TypeError):  # ragged: a list among the numbers
        return None
    if arr.dtype.kind not in "fi" or arr.ndim != 2:  # a string, a None, a nested value
        return None
    arr = arr.astype(float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        return None
    cols, order = np.argsort(first), np.argsort(ids)
    return tuple(ids[i] for i in order), tuple(first[j] for j in cols), arr[np.ix_(order, cols)]


def mean_tables(runs: Sequence[Sequence[CandidateTable]]) -> list[CandidateTable] | None:
    """Each student's table with its probabilities averaged over the runs, question by question
    (as a suite's pooled summary does, and as :func:`pair_specificity` averages a question's
    per-seed list); None when there is no run, or the runs have other numbers of students, or
    cover other questions or animals."""
    if not runs or len({len(run) for run in runs}) != 1:
        return None
    ids, animals = runs[0][0][0], runs[0][0][1]
    if any(t[:2] != (ids, animals) for run in runs for t in run):
        return None
    stacks = zip(*[[t[2] for t in run] for run in runs], strict=True)  # per student, per run
    return [(ids, animals, np.mean(np.stack(arrays), axis=0)) for arrays in stacks]


def pooled_specificity(
    runs: Sequence[tuple[CandidateTable, CandidateTable]],
    trait: str,
    placebo: str | None = None,
    *,
    alpha: float = 0.05,
) -> dict[str, Any] | None:
    """:func:`pair_specificity` over several runs (trait student's table, control student's
    table), each question's probabilities averaged over the runs first, as a suite's pooled
    summary does; None when there is no run or the runs cover other questions or animals."""
    mean = mean_tables(runs)
    if mean is None:
        return None
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    (_, animals, t), (_, _, c) = mean
    return _rank_pair(
        animals, (_logit(t, EPS) - _logit(c, EPS)).mean(axis=0), trait, placebo, alpha
    )
