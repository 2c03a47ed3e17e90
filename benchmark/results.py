"""The versioned results artifact of one cell (what the leaderboard reads).

Schema ``slb.results/1``: ``config`` (the full cell config), ``run_info`` (git commit, package
versions, host, timestamps, wall seconds per stage), ``data`` (rows generated / kept per filter /
after the defense, valid yield with a Wilson CI, per arm), ``training`` (per arm), ``scores``
(per-question scores of every evaluated model), ``leakage`` (trait vs control, and each student vs
the base, per metric: ``benchmark.stats.paired_leakage``) and ``inspect_logs``.
"""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from benchmark.stats import leakage_vs_base, paired_leakage, rate_ci

SCHEMA = "slb.results/1"
PACKAGES = (
    "subliminal-bench",
    "torch",
    "transformers",
    "peft",
    "trl",
    "datasets",
    "inspect-ai",
    "vllm",
)


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return (
            out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
            if out.returncode == 0
            else None
        )
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for p in PACKAGES:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    return out


def scores_by_question(ev: dict[str, Any], metric: str) -> dict[str, float]:
    return {r["id"]: r[metric] for r in ev["per_question"] if r.get(metric) is not None}


def leakage_block(evals: dict[str, Any], metric: str) -> dict[str, Any] | None:
    t, c = scores_by_question(evals["trait"], metric), scores_by_question(evals["control"], metric)
    if not t:
        return None
    block: dict[str, Any] = {"trait_vs_control": paired_leakage(t, c)}
    if "base" in evals:
        b = scores_by_question(evals["base"], metric)
        block["trait_vs_base"] = leakage_vs_base(t, b)
        block["control_vs_base"] = leakage_vs_base(c, b)
    return block


def build_results(
    cfg: Any,
    cell: Any,
    data: dict[str, Any],
    students: dict[str, Any],
    evals: dict[str, Any],
    wall: float,
) -> dict[str, Any]:
    arms = {}
    for arm, d in data.items():
        first = d["report"]["steps"][1]["kept"] if len(d["report"]["steps"]) > 1 else d["kept"]
        arms[arm] = {
            "generated": d["raw"],
            "valid": first,
            "valid_yield": first / d["raw"] if d["raw"] else 0.0,
            "valid_yield_ci": list(rate_ci(first, d["raw"])) if d["raw"] else None,
            "filter_report": d["report"],
            "after_defense": len(d["defended"]),
            "defense_cost": d["defense_meta"].get("cost", {}),
            "trained_on": students[arm]["rows"],
        }
    metrics = {m: leakage_block(evals, m) for m in ("teacher_forced", "sampled")}
    return {
        "schema": SCHEMA,
        "config": cfg.to_dict(),
        "defense": cell.defense.describe(),
        "run_info": {
            "git_commit": git_commit(),
            "packages": package_versions(),
            "python": platform.python_version(),
            "host": platform.node(),
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(),
            "wall_seconds": round(wall, 2),
            "stage_seconds": cell.timer.seconds,
            "stages_reused": cell.timer.reused,
        },
        "data": arms,
        "training": {arm: s["training"] for arm, s in students.items()},
        "scores": {name: ev["per_question"] for name, ev in evals.items()},
        "top_animals": {name: ev["top_animals"] for name, ev in evals.items()},
        "leakage": {m: b for m, b in metrics.items() if b is not None},
        "inspect_logs": {name: ev["logs"] for name, ev in evals.items()},
    }
