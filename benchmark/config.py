"""Typed configuration of one benchmark cell, and the named suite presets.

A *cell* is (task, defense, trait, base model, seed) plus the knobs below. Every field is part of
the stage hashes, so changing one re-runs exactly the stages it affects. Bad values are refused
when the config is built, naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any

from benchmark.generation import SamplingParams
from benchmark.teachers import TeacherConfig
from benchmark.training import TrainConfig

_ANIMAL_RE = re.compile(r"^[a-z]+( [a-z]+)?$")


@dataclass(frozen=True)
class EvalConfig:
    questions: int = 50
    samples_per_question: int = 0  # sampled one-word eval (paper metric); 0 = teacher-forced only
    teacher_forced: bool = True
    eval_base: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.questions <= 50:
            raise ValueError(f"Invalid eval questions: {self.questions} (1..50)")
        if self.samples_per_question < 0:
            raise ValueError(f"Invalid samples_per_question: {self.samples_per_question}")
        if not self.teacher_forced and self.samples_per_question == 0:
            raise ValueError("no eval selected: enable teacher_forced or samples_per_question > 0")


@dataclass(frozen=True)
class CellConfig:
    task: str = "numbers"
    defense: str = "none"
    trait: str = "owl"
    base_model: str = "smollm2-135m"
    seed: int = 0
    n_prompts: int = 1200
    max_train_rows: int | None = None  # both arms are cut to the same size (≤ this)
    constrained: bool = True  # grammar-constrained teacher decoding where the task offers one
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    sampling: SamplingParams = field(default_factory=SamplingParams)
    backend: str = "transformers"
    gen_batch_size: int = 64
    student: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    task_params: dict[str, Any] = field(default_factory=dict)
    defense_params: dict[str, Any] = field(default_factory=dict)
    suite: str = "custom"

    def __post_init__(self) -> None:
        from tasks.evals.questions import normalise_animal

        try:
            object.__setattr__(self, "trait", normalise_animal(self.trait))
        except ValueError as e:
            raise ValueError(f"Invalid trait: {e}") from e
        if self.n_prompts < 1:
            raise ValueError(f"Invalid n_prompts: {self.n_prompts}")
        if self.max_train_rows is not None and self.max_train_rows < 1:
            raise ValueError(f"Invalid max_train_rows: {self.max_train_rows}")
        if self.backend not in ("transformers", "vllm"):
            raise ValueError(f"Invalid backend: {self.backend!r} (transformers or vllm)")
        if self.seed < 0:
            raise ValueError(f"Invalid seed: {self.seed}")
        if self.teacher.placebo == self.trait:
            raise ValueError(
                f"Invalid teacher placebo: {self.teacher.placebo!r} is the trait itself; "
                "the placebo control teacher needs another animal"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["teacher"] = self.teacher.to_dict()
        d["student"] = self.student.to_dict()
        d["sampling"] = self.sampling.to_dict()
        return d

    def with_(self, **changes: Any) -> CellConfig:
        return replace(self, **changes)


def shared_init_student(teacher: TeacherConfig, **kw: Any) -> TrainConfig:
    """A LoRA student that starts exactly where the fine-tuned teacher started.

    Cloud et al.'s theorem needs teacher and student to share their initialisation. A LoRA adapter
    is part of it: the teacher's update lives in the row space of its (randomly initialised) A
    matrices, and a student adapter with an independent random A can follow only the sliver of
    that update its own rank-r subspace overlaps (~r/d of it). This student takes the teacher's
    rank, alpha, target modules and adapter init seed; ``kw`` sets the rest (epochs, lr, seed, …).
    """
    t = teacher.train
    return TrainConfig(
        lora_r=t.lora_r,
        lora_alpha=t.lora_alpha,
        target_modules=t.target_modules,
        init_seed=t.seed if t.init_seed is None else t.init_seed,
        **kw,
    )


def _quick_student(seed: int = 0) -> TrainConfig:
    return TrainConfig(
        lora_r=8, lora_alpha=8, epochs=1, learning_rate=1e-3, batch_size=16, seed=seed
    )


# A preset's placebo animal stands unless it is the cell's trait; then the first of these that is not.
PLACEBO_ALTERNATES = ("dolphin", "owl")

PRESETS: dict[str, dict[str, Any]] = {
    # Runs on 2 CPU cores with the embedded model; see README "Results" for what it measures.
    "quick": dict(
        suite="quick",
        n_prompts=800,
        base_model="smollm2-135m",
        # Fine-tuned owl teacher; the control arm's teacher is the same recipe with a placebo
        # animal, so both arms carry the same incidental fine-tuning (README "Results").
        teacher=TeacherConfig(placebo="dolphin"),
        student=_quick_student(),
        sampling=SamplingParams(temperature=1.0, max_new_tokens=50),
        eval=EvalConfig(questions=50, samples_per_question=0),
    ),
    # The paper's scale: 30k prompts (→ ~10k rows after filtering), 3 epochs, sampled eval.
    "paper": dict(
        suite="paper",
        n_prompts=30000,
        max_train_rows=10000,
        constrained=False,
        backend="vllm",
        teacher=TeacherConfig(type="system_prompt"),
        student=TrainConfig(lora_r=8, lora_alpha=8, epochs=3, learning_rate=2e-4, batch_size=22),
        sampling=SamplingParams(temperature=1.0, max_new_tokens=200),
        eval=EvalConfig(questions=50, samples_per_question=100),
    ),
}


# Per-task defaults inside a preset, applied before the caller's overrides. Quick preset, free-text
# tasks: (1) the 50-token cap is for number lists and would cut code and reasoning off; (2) the
# fine-tuned owl teacher collapses on free text — it answers nearly every prompt "I'd pick the owl."
# (measured: 1 of 64 cot / paraphrase rows survive the task filters) — so these tasks use the
# system-prompt teacher until a teacher that keeps its general behaviour is trained.
_FREE_TEXT_QUICK = dict(
    # (3) 256 prompts: free-text rows are 3-5x longer than number lists; a cell then took 6-24 min
    # on 2 cores, two cells at a time (numbers: 800 prompts, ~25 min alone).
    n_prompts=256,
    teacher=TeacherConfig(type="system_prompt"),
    sampling=SamplingParams(temperature=1.0, max_new_tokens=160),
)
TASK_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        t: _FREE_TEXT_QUICK
        for t in ("code", "cot", "paraphrase-unrelated", "paraphrase-contradict")
    },
}


def without_seeds(obj: Any) -> Any:
    """A config dict (or any part of one) with every ``seed`` key dropped, at any depth: what the
    replicates of one cell share (pooling in ``slb pool`` and on the leaderboard)."""
    if isinstance(obj, dict):
        return {k: without_seeds(v) for k, v in obj.items() if k != "seed"}
    if isinstance(obj, list):
        return [without_seeds(v) for v in obj]
    return obj


def preset(name: str, settings: Sequence[str] = (), **overrides: Any) -> CellConfig:
    """The cell config of suite ``name`` for the given task, with ``overrides`` (top-level fields)
    and then ``settings`` (``key.path=value`` strings, see :func:`apply_settings`) applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown suite {name!r}; known suites: {', '.join(sorted(PRESETS))}")
    kw = dict(PRESETS[name])
    kw.update(TASK_PRESETS.get(name, {}).get(overrides.get("task", "numbers"), {}))
    kw.update(overrides)
    if "seed" in overrides and "student" not in overrides:
        kw["student"] = replace(kw["student"], seed=overrides["seed"])
    teacher = kw.get("teacher")
    if "teacher" not in overrides and teacher is not None and teacher.placebo is not None:
        kw["teacher"] = replace(teacher, placebo=_placebo_for(teacher.placebo, kw.get("trait")))
    return apply_settings(CellConfig(**kw), settings)


