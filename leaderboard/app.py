"""The Streamlit leaderboard page. Start it with ``slb leaderboard [DIR ...]``, or directly::

    SLB_LEADERBOARD_DIRS=submissions:results streamlit run leaderboard/app.py

It reads results artifacts only (``leaderboard.loader``), ranks and tabulates them
(``leaderboard.ranking``, ``leaderboard.tables``) and draws them (``leaderboard.views``); this file
is the page layout and its caches. The suite box opens on ``PRIMARY_SUITE`` when it has cells. A
setup is chosen by the label its artifacts carry, with the full knob difference as its help.
Loading is cached per set of files (paths, sizes, modification times), so a new or changed
artifact shows up on the next rerun. ``?defense=<entry>`` in the URL opens that defense's page
(``<entry>`` as the ranking shows it, e.g. ``none v1``, the submission folder's name, or a defense
name with one entry); a link to an entry not in the selection says so."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st

from benchmark.core.artifact import CellResult
from benchmark.core.setup_keys import PRIMARY_SUITE
from leaderboard import confirmations, reading, several, tables, views
from leaderboard import ranking as rk
from leaderboard.loader import DEFAULT_DIRS, DIRS_ENV, Loaded, Skipped, discover, excluded, load

HOME = "Leaderboard"


def results_dirs() -> tuple[str, ...]:
    env = os.environ.get(DIRS_ENV, "")
    return tuple(d for d in env.split(os.pathsep) if d) or DEFAULT_DIRS


def fingerprint(dirs: tuple[str, ...]) -> str:
    """The caches' key: a digest (quick for Streamlit to hash) of paths, sizes and mtimes."""
    out = []
    for p in (q for a, _ in discover(list(dirs)) for q in (a, reading.reproduced_path(a))):
        try:  # an artifact, and its reproduction record (-1 while there is none)
            s = p.stat()
            out.append((str(p), s.st_size, s.st_mtime_ns))
        except OSError:
            out.append((str(p), -1, -1))
    return hashlib.sha256(json.dumps(out).encode()).hexdigest()


@st.cache_resource(show_spinner="Loading results artifacts…", max_entries=4)
def loaded(dirs: tuple[str, ...], fp: str) -> Loaded:
    return load(list(dirs))


Key = tuple  # (suite, base model, setup, tasks, traits, include failed): hashable filters


def filters(key: Key) -> tables.Filters:
    suite, base, setup, tasks, traits, include = key
    return tables.Filters(suite, base, setup, list(tasks), list(traits), include)


@st.cache_resource(max_entries=64)
def ranking(dirs: tuple[str, ...], fp: str, key: Key, metric: str) -> pd.DataFrame:
    """The ranking of one filter selection; cached, so moving between pages is instant."""
    cells = loaded(dirs, fp).cells
    f = filters(key)
    every = tables.select(cells, dataclasses.replace(f, include_failed=True))
    # Left out by the filter (integrity failed or missing); they still earn their defense a flag.
    failed = [] if f.include_failed else [c for c in every if c.integrity != "ok"]
    return rk.ranking(tables.select(cells, f), metric, failed, loaded(dirs, fp).reproduced)


@st.cache_resource(max_entries=64)
def heat(dirs: tuple[str, ...], fp: str, key: Key, metric: str, by: str = "task") -> pd.DataFrame:
    # Separate from the ranking so the table is on screen before this is computed.
    return tables.per_task(tables.select(loaded(dirs, fp).cells, filters(key)), metric, by)


@st.cache_resource(max_entries=64)
def several_runs(dirs: tuple[str, ...], fp: str, key: Key) -> pd.DataFrame:
    return several.selection(loaded(dirs, fp).cells, filters(key))


def pick(
    label: str,
    options: list[str],
    key: str,
    default: str | None = None,
    fmt=str,
    help_text: str | None = None,
) -> str:
    index = options.index(default) if default in options else 0
    return st.sidebar.selectbox(
        label, options, index=index, key=key, format_func=fmt, help=help_text
    )


