"""``slb validate <folder>``: check a submission and its result artifacts, reporting every problem.

Checks, in order, each adding to one report instead of stopping at the first failure:

1. ``submission.yaml`` against its schema (``benchmark.run.submission``);
2. the plugin loads with its parameters (a non-built-in one in a child process, as in a run);
3. each ``results/<suite>/*.json`` artifact: schema and required fields; that it ran this defense
   (reference, name, version, parameters, and for a module file the sha256 of its code); the data
   counts agree with each other; the ``integrity`` hashes of ``scores`` and ``leakage`` recomputed;
   the training rows re-hashed from the artifact store when it holds them; and the leakage
   recomputed from the per-question scores with ``benchmark.core.stats``, within a tolerance;
4. ``summary.json``: its seed-pooled leakage recomputed from the cells it lists.

Artifacts written before a field existed get a *warning* naming what they predate, never a silent
pass: "no integrity block (artifact predates integrity hashes)".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.core.results import ADDED_LATER, SCHEMA, leakage_block, pooled_leakage
from benchmark.core.store import stable_hash
from benchmark.run.cell import equalise
from benchmark.run.submission import Submission, load_submission
from benchmark.run.suite import cost_summary
from defenses import load_defense

REQUIRED = ("schema", "config", "defense", "run_info", "data", "scores", "leakage")
ARM_FIELDS = ("generated", "after_defense", "trained_on")
NEW_ARM_FIELDS = ("rows_kept_share", "defense_cost", "examples")
REL_TOL, ABS_TOL = 1e-6, 1e-9


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


def _plugin(sub: Submission, report: Report) -> dict[str, Any] | None:
    try:
        d = load_defense(sub.defense_ref(), sub.params)
    except Exception as e:  # noqa: BLE001 - any load failure is a problem to report, not a crash
        report.problems.append(f"the defense does not load: {type(e).__name__}: {e}")
        return None
    desc = d.describe()
    report.notes.append(f"defense {desc['name']!r} v{desc['version']} loads ({sub.kind})")
    return desc


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
    if art["config"].get("defense_params", {}) != sub.params:
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
        stored = (art["defense"].get("source") or {}).get("sha256")
        if plugin["source"].get("sha256") and stored != plugin["source"]["sha256"]:
            problems.append(f"{where}: the defense code changed since these results were produced")
    return problems


def _check_data(art: dict[str, Any], where: str, report: Report) -> None:
    for arm in ("trait", "control"):
        d = art["data"].get(arm)
        if not isinstance(d, dict) or any(k not in d for k in ARM_FIELDS):
            report.problems.append(f"{where}: data.{arm} is missing or lacks {ARM_FIELDS}")
            continue
        if missing := [k for k in NEW_ARM_FIELDS if k not in d]:
            report.warnings.append(f"{where}: data.{arm} has no {missing} (artifact predates them)")
        if "rows_kept_share" in d and d["generated"]:
            share = d["after_defense"] / d["generated"]
            if not math.isclose(d["rows_kept_share"], share, abs_tol=1e-12):
                report.problems.append(f"{where}: data.{arm}.rows_kept_share != after/generated")
        if d["trained_on"] > d["after_defense"]:
            report.problems.append(
                f"{where}: data.{arm} trained on more rows than the defense kept"
            )


def _check_integrity(art: dict[str, Any], where: str, report: Report, store: Any) -> None:
    integ = art.get("integrity")
    if not isinstance(integ, dict):
        report.warnings.append(f"{where}: no integrity block (artifact predates integrity hashes)")
        return
    for block in ("scores", "leakage"):
        if integ.get(block) != stable_hash(art[block]):
            report.problems.append(f"{where}: the {block} block does not match its integrity hash")
    keys = [art["data"].get(arm, {}).get("defended_key") for arm in ("trait", "control")]
    if store is None or not all(k and store.has("defended", k) for k in keys):
        report.notes.append(f"{where}: training rows not re-hashed (no store entry for them)")
        return
    trait, control = (store.read_rows("defended", k) for k in keys)
    arms = equalise(trait, control, art["config"]["max_train_rows"])
    device = str(art.get("run_info", {}).get("device") or "")
    for arm, rows in zip(("trait", "control"), arms, strict=True):
        if integ.get("training_rows", {}).get(arm) == stable_hash(rows):
            continue
        if device.startswith("cuda"):
            # GPU artifacts written before stage keys named the hardware (models.hardware_spec)
            # share their keys with CPU runs of the same config, whose rows differ: this store's
            # rows may be another machine's run of this cell.
            report.warnings.append(
                f"{where}: {arm} training rows differ from this store's entry for the same key; "
                f"the artifact ran on {device}, so the store's rows may come from other hardware "
                "(not verified)"
            )
        else:
            report.problems.append(f"{where}: {arm} training rows do not match their hash")


def _check_leakage(art: dict[str, Any], where: str, report: Report) -> None:
    evals = {name: {"per_question": rows} for name, rows in art["scores"].items()}
    for metric, stored in art["leakage"].items():
        try:
            cfg = art["config"]
            placebo = (cfg.get("teacher") or {}).get("placebo")
            fresh = leakage_block(evals, metric, cfg.get("trait"), placebo)
        except (KeyError, ValueError, TypeError) as e:
            report.problems.append(f"{where}: leakage.{metric} cannot be recomputed: {e}")
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
    where = str(path)
    try:
        art = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        report.problems.append(f"{where}: unreadable JSON: {e}")
        return None
    if missing := [k for k in REQUIRED if k not in art]:
        report.problems.append(f"{where}: missing required fields {missing}")
        return None
    if art["schema"] != SCHEMA:
        report.problems.append(f"{where}: schema {art['schema']!r}, expected {SCHEMA!r}")
    report.problems += _check_defense(art, sub, plugin, where)
    _check_data(art, where, report)
    _check_integrity(art, where, report, store)
    _check_leakage(art, where, report)
    return art


def _check_summary(path: Path, arts: dict[str, dict], report: Report) -> None:
    summary = json.loads(path.read_text(encoding="utf-8"))
    for err in summary.get("errors", []):
        report.warnings.append(f"{path}: cell {err.get('cell')} failed: {err.get('error')}")
    for cell in summary.get("cells", []):
        if cell not in arts:
            report.problems.append(f"{path}: lists cell {cell!r}, whose artifact is missing")
    for p in summary.get("pooled", []):
        cells = [
            a
            for name, a in arts.items()
            if name in summary.get("cells", [])
            and (a["config"]["task"], a["config"]["defense"], a["config"]["trait"])
            == (p["task"], p["defense"], p["trait"])
        ]
        fresh = pooled_leakage(cells) if len(cells) > 1 else {}
        _added_later(p["leakage"], fresh, f"{path}: pooled {p['defense']}", report)
        report.problems += diff_numbers(p["leakage"], fresh, f"{path}: pooled {p['defense']}")
        if "cost" in p and len(cells) > 1:
            report.problems += diff_numbers(p["cost"], cost_summary(cells), f"{path}: cost")


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
        for path in sorted(suite_dir.glob("*.json")):
            if path.name != "summary.json":
                if (art := validate_artifact(path, sub, plugin, report, store)) is not None:
                    arts[path.stem] = art
        if not arts:
            report.problems.append(f"{suite_dir}: no result artifacts")
        if (suite_dir / "summary.json").is_file():
            _check_summary(suite_dir / "summary.json", arts, report)
        report.notes.append(f"{suite_dir}: {len(arts)} artifact(s) checked")
    return report
