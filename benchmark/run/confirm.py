"""``slb confirm docs/prereg/<name>.yaml``: run a pre-registered confirmation and judge it by the
rule its file fixed before any of its runs.

A pre-registration file fixes the cells (suite preset, task, trait, ``--set`` settings), seeds
for the main runs and for the same-animal null (``benchmark.run.controls``), the primary
statistic, the test, alpha and the success rule::

    schema: slb.prereg/1
    name: greedy-numbers-256
    question: Does greedy decoding transmit owl to the student, specifically? (free text)
    suite: quick
    task: numbers
    trait: owl
    settings: [sampling.temperature=0, n_prompts=256]
    seeds: [100, 101, ...]          # main runs: defense none
    null_seeds: [200, 201, ...]     # the same cells with null_arm=true (a pair's null)
    statistic: own_animal           # leakage.teacher_forced.own_animal.log_odds_diff, per run
    test: t_and_sign_flip           # two-sided; p = max(t over runs, exact sign flip)
    alpha: 0.01
    specific_share: 0.9             # runs whose trait pair ranks in the top 5 % of animal pairs
    null_alpha: 0.05                # the null's p must stay at or above this
    null_margin: 0.25               # optional (>= 2 null seeds): the null's (1 - null_alpha)
                                    # t-interval must lie inside ±null_margin × the main mean
    purpose: confirm                # optional: confirm (the default) or screen

A file may name several ``traits: [owl, eagle, wolf]`` instead of ``trait`` with
``statistic: multi_animal``: a run is then a seed's cells, one per trait, sharing one control arm,
read together (``benchmark.core.multi_trait``; docs/methodology.md); its null runs are the same
cells with ``null_animal`` (every teacher carries the first trait), not ``null_arm``, and share
only the prompts and the students' seed with a main run at the same seed.

A setting may hold ``{seed}``, replaced by each run's seed: ``teacher.train.seed={seed}`` trains
a fresh pair of teachers per run, so teacher-to-teacher differences count as run noise (a null
with fixed teachers compares one pair of teachers in every run).

It passes when the main runs' mean is positive with p < ``alpha``, at least ``specific_share`` of
them are specific (``p_rank`` ≤ 0.05), and the null's p is ≥ ``null_alpha`` (and, with
``null_margin``, the null's interval lies inside ±``null_margin`` × the main mean: "not
significant" alone is easiest to meet with few, noisy null runs). Null seeds may repeat main seeds:
a null run then shares that main run's trait side (teacher, data, student), so the two are paired,
not independent. A file whose main test could never reach ``alpha`` (with ``t_and_sign_flip``,
2/2^n ≥ alpha) is refused. The verdict is decided early, as a fail, once no outcome of the runs
still to come can make the file pass: the specific share can no longer be reached even if every
main run still to come is specific, or every null run is made and the null is significant; ``slb
confirm`` then stops and lists the runs it did not make (``--all-runs`` makes them anyway, for the
estimates; a screen always makes them). A ``screen`` is the small run that picks what to confirm:
at least 3 seeds, null seeds optional, ``test: t`` allowed (the sign-flip test needs 6 runs), and
its verdict is "lead" or "no lead", never a pass. A ``calibrate`` file runs the same-animal null
alone (``seeds: []``, at least 6 null seeds, ``t_and_sign_flip``, no ``alpha`` or
``specific_share``): its verdict is "null holds" (p ≥ ``null_alpha``) or "null fails", so a
pipeline's false-positive rate can be checked, or a null's drift followed up, without main runs; it
always makes all its runs. The file must be committed and unchanged in the working tree, so the
report can name the commit that fixed it (``--unregistered`` runs an uncommitted file for trying it
out; its report says so and it can never pass; a file edited after some of its runs cannot pass
either: each run records the sha256 of the file it ran under, and the report lists the runs made
under another version). Cells are written to ``<results>/confirm/<name>/`` one by one, main and
null seeds interleaved, so a stopped run keeps every finished cell and resumes from the store; the
report (``report.json``) lists every run, including failures. Each run prints its place (``[k/N]``)
and, once this process has made one, the time left at its pace.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from benchmark.core import multi_trait
from benchmark.core.models import cache_root
from benchmark.core.results import (
    ALPHA,
    CONFIRMATION_REPORT,
    CONFIRMATION_SCHEMA,
    SPECIFICITY,
    write_artifact,
)
from benchmark.core.stats.paired import paired_test
from benchmark.core.store import ArtifactStore, atomic_write_json
from benchmark.core.train_env import check_training_env
from benchmark.run.cell import prepare_teacher, run_cell
from benchmark.run.config import CellConfig
from benchmark.run.prereg import PURPOSES, STATISTICS, cells, load_prereg, registration
from benchmark.run.suite import cell_name
from benchmark.run.timer import Pace

PREREG_SHA = "prereg_sha256"  # run_info key: the sha256 of the file a confirmation run ran under


def _value(art: dict[str, Any], statistic: str) -> float:
    cur: Any = art
    for k in STATISTICS[statistic]:
        cur = cur[k]
    return float(cur)


def run_record(kind: str, cfg: CellConfig, art: dict[str, Any], path: Path, stat: str) -> dict:
    spec = art["leakage"]["teacher_forced"].get(SPECIFICITY) or {}
    return {
        "arm": kind,
        "seed": cfg.seed,
        "artifact": path.name,
        "value": _value(art, stat),
        "rank": spec.get("rank"),
        "n_pairs": (spec["n_alternatives"] + 1) if spec else None,
        "p_rank": spec.get("p_rank"),
        "specific": spec.get("p_rank") is not None and spec["p_rank"] <= ALPHA,
        "wall_seconds": art["run_info"].get("wall_seconds"),
        # The most memory a stage of the cell needed when computed (None: not measured).
        "peak_rss_gb": art["run_info"].get("peak_rss_gb"),
        "finished": art["run_info"].get("finished"),
        "prereg_sha256": art["run_info"].get(PREREG_SHA),
    }


def before_registration(runs: list[dict[str, Any]], reg: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs made under another version of the file: a file edited (and committed again)
    after some of its runs. A run made by ``slb confirm`` records the sha256 of the file it ran
    (``run_info.prereg_sha256``), which must be the file's now; a cell written before that was
    recorded is judged by time instead: it must have finished after the fixing commit's date
    (``fixed_at``, which a rebase or squash-merge moves: such old cells then read as early). A
    report with any such run is not registered and can never pass. A guard against a mistake, not
    against forged dates."""
    fixed = dt.datetime.fromisoformat(reg["fixed_at"]) if reg.get("fixed_at") else None
    early = []
    for r in runs:
        sha = r.get("prereg_sha256")
        if sha is not None:
            if sha != reg.get("sha256"):
                early.append({"arm": r["arm"], "seed": r["seed"], "why": "another file version"})
            continue
        try:
            done = dt.datetime.fromisoformat(str(r.get("finished")))
        except ValueError:  # not recorded (a failed run): nothing to compare
            continue
        if fixed is not None and done.tzinfo is not None and done < fixed:
            early.append({"arm": r["arm"], "seed": r["seed"], "why": f"finished {r['finished']}"})
    return early


