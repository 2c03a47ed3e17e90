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
``checking.MAX_RESULT_BYTES``, not JSON, too deep, NaN or Infinity, a block of the wrong shape) is one
problem line naming the file and what was expected, and validation goes on with the other files.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmark.core.artifact import METRICS, PLACEBO, Skip, parse
from benchmark.core.results import CANDIDATES, SCHEMA, leakage_block
from benchmark.run.checking import (
    Report,
    added_later,
    diff_numbers,
    kind_of,
    read_json,
)
from benchmark.run.integrity import as_dict, check_integrity, is_count
from benchmark.run.submission import RANDOM_DROP, Submission, load_submission, matched_drop_params
from benchmark.run.validate_summary import check_summary
from defenses import load_defense

REQUIRED = ("schema", "config", "defense", "run_info", "data", "scores", "leakage")
ARM_FIELDS = ("generated", "after_defense", "trained_on")
NEW_ARM_FIELDS = ("rows_kept_share", "defense_cost", "examples")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _shape_problem(art: Any) -> str | None:
    """The first way ``art`` is not a results artifact the checks below can read, or None."""
    if not isinstance(art, dict):
        return f"top level is {kind_of(art)}, expected a results object (schema {SCHEMA!r})"
    if missing := [k for k in REQUIRED if k not in art]:
        return f"missing required fields {missing}"
    if art["schema"] != SCHEMA:
        return f"schema {art['schema']!r}, expected {SCHEMA!r}"
    for k in REQUIRED[1:]:  # each a JSON object
        if not isinstance(art[k], dict):
            return f"{k} is {kind_of(art[k])}, expected an object"
    if "integrity" in art and not isinstance(art["integrity"], dict):
        return f"integrity is {kind_of(art['integrity'])}, expected an object of hashes"
    for name, rows in art["scores"].items():
        if not isinstance(rows, list):
            return f"scores.{name} is {kind_of(rows)}, expected a list of per-question rows"
        for i, r in enumerate(rows):
            if problem := _row_problem(r):
                return f"scores.{name}[{i}] {problem}"
    for arm in ("trait", "control"):
        if problem := _arm_problem(art["data"].get(arm)):
            return f"data.{arm} {problem}"
    for m, block in art["leakage"].items():
        if not isinstance(block, dict):
            return f"leakage.{m} is {kind_of(block)}, expected an object of statistics"
    try:
        parse(art)  # what the leaderboard requires: config fields, both arms' scores, setup
    except Skip as e:
        return str(e)
    return None


def _row_problem(r: Any) -> str | None:
    if not isinstance(r, dict) or not isinstance(r.get("id"), str):
        return f"is {kind_of(r)}, expected an object with a string id"
    for k in (*METRICS, PLACEBO):
        v = r.get(k)
        if v is not None and not (_number(v) and 0 <= v <= 1):
            return f"{k} is {v!r}, expected a number in [0, 1] or null"
    cands = r.get(CANDIDATES)
    if cands and not (isinstance(cands, dict) and all(map(_number, cands.values()))):
        return f"{CANDIDATES} is {kind_of(cands)}, expected an object of animal -> probability"
    return None


def _arm_problem(d: Any) -> str | None:
    if not isinstance(d, dict):
        return f"is {kind_of(d)}, expected an object with {ARM_FIELDS}"
    if bad := [k for k in ARM_FIELDS if not is_count(d.get(k))]:
        return f"lacks {bad} as row counts (non-negative integers)"
    if "rows_kept_share" in d and not _number(d["rows_kept_share"]):
        return f"rows_kept_share is {kind_of(d['rows_kept_share'])}, expected a number"
    cost = d.get("defense_cost", {})
    if not isinstance(cost, dict) or not all(_number(v) for k, v in cost.items() if k != "helpers"):
        return "defense_cost is not an object of numbers (and a helpers object)"
    if (key := d.get("defended_key")) is not None and not isinstance(key, str):
        return f"defended_key is {kind_of(key)}, expected a store key string"
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
        added_later(stored, fresh, f"{where}: leakage.{metric}", report)
        report.problems += diff_numbers(stored, fresh, f"{where}: leakage.{metric}")


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
            _guarded(summary, report, check_summary, summary, arts, refused, report)
        report.notes.append(f"{suite_dir}: {len(arts)} artifact(s) checked")
    return report
