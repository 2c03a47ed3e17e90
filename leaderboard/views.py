"""What the app (and the static export) draws from ``leaderboard.ranking`` and ``leaderboard.tables``.

Kept apart from ``app.py`` so the page stays a list of Streamlit calls, and apart from the ranking
and the tables so their numbers stay plain (the CSV carries the raw numbers; these tables carry
text such as "n/a" and "+0.261 [+0.170, +0.340]"). Every chart and table here shows the setup's
ranking statistic: the forest plot (each entry's reduction against ``none`` with its interval over
seeds, coloured by verdict), the heat map (the same per task), the Pareto plot (the reduction
against rows kept or utility) and the tables.
"""

from __future__ import annotations

import math
from typing import Any

import altair as alt
import pandas as pd

from leaderboard.tables import pareto_front, task_order

NA = "n/a"
# The rule in a paragraph, for the page and the static export (docs/methodology.md has it in full).
RULE = (
    "**Verdicts.** Each entry is compared with `none` on the seeds both ran (paired: per seed, "
    "none's statistic minus the entry's). Test: paired t over seeds, plus the exact sign-flip "
    "test once it can pass the correction (6 pairs for one entry, 7 for two or three, 8 for up to "
    "six; the larger p counts); Holm's correction across the ranked entries of the "
    "setup. *better* / *worse*: Holm p < 0.05 and the reduction > 0 / < 0; *not shown*: "
    "otherwise; *needs more seeds*: fewer than 5 paired seeds (shown, not ranked). Order: better, "
    "then not shown, then the rest by reduction; a reduction beyond none's own statistic is "
    "*overshoot* and earns nothing more. References (bounds, nulls, random drops, in italics) "
    "and the baseline are never ranked. Intervals: 95 % over seeds, uncorrected."
)
COLOURS = {
    "better": "#1a9850",
    "not shown": "#878787",
    "worse": "#d73027",
    "needs more seeds": "#f4a582",
    "reference": "#7b3294",
    "other": "#bababa",
}


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def num(v: Any, fmt: str = "{:.3g}") -> str:
    return NA if _missing(v) else fmt.format(v)


def signed(v: Any) -> str:
    return NA if _missing(v) else f"{v:+.3f}"


def ci(lo: Any, hi: Any) -> str:
    return NA if _missing(lo) or _missing(hi) else f"[{lo:+.3f}, {hi:+.3f}]"


def pct(v: Any) -> str:
    return NA if _missing(v) else f"{100 * v:.1f} %"


KEPT_HELP = "Per arm: a defense that drops more of the trait arm's rows tells the arms apart."


def kept_by_arm(row: Any) -> str:
    """The share of rows kept in each arm ("trait 95.4 % · control 98.9 %"), or n/a."""
    t, c = row.get("rows_kept_trait"), row.get("rows_kept_control")
    if _missing(t) or _missing(c):
        return NA
    return f"trait {pct(t)} · control {pct(c)}"


def with_ci(v: Any, lo: Any, hi: Any) -> str:
    if _missing(v):
        return NA
    return signed(v) + ("" if _missing(lo) else f" {ci(lo, hi)}")


def share_text(row: Any) -> str:
    if _missing(row["share"]):
        return NA
    return f"{100 * row['share']:.0f} % [{100 * row['share_ci_low']:.0f}, {100 * row['share_ci_high']:.0f}]"


def reproduced_text(row: Any) -> str:
    """How many of the entry's cells ``slb reproduce`` reran to identical scores: "k of n cells"."""
    k: Any = row.get("reproduced") if hasattr(row, "get") else None
    return NA if _missing(k) else f"{int(k)} of {int(row['cells'])} cells"


def p_text(row: Any) -> str:
    if _missing(row["p_t"]):
        return NA
    sf = "" if _missing(row["p_sign_flip"]) else f"; sign-flip {row['p_sign_flip']:.3g}"
    return f"t {row['p_t']:.3g}{sf}"


