"""What the app draws from ``leaderboard.ranking`` and ``leaderboard.tables``: tables and charts.

Kept apart from ``app.py`` so the page stays a list of Streamlit calls, and apart from the ranking
and the tables so their numbers stay plain (the CSV download carries the raw numbers; these tables
carry text such as "n/a" and "+0.26 [+0.17, +0.34]").
"""

from __future__ import annotations

import math
from typing import Any

import altair as alt
import pandas as pd

from leaderboard.tables import pareto_front, task_order

NA = "n/a"


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def pp(v: Any) -> str:
    return NA if _missing(v) else f"{v:+.2f}"


def ci(lo: Any, hi: Any) -> str:
    return NA if _missing(lo) or _missing(hi) else f"[{lo:+.2f}, {hi:+.2f}]"


def pct(v: Any) -> str:
    return NA if _missing(v) else f"{100 * v:.1f} %"


def num(v: Any, fmt: str = "{:.3g}") -> str:
    return NA if _missing(v) else fmt.format(v)


def with_ci(v: Any, lo: Any, hi: Any) -> str:
    return NA if _missing(v) else f"{pp(v)} {ci(lo, hi)}"


def ranking_table(df: pd.DataFrame) -> pd.DataFrame:
    """The ranking as shown: one text column per quantity, "n/a" where an artifact lacks it; the
    most read columns first so they fit without scrolling."""
    cols = zip(df["residual_pp"], df["ci_low_pp"], df["ci_high_pp"], strict=True)
    red = zip(
        df["reduction_pp"], df["reduction_ci_low_pp"], df["reduction_ci_high_pp"], strict=True
    )
    table = pd.DataFrame(
        {
            "rank": df["rank"],
            "defense": df["defense"],
            "residual, pp [95 % CI]": [with_ci(*v) for v in cols],
            "reduction vs none, pp [95 % CI]": [with_ci(*v) for v in red],
            "% of baseline removed": df["reduction_share"].map(pct),
            "rows kept": df["rows_kept"].map(pct),
            "utility": df["utility"].map(num),
            "helper s / cell": df["helper_seconds_per_cell"].map(lambda v: num(v, "{:.1f}")),
            "flags": df["flags"].map(lambda f: f or "—"),
            "integrity": df["integrity"],
            "p": df["p_value"].map(num),
            "helper calls / cell": df["helper_calls_per_cell"].map(lambda v: num(v, "{:.0f}")),
            "cells": df["cells"],
            "tasks": df["tasks"],
            "traits": df["traits"],
        }
    )
    if df["own_animal_log_odds"].notna().any():  # placebo-controlled setups only
        own = zip(
            df["own_animal_log_odds"],
            df["own_animal_ci_low"],
            df["own_animal_ci_high"],
            strict=True,
        )
        table.insert(3, "own animal, log-odds [95 % CI]", [log_odds_ci(*v) for v in own])
        table.insert(
            4,
            "own-animal reduction, log-odds [95 % CI; over seeds]",
            [own_reduction_text(r) for _, r in df.iterrows()],
        )
    return table


def log_odds_ci(v: Any, lo: Any, hi: Any) -> str:
    return NA if _missing(v) else f"{v:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def own_reduction_text(row: Any) -> str:
    """The own-animal reduction with its question-level CI and, where >= 2 seeds pair up with
    the baseline's, its CI over those seeds."""
    text = log_odds_ci(
        row["own_reduction_log_odds"], row["own_reduction_ci_low"], row["own_reduction_ci_high"]
    )
    lo, hi = row.get("own_reduction_spread_low"), row.get("own_reduction_spread_high")
    if text != NA and not _missing(lo) and not _missing(hi):
        text += f"; over seeds [{lo:+.3f}, {hi:+.3f}]"
    return text


def group_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per (task, trait) numbers of one defense, as shown on its page."""
    if df.empty:
        return df
    return pd.DataFrame(
        {
            "task": df["task"],
            "trait": df["trait"],
            "seeds": df["seeds"],
            "residual, pp": df["residual_pp"].map(pp),
            "95 % CI": df["ci"],
            "p": df["p_value"].map(num),
            "per seed, pp": df["per_seed"],
            "across seeds 95 % CI": df["seed_ci"],
            "significant": df["significant"].map(
                lambda v: NA if _missing(v) else "yes" if v else "no"
            ),
            "baseline (none), pp": df["baseline_pp"].map(pp),
            "reduction, pp": df["reduction_pp"].map(pp),
            "reduction 95 % CI": df["reduction_ci"],
            "rows kept": df["rows_kept"].map(pct),
            "utility": df["utility"].map(num),
        }
    )


def split_table(long: pd.DataFrame, by: str) -> pd.DataFrame:
    """One defense's residual per task or per trait (the other dimension pooled)."""
    if long.empty:
        return long
    return pd.DataFrame(
        {
            by: long[by],
            "residual, pp": long["residual_pp"].map(pp),
            "95 % CI": long["ci"],
            "p": long["p_value"].map(num),
            "cells": long["cells"],
        }
    )


