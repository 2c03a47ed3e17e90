"""The leaderboard's selection and tables: which cells are shown, and their per-task numbers.

Plain functions on lists of :class:`benchmark.core.artifact.CellResult` (no Streamlit), tested
directly: :class:`Filters` and :func:`select` (one suite, base model and setup: cells are only ever
pooled within one setup, so the app selects one before calling anything else), :func:`per_task`
(the heat map: every entry on every task or trait), :func:`per_group` (one entry's (task, trait)
groups beside the baseline's) and :func:`pareto_front` (leakage against rows kept or utility).
The ranking itself is ``leaderboard.ranking``; the pooling, ``leaderboard.pooling``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from benchmark.core.artifact import CellResult
from leaderboard.pooling import BASELINE, by_entry, by_group, mean_of, pool, reduction

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
    include_failed: bool = False  # artifacts whose integrity check failed


def select(cells: Iterable[CellResult], f: Filters) -> list[CellResult]:
    return [
        c
        for c in cells
        if (f.suite is None or c.suite == f.suite)
        and (f.base_model is None or c.base_model == f.base_model)
        and (f.setup is None or c.setup == f.setup)
        and (f.tasks is None or c.task in f.tasks)
        and (f.traits is None or c.trait in f.traits)
        and (f.include_failed or c.integrity != "failed")
    ]


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
    """Long table: residual leakage of every entry on every task (``by="task"``: traits pooled
    with equal weight) or every trait (``by="trait"``: tasks pooled); seeds averaged."""
    rows = []
    for entry, ec in by_entry(cells).items():
        split: dict[str, list[CellResult]] = defaultdict(list)
        for c in ec:
            split[getattr(c, by)].append(c)
        for value, vc in split.items():
            rows.append(_cell_row({"defense": entry, by: value}, pool(vc, metric)))
    return pd.DataFrame(rows)


def per_group(cells: list[CellResult], baseline: list[CellResult], metric: str) -> pd.DataFrame:
    """One entry's per (task, trait) numbers, pooled over seeds, with the baseline beside them."""
    base_groups = by_group(baseline)
    rows = []
    groups = by_group(cells)
    order = {t: i for i, t in enumerate(task_order(g[0] for g in groups))}
    for (task, trait), gc in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        res = pool(gc, metric)
        row = _cell_row({"task": task, "trait": trait}, res)
        row["seeds"] = ", ".join(str(s) for s in sorted({c.seed for c in gc}, key=str))
        row["per_seed"] = ", ".join(f"{v:+.2f}" for v in res["per_seed"]) if res else "n/a"
        level = res.get("seed_level") if res else None
        row["seed_ci"] = _fmt_ci(level["ci_pp"]) if level else "n/a"
        b = base_groups.get((task, trait), [])
        base = pool(b, metric) if b else None
        row["baseline_pp"] = base["diff_pp"] if base else None
        red = reduction(gc, b, metric) if b and gc[0].defense != BASELINE else None
        row["reduction_pp"] = red["reduction_pp"] if red else None
        row["reduction_ci"] = _fmt_ci(red["ci_pp"]) if red else "n/a"
        row["rows_kept"] = mean_of(gc, "rows_kept")
        row["utility"] = mean_of(gc, "utility")
        rows.append(row)
    return pd.DataFrame(rows)


def _cell_row(row: dict[str, Any], res: dict[str, Any] | None) -> dict[str, Any]:
    row.update(
        residual_pp=res["diff_pp"] if res else None,
        ci=_fmt_ci(res["ci_pp"]) if res else "n/a",
        p_value=res["p_value"] if res else None,
        significant=res["significant"] if res else None,
        cells=res["n_cells"] if res else 0,
    )
    return row


def _fmt_ci(ci: list[float]) -> str:
    return f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"
