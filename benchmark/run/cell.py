"""One benchmark cell, end to end: prompts → teachers → generation → task filter → defense →
students → Inspect evals → leakage statistics → a versioned results artifact.

``run_cell`` sequences the stages of ``benchmark.run.stages`` and returns the artifact
(``benchmark.core.results``); ``run_until`` stops after the data or the training stages (a
resumable partial run, for checks and for splitting work); ``prepare_teacher`` builds the teachers
that every cell of one trait shares. Each stage is stored under the hash of what determines it, so
a re-run reuses finished stages and a killed run resumes where it stopped.

The defense's hooks run here, once per cell: ``teacher()`` on the base's spec (it may swap the
teacher's base model, never see the trait), ``training()`` on the student config, and ``apply()``
inside the defense stage of each arm.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.core.models import device_info, resolve
from benchmark.core.results import build_results
from benchmark.core.store import ArtifactStore, stable_hash
from benchmark.core.train_env import check_training_env
from benchmark.core.training import TrainConfig
from benchmark.core.types import Row, TeacherSpec
from benchmark.run.config import CellConfig
from benchmark.run.controls import plant
from benchmark.run.setups import setup_block
from benchmark.run.stages import ARMS, Stages
from defenses import get_defense
from defenses.base import Defense
from defenses.runner import run_teacher, run_training

STOPS = ("data", "train")


@dataclass
class Partial:
    """What a run stopped early by ``run_until`` did."""

    stopped_after: str
    stage_seconds: dict[str, float]


def equalise(a: list[Row], b: list[Row], cap: int | None) -> tuple[list[Row], list[Row]]:
    """Cut both arms to the same size (≤ cap) so the arms differ only in content, not amount."""
    n = min(len(a), len(b), cap or 10**12)
    return sorted(a, key=lambda r: r["id"])[:n], sorted(b, key=lambda r: r["id"])[:n]


def teacher_spec(cfg: CellConfig, defense: Defense) -> TeacherSpec:
    """The teacher as the defense leaves it: it sees the base's identity, never the trait."""
    resolve(cfg.base_model)  # fail on a bad model name before any work is done
    return run_teacher(
        defense, TeacherSpec(model=cfg.base_model, sampling=cfg.sampling, backend=cfg.backend)
    )


def check_student_init(cfg: CellConfig, defense: Defense, ts: TeacherSpec) -> TrainConfig:
    """The student config a cell trains (after the defense's ``training()`` hook), refused before
    any stage where ``student_init=teacher`` names a start that does not exist: a defense that
    changes the student's adapter, or moves the teacher to another base."""
    student = run_training(defense, cfg.student)
    if cfg.student_init != "teacher":
        return student
    name = defense.display_name()
    if ts.model != cfg.base_model:
        raise ValueError(
            f"Invalid student_init=teacher with defense {name!r}: it moves the teacher to "
            f"{ts.model!r}, another base than the student's {cfg.base_model!r}, so no student "
            "can start from its adapter"
        )
    for arm in ARMS:
        try:
            cfg.student_for(arm, student)
        except ValueError as e:
            changed = student != cfg.student
            raise ValueError(
                f"{e}"
                + (f" (defense {name!r}'s training() hook changed the student)" if changed else "")
            ) from e
    return student


def prepare_teacher(cfg: CellConfig, store: ArtifactStore, log_dir: Path) -> str:
    """Build (or find) the cell's trait teacher and placebo teacher, the stage every cell of a trait
    shares; returns the trait teacher's model reference. Executors run this once per distinct
    teacher before the cells."""
    check_training_env()
    defense = get_defense(cfg.defense, **cfg.defense_params)
    ts = teacher_spec(cfg, defense)
    if cfg.student_init == "teacher":  # refused before the teachers train, not after
        check_student_init(cfg, defense, ts)
    stages = Stages(cfg, store, log_dir)
    if cfg.teacher.placebo is not None:
        stages.teacher("control", ts.model)
    return stages.teacher("trait", ts.model).model_ref