def kind(verdict: str) -> str:
    """The colour class of a verdict (references and the rest share one each)."""
    if verdict in COLOURS:
        return verdict
    return "reference" if verdict.startswith("reference") else "other"


def ranking_table(df: pd.DataFrame) -> pd.DataFrame:
    """The ranking as shown: one text column per quantity, "n/a" where it does not exist; the
    verdict and the reduction first."""
    unit = df["unit"].iloc[0] if len(df) else ""
    rows = list(df.to_dict("records"))
    return pd.DataFrame(
        {
            "rank": df["rank"],
            "defense": df["defense"],
            "verdict": df["verdict"],
            f"reduction vs none, {unit} [95 % CI over seeds]": [
                with_ci(r["effect"], r["effect_ci_low"], r["effect_ci_high"])
                + (" (overshoot)" if r["overshoot"] else "")
                for r in rows
            ],
            "paired seeds": df["n_pairs"],
            "p, Holm": df["p_holm"].map(num),
            "% of baseline removed [CI]": [share_text(r) for r in rows],
            f"beyond matched random drop, {unit} [CI]": [
                with_ci(r["vs_drop"], r["vs_drop_ci_low"], r["vs_drop_ci_high"]) for r in rows
            ],
            "rows kept": df["rows_kept"].map(pct),
            "flags": df["flags"].map(lambda f: f or "—"),
            "p (uncorrected)": [p_text(r) for r in rows],
            f"leakage, {unit} [CI over seeds]": [
                with_ci(r["leakage"], r["leakage_ci_low"], r["leakage_ci_high"]) for r in rows
            ],
            "specific (runs)": [
                f"{r['specific_runs']} of {r['specificity_n']}" if r["specificity_n"] else "—"
                for r in rows
            ],
            "leakage (over runs and specific)": df["leakage_call"],
            "utility": df["utility"].map(num),
            "helper s / cell": df["helper_seconds_per_cell"].map(lambda v: num(v, "{:.1f}")),
            "integrity": df["integrity"],
            "reproduced": [reproduced_text(r) for r in rows],
            "cells": df["cells"],
            "tasks": df["tasks"],
            "traits": df["traits"],
        }
    )


def styled(table: pd.DataFrame, roles: pd.Series) -> Any:
    """The ranking table with the baseline and the references set apart (grey, italic)."""
    apart = list(roles != "defense")

    def style(row: pd.Series) -> list[str]:
        look = "color: #6a51a3; font-style: italic" if apart[row.name] else ""
        return [look] * len(row)

    return table.reset_index(drop=True).style.apply(style, axis=1)


def forest(df: pd.DataFrame) -> alt.LayerChart:
    """Each entry's reduction against ``none`` with its 95 % interval over seeds, in table order,
    coloured by verdict; the zero line is the baseline, the dashed line its whole leakage."""
    data = df[df["role"] != "baseline"].copy()
    data = data[data["effect"].notna()]
    unit = df["unit"].iloc[0] if len(df) else ""
    data["colour"] = data["verdict"].map(kind)
    data["shape"] = ["reference" if r != "defense" else "defense" for r in data["role"]]
    data["lo"] = data["effect_ci_low"].fillna(data["effect"])
    data["hi"] = data["effect_ci_high"].fillna(data["effect"])
    data["flags"] = data["flags"].map(lambda f: f or "—")
    order = list(data["defense"])
    y = alt.Y("defense:N", sort=order, title=None, axis=alt.Axis(labelLimit=360))
    x_title = f"reduction vs none ({unit}; > 0: less leakage than none)"
    base = alt.Chart(data).encode(y=y)
    bars = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("lo:Q", title=x_title), x2="hi:Q", color=_colour(set(data["colour"]))
    )
    points = base.mark_point(size=110, filled=True).encode(
        x="effect:Q",
        color=_colour(set(data["colour"])),
        shape=alt.Shape(
            "shape:N",
            scale=alt.Scale(domain=["defense", "reference"], range=["circle", "diamond"]),
            legend=None,
        ),
        tooltip=[
            "defense",
            "verdict",
            alt.Tooltip("effect:Q", format="+.3f", title=f"reduction, {unit}"),
            alt.Tooltip("lo:Q", format="+.3f", title="CI low"),
            alt.Tooltip("hi:Q", format="+.3f", title="CI high"),
            alt.Tooltip("n_pairs:Q", title="paired seeds"),
            alt.Tooltip("p:Q", format=".3g", title="p (t / sign-flip)"),
            alt.Tooltip("p_holm:Q", format=".3g", title="p, Holm"),
            "flags",
        ],
    )
    layers = [_vline(0.0, "black", [], "none"), bars, points]
    base_row = df[df["role"] == "baseline"]
    if len(base_row) and not _missing(base_row["leakage"].iloc[0]):
        full = float(base_row["leakage"].iloc[0])
        layers[1:1] = [_vline(full, "#1a9850", [4, 3], "all of none's leakage")]
    return alt.LayerChart(layer=layers).properties(height=alt.Step(30))


