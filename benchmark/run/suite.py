"""Suites: named sets of cells, run in sequence, with leakage pooled over seeds.

``quick`` is the CPU suite on the embedded SmolLM2-135M; ``paper`` is the paper-scale preset for
GPUs. A suite writes one results JSON per cell plus ``summary.json`` pooling each
(task, defense, trait) over its seeds: per question the trait-minus-control difference is averaged
over seeds, the CI is over questions, and the per-seed differences are reported beside it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from pathlib import Path
from typing import Any

from benchmark.core import multi_trait
from benchmark.core.results import SPECIFICITY, VERDICT, pooled_leakage, write_artifact
from benchmark.core.setup_keys import seed_order, without_seeds
from benchmark.core.store import atomic_write_json, stable_hash
from benchmark.core.train_env import check_training_env
from benchmark.run.cell import prepare_teacher, run_cell
from benchmark.run.config import CellConfig
from benchmark.run.executors import Executor, LocalExecutor, cell_needs_gpu, distinct
from benchmark.run.names import check, check_animal, unknown
from benchmark.run.presets import SUITES, preset
from tasks.base import known_tasks

log = logging.getLogger(__name__)

METRICS = ("teacher_forced", "sampled")
CELL_COORDINATES = ("task", "defense", "trait", "seed")


def cell_name(cfg: CellConfig) -> str:
    """Readable and unique: two configs that differ in any knob (teacher type, sizes) never share
    a results file."""

    tag = stable_hash(cfg.to_dict())[:8]
    return f"{cfg.task}__{defense_label(cfg.defense)}__{cfg.trait.replace(' ', '-')}__seed{cfg.seed}__{tag}"


def defense_label(ref: str) -> str:
    """A file-name-safe label for a defense reference (``dir/file.py:Class`` → ``file.Class``)."""
    if m := re.match(r"^(.+)\.py:([A-Za-z_]\w*)$", ref):
        ref = f"{Path(m[1]).name}.{m[2]}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", ref)


def _fmt(block: dict[str, Any]) -> str:
    if block.get("reference") == "own animal":
        return _fmt_own(block)
    lo, hi = block["ci_pp"]
    s = (
        f"{block['diff_pp']:+.2f} pp [95% CI {lo:+.2f}, {hi:+.2f}], p={block['p_value']:.3g}; "
        f"log-odds {block['log_odds_diff']:+.3f} (p={block['log_odds_p_value']:.3g}); "
        f"trait {block['trait_mean_pp']:.2f}% vs {block.get('reference', 'control')} "
        f"{block['control_mean_pp']:.2f}%"
    )
    if block.get("seed_level"):
        s += f"; per seed {', '.join(f'{d:+.2f}' for d in block['per_seed'])}"
    return s + _verdict(block)


def _fmt_own(block: dict[str, Any]) -> str:
    lo, hi = block["log_odds_ci"]
    comp = block["components"]
    s = (
        f"log-odds {block['log_odds_diff']:+.3f} [95% CI {lo:+.3f}, {hi:+.3f}], "
        f"p={block['log_odds_p_value']:.3g} (trait animal {comp['trait_animal_log_odds']:+.3f}, "
        f"placebo animal {comp['placebo_animal_log_odds']:+.3f}); {block['diff_pp']:+.2f} pp"
    )
    if block.get("seed_level"):
        lvl = block["seed_level"]
        s += (
            f"; per seed {', '.join(f'{d:+.3f}' for d in block['per_seed_log_odds'])} "
            f"(over seeds p={lvl['p_value']:.3g})"
        )
    return s + _verdict(block)


def _verdict(block: dict[str, Any]) -> str:
    """The test's verdict; for one run it says what the test leaves out. Its p-value is over
    questions, so two students trained on unrelated random numbers can differ "significantly"
    (the canonicalize-resample cell: own animal -0.061, p=3e-10): run-to-run noise is measured
    only across seeds."""
    if not block["significant"]:
        return " — not significant"
    if block.get("n_seeds", 1) < 2:
        return " — significant over questions (one run: run-to-run noise not in this test)"
    return " — significant"


def print_leakage(name: str, leakage: dict[str, Any]) -> None:
    for metric, b in leakage.items():
        if b:
            print(f"{name} [{metric}] trait vs control: {_fmt(b['trait_vs_control'])}")
            if "placebo_control_vs_trait" in b:
                print(
                    f"{name} [{metric}] placebo animal, placebo-taught vs trait student: "
                    f"{_fmt(b['placebo_control_vs_trait'])}"
                )
            if "own_animal" in b:
                print(f"{name} [{metric}] own animal (mean of both): {_fmt(b['own_animal'])}")
            if VERDICT in b:
                print(f"{name} [{metric}] {b[VERDICT]['says']}")


def cost_summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """What the defense cost over these cells: rows kept per arm, helper and wall seconds."""
    out: dict[str, Any] = {}
    for arm in ("trait", "control"):
        shares = [r["data"][arm].get("rows_kept_share") for r in results]
        if all(s is not None for s in shares):
            out[f"{arm}_rows_kept_share"] = sum(shares) / len(shares)
    costs = [
        r["data"][arm].get("defense_cost", {}) for r in results for arm in ("trait", "control")
    ]
    for k in ("helper_seconds", "wall_seconds"):
        out[f"defense_{k}"] = round(sum(c.get(k) or 0 for c in costs), 3)
    return out


def print_cost(name: str, results: list[dict[str, Any]]) -> None:
    c = cost_summary(results)
    kept = ", ".join(
        f"{a} {c[f'{a}_rows_kept_share']:.1%}"
        for a in ("trait", "control")
        if f"{a}_rows_kept_share" in c
    )
    print(
        f"{name} cost: rows kept {kept or 'n/a'}; defense {c['defense_wall_seconds']:.1f} s "
        f"(helper models {c['defense_helper_seconds']:.1f} s)"
    )


def run_suite(
    name: str,
    store: Any,
    results_dir: Path,
    seeds: list[int] | None = None,
    traits: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    defenses: list[str] | None = None,
    tasks: list[str] | None = None,
    settings: list[str] | None = None,
    executor: Executor | None = None,
    record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run every (task, defense, trait, seed) cell of suite ``name`` (or of the given ``tasks`` /
    ``defenses`` / ``traits`` / ``seeds`` instead of the suite's) into ``results_dir/name/``;
    ``overrides`` replace top-level config fields, then ``settings`` (``key.path=value``, see
    :func:`benchmark.run.config.apply_settings`) apply to each cell's preset config. Cells run on
    ``executor`` (default: in this process, in order; see ``benchmark.run.executors``). A failed cell
    is recorded in ``summary.json`` ``errors`` (with the stage, hook and arm when a defense
    failed) and the others still run; finished stages stay in the store. ``record`` joins
    ``summary.json`` as it is (e.g. ``blind_traits``, ``benchmark.run.blind``)."""
    if name not in SUITES:
        raise unknown("suite", name, sorted(SUITES))
    check_training_env()
    spec = SUITES[name]
    for task in tasks or ():
        check("task", task, known_tasks())
    traits = [check_animal("trait", t) for t in traits] if traits else None
    seeds = seeds if seeds is not None else spec["seeds"]
    traits = traits or spec["traits"]
    executor = executor or LocalExecutor()
    out_dir = Path(results_dir) / name
    groups = [
        (task, defense, trait)
        for task in tasks or spec["tasks"]
        for defense in defenses or spec["defenses"]
        for trait in traits
    ]
    cfgs = [
        preset(
            name,
            task=task,
            defense=defense,
            trait=trait,
            seed=seed,
            settings=settings or (),
            **(overrides or {}),
        )
        for task, defense, trait in groups
        for seed in seeds
    ]
    needs_gpu = [cell_needs_gpu(c) for c in cfgs]
    # The trait teachers first, once each: every cell of a trait needs its teacher, and parallel
    # cells would otherwise all train the same one. A failure here resurfaces in the cells.
    teachers = distinct(range(len(cfgs)), key=lambda i: stable_hash(_teacher_identity(cfgs[i])))
    prep = functools.partial(prepare_teacher, store=store, log_dir=out_dir / "logs")
    for o in executor.map(prep, [cfgs[i] for i in teachers], [needs_gpu[i] for i in teachers]):
        if o.error is not None:
            log.warning("trait teacher for %s failed: %s", cell_name(o.item), o.error)
    summary: dict[str, Any] = {"suite": name, **(record or {}), "cells": [], "pooled": []}
    summary["errors"] = []
    finished: dict[str, dict[str, Any]] = {}
    run = functools.partial(run_cell, store=store, log_dir=out_dir / "logs")
    for o in executor.map(run, cfgs, needs_gpu):
        cname = cell_name(o.item)
        if o.error is not None:
            e = o.error
            record = e.record() if hasattr(e, "record") else {}
            summary["errors"].append({"cell": cname, "error": f"{type(e).__name__}: {e}", **record})
            print(f"{cname}: FAILED: {type(e).__name__}: {e}")
            continue
        write_artifact(out_dir / f"{cname}.json", o.result)
        finished[cname] = o.result
        print_leakage(cname, o.result["leakage"])
        print_cost(cname, [o.result])
    for task, defense, trait in groups:  # suite order, whatever order the cells finished in
        names = [
            cell_name(c) for c in cfgs if (c.task, c.defense, c.trait) == (task, defense, trait)
        ]
        summary["cells"] += [n for n in names if n in finished]
        done = [finished[n] for n in names if n in finished]
        if len(done) > 1:
            summary["pooled"].append(_pooled_entry(task, defense, trait, done))
    _add_multi(summary, list(finished.values()))
    atomic_write_json(out_dir / "summary.json", summary)
    print(f"summary: {out_dir / 'summary.json'}")
    if spec.get("note"):
        print(spec["note"])
    print(f"leaderboard: slb leaderboard {results_dir}")
    return summary


