"""The leaderboard's selection and tables: which cells are shown, and their per-task numbers.

Plain functions on lists of :class:`benchmark.core.artifact.CellResult` (no Streamlit), tested
directly: :class:`Filters` and :func:`select` (one suite, base model and setup: cells are only ever
compared within one setup, so the app selects one before calling anything else; artifacts whose
integrity is not ``ok`` are left out unless asked for), :func:`per_task` (the heat map: every
entry's reduction against ``none`` per task or trait), :func:`per_group` (one entry's (task,
trait) groups) and :func:`pareto_front`. All use the setup's ranking statistic
(``leaderboard.pairing``); the ranking itself is ``leaderboard.ranking``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from benchmark.core.artifact import CellResult
from benchmark.core.stats.paired import paired_test
from leaderboard.pairing import Runs, Statistic, pair, per_seed, runs, statistic_of
from leaderboard.pooling import by_entry, is_baseline, mean_of

KNOWN_TASKS = (
    "numbers",
    "code",
    "cot",
    "paraphrase-unrelated",
    "paraphrase-contradict",
)  # tasks/ names


@dataclass
class Filters:
    suite: str | None = None
    base_model: str | None = None
    setup: str | None = None
    tasks: list[str] | None = None  # None = all
    traits: list[str] | None = None
    include_failed: bool = False  # artifacts whose integrity check failed or is missing


def select(cells: Iterable[CellResult], f: Filters) -> list[CellResult]:
    return [
        c
        for c in cells
        if (f.suite is None or c.suite == f.suite)
        and (f.base_model is None or c.base_model == f.base_model)
        and (f.setup is None or c.setup == f.setup)
        and (f.tasks is None or c.task in f.tasks)
        and (f.traits is None or c.trait in f.traits)
        and (f.include_failed or c.integrity == "ok")
    ]


def aliases(cells: list[CellResult], entries: list[str]) -> dict[str, str]:
    """Other names a ``?defense=`` link may use for an entry: its submission folder's name
    (``canonicalize-resample``) and a defense name that has one entry here (``none``)."""
    out: dict[str, str] = {}
    names = Counter({c.entry: c.defense for c in cells if c.entry in entries}.values())
    for c in cells:
        if c.entry not in entries:
            continue
        if c.source.startswith("submissions/"):
            out.setdefault(c.source.split("/", 1)[1], c.entry)
        if names[c.defense] == 1:
            out.setdefault(c.defense, c.entry)
    return out


def task_order(tasks: Iterable[str]) -> list[str]:
    """The five standard tasks in their usual order, then any others alphabetically."""
    ts = set(tasks)
    return [t for t in KNOWN_TASKS if t in ts] + sorted(ts - set(KNOWN_TASKS))


def pareto_front(leak: list[float | None], kept: list[float | None]) -> list[bool]:
    """True where no other point has leakage <= and kept >= with one of them strict (lower leakage
    and more rows kept are both better); points with a missing coordinate are never on it."""
    pts = [
        (x, y) if x is not None and y is not None and _ok(x) and _ok(y) else None
        for x, y in zip(leak, kept, strict=True)
    ]
    return [
        p is not None
        and not any(o is not None and o != p and o[0] <= p[0] and o[1] >= p[1] for o in pts)
        for p in pts
    ]


def _ok(v: float | None) -> bool:
    return v is not None and not math.isnan(v)


def per_task(cells: list[CellResult], metric: str, by: str = "task") -> pd.DataFrame:
    """Long table for the heat map: every entry's reduction against ``none`` on each task
    (``by="task"``; its traits weighted equally) or each trait (``by="trait"``), on the setup's
    ranking statistic and groups (``leaderboard.pairing``), paired by seed; the baseline's rows
    hold its own statistic (``leakage``) instead."""
    entries = by_entry(cells)
    if not entries:
        return pd.DataFrame()
    stat = statistic_of(entries, metric)
    base = runs([c for c in cells if is_baseline(c)], stat)
    rows = []
    at = 0 if by == "task" else 1  # groups are (task, trait)
    for value in sorted({g[at] for g in stat.groups}):
        part = replace(stat, groups=tuple(g for g in stat.groups if g[at] == value))
        for entry, ec in entries.items():
            other = base if not all(is_baseline(c) for c in ec) else {}
            rows.append({"defense": entry, by: value, **_compare(runs(ec, part), other, part)})
    return pd.DataFrame(rows)


def per_group(cells: list[CellResult], entry: str, metric: str) -> pd.DataFrame:
    """One entry's numbers per (task, trait) group of the setup's ranking statistic, each paired
    by seed with the baseline's runs of that group."""
    entries = by_entry(cells)
    if entry not in entries:
        return pd.DataFrame()
    stat = statistic_of(entries, metric)
    base = runs([c for c in cells if is_baseline(c)], stat)
    rows = []
    order = {t: i for i, t in enumerate(task_order(g[0] for g in stat.groups))}
    for g in sorted(stat.groups, key=lambda g: (order[g[0]], g[1])):
        part = replace(stat, groups=(g,))
        gc = [c for c in entries[entry] if (c.task, c.trait) == g]
        other = base if not all(is_baseline(c) for c in gc) else {}
        row = {"task": g[0], "trait": g[1], **_compare(runs(gc, part), other, part)}
        row.update(rows_kept=mean_of(gc, "rows_kept"), utility=mean_of(gc, "utility"))
        rows.append(row)
    return pd.DataFrame(rows)


def _compare(mine: Runs, base: Runs, stat: Statistic) -> dict[str, Any]:
    """An entry's statistic over its seeds and, where the baseline ran, its paired reduction."""
    seeds, vals = per_seed(mine, stat.groups)
    own = paired_test(vals) if len(vals) else None
    p = pair(mine, base, stat.groups) if base else None
    red = paired_test(p.diff) if p is not None and p.n else None
    return {
        "seeds": ", ".join(str(s) for s in seeds),
        "leakage": own["mean"] if own else None,
        "leakage_ci": _fmt_ci(own["ci"]) if own and own["ci"] else "n/a",
        "per_seed": ", ".join(f"{v:+.3f}" for v in vals),
        "baseline": float(p.ref.mean()) if p is not None and p.n else None,
        "effect": red["mean"] if red else None,
        "effect_ci": _fmt_ci(red["ci"]) if red and red["ci"] else "n/a",
        "p_t": red["p_t"] if red else None,
        "n_pairs": p.n if p is not None else 0,
        # Clear of 0 over seeds (uncorrected; the verdict is the ranking's, with Holm).
        "clear": bool(red and red["ci"] and (red["ci"][0] > 0 or red["ci"][1] < 0)),
        "unit": stat.unit,
    }


def _fmt_ci(ci: list[float]) -> str:
    return f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"