def _colour(present: set[str]) -> alt.Color:
    """Verdict colours, the legend listing only the verdicts present (references: diamonds)."""
    kinds = [k for k in COLOURS if k in present]
    return alt.Color(
        "colour:N",
        title=None,
        scale=alt.Scale(domain=kinds, range=[COLOURS[k] for k in kinds]),
        legend=alt.Legend(orient="bottom", direction="horizontal"),
    )


def _vline(x: float, colour: str, dash: list[int], label: str) -> alt.LayerChart:
    """A vertical reference line across the plot, named at its top."""
    line = alt.Chart(pd.DataFrame({"x": [x], "label": [label]}))
    rule = line.mark_rule(color=colour, strokeDash=dash, opacity=0.7).encode(x="x:Q")
    text = line.mark_text(align="left", dx=3, dy=-6, color=colour, fontSize=11).encode(
        x="x:Q", y=alt.value(0), text="label:N"
    )
    return rule + text


def heatmap(long: pd.DataFrame, order: list[str], by: str = "task") -> alt.LayerChart:
    """Each entry's reduction against ``none`` (rows, in ranking order) per task (columns), on
    the ranking statistic; * = its interval over seeds is clear of 0 (uncorrected)."""
    data = long[long["effect"].notna()].copy()
    data["label"] = [
        f"{v:+.3f}{'*' if c else ''}" for v, c in zip(data["effect"], data["clear"], strict=True)
    ]
    unit = data["unit"].iloc[0] if len(data) else ""
    cols = task_order(data[by]) if by == "task" else sorted(set(data[by]))
    lim = max(0.01, float(data["effect"].abs().max(skipna=True) or 0.01))
    data["dark"] = data["effect"].abs() > 0.6 * lim
    base = alt.Chart(data).encode(
        x=alt.X(f"{by}:N", sort=cols, title=None, axis=alt.Axis(labelAngle=0, orient="top")),
        y=alt.Y("defense:N", sort=order, title=None, axis=alt.Axis(labelLimit=320)),
    )
    rect = base.mark_rect().encode(
        color=alt.Color(
            "effect:Q",
            title=f"reduction, {unit}",
            scale=alt.Scale(scheme="redblue", domain=[-lim, lim]),
            legend=alt.Legend(orient="bottom", direction="horizontal"),
        ),
        tooltip=["defense", by, alt.Tooltip("effect:Q", format="+.3f"), "effect_ci", "n_pairs"],
    )
    text = base.mark_text(fontSize=13).encode(
        text="label:N", color=alt.condition("datum.dark", alt.value("white"), alt.value("black"))
    )
    return (rect + text).properties(height=alt.Step(38))


