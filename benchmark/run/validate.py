"""``slb validate <folder>``: check a submission and its result artifacts, reporting every problem.

Checks, in order, each adding to one report instead of stopping at the first failure:

1. ``submission.yaml`` against its schema (``benchmark.run.submission``);
2. the plugin loads with its parameters (a non-built-in one in a child process, as in a run);
3. each ``results/<suite>/*.json`` artifact: schema and required fields; that it ran this defense
   (reference, name, version, parameters, and for a module file the sha256 of its code); the data
   counts agree with each other; the ``integrity`` hashes of ``scores`` and ``leakage`` recomputed;
   the rows each student trained on re-hashed from the artifact store when it holds them
   (``benchmark.run.integrity``: planted rows and soft labels included); and the leakage
   recomputed from the per-question scores with ``benchmark.core.stats``, within a tolerance;
4. ``summary.json``: its pools recomputed from the cells it lists (configs equal but for seeds).

The control folder of matched random drops (``reference: matched random drop``) holds one run per
share a defense kept: there each artifact's ``{"keep": share}`` is checked against the built-in
described at that share instead of submission.yaml's params.

Artifacts written before a field existed get a *warning* naming what they predate, never a silent
pass: "no integrity block (artifact predates integrity hashes)" (when it is absent, not malformed).
Result files are untrusted: one that cannot be used (not a regular file, over
:data:`MAX_RESULT_BYTES`, not JSON, too deep, NaN or Infinity, a block of the wrong shape) is one
problem line naming the file and what was expected, and validation goes on with the other files.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.core.artifact import METRICS, PLACEBO, Skip, parse
from benchmark.core.multi_trait import MULTI, summary_block
from benchmark.core.results import ADDED_LATER, CANDIDATES, SCHEMA, leakage_block, pooled_leakage
from benchmark.run.integrity import as_dict, check_integrity, is_count
from benchmark.run.submission import (
    RANDOM_DROP,
    Submission,
    load_submission,
    matched_drop_params,
    read_capped,
    tree_problem,
)
from benchmark.run.suite import cost_summary, pool_key
from defenses import load_defense

REQUIRED = ("schema", "config", "defense", "run_info", "data", "scores", "leakage")
ARM_FIELDS = ("generated", "after_defense", "trained_on")
NEW_ARM_FIELDS = ("rows_kept_share", "defense_cost", "examples")
REQUIRED_POOLED = ("task", "defense", "trait")
REL_TOL, ABS_TOL = 1e-6, 1e-9
MAX_RESULT_BYTES = 10_000_000  # a real artifact is about 60 kB; far beyond is refused unread


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        lines = [f"PROBLEM: {p}" for p in self.problems] + [f"warning: {w}" for w in self.warnings]
        lines += [f"ok: {n}" for n in self.notes]
        verdict = "valid" if self.ok else f"{len(self.problems)} problem(s)"
        return "\n".join([*lines, f"{verdict}, {len(self.warnings)} warning(s)"])


def diff_numbers(stored: Any, fresh: Any, where: str, limit: int = 5) -> list[str]:
    """Paths where two JSON trees differ (numbers within tolerance are equal)."""
    out: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k), b.get(k), f"{path}.{k}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{path}[{i}]")
        elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and a is not True:
            if not math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL):
                out.append(f"{path}: stored {a!r}, recomputed {b!r}")
        elif a != b:
            out.append(f"{path}: stored {a!r}, recomputed {b!r}")

    walk(stored, fresh, where)
    return out


def read_json(path: Path, what: str = "a result file") -> tuple[Any, str | None]:
    """``(decoded JSON, None)``, or ``(None, why it cannot be used)`` in one line."""
    data, problem = read_capped(path, MAX_RESULT_BYTES, what)
    if data is None:
        return None, problem
    try:
        obj = json.loads(data.decode("utf-8"))
    except RecursionError:
        return None, "JSON nested too deeply to decode (expected an object a few levels deep)"
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None, f"unreadable JSON ({what} expected): {e}"
    return (None, problem) if (problem := tree_problem(obj)) else (obj, None)


def _kind(v: Any) -> str:
    name = type(v).__name__
    return "null" if v is None else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _shape_problem(art: Any) -> str | None:
    """The first way ``art`` is not a results artifact the checks below can read, or None."""
    if not isinstance(art, dict):
        return f"top level is {_kind(art)}, expected a results object (schema {SCHEMA!r})"
    if missing := [k for k in REQUIRED if k not in art]:
        return f"missing required fields {missing}"
    if art["schema"] != SCHEMA:
        return f"schema {art['schema']!r}, expected {SCHEMA!r}"
    for k in REQUIRED[1:]:  # each a JSON object
        if not isinstance(art[k], dict):
            return f"{k} is {_kind(art[k])}, expected an object"
    if "integrity" in art and not isinstance(art["integrity"], dict):
        return f"integrity is {_kind(art['integrity'])}, expected an object of hashes"
    for name, rows in art["scores"].items():
        if not isinstance(rows, list):
            return f"scores.{name} is {_kind(rows)}, expected a list of per-question rows"
        for i, r in enumerate(rows):
            if problem := _row_problem(r):
                return f"scores.{name}[{i}] {problem}"
    for arm in ("trait", "control"):
        if problem := _arm_problem(art["data"].get(arm)):
            return f"data.{arm} {problem}"
    for m, block in art["leakage"].items():
        if not isinstance(block, dict):
            return f"leakage.{m} is {_kind(block)}, expected an object of statistics"
    try:
        parse(art)  # what the leaderboard requires: config fields, both arms' scores, setup
    except Skip as e:
        return str(e)
    return None


def _row_problem(r: Any) -> str | None:
    if not isinstance(r, dict) or not isinstance(r.get("id"), str):
        return f"is {_kind(r)}, expected an object with a string id"
    for k in (*METRICS, PLACEBO):
        v = r.get(k)
        if v is not None and not (_number(v) and 0 <= v <= 1):
            return f"{k} is {v!r}, expected a number in [0, 1] or null"
    cands = r.get(CANDIDATES)
    if cands and not (isinstance(cands, dict) and all(map(_number, cands.values()))):
        return f"{CANDIDATES} is {_kind(cands)}, expected an object of animal -> probability"
    return None


def _arm_problem(d: Any) -> str | None:
    if not isinstance(d, dict):
        return f"is {_kind(d)}, expected an object with {ARM_FIELDS}"
    if bad := [k for k in ARM_FIELDS if not is_count(d.get(k))]:
        return f"lacks {bad} as row counts (non-negative integers)"
    if "rows_kept_share" in d and not _number(d["rows_kept_share"]):
        return f"rows_kept_share is {_kind(d['rows_kept_share'])}, expected a number"
    cost = d.get("defense_cost", {})
    if not isinstance(cost, dict) or not all(_number(v) for k, v in cost.items() if k != "helpers"):
        return "defense_cost is not an object of numbers (and a helpers object)"
    if (key := d.get("defended_key")) is not None and not isinstance(key, str):
        return f"defended_key is {_kind(key)}, expected a store key string"
    return None


def _plugin(sub: Submission, report: Report) -> dict[str, Any] | None:
    try:
        d = load_defense(sub.defense_ref(), sub.params)
    except Exception as e:  # noqa: BLE001 - any load failure is a problem to report, not a crash
        report.problems.append(f"the defense does not load: {type(e).__name__}: {e}")
        return None
    desc = d.describe()
    report.notes.append(f"defense {desc['name']!r} v{desc['version']} loads ({sub.kind})")
    return desc


@functools.lru_cache(maxsize=64)
def _drop_plugin(keep: float) -> dict[str, Any]:
    return load_defense(RANDOM_DROP, {"keep": keep}).describe()  # built in: loads in-process


def _check_defense(art: dict[str, Any], sub: Submission, plugin: dict | None, where: str) -> list:
    problems = []
    ref = art["config"].get("defense", "")
    want = sub.defense_ref()
    if sub.kind == "module":  # paths differ between machines; the file name and class must not
        same = Path(ref.rsplit(":", 1)[0]).name == Path(want.rsplit(":", 1)[0]).name
        same = same and ref.rsplit(":", 1)[-1] == want.rsplit(":", 1)[-1]
    else:
        same = ref == want
    if not same:
        problems.append(f"{where}: ran defense {ref!r}, but submission.yaml names {want!r}")
    params = art["config"].get("defense_params", {})
    if params != sub.params and matched_drop_params(sub, params):
        plugin = _drop_plugin(params["keep"])  # the control at this run's share
    elif params != sub.params:
        problems.append(
            f"{where}: ran with params {art['config'].get('defense_params')}, "
            f"submission.yaml has {sub.params}"
        )
    if plugin is not None:
        for k in ("name", "version", "params"):
            if art["defense"].get(k) != plugin.get(k):
                problems.append(
                    f"{where}: defense {k} is {art['defense'].get(k)!r}, the plugin says "
                    f"{plugin.get(k)!r}"
                )
        stored = as_dict(art["defense"].get("source")).get("sha256")
        if plugin["source"].get("sha256") and stored != plugin["source"]["sha256"]:
            problems.append(f"{where}: the defense code changed since these results were produced")
    return problems


def _check_data(art: dict[str, Any], where: str, report: Report) -> None:
    for arm in ("trait", "control"):
        d, at = art["data"][arm], f"{where}: data.{arm}"  # its shape is checked by _shape_problem
        if missing := [k for k in NEW_ARM_FIELDS if k not in d]:
            report.warnings.append(f"{at} has no {missing} (artifact predates them)")
        if "rows_kept_share" in d and d["generated"]:
            share = d["after_defense"] / d["generated"]
            if not math.isclose(d["rows_kept_share"], share, abs_tol=1e-12):
                report.problems.append(f"{at}.rows_kept_share != after/generated")
        if d["trained_on"] > d["after_defense"]:
            report.problems.append(f"{at} trained on more rows than the defense kept")


def _check_leakage(art: dict[str, Any], where: str, report: Report) -> None:
    evals = {name: {"per_question": rows} for name, rows in art["scores"].items()}
    for metric, stored in art["leakage"].items():
        try:
            cfg = art["config"]
            placebo = as_dict(cfg.get("teacher")).get("placebo")
            fresh = leakage_block(evals, metric, cfg.get("trait"), placebo)
        except Exception as e:  # noqa: BLE001 - odd stored inputs are a problem to report
            report.problems.append(f"{where}: leakage.{metric} cannot be recomputed: {e!r}")
            continue
        _added_later(stored, fresh, f"{where}: leakage.{metric}", report)
        report.problems += diff_numbers(stored, fresh, f"{where}: leakage.{metric}")


def _added_later(stored: Any, fresh: Any, where: str, report: Report) -> None:
    """Drop from ``fresh`` the statistic that artifacts written before it existed lack (a warning,
    not a problem: their stored numbers are still checked)."""
    if isinstance(stored, dict) and isinstance(fresh, dict):
        for key in ADDED_LATER:
            if key in fresh and key not in stored:
                del fresh[key]
                report.warnings.append(f"{where}: no {key} statistic (artifact predates it)")


def validate_artifact(
    path: Path, sub: Submission, plugin: dict | None, report: Report, store: Any = None
) -> dict[str, Any] | None:
    """Check one result file into ``report``; the artifact, or None when it cannot be used."""
    where = str(path)
    art, problem = read_json(path)
    if problem is None and (problem := _shape_problem(art)) is None:
        report.problems += _check_defense(art, sub, plugin, where)
        _check_data(art, where, report)
        check_integrity(art, where, report, store)
        _check_leakage(art, where, report)
        return art
    report.problems.append(f"{where}: {problem}")
    return None


def _is(typ: type) -> Any:
    return lambda v: isinstance(v, typ)


def _entries(summary: dict[str, Any], key: str, ok: Any, what: str, path: Path, report: Report):
    """The entries of list ``summary[key]`` that ``ok`` accepts; one problem line for the rest."""
    got = summary.get(key, [])
    if not isinstance(got, list):
        report.problems.append(f"{path}: {key} is {_kind(got)}, expected a list of {what}")
        return []
    if bad := [i for i, v in enumerate(got) if not ok(v)]:
        report.problems.append(
            f"{path}: {key}[{bad[0]}] is {_kind(got[bad[0]])}, expected {what} "
            f"({len(bad)} such entr{'y' if len(bad) == 1 else 'ies'} skipped)"
        )
    return [v for v in got if ok(v)]


def _pooled_entry(p: Any) -> bool:
    strings = isinstance(p, dict) and all(isinstance(p.get(k), str) for k in REQUIRED_POOLED)
    return strings and isinstance(p.get("leakage"), dict) and isinstance(p.get("cost", {}), dict)


def _check_summary(path: Path, arts: dict[str, dict], refused: set[str], report: Report) -> None:
    summary, problem = read_json(path, "a suite summary")
    if problem is None and not isinstance(summary, dict):
        problem = f"top level is {_kind(summary)}, expected the suite summary object"
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
        got = [_pool_problems(p, cells, where) for cells in _pool_candidates(p, arts, listed)]
        if not got:
            report.problems.append(f"{where}: none of the listed cells has its seeds")
        for problems, warnings in sorted(got, key=lambda g: len(g[0]))[:1]:  # the closest pool
            report.problems += problems
            report.warnings += warnings
    if MULTI in summary:  # several traits per run: recomputed from the listed cells
        fresh = summary_block([a for name, a in arts.items() if name in listed])
        report.problems += diff_numbers(summary[MULTI], fresh, f"{path}: {MULTI}")


def _pool_candidates(p: dict[str, Any], arts: dict[str, dict], listed: list[str]) -> list[list]:
    """The listed cells a pooled entry can be, grouped as its writers group them (configs equal
    but for seeds), with exactly its ``seeds``. Two groups of one task, defense and trait (two
    matched drops' shares) can both qualify: the entry is right if it is one's pool. Where none
    does (a cell's config edited), its cells with those seeds, so numbers still count."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for cfg, art in ((arts[n]["config"], arts[n]) for n in listed if n in arts):
        if [cfg["task"], cfg["defense"], cfg["trait"]] == [p[k] for k in REQUIRED_POOLED]:
            groups.setdefault(pool_key(cfg), []).append(art)
    seeds = p.get("seeds")
    want = sorted(map(str, seeds)) if isinstance(seeds, list) else None
    seeds_of = lambda g: sorted(str(a["config"]["seed"]) for a in g)  # noqa: E731
    if exact := [g for g in groups.values() if want is None or seeds_of(g) == want]:
        return exact
    loose = [a for g in groups.values() for a in g if str(a["config"]["seed"]) in (want or ())]
    return [loose] if loose else []


def _pool_problems(p: dict[str, Any], cells: list[dict], where: str) -> tuple[list, list]:
    """``(problems, warnings)`` of pooled entry ``p`` against the pool of ``cells``."""
    fresh = pooled_leakage(cells) if len(cells) > 1 else {}
    notes = Report()
    _added_later(p["leakage"], fresh, where, notes)
    problems = diff_numbers(p["leakage"], fresh, where)
    if "cost" in p and len(cells) > 1:
        problems += diff_numbers(p["cost"], cost_summary(cells), f"{where}: cost")
    return problems, notes.warnings


def _guarded(path: Path, report: Report, check: Any, *args: Any) -> Any:
    """``check(*args)``; an error it did not foresee becomes one problem line naming the file."""
    try:
        return check(*args)
    except Exception as e:  # noqa: BLE001 - untrusted files: report, never traceback
        report.problems.append(f"{path}: cannot be checked ({type(e).__name__}: {e})")
        return None


def validate_submission(folder: str | Path, store: Any = None) -> Report:
    report = Report()
    sub, problems = load_submission(folder)
    report.problems += problems
    if sub is None:
        return report
    plugin = _plugin(sub, report)
    results = Path(folder) / "results"
    suites = sorted(p for p in results.iterdir() if p.is_dir()) if results.is_dir() else []
    if not suites:
        report.problems.append(f"no results yet: run `slb submit {folder}` to produce them")
    for suite_dir in suites:
        arts: dict[str, dict[str, Any]] = {}
        refused: set[str] = set()
        for path in sorted(suite_dir.glob("*.json")):
            if path.name != "summary.json":
                art = _guarded(path, report, validate_artifact, path, sub, plugin, report, store)
                if art is None:
                    refused.add(path.stem)
                else:
                    arts[path.stem] = art
        if not arts:
            report.problems.append(f"{suite_dir}: no result artifacts")
        if (summary := suite_dir / "summary.json").exists():
            _guarded(summary, report, _check_summary, summary, arts, refused, report)
        report.notes.append(f"{suite_dir}: {len(arts)} artifact(s) checked")
    return report
