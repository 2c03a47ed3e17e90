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

import dataclasses
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.core.artifact import CellResult, candidate_tables
from benchmark.core.multi_trait import CONTROL_ATOL, MULTI, multi_pooled, multi_runs
from leaderboard.tables import Filters, select

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


def _read(c: CellResult) -> dict[str, Any] | None:
    """The cell's artifact read again, or None where it cannot be read or no longer holds what
    was loaded: the same cell and the same candidate distributions (the numbers the statistic
    reads, which the loader's integrity check covered)."""
    try:
        art = json.loads(Path(c.path).read_text(encoding="utf-8"))
        cfg = art["config"]
        same = (cfg["task"], cfg["trait"], cfg["seed"]) == (c.task, c.trait, c.seed)
        same = same and _same_tables(candidate_tables(art["scores"]), c.candidates)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError):
        return None
    return art if same else None


def _same_tables(a: Any, b: Any) -> bool:
    return (
        a is not None
        and b is not None
        and all(x[:2] == y[:2] and np.array_equal(x[2], y[2]) for x, y in zip(a, b, strict=True))
    )


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
        # Not computed beyond MAX_STUDENT_PERMUTATIONS students (too many orders).
        "p_students": "" if m["p_students"] is None else f"{m['p_students']:.2g}",
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


Entry = tuple[str, str]  # (entry, reference kind): one row label
Place = tuple[Any, ...]  # (entry, reference, task, seed, placebo): where a run can be


def _place(c: CellResult) -> Place:
    return (c.entry, c.reference, c.task, str(c.seed), c.placebo_animal)


def _alike(a: CellResult, b: CellResult) -> bool:
    """Whether two cells' control students score alike (what every loaded cell carries)."""
    if a.candidates is None or b.candidates is None:
        return False
    x, y = a.candidates[1], b.candidates[1]
    return x[:2] == y[:2] and bool(np.allclose(x[2], y[2], rtol=0, atol=2 * CONTROL_ATOL))


def _shared_control(cells: Sequence[CellResult]) -> dict[Entry, list[CellResult]]:
    """Per entry, the cells that may be part of a run: a placebo cell whose control student
    scores like that of a cell of another trait at the same place. A superset of what
    :func:`multi_runs` accepts (its runs' controls agree to within ``CONTROL_ATOL`` of one
    cell's, so pairwise to twice that), and only these artifacts are read again."""
    places: dict[Place, list[CellResult]] = defaultdict(list)
    for c in cells:
        if c.placebo_animal and c.candidates is not None:
            places[_place(c)].append(c)
    out: dict[Entry, list[CellResult]] = defaultdict(list)
    for (entry, ref, *_), g in places.items():
        out[(entry, ref)] += [c for c in g if any(o.trait != c.trait and _alike(c, o) for o in g)]
    return {e: g for e, g in out.items() if g}


def _left_out(run: dict[str, Any], place: Place, every: dict[Place, set[str]]) -> str:
    others = sorted(every.get(place, set()) - set(run["animals"][:-1]))
    return (
        f"also at this seed, not in this run: {', '.join(others)} (another control student, "
        "an integrity check not passed, not read, or not selected)"
        if others
        else ""
    )


def selection(cells: Sequence[CellResult], f: Filters) -> pd.DataFrame:
    """:func:`table` for a leaderboard selection: its setup's cells with every trait (a run read
    without some of its traits is another statistic), against those that fail integrity too."""
    f = dataclasses.replace(f, traits=None)
    every = select(cells, dataclasses.replace(f, include_failed=True))
    return table(select(cells, f), every)


def table(cells: Sequence[CellResult], every: Sequence[CellResult] | None = None) -> pd.DataFrame:
    """The several-traits runs among ``cells`` (one setup's cells, every trait), per entry: a
    row per run, then a row per design over its seeds where it has several; empty when there are
    none. Cells of several traits at one seed that do not share their control student are pair
    runs (a suite run trait by trait): not listed. A run whose place in ``every`` (default:
    ``cells``; the app passes the cells the integrity filter left out too) has cells of other
    traits says so: it is read without them, so its figures are not those of the whole run."""
    at: dict[Place, set[str]] = defaultdict(set)
    for c in every if every is not None else cells:
        at[_place(c)].add(c.trait)
    rows: list[dict[str, Any]] = []
    for (entry, ref), mine in sorted(_shared_control(cells).items()):
        label = entry + (f" ({ref})" if ref else "")
        arts = {c.path: _read(c) for c in mine}
        try:  # untrusted input: a run that cannot be read is a note, never a crash
            runs = multi_runs([a for a in arts.values() if a is not None])
            runs = [r for r in runs if MULTI in r]
            pools = [g for g in multi_pooled(runs) if len(g["seeds"]) > 1]
        except (TypeError, ValueError, KeyError) as e:
            rows.append(dict.fromkeys(COLUMNS, "") | {"entry": label, "note": f"not read: {e}"})
            continue
        for r in runs:
            place = (entry, ref, r["task"], str(r["seed"]), r["animals"][-1])
            rows.append(_run_row(label, r) | {"note": _left_out(r, place, at)})
        rows += [_pool_row(label, g) for g in pools]
        if lost := sorted(p for p, a in arts.items() if a is None):
            note = f"could not read again (or changed since loaded): {', '.join(lost)}"
            rows.append(dict.fromkeys(COLUMNS, "") | {"entry": label, "note": note})
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