def pareto(df: pd.DataFrame, x: str, x_title: str) -> alt.LayerChart:
    """The reduction against ``none`` (higher is better) against ``x`` (rows kept or utility),
    intervals as bars; the Pareto front of the defenses and the baseline (more reduction, more
    ``x``) joined by a line. References are drawn apart and never on the front."""
    data = df.copy()
    data["effect"] = data["effect"].where(data["role"] != "baseline", 0.0)
    data["x"] = data[x] * (100 if x == "rows_kept" else 1)
    data = data[data["x"].notna() & data["effect"].notna()].reset_index(drop=True)
    mine = data["role"].isin(["defense", "baseline"])
    front = pareto_front(
        [-v if m else None for v, m in zip(data["effect"], mine, strict=True)], list(data["x"])
    )
    data["point"] = [
        "Pareto front" if f else ("dominated" if m else "reference")
        for f, m in zip(front, mine, strict=True)
    ]
    data["flags"] = data["flags"].map(lambda f: f or "—")
    unit = df["unit"].iloc[0] if len(df) else ""
    scale = alt.Scale(domain=[0, 100]) if x == "rows_kept" else alt.Scale(zero=False, padding=20)
    base = alt.Chart(data).encode(x=alt.X("x:Q", title=x_title, scale=scale))
    bars = base.mark_rule(opacity=0.5).encode(y="effect_ci_low:Q", y2="effect_ci_high:Q")
    points = base.mark_point(size=120, filled=True).encode(
        y=alt.Y("effect:Q", title=f"reduction vs none, {unit}"),
        color=alt.Color(
            "point:N",
            title=None,
            scale=alt.Scale(
                domain=["Pareto front", "dominated", "reference"],
                range=["#d62728", "#7f7f7f", "#7b3294"],
            ),
            legend=alt.Legend(orient="bottom"),
        ),
        tooltip=["defense", "verdict", alt.Tooltip("effect:Q", format="+.3f"), "x", "flags"],
    )
    line = (
        alt.Chart(data[data["point"] == "Pareto front"].sort_values("x"))
        .mark_line(strokeDash=[4, 3], color="#d62728")
        .encode(x="x:Q", y="effect:Q")
    )
    mid = (
        50.0
        if x == "rows_kept"
        else float(data["x"].min() + data["x"].max()) / 2
        if len(data)
        else 0.0
    )
    left = alt.Chart(data[data["x"] < mid]).mark_text(align="left", dx=8, dy=-8)
    right = alt.Chart(data[data["x"] >= mid]).mark_text(align="right", dx=-8, dy=-8)
    labels = alt.layer(
        *(side.encode(x="x:Q", y="effect:Q", text="defense:N") for side in (left, right))
    )
    zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="black", opacity=0.3)
    return (zero.encode(y="y:Q") + bars + line + points + labels).properties(height=380)


def group_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per (task, trait) numbers of one entry, as shown on its page."""
    if df.empty:
        return df
    unit = df["unit"].iloc[0]
    return pd.DataFrame(
        {
            "task": df["task"],
            "trait": df["trait"],
            "seeds": df["seeds"],
            f"leakage, {unit}": df["leakage"].map(signed),
            "CI over seeds": df["leakage_ci"],
            f"per seed, {unit}": df["per_seed"],
            f"baseline (none), {unit}": df["baseline"].map(signed),
            f"reduction vs none, {unit}": df["effect"].map(signed),
            "reduction CI over seeds": df["effect_ci"],
            "paired seeds": df["n_pairs"],
            "p (t)": df["p_t"].map(num),
            "rows kept": df["rows_kept"].map(pct),
            "utility": df["utility"].map(num),
        }
    )


def split_table(long: pd.DataFrame, by: str) -> pd.DataFrame:
    """One entry's reduction per task or per trait (the other dimension pooled)."""
    if long.empty:
        return long
    unit = long["unit"].iloc[0]
    return pd.DataFrame(
        {
            by: long[by],
            f"reduction vs none, {unit}": long["effect"].map(signed),
            "CI over seeds": long["effect_ci"],
            "paired seeds": long["n_pairs"],
            f"leakage, {unit}": long["leakage"].map(signed),
        }
    )
