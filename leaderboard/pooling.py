"""Pooling the cells of one entry over questions, as ``slb suite`` pools a cell's seeds.

Grouping and alignment of :class:`benchmark.core.artifact.CellResult` lists (by (task, trait)
group, by entry, by question id); every number comes from ``benchmark.core.stats``. These are the
question-level descriptions of an entry's leakage that a suite summary also reports; the ranking
itself works run by run (``leaderboard.pairing``, ``leaderboard.verdicts``).

* A (task, trait) *group* is pooled over its seeds exactly as ``slb suite`` does: per question the
  seeds are averaged, the 95 % t-interval is over questions (``paired_leakage``).
* An entry's *residual leakage* over several groups weighs every group equally: per question the
  seed-averaged scores of each group are averaged over groups (the groups take the place of seeds
  in ``paired_leakage``); the CI is again over questions.
* *Own animal* (placebo-controlled cells only, teacher-forced metric): the mean of the trait-animal
  contrast and the placebo-animal mirror contrast on the log-odds scale
  (``benchmark.core.stats.own_animal_leakage``), pooled over seeds or groups like the residual.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from benchmark.core.artifact import CellResult
from benchmark.core.stats import (
    own_animal_leakage,
    paired_leakage,
    paired_summary,
    pooled_specificity,
)

Group = tuple[str, str]  # (task, trait)
BASELINE = "none"  # the defense every other one is compared with


def is_baseline(c: CellResult) -> bool:
    """A cell of the no-defense baseline: the built-in ``none`` (a plugin that calls itself
    ``none`` is not), and not a reference row."""
    source = c.defense_info.get("source")
    kind = source.get("kind", "builtin") if isinstance(source, dict) else "builtin"
    return c.defense == BASELINE and kind == "builtin" and not c.reference


def by_group(cells: Iterable[CellResult]) -> dict[Group, list[CellResult]]:
    out: dict[Group, list[CellResult]] = defaultdict(list)
    for c in cells:
        out[(c.task, c.trait)].append(c)
    return out


def by_entry(cells: Iterable[CellResult]) -> dict[str, list[CellResult]]:
    """Cells per defense entry (name, version, params): one leaderboard row each."""
    out: dict[str, list[CellResult]] = defaultdict(list)
    for c in cells:
        out[c.entry].append(c)
    return out


def mean_of(cells: list[CellResult], attr: str) -> float | None:
    """Mean of a per-cell number (rows kept, utility, helper cost) over the cells that have it."""
    vals = [getattr(c, attr) for c in cells if getattr(c, attr) is not None]
    return sum(vals) / len(vals) if vals else None


def specificity_of(cells: list[CellResult], alpha: float) -> dict[str, Any] | None:
    """The trait pair's specificity over the cells' runs pooled, as ``slb suite`` computes it for
    a pool (each question's candidate probabilities averaged over the runs, in seed order): the
    (trait, placebo) pair where every cell has the placebo animal's scores, else the trait against
    every other animal, as ``benchmark.core.results`` chooses. None unless every cell records
    candidate distributions for the same questions and all share one task, trait and placebo."""
    if not cells or any(c.candidates is None for c in cells):
        return None
    if len({(c.task, c.trait, c.placebo_animal) for c in cells}) != 1:
        return None
    cells = sorted(cells, key=lambda c: c.seed)
    placebo = cells[0].placebo_animal if all(c.placebo is not None for c in cells) else None
    runs = [c.candidates for c in cells if c.candidates is not None]
    try:
        return pooled_specificity(runs, cells[0].trait, placebo, alpha=alpha)
    except ValueError:  # the trait or placebo is not among the recorded candidates
        return None


def _align(vecs: list[tuple[tuple[str, ...], np.ndarray]]) -> tuple[list[str], np.ndarray] | None:
    """Stack per-question vectors on the question ids they all have: ``(ids, (questions, n))``;
    None when fewer than 2 questions are shared (no interval is possible)."""
    if not vecs:
        return None
    ids = set(vecs[0][0]).intersection(*(v[0] for v in vecs[1:]))
    if len(ids) < 2:
        return None
    order = sorted(ids)
    return order, np.column_stack([_pick(q, v, order) for q, v in vecs])


def _pick(ids: tuple[str, ...], vals: np.ndarray, order: list[str]) -> np.ndarray:
    if list(ids) == order:
        return vals
    pos = {q: i for i, q in enumerate(ids)}
    return vals[[pos[q] for q in order]]


def _columns(
    cells: list[CellResult], metric: str
) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """Question ids shared by all cells and (questions, cells) trait / control score arrays."""
    have = [c.scores[metric] for c in cells if metric in c.scores]
    t = _align([(h[0], h[1]) for h in have])
    c = _align([(h[0], h[2]) for h in have])
    return None if t is None or c is None else (t[0], t[1], c[1])


def _group_means(
    cells: list[CellResult], metric: str
) -> dict[Group, tuple[tuple[str, ...], np.ndarray, np.ndarray]]:
    """Per group: question ids and the seed-averaged trait and control score per question."""
    out = {}
    for g, gc in by_group(cells).items():
        cols = _columns(gc, metric)
        if cols is not None:
            out[g] = (tuple(cols[0]), cols[1].mean(axis=1), cols[2].mean(axis=1))
    return out


def pool(cells: list[CellResult], metric: str, full: bool = False) -> dict[str, Any] | None:
    """Residual leakage of ``cells`` (one entry, one setup), every (task, trait) group weighted
    equally; ``paired_leakage``'s dict (``full``) or the part of it tables show (``paired_summary``)
    plus ``n_cells``, ``n_groups`` and ``unit`` (what the ``per_seed`` entries are: seeds of one
    group, or groups). None if nothing can be pooled."""
    groups = by_group(c for c in cells if metric in c.scores)
    if not groups:
        return None
    if len(groups) == 1:
        cols = _columns(next(iter(groups.values())), metric)
        unit = "seed"
    else:
        means = list(_group_means(cells, metric).values())
        t = _align([(m[0], m[1]) for m in means])
        c = _align([(m[0], m[2]) for m in means])
        cols = None if t is None or c is None else (t[0], t[1], c[1])
        unit = "task×trait group"
    if cols is None:
        return None
    ids, t_arr, c_arr = cols
    if full:
        res = paired_leakage(
            {q: list(t_arr[i]) for i, q in enumerate(ids)},
            {q: list(c_arr[i]) for i, q in enumerate(ids)},
        )
    else:
        res = paired_summary(t_arr, c_arr)
    res.update(n_cells=sum(len(v) for v in groups.values()), n_groups=len(groups), unit=unit)
    return res


def own_animal(cells: list[CellResult]) -> dict[str, Any] | None:
    """The own-animal statistic of placebo-controlled ``cells`` (one entry, one setup): each
    student's pull toward its own teacher's animal, ``benchmark.core.stats.own_animal_leakage`` on the
    teacher-forced scores, pooled like :func:`pool` (seeds of one group, or groups weighted
    equally) over the cells that have the placebo animal's scores (in the quick preset: the
    numbers task; its free-text tasks have a bare-base control). None if no cell has them."""
    arrays = _own_arrays(cells)
    if arrays is None:
        return None
    ids, four, unit, n_cells, n_groups = arrays
    tt, tc, pt, pc = ({q: list(a[i]) for i, q in enumerate(ids)} for a in four)
    res = own_animal_leakage(tt, tc, pt, pc)
    res.update(n_cells=n_cells, n_groups=n_groups, unit=unit)
    return res


def _own_arrays(
    cells: list[CellResult],
) -> tuple[list[str], list[np.ndarray], str, int, int] | None:
    """Question ids, the four aligned (questions, columns) arrays of :func:`own_animal` (trait
    animal in trait / control student, placebo animal in trait / control student; the columns are
    seeds of one group, or the groups' seed means), the column unit and the cell and group counts."""
    cells = [c for c in cells if c.placebo is not None and "teacher_forced" in c.scores]
    if not cells:
        return None
    per_group: list[list[tuple[list[str], np.ndarray]]] = []
    for gc in by_group(cells).values():
        tf = [c.scores["teacher_forced"] for c in gc]
        pl = [c.placebo for c in gc if c.placebo is not None]
        arrays = [  # tt, tc, pt, pc
            _align([(h[0], h[1]) for h in tf]),
            _align([(h[0], h[2]) for h in tf]),
            _align([(h[0], h[1]) for h in pl]),
            _align([(h[0], h[2]) for h in pl]),
        ]
        done = [a for a in arrays if a is not None]
        if len(done) < 4:
            return None
        per_group.append(done)
    if len(per_group) == 1:
        four, unit = per_group[0], "seed"
    else:  # the groups take the place of seeds, each its seed-averaged scores
        means = [
            _align([(tuple(g[i][0]), g[i][1].mean(axis=1)) for g in per_group]) for i in range(4)
        ]
        four = [a for a in means if a is not None]
        unit = "task×trait group"
    if len(four) < 4 or any(a[0] != four[0][0] for a in four):
        return None
    return four[0][0], [a[1] for a in four], unit, len(cells), len(per_group)