def _pooled_entry(
    task: str, defense: str, trait: str, done: list[dict[str, Any]]
) -> dict[str, Any]:
    """The pool of the finished cells ``done``; its ``seeds`` are theirs (a failed cell's seed is
    not one), in the order of its per-seed lists (:func:`seed_order`)."""
    seeds = sorted((r["config"]["seed"] for r in done), key=seed_order)
    pooled = pooled_leakage(done)
    for metric, b in pooled.items():
        if metric in (SPECIFICITY, VERDICT):
            continue
        print(f"{task}/{defense}/{trait} pooled over seeds {seeds} [{metric}]: {_fmt(b)}")
    if VERDICT in pooled:
        print(f"{task}/{defense}/{trait} pooled over seeds {seeds}: {pooled[VERDICT]['says']}")
    return {
        "task": task,
        "defense": defense,
        "trait": trait,
        POOL_KEY: pool_key(done[0]["config"]),  # `slb validate` ties the entry to its cells
        "seeds": seeds,
        "leakage": pooled,
        "cost": cost_summary(done),
    }


POOL_KEY = "pool_key"  # a pooled entry's: the pool_key of the cells it pools


def pool_key(cfg: Any) -> str:
    """Cells pool together when their configs differ only in their seeds: this key is equal."""
    return stable_hash(without_seeds(cfg))


