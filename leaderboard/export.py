"""The leaderboard as a static site: plain HTML, SVG, CSV and JSON, browsable without Python.

``export(dirs, out_dir)`` reads the artifacts under ``dirs`` as the app does (``leaderboard.loader``;
artifacts whose integrity is not ``ok`` are left out and listed) and writes::

    out_dir/index.html          every setup: its forest plot (inline SVG, the Vega-Lite spec
                                beside it as JSON), the ranking table, the reduction per task,
                                its runs of several trait animals (``leaderboard.several``)
    out_dir/defense/<slug>.html one page per defense entry, a section per setup it ran in
    out_dir/leaderboard.csv     every setup's ranking rows (the app's CSV, with setup columns)
    out_dir/leaderboard.json    the same rows, the setups and the skipped files

Nothing is fetched when a page is opened (no script, font or stylesheet from elsewhere), so the
folder can be hosted anywhere or opened from disk. ``slb leaderboard --export DIR`` calls this.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.core.artifact import CellResult
from leaderboard import confirmations, several, views
from leaderboard.loader import excluded, load
from leaderboard.ranking import ranking
from leaderboard.tables import Filters, per_group, per_task, select

SVG = "http://www.w3.org/2000/svg"
CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ddd;padding:3px 6px;
text-align:left;vertical-align:top}th{background:#f4f4f4}tr.apart td{color:#6a51a3;font-style:italic}
.tiles{display:flex;gap:2em;margin:1em 0}.tile b{display:block;font-size:22px}
.note{color:#555;font-size:13px}h2 abbr{text-decoration:underline dotted}"""


