"""Several trait animals in one run: the own-animal statistic over m students, and its specificity.

A run with ``m`` students ``S_1 … S_m``, each trained on rows its own teacher wrote, the teachers
carrying ``m`` distinct animals ``a_1 … a_m`` (the cells of several traits that share one control
arm: the placebo animal's student is one of them). Per student and candidate ``x``, ``l_i(x)`` is
the mean over questions of ``logit P(x | S_i)`` (seeds averaged per question first). Student
``i``'s contrast for animal ``x`` is ``f_i(x) = l_i(x) − mean_{j≠i} l_j(x)``: how much more it
prefers ``x`` than the other students do. The statistic of an assignment ``(x_1 … x_m)`` of
distinct animals to the students is ``T = mean_i f_i(x_i)``; for the true assignment it is the
*multi-animal own-animal statistic*. With ``m = 2`` it is exactly the pair's own-animal statistic
(``(d_a − d_b) / 2``, :func:`benchmark.core.stats.pair_specificity`).

Specificity relabels the animals: the true assignment's rank among every injective assignment of
the candidates to the ``m`` students, ``p_rank = (1 + #other assignments at least as large) /
(1 + #others)`` (ties count against it). Exact while the assignments number at most
:data:`EXACT_MAX` (24 candidates: m ≤ 4); beyond, ``SAMPLED`` random assignments drawn with a
fixed seed give the Monte Carlo p ``(1 + #draws at least as large) / (1 + draws)``, which is
valid as it stands (the draws may include the true one).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmark.core.stats.specificity import (
    EPS,
    MAX_CANDIDATES,
    CandidateTable,
    _logit,
    mean_tables,
)

EXACT_MAX = 300_000
SAMPLED = 100_000
MC_SEED = 0
MAX_STUDENTS = 12
MAX_STUDENT_PERMUTATIONS = 8  # 8! = 40 320 orders
TOP = 5


def _contrasts(tables: Sequence[CandidateTable], eps: float) -> tuple[tuple[str, ...], np.ndarray]:
    """(animals, f[student, animal]) from the students' tables (same questions and animals)."""
    ids, animals = tables[0][0], tables[0][1]
    if any(t[0] != ids or t[1] != animals for t in tables):
        raise ValueError("the students' distributions cover different questions or animals")
    if len(animals) > MAX_CANDIDATES:
        raise ValueError(f"{len(animals)} candidate animals; at most {MAX_CANDIDATES}")
    ell = np.stack([_logit(np.asarray(t[2], dtype=float), eps).mean(axis=0) for t in tables])
    m = len(tables)
    others = (ell.sum(axis=0, keepdims=True) - ell) / (m - 1)
    return animals, ell - others


@functools.lru_cache(maxsize=4)
def _assignments(n: int, m: int) -> np.ndarray:
    """Every injective assignment of ``n`` candidates to ``m`` students, one per row (read-only:
    the same few tables serve every run of a summary)."""
    out = np.fromiter(
        itertools.chain.from_iterable(itertools.permutations(range(n), m)),
        dtype=np.int16,
        count=n_assignments(n, m) * m,
    ).reshape(-1, m)
    out.flags.writeable = False
    return out


def n_assignments(n: int, m: int) -> int:
    """Injective assignments of ``n`` candidates to ``m`` students: n! / (n − m)!."""
    return math.perm(n, m)