def pool_results(out_dir: Path) -> dict[str, Any]:
    """Rewrite ``out_dir/summary.json`` from every cell results file in ``out_dir``: cells whose
    configs differ only in their seeds pool together (each invocation of ``slb suite`` or ``slb
    submit`` pools only its own seeds, so seeds run at different times or on different machines
    into one folder are pooled here). Errors recorded for cells that still have no results file
    are kept. A file that is not a cell result is a ValueError naming it; nothing is written."""
    out_dir = Path(out_dir)
    files = sorted(p for p in out_dir.glob("*.json") if p.name != "summary.json")
    if not files:
        raise ValueError(f"no cell results (*.json besides summary.json) in {out_dir}")
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    bad = []
    for f in files:
        try:
            r = json.loads(f.read_text())
        except (OSError, ValueError) as e:
            bad.append(f"{f.name}: unreadable ({type(e).__name__}: {e})")
            continue
        cfg = r.get("config") if isinstance(r, dict) else None
        missing = [k for k in CELL_COORDINATES if not isinstance(cfg, dict) or k not in cfg]
        if missing or not isinstance(r.get("scores"), dict):
            bad.append(f"{f.name}: not a cell result (no config {', '.join(missing) or 'scores'})")
            continue
        groups.setdefault(pool_key(cfg), []).append((f.stem, r))
    if bad:
        raise ValueError(f"cannot pool {out_dir}:\n  " + "\n  ".join(bad))
    old: dict[str, Any] = {}
    if (out_dir / "summary.json").is_file():
        try:
            old = json.loads((out_dir / "summary.json").read_text())
        except ValueError:
            log.warning("%s/summary.json is not JSON; its errors are not carried over", out_dir)
    names = {name for g in groups.values() for name, _ in g}
    suites = sorted({str(r["config"].get("suite")) for g in groups.values() for _, r in g})
    summary: dict[str, Any] = {
        "suite": suites[0] if len(suites) == 1 else suites,
        "cells": [],
        "pooled": [],
        "errors": [e for e in old.get("errors", []) if e.get("cell") not in names],
    }
    for g in sorted(groups.values(), key=lambda g: min(name for name, _ in g)):
        g.sort(key=lambda nr: seed_order(nr[1]["config"]["seed"]))
        summary["cells"] += [name for name, _ in g]
        if len(g) > 1:
            cfg = g[0][1]["config"]
            done = [r for _, r in g]
            summary["pooled"].append(_pooled_entry(cfg["task"], cfg["defense"], cfg["trait"], done))
    _add_multi(summary, [r for g in groups.values() for _, r in g])
    atomic_write_json(out_dir / "summary.json", summary)
    print(f"summary: {out_dir / 'summary.json'} ({len(files)} cells, {len(groups)} setups)")
    return summary


def _add_multi(summary: dict[str, Any], arts: list[dict[str, Any]]) -> None:
    """``summary["multi_animal"]`` where cells of several traits share a control arm (printed)."""
    if (multi := multi_trait.summary_block(arts))["runs"]:
        summary[multi_trait.MULTI] = multi
        print("\n".join(multi_trait.describe(multi)))


def _teacher_identity(cfg: CellConfig) -> dict[str, Any]:
    """What decides a cell's trait (and placebo) teacher (over-complete: a defense may change the
    teacher)."""
    return {
        "base": cfg.base_model,
        "trait": cfg.trait,
        "teacher": cfg.teacher.for_cell(cfg.seed).to_dict(),
        "defense": cfg.defense,
        "defense_params": cfg.defense_params,
        "backend": cfg.backend,
    }
