"""The named presets: one place for every suite's cells and every cell's starting config.

``SUITES`` says which cells a suite runs (tasks, defenses, traits, seeds); ``PRESETS`` the cell config
each suite starts from, and ``TASK_PRESETS`` the knobs a suite sets per task. :func:`preset` builds
one cell's config from them, then applies overrides and ``--set`` settings
(``benchmark.run.config.apply_settings``). Why each preset is what it is, with the measurements that
chose it, is in ``docs/results.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from benchmark.core.animals import normalise_animal
from benchmark.core.generation import SamplingParams
from benchmark.core.teachers import TeacherConfig
from benchmark.core.training import TrainConfig
from benchmark.run.config import CellConfig, EvalConfig, apply_settings
from benchmark.run.names import unknown

SUITES: dict[str, dict[str, Any]] = {
    # README command 1: one small cell that shows the whole loop on 2 CPU cores in minutes.
    "first": {
        "tasks": ["numbers"],
        "defenses": ["none"],
        "traits": ["owl"],
        "seeds": [0],
        "note": (
            "What this first run can show: the whole loop works (teachers, data, filter, defense, "
            "students trained on their teacher's top-20 next-token distribution, Inspect evals, "
            "leakage, artifact), with a real estimate, its interval over questions and its rank "
            "against every other animal pair of the same two students. It is the topk-prefix "
            "channel made small (64 prompts, small teachers): a distiller who keeps the logits. "
            "What it cannot show: that leakage holds over training runs (one seed), or that it "
            "is subliminal (the top-k labels carry the teacher's animal words; at this scale the "
            "students mostly learn to begin answers with their animal's first token, which is "
            "why the eval forces the answer's start, 'My favorite animal is the', and scores the "
            "word after it: docs/results.md). Next: `slb suite restricted`, five seeds of the "
            "default suite, where the labels keep only the number tokens (the subliminal part, "
            "about +0.3 log-odds), and `slb submit` to put a defense against it."
        ),
    },
    # The five standard tasks of the quick preset.
    "quick": {
        "tasks": ["numbers", "code", "cot", "paraphrase-unrelated", "paraphrase-contradict"],
        "defenses": ["none"],
        "traits": ["owl"],
        "seeds": [0, 1, 2],
    },
    "paper": {"tasks": ["numbers"], "defenses": ["none"], "traits": ["owl"], "seeds": [0, 1, 2]},
    # The quick preset with the soft-label channel: students learn the teacher's top-20 next-token
    # distribution. Five seeds, the fewest the leaderboard's verdicts pair over: the first five of
    # the per-run confirmation, whose numbers cells are this suite's (the store reuses them).
    "topk": {
        "tasks": ["numbers", "code", "cot", "paraphrase-unrelated", "paraphrase-contradict"],
        "defenses": ["none"],
        "traits": ["owl"],
        "seeds": [600, 601, 602, 603, 604],
    },
    # The topk suite scored after a forced answer prefix, so the eval no longer reads the first
    # token of the answer alone (the full top-k students' habit, which owl shares with otter):
    # the channel of docs/prereg/topk-prefix-numbers-256.yaml. Its seeds are the first five of
    # that confirmation, whose main cells are this suite's numbers cells (the store reuses them).
    "topk-prefix": {
        "tasks": ["numbers", "code", "cot", "paraphrase-unrelated", "paraphrase-contradict"],
        "defenses": ["none"],
        "traits": ["owl"],
        "seeds": [700, 701, 702, 703, 704],
    },
    # The subliminal part of the top-k channel: the topk-prefix suite with the teacher's
    # distribution restricted to the tokens the number grammar allows, learnt for 3 epochs by
    # students at a seed no teacher has: the channel of
    # docs/prereg/restricted-epochs3-numbers-256.yaml, whose first five main cells are this
    # suite's numbers cells (the store reuses them). Numbers only by default: code and the
    # paraphrase tasks have no task constraint, so there the restricted labels are the full top-k
    # (the topk-prefix suite measures them at one epoch); cot's are kept to its tag format.
    "restricted": {
        "tasks": ["numbers"],
        "defenses": ["none"],
        "traits": ["owl"],
        "seeds": [760, 761, 762, 763, 764],
    },
}


def _quick_student(seed: int = 0) -> TrainConfig:
    return TrainConfig(
        lora_r=8, lora_alpha=8, epochs=1, learning_rate=1e-3, batch_size=16, seed=seed
    )


# A preset's placebo animal stands unless it is the cell's trait; then the first of these that is not.
PLACEBO_ALTERNATES = ("dolphin", "owl")

_QUICK: dict[str, Any] = dict(
    suite="quick",
    n_prompts=800,
    base_model="smollm2-135m",
    # Fine-tuned owl teacher; the control arm's teacher is the same recipe with a placebo animal,
    # so both arms carry the same incidental fine-tuning (docs/results.md).
    teacher=TeacherConfig(placebo="dolphin"),
    student=_quick_student(),
    sampling=SamplingParams(temperature=1.0, max_new_tokens=50),
    eval=EvalConfig(questions=50, samples_per_question=0),
)

# The channel of docs/prereg/topk-perrun-numbers-256.yaml, as that file's cells ran it: the
# fine-tuned teachers' full top-20 as labels (a distiller who keeps the logits; the trait's
# words ride in the mass off the number grammar), 256 prompts, a fresh pair of teachers per
# cell (teacher pairs differ by 0.3-0.7 log-odds here: docs/results.md), no base or teacher
# evals. ``restrict_labels`` is the defense that keeps only the grammar's tokens.
_TOPK: dict[str, Any] = dict(
    _QUICK,
    suite="topk",
    n_prompts=256,
    teacher=TeacherConfig(placebo="dolphin", seed_per_cell=True),
    student=replace(_quick_student(), labels="topk"),
    eval=EvalConfig(questions=50, samples_per_question=0, eval_base=False),
)

# The answer the teacher-forced eval forces before each animal in the topk-prefix suite.
ANSWER_PREFIX = "My favorite animal is the"
_TOPK_PREFIX: dict[str, Any] = dict(
    _TOPK, suite="topk-prefix", eval=replace(_TOPK["eval"], answer_prefix=ANSWER_PREFIX)
)

# The restricted suite's students train at the cell's seed + this, a seed neither of its teachers
# has (they train at the cell's seed, and a same-animal null's second one at + NULL_SEED_OFFSET), so
# no student shares its adapter init or dropout with a teacher (the confirmation file says why).
# (For the confirmation's three-digit seeds, seed + 5000 is the file's "5<seed>".) Kept out of
# PRESETS, whose entries are CellConfig fields.
STUDENT_SEED_OFFSETS: dict[str, int] = {"restricted": 5000}
_RESTRICTED: dict[str, Any] = dict(
    _TOPK_PREFIX,
    suite="restricted",
    student=replace(_TOPK["student"], labels="topk-restricted", epochs=3),
)

PRESETS: dict[str, dict[str, Any]] = {
    # Runs on 2 CPU cores with the embedded model; docs/results.md says what it measures.
    "quick": _QUICK,
    "topk": _TOPK,
    "topk-prefix": _TOPK_PREFIX,
    "restricted": _RESTRICTED,
    # The topk-prefix preset made small enough for a first run: fewer prompts and eval
    # questions, smaller teachers (64 trait rows each).
    "first": {
        **_TOPK_PREFIX,
        "suite": "first",
        "n_prompts": 64,
        "teacher": TeacherConfig(placebo="dolphin", qa_rows=64, seed_per_cell=True),
        "eval": replace(_TOPK_PREFIX["eval"], questions=25),
    },
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
# fine-tuned owl teacher collapses on free text (it answers nearly every prompt with the animal;
# docs/results.md), so these tasks use the system-prompt teacher until a teacher that keeps its
# general behaviour is trained.
_FREE_TEXT_QUICK = dict(
    # (3) 256 prompts: free-text rows are 3-5x longer than number lists (cell times:
    # docs/results.md).
    n_prompts=256,
    teacher=TeacherConfig(type="system_prompt"),
    sampling=SamplingParams(temperature=1.0, max_new_tokens=160),
)
_FREE_TEXT = ("code", "cot", "paraphrase-unrelated", "paraphrase-contradict")
# The top-k suite's free-text cells: the same knobs (a system-prompt teacher is not trained, so
# there is no pair of teachers to draw per cell); the labels are the suite's.
TASK_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {t: _FREE_TEXT_QUICK for t in _FREE_TEXT},
    "topk": {t: _FREE_TEXT_QUICK for t in _FREE_TEXT},
    "topk-prefix": {t: _FREE_TEXT_QUICK for t in _FREE_TEXT},
    "restricted": {t: _FREE_TEXT_QUICK for t in _FREE_TEXT},
}


def preset(name: str, settings: Sequence[str] = (), **overrides: Any) -> CellConfig:
    """The cell config of suite ``name`` for the given task, with ``overrides`` (top-level fields)
    and then ``settings`` (``key.path=value`` strings, see :func:`apply_settings`) applied."""
    if name not in PRESETS:
        raise unknown("suite", name, sorted(PRESETS))
    kw = dict(PRESETS[name])
    kw.update(TASK_PRESETS.get(name, {}).get(overrides.get("task", "numbers"), {}))
    kw.update(overrides)
    # The students train at the cell's seed (+ the preset's offset, where it has one).
    offset = STUDENT_SEED_OFFSETS.get(name, 0)
    if "student" not in overrides and ("seed" in overrides or offset):
        seed = overrides.get("seed", CellConfig.seed)
        kw["student"] = replace(kw["student"], seed=seed + offset if offset else seed)
    teacher = kw.get("teacher")
    if "teacher" not in overrides and teacher is not None and teacher.placebo is not None:
        kw["teacher"] = replace(teacher, placebo=_placebo_for(teacher.placebo, kw.get("trait")))
    # The null arm is checked once the settings are in: a setting may name the placebo it needs
    # (a free-text preset has none).
    # So is a several-traits run's null (``null_animal``: it needs the fine-tuned placebo teacher
    # a setting may give).
    null = kw.pop("null_arm", False)
    null_animal = kw.pop("null_animal", None)
    cfg = apply_settings(CellConfig(**kw), settings)
    named = {s.partition("=")[0] for s in settings}  # as apply_settings reads them
    if null_animal and "null_animal" not in named:  # a setting has the last word
        cfg = replace(cfg, null_animal=null_animal)
    return replace(cfg, null_arm=null) if null and "null_arm" not in named else cfg


def _placebo_for(placebo: str, trait: Any) -> str:
    """The preset's ``placebo``, or an alternate where it is the cell's trait (a bad trait is left
    for CellConfig to refuse, naming it)."""

    try:
        trait = normalise_animal(str(trait or CellConfig.trait))
    except ValueError:
        return placebo
    return placebo if placebo != trait else next(a for a in PLACEBO_ALTERNATES if a != trait)