def _over_runs(values: list[float], test: str, confidence: float = 0.95) -> dict[str, Any] | None:
    if not values:
        return None
    t = paired_test(values, confidence)
    return {**t, "p_sign_flip": None, "p": t["p_t"]} if test == "t" else t


def judge(prereg: dict[str, Any], runs: list[dict[str, Any]], registered: bool) -> dict[str, Any]:
    """The pre-registered rule over the finished runs (a run that failed counts as missing: the
    verdict is then "incomplete", never a pass). Decided early (``decided_early``) as a fail once
    the specific share cannot be reached even if every main run still to come is specific, or
    once every null run is made and the null check failed."""
    good, bad = PURPOSES[prereg.get("purpose", "confirm")]
    main = [r for r in runs if r["arm"] == "main" and "value" in r]
    null = [r for r in runs if r["arm"] == "null" and "value" in r]
    n_seeds = len(prereg["seeds"])
    complete = len(main) == n_seeds and len(null) == len(prereg["null_seeds"])
    m = _over_runs([r["value"] for r in main], prereg["test"])
    n = _over_runs([r["value"] for r in null], prereg["test"], 1 - prereg["null_alpha"])
    if prereg.get("purpose") == "calibrate":  # null runs only: the null check is the rule
        held = n is not None and (n["p"] is None or float(n["p"]) >= prereg["null_alpha"])
        verdict = (good if held and registered else bad) if complete else "incomplete"
        return {
            "verdict": verdict,
            "checks": {"null_not_significant": held},
            "main": None,
            "null": n,
            "specific_share": None,
            "n_main": 0,
            "n_null": len(null),
            "decided_early": False,
            "null_confidence": 1 - prereg["null_alpha"],
        }
    n_specific = sum(bool(r["specific"]) for r in main)
    share = n_specific / len(main) if main else 0.0
    reachable = n_specific + n_seeds - len(main)  # if every main run still to come is specific

    def pval(t: dict[str, Any] | None) -> float | None:
        return None if t is None or t["p"] is None else float(t["p"])

    positive = m is not None and pval(m) is not None and pval(m) < prereg["alpha"] and m["mean"] > 0
    checks = {
        "positive_over_runs": positive,
        "specific_in_enough_runs": share >= prereg["specific_share"],
    }
    if prereg["null_seeds"]:  # a screen may have none: then there is no null check
        checks["null_not_significant"] = n is not None and (
            pval(n) is None or pval(n) >= prereg["null_alpha"]
        )
    bound = None
    # An equivalence bound, which noise makes harder to meet, not easier. It is relative to the
    # main effect, so it exists only once the main mean is positive (else that check fails).
    if "null_margin" in prereg and m is not None and m["mean"] > 0:
        bound = prereg["null_margin"] * m["mean"]
        ci = None if n is None else n["ci"]
        checks["null_within_margin"] = ci is not None and -bound < ci[0] and ci[1] < bound
    passed = complete and registered and all(checks.values())
    # A fail is decided before the last run once no outcome of the runs still to come can make
    # the file pass: the specific share is out of reach, or every null run is made and the null
    # check (which depends on them alone) failed.
    out_of_reach = reachable / n_seeds < prereg["specific_share"]
    null_failed = len(null) == len(prereg["null_seeds"]) > 0 and not checks["null_not_significant"]
    early = not complete and (out_of_reach or null_failed)
    verdict = (good if passed else bad) if complete else (bad if early else "incomplete")
    out = {
        "verdict": verdict,
        "checks": checks,
        "main": m,
        "null": n,
        "specific_share": share,
        "n_main": len(main),
        "n_null": len(null),
        "decided_early": early,
    }
    if "null_margin" in prereg:  # the null's (1 - null_alpha) interval must lie inside ±this
        out["null_bound"] = bound
        out["null_confidence"] = 1 - prereg["null_alpha"]
    if early and out_of_reach:
        out["decided_by"] = (
            f"{n_specific} of {len(main)} main runs specific: at most {reachable} of {n_seeds} "
            "can be, and the rule needs "
            f"{prereg['specific_share']:.0%}"
        )
    elif early:
        out["decided_by"] = (
            f"all {len(null)} null runs made and the null is significant "
            f"(p={pval(n):.3g} < {prereg['null_alpha']}): no main run can change that"
        )
    return out