def setup_names(cells: list[CellResult]) -> tuple[dict[str, str], str]:
    """Each setup's label as its artifacts carry it (with its id where two labels coincide), and
    the select box's help: every setup's full knob difference from its suite's preset. Labels
    are written when a cell runs, against the preset of the day: the newest cell's names it."""
    newest: dict[str, CellResult] = {}
    for c in cells:
        if c.setup not in newest or (c.finished or "") > (newest[c.setup].finished or ""):
            newest[c.setup] = c
    count = Counter(c.setup_label for c in newest.values())
    names = {
        s: c.setup_label if count[c.setup_label] == 1 else f"{c.setup_label} [{s[:6]}]"
        for s, c in newest.items()
    }
    lines = [
        f"- **{names[s]}**: " + (f"`{c.setup_diff}`" if c.setup_diff else "the suite's preset")
        for s, c in sorted(newest.items(), key=lambda kv: names[kv[0]])
    ]
    intro = "Cells are pooled only within one setup. How each differs from its suite's preset"
    return names, f"{intro} (when its cells ran):\n\n" + "\n".join(lines)


def sidebar(cells: list[CellResult]) -> tuple[tables.Filters, str]:
    st.sidebar.header("Filters")
    suite = pick("Suite", sorted({c.suite for c in cells}), "suite", PRIMARY_SUITE)
    pool = [c for c in cells if c.suite == suite]
    base = pick("Base model", sorted({c.base_model for c in pool}), "base_model")
    pool = [c for c in pool if c.base_model == base]
    names, diffs = setup_names(pool)
    # The setup with most cells first: that is where the comparisons are.
    by_size = [s for s, _ in Counter(c.setup for c in pool).most_common()]
    setup = pick(
        "Setup (cells are pooled only within one)", by_size, "setup", fmt=names.get, help_text=diffs
    )
    pool = [c for c in pool if c.setup == setup]
    have = Counter(m for c in pool for m in c.scores)
    metric = pick(
        "Metric", sorted(have), "metric", "teacher_forced" if "teacher_forced" in have else None
    )
    tasks_all = tables.task_order({c.task for c in pool})
    tasks = st.sidebar.multiselect("Tasks", tasks_all, default=tasks_all, key="tasks")
    traits_all = sorted({c.trait for c in pool})
    traits = st.sidebar.multiselect("Traits", traits_all, default=traits_all, key="traits")
    include = st.sidebar.checkbox(
        "Include artifacts that fail or lack the integrity check", value=False, key="include_failed"
    )
    return tables.Filters(suite, base, setup, tasks, traits, include), metric


def page_choice(entries: list[str], sources: dict[str, str]) -> str:
    """The page the sidebar (or ``?defense=``) asks for; ``sources`` maps a submission folder's
    name and a defense name with a single entry to that entry, so those links resolve too."""
    pages = [HOME, *entries]
    wanted = st.query_params.get("defense")
    found = wanted if wanted in pages else sources.get(wanted or "")
    if wanted and found is None:
        st.error(
            f"No defense entry {wanted!r} in this selection (suite, model, setup, filters): "
            f"showing the leaderboard. Entries here: {', '.join(entries) or 'none'}."
        )
    index = pages.index(found) if found in pages else 0
    page = st.sidebar.radio("Page", pages, index=index, key="page")
    if page == HOME:
        st.query_params.pop("defense", None)
    else:
        st.query_params["defense"] = page
    return page