def heatmap(long: pd.DataFrame, order: list[str]) -> alt.LayerChart:
    """Residual leakage per defense (rows, in ranking order) and task (columns); * = significant."""
    data = long.copy()
    data["label"] = [
        NA if _missing(v) else f"{v:+.2f}{'*' if s else ''}"
        for v, s in zip(data["residual_pp"], data["significant"], strict=True)
    ]
    tasks = task_order(data["task"])
    lim = max(0.01, float(data["residual_pp"].abs().max(skipna=True) or 0.01))
    data["dark"] = data["residual_pp"].abs() > 0.6 * lim  # white text on the deep colours
    base = alt.Chart(data).encode(
        x=alt.X(
            "task:N",
            sort=tasks,
            title=None,
            axis=alt.Axis(labelAngle=0, orient="top", labelLimit=240),
        ),
        y=alt.Y("defense:N", sort=order, title=None, axis=alt.Axis(labelLimit=320)),
    )
    rect = base.mark_rect().encode(
        color=alt.Color(
            "residual_pp:Q",
            title="residual, pp",
            scale=alt.Scale(scheme="redblue", reverse=True, domain=[-lim, lim]),
        ),
        tooltip=[
            "defense",
            "task",
            alt.Tooltip("residual_pp:Q", format="+.3f", title="residual, pp"),
            alt.Tooltip("ci:N", title="95 % CI"),
            alt.Tooltip("p_value:Q", format=".3g", title="p"),
            alt.Tooltip("cells:Q"),
        ],
    )
    text = base.mark_text(fontSize=13).encode(
        text="label:N", color=alt.condition("datum.dark", alt.value("white"), alt.value("black"))
    )
    return (rect + text).properties(height=max(120, 38 * len(order)))


def pareto(df: pd.DataFrame, x: str, x_title: str) -> alt.LayerChart:
    """Residual leakage against ``x`` (rows kept or utility), 95 % CIs as bars, the Pareto front
    (less leakage, more ``x``) joined by a line; hover a point for its details."""
    data = df.copy()
    data["x"] = data[x] * (100 if x == "rows_kept" else 1)
    data = data[data["x"].notna() & data["residual_pp"].notna()]
    front = pareto_front(list(data["residual_pp"]), list(data["x"]))
    data["point"] = ["Pareto front" if f else "dominated" for f in front]
    data["flags"] = data["flags"].map(lambda f: f or "—")
    # Rows kept is a share: its whole 0-100 range keeps distances honest; utility has no fixed range.
    scale = alt.Scale(domain=[0, 100]) if x == "rows_kept" else alt.Scale(zero=False, padding=20)
    tips = [
        "defense",
        "rank",
        alt.Tooltip("residual_pp:Q", format="+.3f", title="residual, pp"),
        alt.Tooltip("ci_low_pp:Q", format="+.3f", title="CI low"),
        alt.Tooltip("ci_high_pp:Q", format="+.3f", title="CI high"),
        alt.Tooltip("reduction_pp:Q", format="+.3f", title="reduction vs none, pp"),
        alt.Tooltip("x:Q", format=".3g", title=x_title),
        alt.Tooltip("helper_seconds_per_cell:Q", format=".1f", title="helper s / cell"),
        "cells",
        "flags",
    ]
    base = alt.Chart(data).encode(
        x=alt.X(
            "x:Q",
            title=x_title,
            scale=scale,
            axis=alt.Axis(format=".0f") if x == "rows_kept" else alt.Axis(),
        ),
    )
    bars = base.mark_rule(opacity=0.5).encode(y="ci_low_pp:Q", y2="ci_high_pp:Q")
    points = base.mark_circle(size=120).encode(
        y=alt.Y("residual_pp:Q", title="residual leakage, pp (trait − control)"),
        color=alt.Color(
            "point:N",
            title=None,
            scale=alt.Scale(domain=["Pareto front", "dominated"], range=["#d62728", "#7f7f7f"]),
            legend=alt.Legend(orient="bottom"),
        ),
        tooltip=tips,
    )
    front = (
        alt.Chart(data[data["point"] == "Pareto front"].sort_values("x"))
        .mark_line(strokeDash=[4, 3], color="#d62728")
        .encode(x="x:Q", y="residual_pp:Q")
    )
    # Names go on the side of each point facing the middle, so none runs off the plot.
    if x == "rows_kept":
        mid = 50.0
    else:
        mid = float(data["x"].min() + data["x"].max()) / 2 if len(data) else 0.0
    left = alt.Chart(data[data["x"] < mid]).mark_text(align="left", dx=8, dy=-8)
    right = alt.Chart(data[data["x"] >= mid]).mark_text(align="right", dx=-8, dy=-8)
    labels = alt.layer(
        *(side.encode(x="x:Q", y="residual_pp:Q", text="defense:N") for side in (left, right))
    )
    zero = (
        alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="black", opacity=0.3).encode(y="y:Q")
    )
    return (zero + bars + front + points + labels).properties(height=380)
