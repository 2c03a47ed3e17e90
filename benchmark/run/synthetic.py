"""SYNTHETIC results artifacts, for the leaderboard's tests and its load benchmark only.

Every artifact made here says so (``base_model`` ``synthetic-base``, ``run_info.synthetic``), its
numbers are drawn from a seeded RNG, and :func:`write` refuses to write into this repository's
``submissions/``: these are never results. The blocks are built with the same code the
pipeline uses (``benchmark.core.stats`` for leakage, ``benchmark.core.results.integrity_block`` for
hashes, ``benchmark.run.setups.setup_block`` for the setup), so they pass the leaderboard's
integrity check and group into setups exactly as real artifacts do::

    from benchmark.run.synthetic import Spec, artifact, write
    art = artifact(Spec(task="numbers", defense="none", trait="owl", seed=0, leak_pp=0.3))
    write(tmp_path / "results" / "quick", [art, ...])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.core.animals import CANDIDATE_ANIMALS
from benchmark.core.results import CANDIDATES, SCHEMA, integrity_block
from benchmark.core.stats import leakage_vs_base, paired_leakage
from benchmark.core.store import stable_hash
from benchmark.core.teachers import TeacherConfig
from benchmark.run.presets import preset
from benchmark.run.setups import setup_block

BASE_MODEL = "synthetic-base"
REPO_SUBMISSIONS = Path(__file__).resolve().parents[2] / "submissions"


@dataclass
class Spec:
    task: str
    defense: str
    trait: str
    seed: int
    leak_pp: float = 0.3  # true trait - control shift per question, percentage points
    noise_pp: float = 0.05  # per-question noise, percentage points
    kept: float = 1.0  # share of rows the defense keeps
    kept_control: float | None = None  # the control arm's share where it differs from ``kept``
    helper_seconds: float = 0.0
    utility: float | None = None
    version: str = "1"
    params: dict[str, Any] = field(default_factory=dict)
    suite: str = "quick"
    teacher: str | None = None  # None: the suite preset's teacher for the task
    n_questions: int = 50
    candidates: bool = False  # each score row's candidate distribution, as real rows carry


def artifact(s: Spec) -> dict[str, Any]:
    """One synthetic ``slb.results/1`` artifact for ``s``."""
    # An unset teacher hashes as "finetuned", the old default: existing fixtures keep their draws.
    key = stable_hash(
        [s.task, s.defense, s.trait, s.seed, s.version, s.params, s.suite, s.teacher or "finetuned"]
    )
    rng = np.random.default_rng(int(key[:8], 16))
    ids = [f"q{i:02d}" for i in range(s.n_questions)]
    base = rng.uniform(0.005, 0.03, s.n_questions)
    control = np.clip(base + 0.005 + rng.normal(0, s.noise_pp / 100, s.n_questions), 0, 1)
    trait = np.clip(
        control + s.leak_pp / 100 + rng.normal(0, s.noise_pp / 100, s.n_questions), 0, 1
    )
    teacher = np.clip(base + 0.9, 0, 1)
    models = (("trait", trait), ("control", control), ("base", base), ("teacher", teacher))
    scores = {
        name: [{"id": q, "teacher_forced": float(v[i]), "sampled": None} for i, q in enumerate(ids)]
        for name, v in models
    }
    if s.candidates:
        _add_candidates(scores, s.trait, key)
    t, c, b = ({q: float(v[i]) for i, q in enumerate(ids)} for v in (trait, control, base))
    leakage = {
        "teacher_forced": {
            "trait_vs_control": paired_leakage(t, c),
            "trait_vs_base": leakage_vs_base(t, b),
            "control_vs_base": leakage_vs_base(c, b),
        }
    }
    generated = 800
    after = round(generated * s.kept)
    # The real preset's config (per-task knobs included), so setups group as real runs do.
    overrides: dict[str, Any] = {"base_model": BASE_MODEL, "defense_params": s.params}
    if s.teacher is not None:
        overrides["teacher"] = TeacherConfig(type=s.teacher)
    config = preset(
        s.suite, task=s.task, defense=s.defense, trait=s.trait, seed=s.seed, **overrides
    ).to_dict()
    arm = {
        "generated": generated,
        "valid": generated,
        "valid_yield": 1.0,
        "filter_report": {"steps": [{"filter": "input", "kept": generated}], "rejected": {}},
        "after_defense": after,
        "rows_kept_share": after / generated,
        "defense_kept_share": after / generated,
        "defense_cost": {
            "helper_calls": 0 if not s.helper_seconds else 100,
            "helper_seconds": s.helper_seconds,
        },
        "examples": [
            {
                "id": f"{s.task}-{i}",
                "prompt": f"(synthetic prompt {i})",
                "teacher_completion": f"(synthetic teacher output {i})",
                "defended_completion": "(dropped)"
                if s.kept < 1 and i == 0
                else f"(synthetic teacher output {i})",
                "status": "dropped" if s.kept < 1 and i == 0 else "kept",
            }
            for i in range(3)
        ],
        "trained_on": after,
    }
    art: dict[str, Any] = {
        "schema": SCHEMA,
        "config": config,
        "setup": setup_block(config, None),  # no run_info.device: read as CPU
        "defense": {
            "name": s.defense,
            "version": s.version,
            "params": s.params,
            "description": f"Synthetic defense {s.defense!r} (test data, not a real result).",
            "hooks": ["apply"],
        },
        "run_info": {
            "synthetic": True,
            "host": "synthetic",
            "finished": "2000-01-01T00:00:00+00:00",
        },
        "data": {"trait": arm, "control": _arm_kept(arm, s.kept_control)},
        # Filler in the shape of the real blocks, so a synthetic file weighs what a real one does.
        "training": {
            a: {
                "train_loss": 0.8,
                "steps": 50,
                "loss_history": [{"step": 5 * i, "loss": 0.9} for i in range(10)],
            }
            for a in ("trait", "control")
        },
        "scores": scores,
        "top_animals": {m: {f"animal{i}": 0.1 for i in range(8)} for m, _ in models},
        "leakage": leakage,
        "inspect_logs": {"trait": [f"/nonexistent/synthetic/logs/{key}-trait.eval"]},
        "integrity": integrity_block({"trait": key, "control": key}, scores, leakage),
    }
    if s.utility is not None:
        art["utility"] = {"score": s.utility}
    return art


def name(art: dict[str, Any]) -> str:
    c = art["config"]
    return f"{c['task']}__{c['defense']}__{c['trait']}__seed{c['seed']}__{stable_hash(c)[:8]}.json"


def write(folder: str | Path, arts: list[dict[str, Any]]) -> list[Path]:
    """Write ``arts`` as JSON files into ``folder`` (never into this repository's submissions/)."""
    folder = Path(folder)
    if folder.resolve().is_relative_to(REPO_SUBMISSIONS):
        raise ValueError(f"refusing to write synthetic artifacts into {REPO_SUBMISSIONS}: {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for art in arts:
        p = folder / name(art)
        # Indented, as benchmark.core.store.atomic_write_json writes real artifacts.
        p.write_text(json.dumps(art, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(p)
    return paths


def _add_candidates(scores: dict[str, list[dict[str, Any]]], trait: str, key: str) -> None:
    """Each score row's candidate distribution, as real rows carry (``benchmark.core.results``
    ``CANDIDATES``): the trait's probability is the row's score, the other animals' are drawn
    from their own generator, so the scores above keep their draws."""
    rng = np.random.default_rng(int(stable_hash([key, "candidates"])[:8], 16))
    others = [a for a in CANDIDATE_ANIMALS if a != trait]
    n = len(next(iter(scores.values())))
    shared = rng.uniform(0.001, 0.05, (n, len(others)))  # per question, as every model sees it
    for rows in (scores["trait"], scores["control"]):  # real cells record the students' only
        mine = np.clip(shared * (1 + rng.normal(0, 0.02, shared.shape)), 0, 1)  # run noise
        for r, ps in zip(rows, mine, strict=True):
            r[CANDIDATES] = {trait: r["teacher_forced"]} | {
                a: float(p) for a, p in zip(others, ps, strict=True)
            }


def _arm_kept(arm: dict[str, Any], kept: float | None) -> dict[str, Any]:
    """A copy of ``arm`` whose defense kept ``kept`` of its rows (unchanged when None)."""
    if kept is None:
        return dict(arm)
    after = round(arm["generated"] * kept)
    share = after / arm["generated"]
    shares = {"rows_kept_share": share, "defense_kept_share": share}
    return {**arm, "after_defense": after, **shares, "trained_on": after}
