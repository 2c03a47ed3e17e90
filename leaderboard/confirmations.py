"""The pre-registered confirmations and screens (``slb confirm`` reports) found under the
leaderboard's folders, one row each, so the rankings are read beside the instrument's own record:
has leakage in this setup been confirmed, specifically, by runs fixed in advance?

A report is a ``report.json`` with schema ``slb.confirmation/1``. It is read as data only; a file
that is not one (another ``report.json``, or a malformed one) gives a row saying why, never an
error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.core.results import CONFIRMATION_REPORT as REPORT
from benchmark.core.results import CONFIRMATION_SCHEMA as SCHEMA

COLUMNS = [
    "name",
    "purpose",
    "verdict",
    "runs",
    "statistic",
    "main (log-odds)",
    "specific",
    "null",
    "checks not met",
    "fixed at",
    "file",
]


def _fmt(t: Any) -> str:
    if not isinstance(t, dict) or not isinstance(t.get("mean"), (int, float)):
        return "–"
    p = t.get("p")
    return f"{t['mean']:+.3f} over {t.get('n', '?')}" + (
        f", p={p:.2g}" if isinstance(p, (int, float)) else ""
    )


def _not_met(res: dict[str, Any]) -> str:
    """Why a verdict is what it is: the rule's checks that do not hold (so far, while runs are
    missing: a null check before any null run is not met yet)."""
    checks = res.get("checks")
    if not isinstance(checks, dict):
        return "–"
    names = ", ".join(str(k) for k, v in checks.items() if not v) or "none"
    return names + (" (so far)" if res.get("verdict") == "incomplete" else "")


def row(path: Path) -> dict[str, Any]:
    """One table row for the report at ``path``."""
    out: dict[str, Any] = dict.fromkeys(COLUMNS, "")
    out["file"] = str(path)
    try:
        r = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(r, dict) or r.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} report")
        pre, res, reg = r["prereg"], r["result"], r["registration"]
        runs = [x for x in r["runs"] if isinstance(x, dict)]
        planned = len(pre["seeds"]) + len(pre["null_seeds"])
        made = sum("value" in x for x in runs)
        main = [x for x in runs if x.get("arm") == "main" and "value" in x]
        verdict = str(res["verdict"])
        if res.get("decided_early"):
            verdict += " (decided early)"
        if not reg.get("registered"):
            verdict += ", UNREGISTERED"
        if reg.get("runs_before_fixed"):
            n = len(reg["runs_before_fixed"])
            verdict += f", {n} run(s) made under another version of its file"
        out |= {
            "name": str(pre["name"]),
            "purpose": str(pre.get("purpose", "confirm")),
            "verdict": verdict,
            "runs": f"{made} of {planned}",
            # own_animal: one (trait, placebo) pair per run; multi_animal: several traits' cells
            # that share a control arm, read together (docs/methodology.md)
            "statistic": str(pre.get("statistic", "")),
            "main (log-odds)": _fmt(res.get("main")) if pre["seeds"] else "none planned",
            "specific": f"{sum(bool(x.get('specific')) for x in main)} of {len(main)}"
            if pre["seeds"]
            else "–",
            "null": _fmt(res.get("null")) if pre["null_seeds"] else "none planned",
            "checks not met": _not_met(res),
            "fixed at": str(reg.get("fixed_at_commit") or "")[:8],
        }
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as e:
        out["verdict"] = f"unreadable: {e if isinstance(e, ValueError) else type(e).__name__}"
    return out


def table(dirs: Sequence[str | Path]) -> pd.DataFrame:
    """Every ``report.json`` under ``dirs`` (hidden folders and ``logs/`` skipped), one row each."""
    paths = sorted(
        p
        for d in dirs
        if Path(d).is_dir()
        for p in Path(d).rglob(REPORT)
        if not any(part.startswith(".") or part == "logs" for part in p.relative_to(d).parts[:-1])
    )
    return pd.DataFrame([row(p) for p in paths], columns=COLUMNS)


def panel(dirs: Sequence[str | Path]) -> None:
    """The app's panel (Streamlit): the reports under ``dirs``, what the rankings stand on."""
    import streamlit as st

    df = table(dirs)
    with st.expander(f"Pre-registered confirmations and screens ({len(df)})", expanded=False):
        st.caption(
            "`slb confirm` reports: runs whose seeds, statistic, test and rule were committed "
            "before they ran (docs/methodology.md). A ranking's verdicts are only as strong as "
            "the confirmation of its setup's leakage."
        )
        if df.empty:
            st.write(
                "None under these folders (the committed ones are in docs/experiments: "
                "`slb leaderboard submissions docs/experiments`)."
            )
        else:
            st.dataframe(df, hide_index=True, key="confirmations")