def export(dirs: Sequence[str | Path], out_dir: str | Path) -> Path:
    """Write the static site for the artifacts under ``dirs`` into ``out_dir``; returns the
    path of its ``index.html``."""
    out = Path(out_dir)
    (out / "defense").mkdir(parents=True, exist_ok=True)
    data = load(dirs)
    setups = _setups(data.cells)
    sections, rows, pages = [], [], defaultdict(list)
    for cells, metric in setups:
        first = cells[0]
        rank = ranking(cells, metric, reproduced=data.reproduced)
        slugs = {e: slug(e) for e in rank["defense"]}
        sections.append(_setup_section(first, metric, rank, per_task(cells, metric), slugs))
        if len(
            runs := several.selection(
                data.cells, Filters(first.suite, first.base_model, first.setup)
            )
        ):
            sections.append(f"<h3>Runs of several trait animals</h3>{_table(runs)}")
        for e in rank["defense"]:
            pages[e].append(_defense_section(e, first, rank, cells, metric))
        rows.append(
            rank.assign(
                suite=first.suite,
                base_model=first.base_model,
                setup=first.setup,
                setup_label=first.setup_label,
                metric=metric,
            )
        )
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    table.to_csv(out / "leaderboard.csv", index=False)
    skipped = data.skipped + excluded(data.cells)
    confirmed = confirmations.table(dirs)
    doc = {
        "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "dirs": [str(d) for d in dirs],
        "rule": views.RULE,
        "rows": json.loads(table.to_json(orient="records")) if len(table) else [],
        "skipped": [{"file": s.path, "reason": s.reason} for s in skipped],
        "confirmations": confirmed.to_dict("records"),
    }
    (out / "leaderboard.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    for e, parts in pages.items():
        body = f"<p><a href='../index.html'>← leaderboard</a></p><h1>{_e(e)}</h1>" + "".join(parts)
        (out / "defense" / f"{slug(e)}.html").write_text(_page(e, body), encoding="utf-8")
    skip_rows = "".join(f"<tr><td>{_e(s.path)}</td><td>{_e(s.reason)}</td></tr>" for s in skipped)
    body = (
        "<h1>Defenses against subliminal trait transmission</h1>"
        f"<p class='note'>{len(data.cells)} artifacts from {_e(', '.join(map(str, dirs)))}; "
        f"generated {doc['generated']}. Only artifacts that pass the integrity check.</p>"
        f"<p class='note'>{_markdown(views.RULE)}</p>"
        + "".join(sections)
        + f"<h2>Pre-registered confirmations and screens ({len(confirmed)})</h2>"
        + (_table(confirmed) if len(confirmed) else "<p class='note'>None in these folders.</p>")
        + f"<h2>Skipped artifacts ({len(skipped)})</h2>"
        + (f"<table><tr><th>file</th><th>reason</th></tr>{skip_rows}</table>" if skipped else "")
    )
    index = out / "index.html"
    index.write_text(_page("subliminal-bench leaderboard", body), encoding="utf-8")
    return index


def slug(entry: str) -> str:
    """A file name for a defense entry: readable, and unique (a hash of the whole label)."""
    short = re.sub(r"[^a-z0-9]+", "-", entry.lower()).strip("-")[:60]
    return f"{short}-{hashlib.sha256(entry.encode()).hexdigest()[:6]}"


def _setups(cells: list[CellResult]) -> list[tuple[list[CellResult], str]]:
    """The cells of each setup (integrity ok), largest first, with the metric to rank by."""
    by: dict[tuple[str, str, str], list[CellResult]] = defaultdict(list)
    for c in select(cells, Filters()):
        by[(c.suite, c.base_model, c.setup)].append(c)
    out = []
    for group in sorted(by.values(), key=lambda g: (-len(g), g[0].setup_label)):
        metrics = {m for c in group for m in c.scores}
        out.append((group, "teacher_forced" if "teacher_forced" in metrics else min(metrics)))
    return out


def _setup_section(
    first: CellResult, metric: str, rank: pd.DataFrame, long: pd.DataFrame, slugs: dict[str, str]
) -> str:
    title = (
        f"<abbr title='{_e(first.setup_diff or 'the suite preset')}'>{_e(first.setup_label)}</abbr>"
    )
    head = (
        f"<h2>{_e(first.suite)} · {_e(first.base_model)} · {title}</h2>"
        f"<p class='note'>Ranking statistic: {_e(rank['statistic'].iloc[0])}, on "
        f"{_e(rank['tasks'].iloc[0])} · {_e(rank['traits'].iloc[0])}.</p>"
    )
    spec = views.forest(rank).to_json() if rank["effect"].notna().any() else "{}"
    shown = views.ranking_table(rank)
    links = [f"<a href='defense/{slugs[e]}.html'>{_e(e)}</a>" for e in rank["defense"]]
    show = not long.empty and long["effect"].notna().any()
    heat = _heat_table(long, list(rank["defense"])) if show else ""
    return (
        head
        + forest_svg(rank)
        + f"<script type='application/vnd.vegalite+json'>{_script_safe(spec)}</script>"
        + _table(shown, rank["role"], {"defense": links})
        + heat
    )


def _defense_section(
    entry: str, first: CellResult, rank: pd.DataFrame, cells: list[CellResult], metric: str
) -> str:
    row = rank[rank["defense"] == entry].iloc[0]
    mine = [c for c in cells if c.entry == entry]
    unit = row["unit"]
    effect = views.with_ci(row["effect"], row["effect_ci_low"], row["effect_ci_high"])
    drop = views.with_ci(row["vs_drop"], row["vs_drop_ci_low"], row["vs_drop_ci_high"])
    tiles = [
        ("verdict", f"{row['verdict']} (rank {row['rank']})"),
        (f"reduction vs none, {unit}", effect),
        ("% of baseline removed", views.share_text(row)),
        (f"beyond matched random drop, {unit}", drop),
        ("rows kept", f"{views.pct(row['rows_kept'])} ({views.kept_by_arm(row)})"),
    ]
    tile_html = "".join(f"<div class='tile'>{_e(k)}<b>{_e(v)}</b></div>" for k, v in tiles)
    desc = mine[0].defense_info.get("description", "") if mine else ""
    return (
        f"<h2>{_e(first.suite)} · {_e(first.setup_label)}</h2><p>{_e(str(desc))}</p>"
        f"<div class='tiles'>{tile_html}</div>"
        f"<p class='note'>Flags: {_e(row['flags'] or '—')}. Parameters: "
        f"<code>{_e(json.dumps(mine[0].params if mine else {}, sort_keys=True))}</code></p>"
        + _table(views.group_table(per_group(cells, entry, metric)))
    )


def _heat_table(long: pd.DataFrame, order: list[str]) -> str:
    """The heat map as a table: reduction per task, cells tinted (blue: less leakage than none)."""
    wide = long.pivot_table(index="defense", columns="task", values="effect", aggfunc="first")
    wide = wide.reindex([e for e in order if e in wide.index])
    lim = max(1e-9, float(wide.abs().max().max()))
    head = "".join(f"<th>{_e(t)}</th>" for t in wide.columns)
    body = ""
    for e, vals in wide.iterrows():
        cells = "".join(_tint(v, lim) for v in vals)
        body += f"<tr><td>{_e(str(e))}</td>{cells}</tr>"
    return f"<h3>Reduction per task</h3><table><tr><th>defense</th>{head}</tr>{body}</table>"


def _tint(v: Any, lim: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "<td>n/a</td>"
    a = min(1.0, abs(v) / lim) * 0.6
    rgb = "33,102,172" if v > 0 else "178,24,43"
    return f"<td style='background:rgba({rgb},{a:.2f})'>{v:+.3f}</td>"


def forest_svg(rank: pd.DataFrame, width: int = 1000) -> str:
    """The forest plot drawn as inline SVG: each entry's reduction with its interval, coloured by
    verdict (diamonds: references), the baseline at 0, dashed: the baseline's whole leakage."""
    data = rank[(rank["role"] != "baseline") & rank["effect"].notna()]
    if data.empty:
        return "<p class='note'>No entry has runs paired with the baseline.</p>"
    lo = data["effect_ci_low"].fillna(data["effect"])
    hi = data["effect_ci_high"].fillna(data["effect"])
    base = rank.loc[rank["role"] == "baseline", "leakage"]
    full = float(base.iloc[0]) if len(base) and not pd.isna(base.iloc[0]) else None
    xs = [0.0, float(lo.min()), float(hi.max())] + ([full] if full is not None else [])
    x0, x1 = min(xs), max(xs)
    pad = (x1 - x0) * 0.05 or 0.1
    x0, x1 = x0 - pad, x1 + pad
    left, right, row_h, top = 380, 20, 26, 20
    plot = width - left - right

    def sx(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * plot

    height = top + row_h * len(data) + 50
    parts = [f"<svg xmlns='{SVG}' width='{width}' height='{height}' font-size='12'>"]
    lines = ((0.0, "", "#000", "none"), (full, "4 3", "#1a9850", "all of none's leakage"))
    for v, dash, colour, name in lines:
        if v is not None:
            at = f"{sx(v):.1f}"
            parts.append(
                f"<line x1='{at}' x2='{at}' y1='{top - 8}' y2='{height - 40}' stroke='{colour}' "
                f"stroke-dasharray='{dash}' opacity='0.7'/>"
                + _line_label(sx(v), top - 10, colour, name, right=sx(v) > left + 0.75 * plot)
            )
    for i, (r, a, b) in enumerate(zip(data.to_dict("records"), lo, hi, strict=True)):
        y, x = top + row_h * i + row_h / 2, sx(r["effect"])
        colour = views.COLOURS[views.kind(r["verdict"])]
        tip = f"{r['defense']}: {r['verdict']}, {r['effect']:+.3f} [{a:+.3f}, {b:+.3f}]"
        label = r["defense"] if len(r["defense"]) <= 54 else r["defense"][:52] + "…"
        if r["role"] == "defense":
            mark = f"<circle cx='{x:.1f}' cy='{y:.1f}' r='5' fill='{colour}'/>"
        else:  # a reference: a diamond
            mark = (
                f"<rect x='{x - 5:.1f}' y='{y - 5:.1f}' width='10' height='10' fill='{colour}' "
                f"transform='rotate(45 {x:.1f} {y:.1f})'/>"
            )
        parts.append(
            f"<g><title>{_e(tip)}, {r['n_pairs']} paired seeds</title>"
            f"<text x='{left - 8}' y='{y + 4:.1f}' text-anchor='end'>{_e(label)}</text>"
            f"<line x1='{sx(a):.1f}' x2='{sx(b):.1f}' y1='{y:.1f}' y2='{y:.1f}' "
            f"stroke='{colour}' stroke-width='2'/>{mark}</g>"
        )
    for v in _ticks(x0, x1):
        parts.append(
            f"<text x='{sx(v):.1f}' y='{height - 24}' text-anchor='middle'>{v:+.2f}</text>"
        )
    caption = f"reduction vs none, {rank['unit'].iloc[0]} (> 0: less leakage than none)"
    parts.append(
        f"<text x='{left + plot / 2:.1f}' y='{height - 4}' text-anchor='middle'>"
        f"{_e(caption)}</text></svg>"
    )
    return "".join(parts)


def _line_label(x: float, y: float, colour: str, name: str, right: bool) -> str:
    """A reference line's name at its top, on the side with room."""
    anchor, dx = ("end", -3) if right else ("start", 3)
    return (
        f"<text x='{x + dx:.1f}' y='{y}' fill='{colour}' font-size='11' "
        f"text-anchor='{anchor}'>{_e(name)}</text>"
    )


def _ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) within [lo, hi]."""
    raw = (hi - lo) / n
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step) + 1)]


def _markdown(text: str) -> str:
    """The little markdown the rule paragraph uses (bold, italics, code), as HTML."""
    out = _e(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    out = re.sub(r"\*(.+?)\*", r"<i>\1</i>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _table(
    df: pd.DataFrame, roles: pd.Series | None = None, raw: dict[str, list[str]] | None = None
) -> str:
    """An HTML table; every cell escaped except the columns given ``raw`` (already HTML);
    baseline and reference rows set apart."""
    head = "".join(f"<th>{_e(c)}</th>" for c in df.columns)
    body = []
    for i, row in enumerate(df.itertuples(index=False)):
        apart = roles is not None and roles.iloc[i] != "defense"
        cells = "".join(
            f"<td>{(raw or {})[c][i] if c in (raw or {}) else _e(str(v))}</td>"
            for c, v in zip(df.columns, row, strict=True)
        )
        body.append(f"<tr{' class=apart' if apart else ''}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _page(title: str, body: str) -> str:
    head = f"<meta charset='utf-8'><title>{_e(title)}</title><style>{CSS}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>\n"


def _script_safe(spec: str) -> str:
    """JSON inside a <script> element: no "<" in it may end the element (same JSON)."""
    return spec.replace("<", "\\u003c")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)