def _run(
    cfg: CellConfig, store: ArtifactStore, log_dir: Path, stop: str | None
) -> dict[str, Any] | Partial:
    t_start = time.perf_counter()
    check_training_env()
    defense = get_defense(cfg.defense, **cfg.defense_params)
    ts = teacher_spec(cfg, defense)
    student_cfg = check_student_init(cfg, defense, ts)
    st = Stages(cfg, store, log_dir)
    prompts = st.prompts()
    data: dict[str, Any] = {}
    # The arms run in an order drawn afresh each time, so a defense cannot tell them apart by
    # the order of its calls; every stage is keyed by its own inputs, so the order changes nothing.
    for arm in random.SystemRandom().sample(ARMS, len(ARMS)):
        raw, gen_key = st.generate(arm, prompts, st.teacher(arm, ts.model), ts)
        kept, report, filt_key = st.filter(arm, raw, gen_key)
        defended, dmeta, def_key = st.defend(arm, kept, filt_key, defense, ts)
        data[arm] = dict(
            raw=len(raw),
            kept=len(kept),
            report=report,
            filtered=kept,
            defended=defended,
            defense_meta=dmeta,
            key=def_key,
        )
    data = {arm: data[arm] for arm in ARMS}
    if stop == "data":
        return Partial("data", st.timer.seconds)
    rows = dict(
        zip(
            ARMS,
            equalise(data["trait"]["defended"], data["control"]["defended"], cfg.max_train_rows),
            strict=True,
        )
    )
    keys = {arm: data[arm]["key"] + f":{len(rows[arm])}" for arm in ARMS}
    if cfg.planted_share:  # the positive control (benchmark.run.controls)
        rows["trait"], n = plant(rows["trait"], cfg.trait, cfg.planted_share, cfg.seed)
        data["trait"]["planted"] = n
        keys["trait"] += f":planted={n}"
    for arm in ARMS:  # the soft-label channel: the teacher scores the final rows
        rows[arm], key, how = st.labels(arm, rows[arm], keys[arm], ts, student_cfg)
        if how is not None:
            data[arm]["labels"] = how
        if key != keys[arm]:  # the labelled rows' store entry: what ``slb validate`` re-hashes
            data[arm]["labelled_key"] = keys[arm] = key
    students: dict[str, Any] = {}
    for arm in ARMS:
        path, stats = st.train(arm, rows[arm], keys[arm], student_cfg)
        students[arm] = {
            "path": str(path),
            "training": stats,
            "rows": len(rows[arm]),
            "rows_hash": stable_hash(rows[arm]),  # results "integrity": what it was trained on
        }
    if stop == "train":
        return Partial("train", st.timer.seconds)
    evals = {arm: st.evaluate(arm, students[arm]["path"]) for arm in ARMS}
    if cfg.eval.eval_base:
        evals["base"] = st.evaluate("base", resolve(cfg.base_model).path)
        teacher = st.teacher("trait", ts.model)
        evals["teacher"] = st.evaluate(
            "teacher", resolve(teacher.model_ref).path, system=teacher.system
        )
    utility = {arm: st.utility(arm, students[arm]["path"]) for arm in ARMS}
    config, device = cfg.to_dict(), device_info()
    return build_results(
        config,
        setup=setup_block(config, device),
        defense=defense.describe(),
        data=data,
        students=students,
        evals=evals,
        wall=time.perf_counter() - t_start,
        stages=st.timer.as_run_info(),
        device=device,
        utility=utility,
    )


def run_cell(cfg: CellConfig, store: ArtifactStore, log_dir: Path) -> dict[str, Any]:
    """Run (or resume) one cell; returns its results artifact (``benchmark.core.results``)."""
    out = _run(cfg, store, log_dir, None)
    assert isinstance(out, dict)
    return out


def run_until(cfg: CellConfig, store: ArtifactStore, log_dir: Path, stop: str) -> Partial:
    """Run (or resume) one cell up to and including the ``data`` or the ``train`` stages."""
    if stop not in STOPS:
        raise ValueError(f"Invalid stop stage: {stop!r}; expected one of {STOPS}")
    out = _run(cfg, store, log_dir, stop)
    assert isinstance(out, Partial)
    return out