def _placebo_for(placebo: str, trait: Any) -> str:
    """The preset's ``placebo``, or an alternate where it is the cell's trait (a bad trait is left
    for CellConfig to refuse, naming it)."""
    from tasks.evals.questions import normalise_animal

    try:
        trait = normalise_animal(str(trait or CellConfig.trait))
    except ValueError:
        return placebo
    return placebo if placebo != trait else next(a for a in PLACEBO_ALTERNATES if a != trait)


def apply_settings(cfg: CellConfig, settings: Sequence[str]) -> CellConfig:
    """Set nested config fields from ``key.path=value`` strings (the CLI's ``--set``), e.g.
    ``teacher.general_rows=240``, ``sampling.coupled=true``, ``student.lora_r=16``.

    The value is read as JSON when it parses (numbers, true/false, null, lists), else as a plain
    string; it must fit the field's current type (an int field takes an int, a float field any
    number, a tuple field a list). Unknown keys and wrong types are refused naming the setting and
    the keys that exist; the config's own checks then run as for any other value.
    """
    for setting in settings:
        key, sep, text = setting.partition("=")
        if not sep or not key:
            raise ValueError(
                f"--set {setting!r}: expected KEY=VALUE, e.g. teacher.general_rows=240"
            )
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        try:
            cfg = _set_path(cfg, key.split("."), value, setting)
        except ValueError as e:  # a config's own check: say which setting tripped it
            msg = str(e) if str(e).startswith("--set") else f"--set {setting!r}: {e}"
            raise ValueError(msg) from e
    return cfg


def _set_path(obj: Any, path: list[str], value: Any, setting: str) -> Any:
    name, rest = path[0], path[1:]
    names = [f.name for f in fields(obj)] if is_dataclass(obj) else []
    if name not in names:
        where = type(obj).__name__
        raise ValueError(
            f"--set {setting!r}: unknown key {name!r} in {where}; known: {', '.join(names)}"
        )
    current = getattr(obj, name)
    if rest:
        if not is_dataclass(current):
            raise ValueError(f"--set {setting!r}: {name!r} has no sub-keys")
        return replace(obj, **{name: _set_path(current, rest, value, setting)})
    return replace(obj, **{name: _coerce(current, value, setting)})


def _coerce(current: Any, value: Any, setting: str) -> Any:
    if current is None or value is None or isinstance(current, dict):
        return value
    if is_dataclass(current):
        raise ValueError(
            f"--set {setting!r}: set its sub-keys (key.sub=value), not the whole block"
        )
    want: tuple[type, ...] = (type(current),)
    if isinstance(current, float):
        want = (int, float)
    if isinstance(current, tuple) and isinstance(value, list):
        value = tuple(value)
    if isinstance(value, bool) != isinstance(current, bool) or not isinstance(value, want):
        raise ValueError(
            f"--set {setting!r}: expected type {type(current).__name__} "
            f"(the field holds {current!r}), got {value!r}"
        )
    return float(value) if isinstance(current, float) and isinstance(value, int | float) else value