def confirm(
    path: Path,
    store: ArtifactStore,
    results: Path,
    allow_unregistered: bool = False,
    all_runs: bool = False,
):
    """Run (or resume) every cell of the pre-registration at ``path``; returns the report. A
    confirmation stops once its verdict is decided early (unless ``all_runs``), listing the runs
    not made; a screen always makes all its runs."""
    prereg = load_prereg(path)
    check_training_env()
    reg = registration(path, allow_unregistered)
    # A screen exists for its estimates and is small: it makes every run even once decided.
    run_all = all_runs or prereg["purpose"] in ("screen", "calibrate")
    out = Path(results) / "confirm" / prereg["name"]
    out.mkdir(parents=True, exist_ok=True)
    todo = cells(prereg)
    for kind in ("main", "null"):  # the teachers once, before the cells (each arm's kind)
        first = next((cfg for k, cfg in todo if k == kind), None)
        if first is not None:
            prepare_teacher(first, store, out / "logs")
    runs: list[dict[str, Any]] = []
    report_path = out / CONFIRMATION_REPORT
    not_run: list[dict[str, Any]] = []
    report = _report(prereg, reg, runs)
    # A run is one cell, or with ``traits`` a seed's cells (one per trait, listed in a row by
    # ``cells``), read together once all are made.
    per_run = len(prereg.get("traits") or [None])
    pace = Pace(len(todo) // per_run)
    for i in range(0, len(todo), per_run):
        kind, seed = todo[i][0], todo[i][1].seed
        made: list[tuple[CellConfig, dict[str, Any], Path]] = []
        fresh = False  # a cell of this run computed here, not read back
        try:
            for _, cfg in todo[i : i + per_run]:
                cell_path = out / f"{kind}__{cell_name(cfg)}.json"
                art = json.loads(cell_path.read_text()) if cell_path.is_file() else None
                if art is not None and art.get("config") != cfg.to_dict():
                    art = None
                if art is None and report["result"]["decided_early"] and not run_all:
                    break  # a run finished before still counts; this one is not made
                if art is None:
                    new, fresh = run_cell(cfg, store, out / "logs"), True
                    new["run_info"][PREREG_SHA] = reg["sha256"]  # the file it was made under
                    art = write_artifact(cell_path, new)
                made.append((cfg, art, cell_path))
            if len(made) < per_run:
                not_run.append({"arm": kind, "seed": seed})
                continue
            pace.made += fresh
            if per_run > 1:
                runs.append(multi_trait.multi_record(kind, made))
            else:
                runs.append(run_record(kind, *made[0], prereg["statistic"]))
        except Exception as e:  # noqa: BLE001 - every run is reported, the failed ones too
            runs.append({"arm": kind, "seed": seed, "error": f"{type(e).__name__}: {e}"})
        r = runs[-1]
        print(
            f"[{len(runs)}/{pace.total}] {kind} seed {seed}: "
            + (
                r["error"]
                if "error" in r
                else f"{r['value']:+.3f} ("
                + ("sampled" if r["rank"] is None else f"rank {r['rank']}")
                + f" of {r['n_pairs']}, p_rank={r['p_rank']:.3g}, {r['wall_seconds']:.0f} s)"
            )
            + pace.left(len(runs))
        )
        report = _report(prereg, reg, runs)
        atomic_write_json(report_path, report)
    if not_run:
        report["not_run"] = not_run
        print(
            f"decided early ({report['result']['decided_by']}): {len(not_run)} runs not made "
            "(--all-runs makes them)"
        )
        atomic_write_json(report_path, report)
    print(f"{prereg['name']}: {report['result']['verdict'].upper()} — {_says(report)}")
    print(f"report: {report_path}")
    return report


def _report(prereg: dict[str, Any], reg: dict[str, Any], runs: list[dict[str, Any]]) -> dict:
    early = before_registration(runs, reg)
    return {
        "schema": CONFIRMATION_SCHEMA,
        "prereg": prereg,
        "registration": {**reg, "runs_before_fixed": early},
        "runs": runs,
        "result": judge(prereg, runs, reg["registered"] and not early),
        "updated": dt.datetime.now(dt.timezone.utc).isoformat(),
    }


def _says(report: dict[str, Any]) -> str:
    res, pre = report["result"], report["prereg"]
    m, n = res["main"], res["null"]
    parts = []
    if m is not None:
        p = "n/a" if m["p"] is None else f"{m['p']:.3g}"
        parts.append(
            f"main mean {m['mean']:+.3f} over {res['n_main']} runs, p={p} (alpha {pre['alpha']})"
        )
    if res["specific_share"] is not None:  # None: a calibration (no main runs)
        parts.append(
            f"specific in {res['specific_share']:.0%} of runs (need {pre['specific_share']:.0%})"
        )
    if n is not None:
        p = "n/a" if n["p"] is None else f"{n['p']:.3g}"
        parts.append(f"null mean {n['mean']:+.3f} over {res['n_null']} runs, p={p}")
        if res.get("null_bound") is not None and n["ci"] is not None:
            lo, hi = n["ci"]
            parts.append(f"null interval [{lo:+.3f}, {hi:+.3f}] vs ±{res['null_bound']:.3f}")
    if res.get("decided_early"):
        parts.append(f"decided early: {res['decided_by']}")
    if not report["registration"]["registered"]:
        parts.append("UNREGISTERED: cannot pass")
    if early := report["registration"].get("runs_before_fixed"):
        parts.append(
            f"{len(early)} run(s) made under another version of the file (its last commit "
            f"{report['registration']['fixed_at']}): edited after its runs, cannot pass"
        )
    return "; ".join(parts)


def confirm_command(args: argparse.Namespace) -> int:
    """``slb confirm``: 0 when the confirmation ran (whatever its verdict), 2 on a bad file."""
    if args.check:
        prereg = load_prereg(Path(args.prereg))
        reg = registration(Path(args.prereg), allow_unregistered=True)
        state = "registered" if reg["registered"] else "NOT registered (uncommitted or edited)"
        print(f"{args.prereg}: valid; {state}; fixed at {reg['fixed_at_commit']}")
        for kind, cfg in cells(prereg):
            print(f"  {kind:4} {cell_name(cfg)}")
        return 0
    store = ArtifactStore(Path(args.store) if args.store else cache_root() / "store")
    confirm(Path(args.prereg), store, Path(args.results), args.unregistered, args.all_runs)
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``slb confirm PREREG`` on the CLI's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "confirm", help="run a pre-registered confirmation (docs/prereg/*.yaml) and judge it"
    )
    p.add_argument("prereg", help="the pre-registration file, committed before its runs")
    p.add_argument("--store", help="artifact store directory (default $SLB_CACHE_DIR/store)")
    p.add_argument("--results", default="results", help="results directory (default ./results)")
    p.add_argument(
        "--unregistered",
        action="store_true",
        help="allow an uncommitted or edited file (to try it out; the report can never pass)",
    )
    p.add_argument(
        "--check", action="store_true", help="check the file and list its runs; run nothing"
    )
    p.add_argument(
        "--all-runs",
        action="store_true",
        help="make every run even once the verdict is decided early (for the estimates)",
    )
    p.set_defaults(fn=confirm_command)
    return p