def leaderboard_page(
    rank: pd.DataFrame,
    per_task: Callable[[], pd.DataFrame],
    metric: str,
    f: tables.Filters,
    setup: tuple[str, str] = ("", ""),
) -> None:
    if rank.empty:
        st.subheader("Ranking")
        st.info("No results artifacts match the filters.")
        return
    stat = rank["statistic"].iloc[0]
    st.subheader(f"Reduction against none: {stat}")
    st.caption(f"Setup: **{setup[0]}**", help=setup[1] or "the suite's preset")
    st.caption(
        "Ranking statistic: "
        + (
            "the own-animal statistic (each student's pull to its own teacher's animal; the "
            "setup has a placebo control teacher)"
            if stat == "own animal, log-odds"
            else f"the trait contrast, trait − control student ({metric})"
        )
        + f", on the task×trait groups every entry has ({rank['tasks'].iloc[0]}; "
        f"{rank['traits'].iloc[0]}). Every table and chart below uses it. {views.RULE} In the "
        "forest plot references are diamonds and the dashed line is none's whole leakage."
    )
    if rank["effect"].notna().any():
        st.altair_chart(views.forest(rank), key="forest")
    else:
        st.info("No entry has runs paired with the `none` baseline in this selection.")
    st.dataframe(
        views.styled(views.ranking_table(rank), rank["role"]), hide_index=True, key="ranking"
    )
    st.download_button(
        "Download table as CSV",
        rank.to_csv(index=False).encode("utf-8"),
        file_name=f"leaderboard_{f.suite}_{metric}.csv",
        mime="text/csv",
        key="download",
    )
    long = per_task()
    if not long.empty and long["effect"].notna().any():
        st.subheader("Reduction per task (* = interval over seeds clear of 0, uncorrected)")
        st.altair_chart(views.heatmap(long, list(rank["defense"])), key="heat")
    st.subheader("Reduction against cost")
    axis = st.radio("x axis", ["rows kept", "utility"], horizontal=True, key="pareto_x")
    col = "rows_kept" if axis == "rows kept" else "utility"
    if rank[col].notna().any():
        title = "rows kept, %" if col == "rows_kept" else "utility (student quality on the task)"
        st.altair_chart(views.pareto(rank, col, title), key="pareto")
    else:
        st.info(f"No artifact in this selection reports {axis}.")


def defense_page(
    entry: str, cells: list[CellResult], rank: pd.DataFrame, metric: str, data: Loaded
) -> None:
    mine = [c for c in cells if c.entry == entry]
    st.subheader(entry)
    if not mine:
        st.info("No cells of this defense in the current filter selection.")
        return
    first = mine[0]
    info = first.defense_info
    meta = {
        k: v
        for s in sorted({c.source for c in mine})
        for k, v in data.submissions.get(s, {}).items()
    }
    no_text = "_No description in the artifacts._"
    st.markdown(str(info.get("description") or meta.get("description") or no_text))
    row = rank[rank["defense"] == entry].iloc[0] if entry in set(rank["defense"]) else None
    tiles(row)
    if row is not None and row["flags"]:
        st.warning(f"Flags: {row['flags']}")
    if row is not None:
        st.caption(f"Reproduced (`slb reproduce`, identical scores): {views.reproduced_text(row)}")
    st.markdown(
        f"**Name** `{first.defense}` · **version** `{first.version}` · **hooks** {info.get('hooks', views.NA)}"
    )
    st.markdown("**Parameters**")
    st.code(
        json.dumps(first.params, indent=2, sort_keys=True) if first.params else "(none)",
        language="json",
    )
    if meta:
        with st.expander("Submission metadata"):
            st.json(meta)
    if info.get("source"):
        with st.expander("Source (as recorded in the artifact)"):
            st.json(info["source"])
    left, right = st.columns(2)
    for col, by in ((left, "task"), (right, "trait")):
        other = "traits" if by == "task" else "tasks"
        col.markdown(f"**Per {by}** ({other} pooled, each weighted equally)")
        long = tables.per_task(cells, metric, by=by)
        long = long[long["defense"] == entry] if not long.empty else long
        col.dataframe(views.split_table(long, by), hide_index=True, key=f"per_{by}")
    st.markdown("**Per task and trait** (runs paired with the baseline's by seed)")
    st.dataframe(
        views.group_table(tables.per_group(cells, entry, metric)), hide_index=True, key="groups"
    )
    examples_section(mine)
    logs_section(mine)


def tiles(row: pd.Series | None) -> None:
    """The headline numbers of a defense page: all on the ranking statistic, over seeds."""
    c1, c2, c3, c4, c5 = st.columns(5)
    if row is None:
        c1.metric("verdict", views.NA)
        return
    unit = row["unit"]
    c1.metric(
        "verdict", row["verdict"], f"rank {row['rank']}", "off", help=views.RULE, delta_arrow="off"
    )
    over = "; overshoot" if row["overshoot"] else ""
    seeds = f"{views.ci(row['effect_ci_low'], row['effect_ci_high'])}, {row['n_pairs']} seeds"
    effect = views.signed(row["effect"])
    c2.metric(f"reduction vs none, {unit}", effect, seeds + over, "off", delta_arrow="off")
    c3.metric("% of baseline removed", views.share_text(row))
    drop = str(row["vs_drop_entry"] or "no random_drop run at this entry's kept share")
    vs_drop = (
        views.signed(row["vs_drop"]),
        views.ci(row["vs_drop_ci_low"], row["vs_drop_ci_high"]),
    )
    c4.metric(f"beyond matched random drop, {unit}", *vs_drop, "off", help=drop, delta_arrow="off")
    kept = (views.pct(row["rows_kept"]), views.kept_by_arm(row), "off")
    c5.metric("rows kept", *kept, help=views.KEPT_HELP, delta_arrow="off")


