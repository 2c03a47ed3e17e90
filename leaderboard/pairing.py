"""The ranking statistic run by run, and runs of two entries paired by seed.

A *run* is one cell: one (task, trait) group, one seed. Every leaderboard view reads the same
*ranking statistic* of a setup (:func:`statistic_of`), on the groups every entry of the setup has:

* placebo-controlled setups (metric ``teacher_forced``, and every entry's cells of some shared
  groups carry the placebo animal's scores): the own-animal statistic, log-odds
  (``benchmark.core.stats.own_animal_per_question`` per run), on those groups;
* otherwise the trait contrast (trait − control student, percentage points) of the metric.

A run's value is its statistic's mean over questions. Two entries are compared on the seeds both
ran in every group of the statistic (:func:`pair`): a seed fixes the prompts, the teachers'
samples and the training seed, so per seed the noise both sides share cancels, and the seeds are
the unit of replication. Per seed the groups weigh equally (the mean over groups); questions are
those both runs of a group scored. ``leaderboard.verdicts`` tests the paired differences.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.core.artifact import CellResult
from benchmark.core.stats import own_animal_per_question

Group = tuple[str, str]  # (task, trait)
Runs = dict[tuple[Group, Any], tuple[tuple[str, ...], np.ndarray]]  # (group, seed) -> per question
OWN = "own animal, log-odds"


@dataclass(frozen=True)
class Statistic:
    """Which statistic a setup is read by, and on which (task, trait) groups."""

    own: bool
    metric: str
    groups: tuple[Group, ...]

    @property
    def label(self) -> str:
        return OWN if self.own else f"trait − control, pp ({self.metric})"

    @property
    def unit(self) -> str:
        return "log-odds" if self.own else "pp"


@dataclass(frozen=True)
class Paired:
    """Two entries' runs on the seeds both have in every group: per seed, the reference side's
    value minus this side's (``diff``, the reduction) and each side's value."""

    seeds: tuple[Any, ...]
    diff: np.ndarray
    ref: np.ndarray
    mine: np.ndarray

    @property
    def n(self) -> int:
        return len(self.seeds)


def groups_of(cells: Iterable[CellResult]) -> set[Group]:
    return {(c.task, c.trait) for c in cells}


def statistic_of(entries: dict[str, list[CellResult]], metric: str) -> Statistic:
    """The setup's ranking statistic: own animal on the groups every entry has with placebo
    scores (when the metric is teacher-forced and there are such groups), else the trait contrast
    on the groups every entry has scores of ``metric`` for."""

    def shared(keep: Any) -> set[Group]:
        sets = [groups_of(c for c in ec if keep(c)) for ec in entries.values()]
        return set.intersection(*sets) if sets else set()

    if metric == "teacher_forced":
        own = shared(lambda c: c.placebo is not None and metric in c.scores)
        if own:
            return Statistic(True, metric, tuple(sorted(own)))
    return Statistic(False, metric, tuple(sorted(shared(lambda c: metric in c.scores))))


def runs(cells: Iterable[CellResult], stat: Statistic) -> Runs:
    """Per (group, seed) of ``cells`` on the statistic's groups: question ids and the statistic
    per question. Two cells of one run (copies from two local folders) are averaged."""
    found: dict[tuple[Group, Any], list[tuple[tuple[str, ...], np.ndarray]]] = defaultdict(list)
    for c in cells:
        g = (c.task, c.trait)
        if g not in stat.groups or stat.metric not in c.scores:
            continue
        ids, t, ctl = c.scores[stat.metric]
        if stat.own:
            if c.placebo is None:
                continue
            vec = own_animal_per_question(t, ctl, c.placebo[1], c.placebo[2])
        else:
            vec = 100.0 * (t - ctl)
        found[(g, c.seed)].append((ids, vec))
    return {k: _mean_of(v) for k, v in found.items()}


def _mean_of(vecs: list[tuple[tuple[str, ...], np.ndarray]]) -> tuple[tuple[str, ...], np.ndarray]:
    if len(vecs) == 1:
        return vecs[0]
    ids = sorted(set(vecs[0][0]).intersection(*(v[0] for v in vecs[1:])))
    cols = [np.array([dict(zip(i, v, strict=True))[q] for q in ids]) for i, v in vecs]
    return tuple(ids), np.mean(cols, axis=0)


def seeds_in_all(r: Runs, groups: Iterable[Group]) -> list[Any]:
    """The seeds ``r`` has in every one of ``groups``, sorted."""
    per = [{s for (g2, s) in r if g2 == g} for g in groups]
    return sorted(set.intersection(*per)) if per else []


def per_seed(r: Runs, groups: tuple[Group, ...]) -> tuple[list[Any], np.ndarray]:
    """One entry's value per seed (groups averaged) on the seeds it has in every group."""
    seeds = seeds_in_all(r, groups)
    vals = [np.mean([float(r[(g, s)][1].mean()) for g in groups]) for s in seeds]
    return seeds, np.asarray(vals, dtype=float)


def pair(mine: Runs, ref: Runs, groups: tuple[Group, ...]) -> Paired:
    """``mine`` against ``ref`` on the seeds both have in every group: per seed and group the
    mean over the questions both scored; then the groups averaged."""
    seeds = sorted(set(seeds_in_all(mine, groups)) & set(seeds_in_all(ref, groups)))
    m = np.zeros(len(seeds))
    b = np.zeros(len(seeds))
    for i, s in enumerate(seeds):
        for g in groups:
            (mi, mv), (bi, bv) = mine[(g, s)], ref[(g, s)]
            if mi != bi:  # rare: align on the questions both runs scored
                both = sorted(set(mi) & set(bi))
                mv = np.array([dict(zip(mi, mv, strict=True))[q] for q in both])
                bv = np.array([dict(zip(bi, bv, strict=True))[q] for q in both])
            m[i] += float(mv.mean()) / len(groups)
            b[i] += float(bv.mean()) / len(groups)
    return Paired(tuple(seeds), b - m, b, m)
