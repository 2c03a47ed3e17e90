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

from benchmark.core.animals import CANDIDATE_ANIMALS
from benchmark.core.generation import SamplingParams
from benchmark.core.teachers import TeacherConfig
from benchmark.core.training import TrainConfig
from benchmark.run.names import check_animal, suggest

_ANIMAL_RE = re.compile(r"^[a-z]+( [a-z]+)?$")
# A same-animal null's control teacher: the trait teacher's training seed (or, with system-prompt
# teachers, the sampling seed) plus this.
NULL_SEED_OFFSET = 1000
# A several-traits run's null (``null_animal``): each teacher at its seed + this × (1 + its nominal
# animal's place among the candidates): far from any student offset (+5000) and from the seeds
# files use, so no null teacher is a main run's or shares a student's seed while a file's seeds
# lie within this of each other.
NULL_ANIMAL_SEED_OFFSET = 100_000
# Where a student's LoRA adapter starts: "own" = its own init seed (``student.init_seed``, else
# ``student.seed``); "teacher" = exactly where its own arm's fine-tuned teacher started (the
# teacher's adapter init seed; the student must have the teacher's rank, alpha and targets).
STUDENT_INITS = ("own", "teacher")


@dataclass(frozen=True)
class EvalConfig:
    questions: int = 50
    samples_per_question: int = 0  # sampled one-word eval (paper metric); 0 = teacher-forced only
    teacher_forced: bool = True
    eval_base: bool = True
    # Teacher-forced only: text forced at the start of the answer ("My favorite animal is the"),
    # after which each candidate is scored as the lower-case word after a space; "" scores the
    # animal as the answer's first word. A prefix keeps a student's habit of starting its answers
    # with some token (the top-k channel's students: docs/results.md, session 27) out of the score.
    answer_prefix: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.answer_prefix, str) or len(self.answer_prefix) > 200:
            raise ValueError(
                f"Invalid eval answer_prefix: {self.answer_prefix!r} (text, ≤ 200 chars)"
            )
        if self.answer_prefix != self.answer_prefix.rstrip() or "\n" in self.answer_prefix:
            raise ValueError(
                f"Invalid eval answer_prefix: {self.answer_prefix!r} (one line without trailing "
                "space: each candidate is scored with its own leading space)"
            )
        if self.answer_prefix and not self.teacher_forced:
            raise ValueError(
                "Invalid eval answer_prefix: it applies to the teacher-forced eval, which is off"
            )
        if not 1 <= self.questions <= 50:
            raise ValueError(f"Invalid eval questions: {self.questions} (1..50)")
        if self.samples_per_question < 0:
            raise ValueError(f"Invalid samples_per_question: {self.samples_per_question}")
        if not self.teacher_forced and self.samples_per_question == 0:
            raise ValueError("no eval selected: enable teacher_forced or samples_per_question > 0")

    def to_dict(self) -> dict[str, Any]:
        """The fields; ``answer_prefix`` only when set, so configs and stage keys written before
        it existed keep their setups and stored evals."""
        d = asdict(self)
        if not d["answer_prefix"]:
            del d["answer_prefix"]
        return d


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
    # Reference cells that check the instrument itself (``benchmark.run.controls``), never defenses:
    # the same-animal null (the control arm's teacher carries the trait animal too; the statistic
    # still reads the (trait, placebo) pair, so only run noise can move it) and the planted leak
    # (this share of the trait arm's training rows, after filter and defense, replaced by rows
    # that name the trait animal: a leak the instrument must detect).
    null_arm: bool = False
    planted_share: float = 0.0
    # The null of a run of several traits (``benchmark.core.multi_trait``): every teacher of the
    # cell, both arms, carries this animal instead of its own, each trained at a seed its nominal
    # animal picks (:meth:`teacher_train`), so the cells of a run keep one shared control arm and
    # nothing but run noise tells their students apart.
    null_animal: str | None = None
    # Cloud et al.'s shared start, per arm (``STUDENT_INITS``): with "teacher" each arm's student
    # starts from its own teacher's adapter, so a same-animal null's arms stay alike (its control
    # student starts from the trait animal's second teacher, not from the first). Checked against
    # the student and teachers by :meth:`student_for` once the settings are in.
    student_init: str = "own"

    def __post_init__(self) -> None:
        object.__setattr__(self, "trait", check_animal("trait", self.trait))
        if self.teacher.placebo is not None:
            check_animal("teacher placebo", self.teacher.placebo)
        if not isinstance(self.suite, str) or not re.fullmatch(r"[A-Za-z0-9][\w.-]*", self.suite):
            raise ValueError(
                f"Invalid suite: {self.suite!r} (a name: letters, digits, '_', '-', '.'; it names "
                "the results folder, so no path)"
            )
        for name in ("task_params", "defense_params"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(
                    f"Invalid {name}: {getattr(self, name)!r} (a JSON object of parameters)"
                )
        if self.n_prompts < 1:
            raise ValueError(f"Invalid n_prompts: {self.n_prompts}")
        if self.max_train_rows is not None and self.max_train_rows < 1:
            raise ValueError(f"Invalid max_train_rows: {self.max_train_rows}")
        if self.backend not in ("transformers", "vllm"):
            raise ValueError(f"Invalid backend: {self.backend!r} (transformers or vllm)")
        if self.seed < 0:
            raise ValueError(f"Invalid seed: {self.seed}")
        if not isinstance(self.null_arm, bool):
            raise ValueError(f"Invalid null_arm: {self.null_arm!r} (true or false)")
        if self.null_arm and self.teacher.placebo is None:
            raise ValueError(
                "Invalid null_arm: the same-animal null needs teacher.placebo, the animal whose "
                "pair with the trait the statistic reads (e.g. teacher.placebo=dolphin)"
            )
        share = self.planted_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share < 1:
            raise ValueError(f"Invalid planted_share: {share!r} (a share in [0, 1))")
        if self.null_arm and share:
            raise ValueError("Invalid cell: null_arm and planted_share are two controls; pick one")
        if self.teacher.placebo == self.trait:
            raise ValueError(
                f"Invalid teacher placebo: {self.teacher.placebo!r} is the trait itself; "
                "the placebo control teacher needs another animal (for a same-animal null, set "
                "null_arm=true and keep another placebo animal for the statistic's pair)"
            )
        if self.null_animal is not None:
            self._check_null_animal()
        if self.student_init not in STUDENT_INITS:
            raise ValueError(f"Invalid student_init: {self.student_init!r} (own or teacher)")

    def _check_null_animal(self) -> None:
        object.__setattr__(self, "null_animal", check_animal("null_animal", str(self.null_animal)))
        nominal = [self.trait, self.teacher.placebo]
        if self.null_arm or self.planted_share:
            raise ValueError("Invalid cell: null_animal, null_arm and planted_share: pick one")
        if self.teacher.type != "finetuned" or self.teacher.placebo is None:
            raise ValueError(
                "Invalid null_animal: it needs fine-tuned teachers (teacher.type=finetuned: a "
                "system prompt would make the arms' teachers one and the same) and a "
                "teacher.placebo (the run's shared control arm)"
            )
        if any(a not in CANDIDATE_ANIMALS for a in nominal):
            raise ValueError(
                f"Invalid null_animal: the trait and placebo ({nominal}) must be candidate "
                "animals; each picks its teacher's seed"
            )

    def teacher_train(self, arm: str) -> TrainConfig:
        """How the arm's fine-tuned teacher trains: the cell's recipe (at the cell's seed where
        ``teacher.seed_per_cell``); a same-animal null's control teacher at its seed + the offset;
        with ``null_animal``, each arm's at its seed + :data:`NULL_ANIMAL_SEED_OFFSET` × (1 + its
        nominal animal's place among the candidates), so the cells of one run share the control
        teacher and no two nominal animals share one."""
        t = self.teacher.for_cell(self.seed).train
        if self.null_animal is not None:
            nominal = self.trait if arm == "trait" else str(self.teacher.placebo)
            index = 1 + CANDIDATE_ANIMALS.index(nominal)
            return replace(t, seed=t.seed + NULL_ANIMAL_SEED_OFFSET * index)
        return (
            replace(t, seed=t.seed + NULL_SEED_OFFSET) if arm == "control" and self.null_arm else t
        )

    def student_for(self, arm: str, student: TrainConfig) -> TrainConfig:
        """The arm's student config as it trains: ``student`` (the cell's, after any training-side
        defense), its adapter's init seed set from the arm's teacher where ``student_init`` says
        so. Raises ValueError naming the problem where that start does not exist."""
        if self.student_init == "own":
            return student
        t, fix = self.teacher_train(arm), "or set student_init=own"
        if self.teacher.type != "finetuned" or self.teacher.placebo is None or t.method != "lora":
            raise ValueError(
                "Invalid student_init=teacher: it needs a LoRA fine-tuned teacher in both arms "
                f"(teacher.type=finetuned, teacher.train.method=lora and a teacher.placebo; got "
                f"{self.teacher.type!r}, {t.method!r}, placebo {self.teacher.placebo!r}): a "
                f"system-prompted teacher, a fully fine-tuned one or the bare base has no adapter "
                f"to start from; {fix}"
            )
        if student.init_seed is not None or student.method != "lora":
            raise ValueError(
                "Invalid student_init=teacher: it sets each arm's LoRA init seed from its teacher; "
                f"leave student.init_seed unset and student.method=lora, {fix}"
            )
        got = (student.lora_r, student.lora_alpha, set(student.target_modules))
        if got != (t.lora_r, t.lora_alpha, set(t.target_modules)):
            raise ValueError(
                "Invalid student_init=teacher: the student needs the teacher's adapter shape, "
                f"student.lora_r={t.lora_r} student.lora_alpha={t.lora_alpha} and its target "
                f"modules; got r={student.lora_r}, alpha={student.lora_alpha}"
                + ("" if got[2] == set(t.target_modules) else ", other targets")
            )
        if tuple(student.frozen_layers) != tuple(t.frozen_layers):  # a reloaded config: lists
            raise ValueError(  # layers without an adapter shift the random draws of the others
                "Invalid student_init=teacher: the student's frozen layers "
                f"{list(student.frozen_layers)} are not its teacher's {list(t.frozen_layers)}, so "
                f"no adapter would start where the teacher's did; {fix}"
            )
        return replace(student, init_seed=t.adapter_seed)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["teacher"] = self.teacher.to_dict()
        d["student"] = self.student.to_dict()
        d["sampling"] = self.sampling.to_dict()
        d["eval"] = self.eval.to_dict()
        # The controls are absent when off, so older setups keep their ids.
        for name in ("null_arm", "planted_share", "null_animal"):
            if not d[name]:
                del d[name]
        if d["student_init"] == "own":  # likewise
            del d["student_init"]
        return d

    def with_(self, **changes: Any) -> CellConfig:
        return replace(self, **changes)


def apply_settings(cfg: CellConfig, settings: Sequence[str]) -> CellConfig:
    """Set nested config fields from ``key.path=value`` strings (the CLI's ``--set``), e.g.
    ``teacher.general_rows=240``, ``sampling.coupled=true``, ``student.lora_r=16``.

    The value is read as JSON when it parses (numbers, true/false, null, lists), else as a plain
    string; it must fit the field's current type (an int field takes an int, a float field any
    number, a tuple field a list). Unknown keys and wrong types are refused naming the setting and
    the keys that exist; the config's own checks then run as for any other value. Checks across
    fields that settings set together (``student_init``) run once all are in.
    """
    for setting in settings:
        key, sep, text = setting.partition("=")
        if not sep or not key:
            raise ValueError(
                f"--set {setting!r}: expected KEY=VALUE, e.g. teacher.general_rows=240"
            )
        if key == "seed":  # the presets seed the students from the cell's seed, given before
            raise ValueError(
                f"--set {setting!r}: the cell's seed is --seed {text} (the preset seeds its "
                "students from it); student.seed sets the students' alone"
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
    try:
        cfg.student_for("trait", cfg.student)
    except ValueError as e:
        raise ValueError(f"--set student_init={cfg.student_init}: {e}") from e
    return cfg


def _set_path(obj: Any, path: list[str], value: Any, setting: str) -> Any:
    name, rest = path[0], path[1:]
    names = [f.name for f in fields(obj)] if is_dataclass(obj) else []
    if name not in names:
        where = type(obj).__name__
        raise ValueError(
            f"--set {setting!r}: unknown key {name!r} in {where}; known: {', '.join(names)}"
            + (f"; did you mean {' or '.join(close)}?" if (close := suggest(name, names)) else "")
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