def examples_section(mine: list[CellResult]) -> None:
    st.markdown("**Example rows: teacher output beside defended output**")
    with_ex = [c for c in mine if any(c.examples.values())]
    if not with_ex:
        st.info("These artifacts carry no example rows (older schema).")
        return
    cell = st.selectbox(
        "Cell",
        with_ex,
        key="example_cell",
        format_func=lambda c: f"{c.task} · {c.trait} · seed {c.seed}",
    )
    for arm, tab in zip(("trait", "control"), st.tabs(["trait arm", "control arm"]), strict=True):
        ex = cell.examples.get(arm) or []
        cols = ["id", "status", "prompt", "teacher_completion", "defended_completion"]
        tab.dataframe(
            pd.DataFrame([{k: e.get(k, views.NA) for k in cols} for e in ex], columns=cols),
            hide_index=True,
        )


def logs_section(mine: list[CellResult]) -> None:
    st.markdown("**Inspect logs**")
    # A relative log path (written so) lies under its artifact's folder.
    dirs = sorted(
        {
            str((Path(c.path).parent / p).parent)
            for c in mine
            for ps in c.inspect_logs.values()
            for p in ps
        }
    )
    if not dirs:
        st.info("No Inspect log paths recorded.")
        return
    lines = [
        f"inspect view --log-dir {d}" + ("" if Path(d).is_dir() else "   # not on this machine")
        for d in dirs
    ]
    st.code("\n".join(lines), language="bash")


def skipped_panel(data: Loaded, include_failed: bool = False) -> None:
    """Files that could not be used, and (unless they are included) artifacts whose integrity
    check failed or could not be made, each with its reason."""
    rows: list[Skipped] = data.skipped + ([] if include_failed else excluded(data.cells))
    with st.expander(f"Skipped artifacts ({len(rows)})", expanded=bool(rows)):
        if rows:
            st.dataframe(
                pd.DataFrame([{"file": s.path, "reason": s.reason} for s in rows]),
                hide_index=True,
                key="skipped",
            )
        else:
            st.write("None: every file found is a usable artifact.")


def main() -> None:
    st.set_page_config(page_title="subliminal-bench leaderboard", layout="wide")
    st.title("Defenses against subliminal trait transmission")
    dirs = results_dirs()
    fp = fingerprint(dirs)
    data = loaded(dirs, fp)
    st.caption(
        f"{len(data.cells)} results artifacts from {', '.join(dirs)} ({data.n_files} files, "
        f"{len(data.skipped)} skipped, {len(excluded(data.cells))} without a passed integrity "
        "check). Read-only: no plugin is executed."
    )
    if not data.cells:
        st.info(f"No usable results artifacts in {', '.join(dirs)}.")
        confirmations.panel(dirs)
        skipped_panel(data)
        return
    f, metric = sidebar(data.cells)
    key = (
        f.suite,
        f.base_model,
        f.setup,
        tuple(f.tasks or ()),
        tuple(f.traits or ()),
        f.include_failed,
    )
    rank = ranking(dirs, fp, key, metric)
    entries = list(rank["defense"])
    page = page_choice(entries, tables.aliases(data.cells, entries))
    if page == HOME:
        names = {c.setup: (c.setup_label, c.setup_diff) for c in data.cells}
        setup = names.get(f.setup or "", ("", ""))
        leaderboard_page(rank, lambda: heat(dirs, fp, key, metric), metric, f, setup)
        several.panel(several_runs(dirs, fp, key))
    else:
        defense_page(page, tables.select(data.cells, f), rank, metric, data)
    confirmations.panel(dirs)
    skipped_panel(data, f.include_failed)


# Streamlit (and AppTest) run this file as __main__; importing it runs nothing.
if __name__ == "__main__":
    main()
