"""Pooling the cells of one setup: residual leakage of an entry, reduction against the baseline.

Grouping and alignment of :class:`benchmark.core.artifact.CellResult` lists (by (task, trait)
group, by seed, by question id); every number comes from ``benchmark.core.stats``. Used by
``leaderboard.ranking`` and ``leaderboard.tables``. Statistics (percentage points, trait student
minus control student):

* A (task, trait) *group* is pooled over its seeds exactly as ``slb suite`` does: per question the
  seeds are averaged, the 95 % t-interval is over questions (``paired_leakage``).
* An entry's *residual leakage* over several groups weighs every group equally: per question the
  seed-averaged scores of each group are averaged over groups (the groups take the place of seeds
  in ``paired_leakage``); the CI is again over questions. Its ``significant`` also asks that every
  group points the same way. Tables need only its question-level test and per-seed breakdown
  (``benchmark.core.stats.paired_summary``, without the bootstrap: 30x cheaper, which keeps the
  page quick with 1 000 artifacts).
* *Own animal* (placebo-controlled cells only, teacher-forced metric): the mean of the trait-animal
  contrast and the placebo-animal mirror contrast on the log-odds scale
  (``benchmark.core.stats.own_animal_leakage``), pooled over seeds or groups like the residual, on
  the groups whose cells have a placebo teacher. Its reduction is the baseline's statistic minus
  the entry's, per question, seed-matched like the residual's, and, over >= 2 matched seeds, per
  seed (paired: the noise both share cancels).
* *Reduction* = baseline residual − defense residual, on the groups both have and, within a
  group, on the seeds both have (when they share any: a defense run on seed 0 only is compared
  with the baseline's seed 0, not its seed mean), the baseline being the ``none`` defense's cells
  of the same setup. Per question: the baseline's group-averaged difference minus the defense's;
  95 % t-interval over questions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from benchmark.core.artifact import CellResult
from benchmark.core.stats import (
    own_animal_leakage,
    own_animal_per_question,
    paired_leakage,
    paired_summary,
    t_summary,
)

Group = tuple[str, str]  # (task, trait)
BASELINE = "none"  # the defense every other one is compared with


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


def own_reduction(cells: list[CellResult], baseline: list[CellResult]) -> dict[str, Any] | None:
    """Baseline own-animal statistic − the defense's (log-odds), on the seeds both have where they
    share any, as :func:`reduction` does for the residual; t over questions. With >= 2 matched
    columns (seeds of one group, or groups) also ``seed_level``: the same difference per column,
    paired, t over columns -- the run-to-run noise both sides share (same prompts, same teacher
    samples, same training seed) cancels, so this is the test of "the defense lowers leakage".
    ``significant`` needs the question-level test and, where it exists, the run-level one. None
    unless both sides have placebo-controlled cells of the same groups."""
    cells, baseline, matched = _matched_seeds(cells, baseline)
    groups = set(by_group(c for c in cells if c.placebo is not None))
    if not groups or not groups <= set(by_group(c for c in baseline if c.placebo is not None)):
        return None
    baseline = [c for c in baseline if (c.task, c.trait) in groups]

    # One column order on both sides (seeds, or groups), so that columns pair up.
    def key(c: CellResult) -> tuple[str, str, str]:
        return (c.task, c.trait, str(c.seed))

    mine, base = _own_arrays(sorted(cells, key=key)), _own_arrays(sorted(baseline, key=key))
    if mine is None or base is None:
        return None
    both = _align([(tuple(side[0]), own_animal_per_question(*side[1])) for side in (mine, base)])
    if both is None:
        return None
    mean, ci, p = t_summary(both[1][:, 1] - both[1][:, 0])
    runs = _paired_runs(mine, base) if matched else None
    return {
        "reduction_log_odds": mean,
        "ci": [ci[0], ci[1]],
        "p_value": p,
        "seed_level": runs,
        "significant": bool(p < 0.05 and (runs is None or runs["p_value"] < 0.05)),
        "seed_matched": matched,
    }


def _paired_runs(
    mine: tuple[list[str], list[np.ndarray], str, int, int],
    base: tuple[list[str], list[np.ndarray], str, int, int],
) -> dict[str, Any] | None:
    """Per matched column, the baseline's own-animal statistic (mean over questions) minus the
    defense's; mean, t-interval and p over the columns. None with fewer than 2 columns or when the
    two sides' columns do not pair up."""
    n = mine[1][0].shape[1]
    if n < 2 or base[1][0].shape[1] != n or mine[2] != base[2]:
        return None

    def per_column(side: tuple[list[str], list[np.ndarray], str, int, int]) -> np.ndarray:
        return np.column_stack(
            [own_animal_per_question(*(a[:, j] for a in side[1])) for j in range(n)]
        )

    both = _align([(tuple(mine[0]), per_column(mine)), (tuple(base[0]), per_column(base))])
    if both is None:
        return None
    per_run = (both[1][:, n:] - both[1][:, :n]).mean(axis=0)
    mean, ci, p = t_summary(per_run)
    return {
        "mean": mean,
        "ci": [ci[0], ci[1]],
        "p_value": p,
        "n": n,
        "unit": mine[2],
        "per_run": [float(v) for v in per_run],
    }


def _matched_seeds(
    cells: list[CellResult], baseline: list[CellResult]
) -> tuple[list[CellResult], list[CellResult], bool]:
    """Both sides cut, per (task, trait) group, to the seeds both have, when they share any: a
    seed fixes the prompts and the sampling and training seeds, so a seed-matched comparison
    cancels most run-to-run noise (a defense that leaves the rows unchanged then shows exactly 0).
    Groups without a shared seed keep all their seeds; the flag says whether every group matched."""
    mine, base = by_group(cells), by_group(baseline)
    out_m: list[CellResult] = []
    out_b: list[CellResult] = []
    matched = True
    for g in set(mine) | set(base):
        m, b = mine.get(g, []), base.get(g, [])
        shared = {c.seed for c in m} & {c.seed for c in b}
        if shared:
            m = [c for c in m if c.seed in shared]
            b = [c for c in b if c.seed in shared]
        elif m and b:
            matched = False
        out_m += m
        out_b += b
    return out_m, out_b, matched


def reduction(
    cells: list[CellResult], baseline: list[CellResult], metric: str
) -> dict[str, Any] | None:
    """Baseline residual − defense residual over the groups both have, on the seeds both have
    where they share any (see module docstring)."""
    cells, baseline, matched = _matched_seeds(cells, baseline)
    mine, base = _group_means(cells, metric), _group_means(baseline, metric)
    shared = sorted(set(mine) & set(base))
    if not shared:
        return None
    # Each side: per question, the trait-control difference averaged over the shared groups.
    d = _align([(mine[g][0], mine[g][1] - mine[g][2]) for g in shared])
    b = _align([(base[g][0], base[g][1] - base[g][2]) for g in shared])
    if d is None or b is None:
        return None
    both = _align([(tuple(d[0]), d[1].mean(axis=1)), (tuple(b[0]), b[1].mean(axis=1))])
    if both is None:
        return None
    d_q, b_q = both[1][:, 0], both[1][:, 1]
    mean, ci, p = t_summary(b_q - d_q)
    base_res = 100 * float(b_q.mean())
    return {
        "reduction_pp": 100 * mean,
        "ci_pp": [100 * ci[0], 100 * ci[1]],
        "p_value": p,
        "significant": p < 0.05,
        "baseline_pp": base_res,
        # A share of the baseline only means something when the baseline itself leaks.
        "share": (100 * mean) / base_res if base_res > 0 else None,
        "groups": shared,
        "seed_matched": matched,
    }
