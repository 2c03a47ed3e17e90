"""``slb validate``'s check of a suite folder's ``summary.json``: each pool recomputed from the
cells it stands for, matched as its writers group them (``benchmark.run.suite.pool_key``: configs
equal but for their seeds), and the several-traits block recomputed from the listed cells."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.core.multi_trait import MULTI, summary_block
from benchmark.core.results import pooled_leakage
from benchmark.run.checking import Report, added_later, diff_numbers, kind_of, read_json
from benchmark.run.suite import POOL_KEY, cost_summary, pool_key

REQUIRED_POOLED = ("task", "defense", "trait")


def _is(typ: type) -> Any:
    return lambda v: isinstance(v, typ)


def _entries(summary: dict[str, Any], key: str, ok: Any, what: str, path: Path, report: Report):
    """The entries of list ``summary[key]`` that ``ok`` accepts; one problem line for the rest."""
    got = summary.get(key, [])
    if not isinstance(got, list):
        report.problems.append(f"{path}: {key} is {kind_of(got)}, expected a list of {what}")
        return []
    if bad := [i for i, v in enumerate(got) if not ok(v)]:
        report.problems.append(
            f"{path}: {key}[{bad[0]}] is {kind_of(got[bad[0]])}, expected {what} "
            f"({len(bad)} such entr{'y' if len(bad) == 1 else 'ies'} skipped)"
        )
    return [v for v in got if ok(v)]


def _pooled_entry(p: Any) -> bool:
    strings = isinstance(p, dict) and all(isinstance(p.get(k), str) for k in REQUIRED_POOLED)
    return strings and isinstance(p.get("leakage"), dict) and isinstance(p.get("cost", {}), dict)


def check_summary(path: Path, arts: dict[str, dict], refused: set[str], report: Report) -> None:
    summary, problem = read_json(path, "a suite summary")
    if problem is None and not isinstance(summary, dict):
        problem = f"top level is {kind_of(summary)}, expected the suite summary object"
    if problem is not None:
        report.problems.append(f"{path}: {problem}")
        return
    for err in _entries(summary, "errors", _is(dict), "error records (objects)", path, report):
        report.warnings.append(f"{path}: cell {err.get('cell')} failed: {err.get('error')}")
    listed = _entries(summary, "cells", _is(str), "cell names (strings)", path, report)
    for cell in listed:
        if cell not in arts and cell not in refused:
            report.problems.append(f"{path}: lists cell {cell!r}, whose artifact is missing")
    what = "objects with task, defense, trait (strings) and leakage (an object)"
    for p in _entries(summary, "pooled", _pooled_entry, what, path, report):
        if skipped := sorted(refused & set(listed)):
            why = f"not recomputed: cells {skipped} refused above"
            report.warnings.append(f"{path}: pooled {p['defense']} {why}")
            continue
        where = f"{path}: pooled {p['defense']}"
        groups, problem = _pool_cells(p, arts, listed, where, report)
        report.problems += [problem] if problem else []
        got = [_pool_problems(p, cells, where) for cells in groups]
        for problems, warnings in sorted(got, key=lambda g: len(g[0]))[:1]:
            report.problems += problems
            report.warnings += warnings
    if MULTI in summary:  # several traits per run: recomputed from the listed cells
        fresh = summary_block([a for name, a in arts.items() if name in listed])
        report.problems += diff_numbers(summary[MULTI], fresh, f"{path}: {MULTI}")


def _pool_cells(
    p: dict[str, Any], arts: dict[str, dict], listed: list[str], where: str, report: Report
) -> tuple[list[list[dict[str, Any]]], str | None]:
    """``([cells], None)``: the listed cells pooled entry ``p`` stands for, all of one setup
    (configs equal but for seeds, as its writers group them) with exactly its ``seeds``; or
    ``([], why not)``. An entry names its setup (``pool_key``); one written before it did is
    matched by its seeds alone, and where two setups of its task, defense and trait (two matched
    drops' shares) have those seeds, it may be either's pool (a warning)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for cfg, art in ((arts[n]["config"], arts[n]) for n in listed if n in arts):
        if [cfg["task"], cfg["defense"], cfg["trait"]] == [p[k] for k in REQUIRED_POOLED]:
            groups.setdefault(pool_key(cfg), []).append(art)
    seeds = p.get("seeds")
    if not isinstance(seeds, list) or len(seeds) < 2:
        return [], f"{where}: seeds is {seeds!r}, expected the list of its 2 or more cells' seeds"
    want = sorted(seeds, key=repr)
    same = [
        g
        for key, g in groups.items()
        if sorted((a["config"]["seed"] for a in g), key=repr) == want
        and p.get(POOL_KEY, key) == key
    ]
    if POOL_KEY not in p and len(same) > 1:
        report.warnings.append(f"{where}: seeds {seeds} fit {len(same)} setups (no {POOL_KEY})")
    if not same:
        return [], f"{where}: no listed cells of one setup with exactly seeds {seeds}"
    return same, None


def _pool_problems(p: dict[str, Any], cells: list[dict], where: str) -> tuple[list, list]:
    """``(problems, warnings)`` of pooled entry ``p`` against the pool of ``cells``."""
    fresh = pooled_leakage(cells)
    notes = Report()
    added_later(p["leakage"], fresh, where, notes)
    problems = diff_numbers(p["leakage"], fresh, where)
    if "cost" in p:
        problems += diff_numbers(p["cost"], cost_summary(cells), f"{where}: cost")
    return problems, notes.warnings
