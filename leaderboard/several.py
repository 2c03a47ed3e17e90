"""Runs of several trait animals in the selection: cells of one entry, seed and setup that differ
only in the trait and share one control student, read together by the multi-animal statistic.

``slb suite --traits owl,eagle,wolf`` (and a ``traits:`` pre-registration) trains one control arm
per seed for all its traits; its ``summary.json`` and ``slb confirm`` report the run's
multi-animal statistic. This module finds the same runs among the leaderboard's artifacts, so a
reader sees them beside the ranking: one row per run (its statistic, its rank among every
assignment of the candidate animals to its students, whether that is specific) and one row per
design over its seeds. The grouping, the checks that the cells share their control student and
every number come from :mod:`benchmark.core.multi_trait`; this file picks the cells whose control
students score alike (from what the loaded cells carry), reads those artifacts again (a
:class:`~benchmark.core.artifact.CellResult` keeps no training-row hashes) and lays out rows.
Cells of several traits at one seed that do not share their control student (a suite run trait
by trait) are pair runs and not listed; an artifact that cannot be read again is left out of
the runs and named in the table.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.core.artifact import CellResult
from benchmark.core.multi_trait import CONTROL_ATOL, MULTI, multi_pooled, multi_runs

COLUMNS = [
    "entry",
    "task",
    "seeds",
    "animals",
    "multi-animal (log-odds)",
    "per animal",
    "rank",
    "specific",
    "p_students",
    "note",
]


def _read(path: str) -> dict[str, Any] | None:
    try:
        art = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return art if isinstance(art, dict) else None


def _animals(animals: Sequence[str], null: str | None) -> str:
    text = "+".join(animals[:-1]) + f" vs {animals[-1]}"
    return text + (f" (null: every teacher {null})" if null else "")


def _run_row(entry: str, r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(COLUMNS, "")
    out |= {
        "entry": entry,
        "task": r["task"],
        "seeds": str(r["seed"]),
        "animals": _animals(r["animals"], r.get("null_animal")),
    }
    m = r[MULTI]
    per = ", ".join(f"{a['animal']} {a['contrast']:+.3f}" for a in m["per_animal"])
    # A sampled test has no rank, only its Monte Carlo p over the assignments.
    rank = f"{m['rank']} of " if m["rank"] is not None else "sampled, of "
    return out | {
        "multi-animal (log-odds)": f"{m['value']:+.3f}",
        "per animal": per,
        "rank": f"{rank}{m['n_assignments']} (p {m['p_rank']:.2g})",
        "specific": "yes" if m["specific"] else "no",
        "p_students": f"{m['p_students']:.2g}",
    }


def _pool_row(entry: str, g: dict[str, Any]) -> dict[str, Any]:
    p = "" if g["p_value"] is None else f", t p={g['p_value']:.2g}"
    sp = g["pooled_specificity"]
    return dict.fromkeys(COLUMNS, "") | {
        "entry": entry,
        "task": g["task"],
        "seeds": f"{len(g['seeds'])} runs: " + ", ".join(map(str, g["seeds"])),
        "animals": _animals(g["animals"], g.get("null_animal")),
        "multi-animal (log-odds)": f"{g['mean']:+.3f} [{g['ci'][0]:+.3f}, {g['ci'][1]:+.3f}]{p}",
        "rank": f"pooled: p {sp['p_rank']:.2g}" if sp else "",
        "specific": f"{g['n_specific']} of {len(g['seeds'])}",
        "note": "over seeds (probabilities averaged over runs for the pooled rank)",
    }


def _shared_control(cells: Sequence[CellResult]) -> dict[str, list[CellResult]]:
    """Per entry, the cells that may make runs: a placebo cell of a seed whose cells of several
    traits score the same control student (the candidate distributions every cell already
    carries). Only these artifacts are read again; :func:`multi_runs` then checks the rest."""
    groups: dict[tuple[Any, ...], list[CellResult]] = defaultdict(list)
    for c in cells:
        if c.placebo_animal and c.candidates is not None:
            key = (c.entry, c.reference, c.task, c.setup, str(c.seed), c.placebo_animal)
            groups[key].append(c)
    out: dict[str, list[CellResult]] = defaultdict(list)
    for (entry, ref, *_), g in groups.items():
        first = g[0].candidates[1] if g[0].candidates else None
        same = all(
            c.candidates is not None
            and first is not None
            and c.candidates[1][:2] == first[:2]
            and np.allclose(c.candidates[1][2], first[2], rtol=0, atol=CONTROL_ATOL)
            for c in g
        )
        if same and len({c.trait for c in g}) > 1:
            out[entry + (f" ({ref})" if ref else "")] += g
    return out


def table(cells: Sequence[CellResult]) -> pd.DataFrame:
    """The several-traits runs among ``cells`` (one leaderboard selection), per entry: a row per
    run, then a row per design over its seeds where it has several; empty when there are none.
    Cells of several traits at one seed that do not share their control student are separate
    pair runs (a suite run trait by trait): not listed."""
    rows: list[dict[str, Any]] = []
    for entry, mine in sorted(_shared_control(cells).items()):
        arts = {c.path: _read(c.path) for c in mine}
        runs = [r for r in multi_runs([a for a in arts.values() if a is not None]) if MULTI in r]
        rows += [_run_row(entry, r) for r in runs]
        rows += [_pool_row(entry, g) for g in multi_pooled(runs) if len(g["seeds"]) > 1]
        if runs and (lost := sorted(p for p, a in arts.items() if a is None)):
            rows.append(
                dict.fromkeys(COLUMNS, "")
                | {"entry": entry, "note": f"could not read again: {', '.join(lost)}"}
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def panel(df: pd.DataFrame) -> None:
    """The app's panel (Streamlit) for :func:`table`'s rows, shown only where there are some."""
    import streamlit as st

    if df.empty:
        return
    with st.expander(f"Runs of several trait animals ({len(df)})", expanded=False):
        st.caption(
            "Cells of one entry and seed that differ only in the trait and share one control "
            "student, read together: each student's log-odds for its own teacher's animal minus "
            "the other students', averaged; ranked among every assignment of the candidate "
            "animals to the students (docs/methodology.md, 'Several trait animals per run')."
        )
        st.dataframe(df, hide_index=True, key="several")
