"""The stages of one cell, each a resumable function over the artifact store.

Every stage's output is stored under the hash of a *key spec*: everything that determines it
(model references, seeds, sampling, defense identity, upstream keys, the hardware class on a GPU).
Each stage builds its spec in one place, here, and every spec carries :data:`KEY_VERSION`, so a
change to what a stage computes bumps one number instead of growing compatibility branches (stores
written before that number exist recompute once). ``benchmark.run.cell.run_cell`` sequences the
stages; nothing else builds a stage key.

Both arms (``trait``, ``control``) run through the same stages. The defense's hooks are run by the
caller (``benchmark.run.cell``) and their results handed in: the teacher spec after ``teacher()``,
the student config after ``training()``; ``defend`` runs ``apply()``. A defense sees the teacher's
model identity and the rows, never the trait or the arm.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmark.core.backends import get_backend
from benchmark.core.distill import LABELS_IMPL, soft_labels
from benchmark.core.generation import SamplingParams, progress_bar
from benchmark.core.models import hardware_spec
from benchmark.core.plain_format import PLAIN_STOP, cut_plain_output, has_chat_template
from benchmark.core.reference_models import GenerationSettings
from benchmark.core.results import CANDIDATES, PLACEBO_METRIC
from benchmark.core.store import ArtifactStore, stable_hash
from benchmark.core.teachers import TraitTeacher, train_trait_adapter
from benchmark.core.train_env import (
    STUDENT_PASS_TOKENS,
    STUDENT_PASSES,
    micro_batch_default,
    pass_tokens_default,
)
from benchmark.core.training import TrainConfig, train
from benchmark.core.types import Row, TeacherSpec, Trait
from benchmark.run.config import NULL_SEED_OFFSET, CellConfig
from benchmark.run.evaluate import run_evals
from benchmark.run.requests import requests_for, rows_with
from benchmark.run.timer import StageTimer
from defenses.base import Defense, DefenseContext
from defenses.runner import DefenseError, run_apply
from tasks.base import EmptyDatasetError, get_task

# Bump when any stage computes something different for the same spec (see the module docstring).
KEY_VERSION = 3  # 3: eval rows carry the candidate distributions
ARMS = ("trait", "control")
# Held-out prompts for the utility probe: a prompt seed far from any training seed.
UTILITY_PROMPTS = 32
UTILITY_SEED_OFFSET = 1_000_000


class Stages:
    """The stages of one cell over one store. Each method is one stage: it declares its key spec
    and computes its output only when the store has none for that spec."""

    def __init__(self, cfg: CellConfig, store: ArtifactStore, log_dir: Path):
        self.cfg = cfg
        self.store = store
        self.log_dir = Path(log_dir)
        self.task = get_task(cfg.task, trait=cfg.trait, **cfg.task_params)
        self.trait = Trait(cfg.trait)
        self.timer = StageTimer()

    def _cached(
        self,
        name: str,
        kind: str,
        spec: dict[str, Any],
        compute: Callable[..., Any],
        index: tuple[str, dict[str, Any]] | None = None,
    ) -> tuple[Any, dict[str, Any], str]:
        """Rows (or a directory for ``*_dir`` kinds) of stage ``name`` stored under ``kind``, and
        the entry's key. ``index``: (an index stage, the spec less its upstream keys); an entry
        computed from exactly that content under another key (a defense that left the rows as
        they were) is then used, and its key returned, so the artifact names the entry used."""
        spec = {"key_version": KEY_VERSION, **spec}
        key, t0 = self.store.key(kind, spec), time.perf_counter()
        is_dir = kind in ("trait_teachers", "students")
        has = self.store.has_dir if is_dir else self.store.has
        ikey = self.store.key(*index) if index is not None else ""
        if index is not None and not has(kind, key) and self.store.has(index[0], ikey):
            twin = self.store.read_meta(index[0], ikey).get(kind)
            if isinstance(twin, str) and has(kind, twin):
                meta = self.store.read_meta(kind, twin)
                self.timer.record(name, t0, meta, True)
                rows = None if is_dir else self.store.read_rows(kind, twin)
                return (self.store.path(kind, twin) if is_dir else rows), meta, twin
        out: Any
        if is_dir:
            out, meta, reused = self.store.cached_dir(kind, spec, compute)
        else:
            out, meta, reused = self.store.cached(kind, spec, compute)
        self.timer.record(name, t0, meta, reused)
        if index is not None:
            self.store.cached(index[0], index[1], lambda: ([], {kind: key}))
        return out, meta, key

    def prompts(self) -> list[Row]:
        spec = {
            "task": self.cfg.task,
            "params": self.task.params(),
            "n": self.cfg.n_prompts,
            "seed": self.cfg.seed,
        }
        rows, _, _ = self._cached(
            "prompts",
            "prompts",
            spec,
            lambda: (self.task.prompts(self.cfg.n_prompts, self.cfg.seed), {}),
        )
        return rows

    def teacher(self, arm: str, model: str) -> TraitTeacher:
        """The arm's teacher on base ``model``: the trait arm's carries the trait; the control arm's
        is the bare base, or the same recipe with the placebo animal (``teacher.placebo``). A
        pair's null (``null_arm``) gives the control arm the trait animal at another seed; a
        several-traits run's null (``null_animal``) gives every arm that animal
        (:meth:`CellConfig.teacher_train` picks the seeds)."""
        tcfg = self.cfg.teacher.for_cell(self.cfg.seed)
        if arm == "control" and tcfg.placebo is None:
            return TraitTeacher(model, None)
        null = (arm == "control" and self.cfg.null_arm) or self.cfg.null_animal is not None
        own = self.trait.animal if arm == "trait" or null else str(tcfg.placebo)
        animal = self.cfg.null_animal or own  # a run's null: every teacher carries that one
        if tcfg.type == "system_prompt":  # the null's control arm samples with another seed
            return TraitTeacher(model, Trait(animal).system_prompt)
        if null:  # the trait's recipe with another training seed: another adapter, same animal
            tcfg = replace(tcfg, train=self.cfg.teacher_train(arm))
        spec = {
            "base": model,
            "animal": animal,
            "teacher": tcfg.recipe(),
            "format": "chat" if has_chat_template(model) else "plain",
            **hardware_spec(),
        }
        stage = "trait_teacher" if arm == "trait" else "null_teacher" if null else "placebo_teacher"

        def build(tmp: Path) -> dict[str, Any]:
            return {"training": train_trait_adapter(model, animal, tcfg, tmp)}

        path, _, _ = self._cached(stage, "trait_teachers", spec, build)
        return TraitTeacher(str(path), None)

    def generation_settings(self, ts: TeacherSpec) -> GenerationSettings:
        """How the teachers generate, minus the trait (a defense's reference models copy it)."""
        sampling = replace(
            ts.sampling,
            seed=self.cfg.seed,
            max_new_tokens=min(ts.sampling.max_new_tokens, self.task.max_new_tokens),
            # A free-text task may raise min-p so a small teacher stays coherent at T=1.
            min_p=max(ts.sampling.min_p, self.task.min_p),
        )
        constraint = self.task.constraint(self.cfg.constrained)
        return GenerationSettings(sampling, constraint, self.task.few_shot_examples(), ts.backend)

    def generate(
        self, arm: str, prompts: list[Row], teacher: TraitTeacher, ts: TeacherSpec
    ) -> tuple[list[Row], str]:
        settings = self.generation_settings(ts)
        if arm == "control" and self.cfg.null_arm and teacher.system is not None:
            # A same-animal null with system-prompt teachers: the same prompt in both arms, so
            # only the sampling seed can tell the arms apart.
            seed = settings.sampling.seed + NULL_SEED_OFFSET
            settings = replace(settings, sampling=replace(settings.sampling, seed=seed))
        shots = self.task.few_shot_examples()
        plain = not has_chat_template(teacher.model_ref)
        spec = {
            "prompts": stable_hash(prompts),
            "teacher": teacher.model_ref,
            "system": teacher.system,
            "sampling": settings.sampling.to_dict(),
            "backend": ts.backend,
            "constrained": self.cfg.constrained,
            "format": {"shots": shots} if plain else "chat",
            **hardware_spec(),
        }

        def compute() -> tuple[list[Row], dict[str, Any]]:
            kw = {"batch_size": self.cfg.gen_batch_size} if ts.backend == "transformers" else {}
            reqs, _ = requests_for(prompts, teacher.model_ref, teacher.system, shots)
            # The plain format's stop string changes no output (cut_plain_output keeps only the
            # text before it); it only stops a base that never writes EOS early.
            sampling = replace(settings.sampling, stop=PLAIN_STOP) if plain else settings.sampling
            outs = get_backend(ts.backend, **kw).generate(
                teacher.model_ref,
                reqs,
                sampling,
                settings.constraint,
                progress=progress_bar(f"generate[{arm}]", len(reqs)),
            )
            outs = [cut_plain_output(o) for o in outs] if plain else outs
            return rows_with(prompts, outs), {"arm": arm}

        rows, _, key = self._cached(f"generate_{arm}", "generations", spec, compute)
        return rows, key

    def filter(self, arm: str, rows: list[Row], gen_key: str) -> tuple[list[Row], dict, str]:
        trait = self.trait if arm == "trait" or self.task.trait_filter_both_arms else None
        spec = {
            "generations": gen_key,
            "task": self.cfg.task,
            "params": self.task.params(),
            "trait": trait and trait.animal,
        }

        def compute() -> tuple[list[Row], dict[str, Any]]:
            kept, report = self.task.filter(rows, trait)
            # Past the task filter rows are {id, prompt, completion}: a defense never sees task
            # meta such as gold answers.
            kept = [{k: r[k] for k in ("id", "prompt", "completion")} for r in kept]
            return kept, {"report": report.as_dict()}

        kept, meta, key = self._cached(f"filter_{arm}", "filtered", spec, compute)
        return kept, meta["report"], key

    def defend(
        self, arm: str, rows: list[Row], filt_key: str, defense: Defense, ts: TeacherSpec
    ) -> tuple[list[Row], dict[str, Any], str]:
        # Helper models (a judge, a reference generator) run on this machine's hardware too.
        spec = {"filtered": filt_key, "defense": defense.identity(), **hardware_spec()}

        def compute() -> tuple[list[Row], dict[str, Any]]:
            # Blind: the (possibly defense-changed) teacher's model identity, the seed and how the
            # teachers sampled (grammar, few-shot examples); no system prompt, adapter or arm.
            ctx = DefenseContext(
                teacher_model=ts.model, seed=self.cfg.seed, generation=self.generation_settings(ts)
            )
            t0 = time.perf_counter()
            try:
                out = run_apply(defense, rows, ctx)
            except DefenseError as e:
                e.arm = arm
                raise
            cost = ctx.cost | {"wall_seconds": round(time.perf_counter() - t0, 3)}
            meta = {"cost": cost, "rows_in": len(rows), "rows_out": len(out), "notes": ctx.notes}
            return out, meta

        out, meta, key = self._cached(f"defense_{arm}", "defended", spec, compute)
        return out, meta, key

    def labels(
        self, arm: str, rows: list[Row], data_key: str, ts: TeacherSpec, student: TrainConfig
    ) -> tuple[list[Row], str, dict[str, Any] | None]:
        """The soft-label channel (``benchmark.core.distill``): the arm's teacher scores the final
        training rows; ``student.labels == "hard"`` leaves them as they are. A teacher on another
        base (another tokenizer: a cross-base defense) gives hard labels, and the report says so."""
        if student.labels == "hard":
            return rows, data_key, None
        if ts.model != self.cfg.base_model:
            why = f"the teacher's base {ts.model!r} is not the student's: hard labels"
            return rows, data_key, {"labels": "hard", "note": why}
        teacher = self.teacher(arm, ts.model)
        constraint = self.task.constraint(True)
        spec = {
            "data": data_key,
            "rows": stable_hash(rows),
            "teacher": teacher.model_ref,
            "system": teacher.system,
            "labels": student.labels,
            "top_k": student.top_k,
            "constraint": type(constraint).__name__ if constraint is not None else None,
            "impl": LABELS_IMPL,
            **hardware_spec(),
        }

        def compute() -> tuple[list[Row], dict[str, Any]]:
            out, report = soft_labels(
                teacher.model_ref,
                rows,
                student_system=None,
                teacher_system=teacher.system,
                top_k=student.top_k,
                restricted=student.labels == "topk-restricted",
                constraint=constraint,
            )
            return out, {"report": report}

        # A training-side defense leaves the rows as they were: the labels of these very rows by
        # this teacher are then already stored, under the key of the cell that first scored them.
        index = ("labelled_index", {"key_version": KEY_VERSION} | spec | {"data": None})
        out, meta, key = self._cached(f"labels_{arm}", "labelled", spec, compute, index)
        return out, key, meta["report"]

    def train(
        self, arm: str, rows: list[Row], data_key: str, student: TrainConfig
    ) -> tuple[Path, dict[str, Any]]:
        student = self.cfg.student_for(arm, student)  # where its adapter starts (student_init)
        common = {"base": self.cfg.base_model, "student": student.to_dict(), **hardware_spec()}
        # A defense that leaves the rows unchanged (banned_words on numbers, say) must not cost a
        # second training run: the content index finds any student trained on these very rows.
        content = {"key_version": KEY_VERSION, "rows": stable_hash(rows), **common}
        # Rows per pass: as an artifact recorded (``slb reproduce``), else $SLB_MICRO_BATCH; for
        # soft and hard labels alike (teachers train in one pass).
        passes = (STUDENT_PASSES.get() or {}).get(arm) or micro_batch_default()
        # The token bound of a pass, likewise (recorded None: no bound, 0 here).
        bounds = STUDENT_PASS_TOKENS.get() or {}
        tokens = (bounds[arm] or 0) if arm in bounds else pass_tokens_default()

        def build(tmp: Path) -> dict[str, Any]:
            return {
                "training": train(
                    self.cfg.base_model, rows, student, tmp, micro_batch=passes, pass_tokens=tokens
                )
            }

        spec = {"data": data_key, "n": len(rows), **common}
        index = ("student_index", content)
        path, meta, _ = self._cached(f"train_{arm}", "students", spec, build, index)
        return path, meta["training"]

    def evaluate(self, name: str, model_path: str, system: str | None = None) -> dict[str, Any]:
        e = self.cfg.eval
        placebo = self.cfg.teacher.placebo
        spec = {
            "model": model_path,
            "system": system,
            "animal": self.trait.animal,
            "placebo": placebo,
            "eval": e.to_dict(),
            "seed": self.cfg.seed,
            **hardware_spec(),
        }

        def compute() -> tuple[list[Row], dict[str, Any]]:
            res = run_evals(
                model_path,
                self.trait.animal,
                questions=e.questions,
                samples_per_question=e.samples_per_question,
                teacher_forced=e.teacher_forced,
                log_dir=self.log_dir,
                system=system,
                seed=self.cfg.seed,
                also=(placebo,) if placebo else (),
                answer_prefix=e.answer_prefix,
            )
            qids = sorted(res.get("teacher_forced") or res.get("sampled") or {})
            also = res.get("teacher_forced_also", {}).get(placebo or "")
            dists = res.get("teacher_forced_distributions", {})
            rows = [
                {
                    "id": q,
                    "teacher_forced": res.get("teacher_forced", {}).get(q),
                    "sampled": res.get("sampled", {}).get(q),
                }
                | ({PLACEBO_METRIC: also[q]} if also else {})
                | ({CANDIDATES: dists[q]} if q in dists else {})
                for q in qids
            ]
            return rows, {"logs": res["logs"], "top_animals": res.get("teacher_forced_top", {})}

        rows, meta, _ = self._cached(f"eval_{name}", "evals", spec, compute)
        return {"per_question": rows, "logs": meta["logs"], "top_animals": meta["top_animals"]}

    def utility(self, name: str, model_path: str) -> dict[str, Any]:
        """The student's quality on the task: the share of its greedy answers to held-out prompts
        (another prompt seed, no grammar, no system prompt) that pass the task's own filter. A
        defense that wrecks the data shows up here even when it also removes the trait."""
        n = UTILITY_PROMPTS
        max_new = min(self.cfg.sampling.max_new_tokens, self.task.max_new_tokens)
        spec = {
            "model": model_path,
            "task": self.cfg.task,
            "params": self.task.params(),
            "n": n,
            "seed": self.cfg.seed,
            "max_new_tokens": max_new,
            **hardware_spec(),
        }

        def compute() -> tuple[list[Row], dict[str, Any]]:
            prompts = self.task.prompts(n, UTILITY_SEED_OFFSET + self.cfg.seed)
            reqs, plain = requests_for(prompts, model_path, None, self.task.few_shot_examples())
            greedy = SamplingParams(
                temperature=0.0,
                max_new_tokens=max_new,
                seed=self.cfg.seed,
                stop=PLAIN_STOP if plain else (),
            )
            outs = get_backend(self.cfg.backend).generate(model_path, reqs, greedy, None)
            rows = rows_with(prompts, [cut_plain_output(o) for o in outs] if plain else outs)
            try:
                ok = {r["id"] for r in self.task.filter(rows, None)[0]}
            except EmptyDatasetError:
                ok = set()
            out = [
                {"id": r["id"], "completion": r["completion"], "valid": r["id"] in ok} for r in rows
            ]
            return out, {"valid_share": len(ok) / n}

        _, meta, _ = self._cached(f"utility_{name}", "utility", spec, compute)
        return {"valid_share": meta["valid_share"], "n_prompts": n}