def multi_specificity(
    tables: Sequence[CandidateTable],
    animals: Sequence[str],
    *,
    alpha: float = 0.05,
    eps: float = EPS,
) -> dict[str, Any]:
    """The multi-animal own-animal statistic of students ``tables[i]`` trained on animal
    ``animals[i]``, and its rank among all injective assignments of the candidates. Keys:
    ``statistic`` (``multi_animal``), ``animals``, ``value``, ``per_animal`` (each student's
    contrast for its own animal, and that animal's rank among the candidates in it), ``rank``,
    ``n_alternatives`` (the assignments compared: all others, or the draws), ``n_assignments``
    (all of them), ``n_at_least``, ``p_rank``, ``method`` (``exact`` or ``sampled``),
    ``p_students`` (the true animals permuted among the students; None beyond 8), ``alpha``,
    ``specific``, ``others`` (median, max) and ``top`` (exact only)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    m = len(tables)
    if len(animals) != m:
        raise ValueError(f"{m} students but {len(animals)} animals; one animal per student")
    if not 2 <= m <= MAX_STUDENTS:
        raise ValueError(f"{m} students; the statistic needs 2 to {MAX_STUDENTS}")
    if len(set(animals)) != m:
        raise ValueError(f"the students' animals must differ, got {list(animals)}")
    names, f = _contrasts(tables, eps)
    missing = [a for a in animals if a not in names]
    if missing:
        raise ValueError(f"{missing} not among the candidate animals ({len(names)})")
    col = [names.index(a) for a in animals]
    rows = np.arange(m)
    own = f[rows, col]
    value = float(own.mean())
    n = len(names)
    total = n_assignments(n, m)
    top: list[dict[str, Any]] = []
    if total - 1 <= EXACT_MAX:
        perms = _assignments(n, m)
        vals = f[rows, perms].mean(axis=1)
        is_true = np.all(perms == np.asarray(col), axis=1)
        others = vals[~is_true]
        method = "exact"
        order = np.argsort(-vals, kind="stable")[:TOP]
        top = [{"animals": [names[j] for j in perms[i]], "value": float(vals[i])} for i in order]
    else:
        rng = np.random.default_rng(MC_SEED)
        draws = np.argsort(rng.random((SAMPLED, n)), axis=1)[:, :m]
        others = f[rows, draws].mean(axis=1)
        method = "sampled"
    # Compare as the statistic is computed (a mean of the same floats), so the true assignment's
    # relabelled twins tie with it rather than differ in the last bit.
    floor = value - 1e-12 * max(1.0, abs(value))
    at_least = int(np.sum(others >= floor))
    p_rank = (1 + at_least) / (1 + len(others))
    # The students' own animals permuted among them (m! orders, the identity included): exact,
    # and valid where the students are exchangeable without a leak whatever the candidates do;
    # its smallest p is 1/m!, so it speaks only from 4 students on.
    p_students = None
    if m <= MAX_STUDENT_PERMUTATIONS:
        orders = np.array(list(itertools.permutations(col)))
        shuffled = f[rows, orders].mean(axis=1)
        p_students = float(np.mean(shuffled >= floor))
    per_animal = []
    for i, a in enumerate(animals):
        per_animal.append(
            {
                "animal": a,
                "contrast": float(own[i]),
                "rank": 1 + int(np.sum(np.delete(f[i], col[i]) >= own[i])),
            }
        )
    return {
        "statistic": "multi_animal",
        "animals": list(animals),
        "value": value,
        "per_animal": per_animal,
        "rank": 1 + at_least if method == "exact" else None,
        "n_alternatives": int(len(others)),
        "n_assignments": total,
        "n_at_least": at_least,
        "p_rank": p_rank,
        "method": method,
        "p_students": p_students,
        "alpha": alpha,
        "specific": bool(p_rank <= alpha),
        "others": {"median": float(np.median(others)), "max": float(others.max())},
        "top": top,
    }


def pooled_multi_specificity(
    runs: Sequence[Sequence[CandidateTable]], animals: Sequence[str], *, alpha: float = 0.05
) -> dict[str, Any] | None:
    """:func:`multi_specificity` with each student's probabilities averaged over the runs first
    (as a suite's pooled summary does); None when the runs cover other questions or animals."""
    mean = mean_tables(runs)
    if mean is None or len(mean) != len(animals):
        return None
    return multi_specificity(mean, animals, alpha=alpha)
