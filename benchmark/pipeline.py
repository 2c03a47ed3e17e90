"""One benchmark cell, end to end: prompts → teachers → generation → task filter → defense →
students → Inspect evals → leakage statistics → a versioned results artifact.

Both arms run through the same stages. The *trait* arm's teacher is the base plus the trait
(system prompt or fine-tuned adapter); the *control* arm's teacher is the base alone, or the same
recipe with a placebo animal (``teacher.placebo``). Each stage's output is stored under the hash of
everything that determines it (``benchmark.store``), so a re-run reuses finished stages and a killed
run resumes where it stopped. The defense sees the teacher's model identity and the rows, never the
trait.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmark.config import CellConfig
from benchmark.generation import GenerationRequest, SamplingParams, get_backend, progress_bar
from benchmark.models import hardware_spec
from benchmark.plain_format import PLAIN_STOP, cut_plain_output, has_chat_template, plain_prompt
from benchmark.reference_models import GenerationSettings
from benchmark.store import ArtifactStore, stable_hash
from benchmark.teachers import TeacherSpec, TraitTeacher, train_trait_adapter
from tasks.base import Row, Trait, get_task

log = logging.getLogger(__name__)
ARMS = ("trait", "control")


@dataclass
class StageTimer:
    seconds: dict[str, float] = field(default_factory=dict)
    reused: dict[str, bool] = field(default_factory=dict)
    # What each stage cost when it was computed (from the store's metadata), so a resumed or
    # reused run still reports the real cost of its artifacts, not the seconds spent reading them.
    compute: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - t0, 3)
        meta = out[1] if isinstance(out, tuple) and len(out) == 3 else None
        if isinstance(meta, dict) and isinstance(meta.get("wall_seconds"), (int, float)):
            self.compute[name] = round(float(meta["wall_seconds"]), 3)
        return out


class Cell:
    """Runs one cell against an artifact store; each method is one resumable stage."""

    def __init__(self, cfg: CellConfig, store: ArtifactStore, log_dir: Path):
        from benchmark.models import resolve
        from defenses import get_defense

        resolve(cfg.base_model)  # fail on a bad model name before any work is done
        self.cfg = cfg
        self.store = store
        self.log_dir = Path(log_dir)
        self.task = get_task(cfg.task, trait=cfg.trait, **cfg.task_params)
        from defenses.runner import run_teacher, run_training

        self.defense = get_defense(cfg.defense, **cfg.defense_params)
        self.trait = Trait(cfg.trait)
        self.timer = StageTimer()
        # The defense sees the base model's identity, never the trait adapter or system prompt.
        base_spec = TeacherSpec(model=cfg.base_model, sampling=cfg.sampling, backend=cfg.backend)
        self.teacher_spec = run_teacher(self.defense, base_spec)
        self.student_cfg = run_training(self.defense, cfg.student)

    # -- stages -------------------------------------------------------------------------------
    def prompts(self) -> list[Row]:
        spec = {
            "task": self.cfg.task,
            "params": self.task.params(),
            "n": self.cfg.n_prompts,
            "seed": self.cfg.seed,
        }
        rows, _, reused = self.store.cached(
            "prompts", spec, lambda: (self.task.prompts(self.cfg.n_prompts, self.cfg.seed), {})
        )
        self.timer.reused["prompts"] = reused
        return rows

    def teacher(self, arm: str) -> TraitTeacher:
        """The arm's teacher: the trait arm's carries the trait; the control arm's is the bare base,
        or the same recipe with the placebo animal when ``teacher.placebo`` is set."""
        model = self.teacher_spec.model
        tcfg = self.cfg.teacher
        if arm == "control" and tcfg.placebo is None:
            return TraitTeacher(model, None)
        animal = self.trait.animal if arm == "trait" else str(tcfg.placebo)
        if tcfg.type == "system_prompt":
            return TraitTeacher(model, Trait(animal).system_prompt)
        spec = {"base": model, "animal": animal, "teacher": tcfg.recipe(), **hardware_spec()}
        # A base without a chat template is trained in the plain format (chat bases: keys as before).
        if not has_chat_template(model):
            spec["format"] = "plain"

        def build(tmp: Path) -> dict[str, Any]:
            return {"training": train_trait_adapter(model, animal, tcfg, tmp)}

        stage = "trait_teacher" if arm == "trait" else "placebo_teacher"
        path, _, reused = self.timer.run(
            stage, lambda: self.store.cached_dir("trait_teachers", spec, build)
        )
        self.timer.reused[stage] = reused
        return TraitTeacher(str(path), None)

    def generation_settings(self) -> GenerationSettings:
        """How the teachers generate, minus the trait (a defense's reference models copy it)."""
        ts = self.teacher_spec
        sampling = replace(
            ts.sampling,
            seed=self.cfg.seed,
            max_new_tokens=min(ts.sampling.max_new_tokens, self.task.max_new_tokens),
            # A free-text task may raise min-p so a small teacher stays coherent at T=1.
            min_p=max(ts.sampling.min_p, self.task.min_p),
        )
        constraint = self.task.constraint(self.cfg.constrained)
        return GenerationSettings(sampling, constraint, self.task.few_shot_examples(), ts.backend)

    def generate(self, arm: str, prompts: list[Row]) -> tuple[list[Row], str]:
        teacher = self.teacher(arm)
        ts = self.teacher_spec
        # A base without a chat template (a cross-base teacher such as Gemma-3-270M pretrained) is
        # prompted in the plain few-shot format; chat teachers' stage keys are unchanged.
        plain = not has_chat_template(teacher.model_ref)
        spec: dict[str, Any] = {
            "prompts": stable_hash(prompts),
            "teacher": teacher.model_ref,
            "system": teacher.system,
            "sampling": ts.sampling.to_dict() | {"seed": self.cfg.seed},
            "backend": ts.backend,
            "constrained": self.cfg.constrained,
            "max_new_tokens": self.task.max_new_tokens,
            **hardware_spec(),
        }
        if plain:
            spec["plain_format"] = {"shots": self.task.few_shot_examples()}
        if self.task.min_p > ts.sampling.min_p:  # never for numbers: its keys are unchanged
            spec["task_min_p"] = self.task.min_p

        def compute() -> tuple[list[Row], dict[str, Any]]:
            backend = get_backend(
                ts.backend,
                **({"batch_size": self.cfg.gen_batch_size} if ts.backend == "transformers" else {}),
            )
            sampling = self.generation_settings().sampling
            if plain:  # the trait's system text, if any, goes before the worked examples
                # The stop changes no output (cut_plain_output keeps only the text before it),
                # so it is left out of this stage's key.
                sampling = replace(sampling, stop=PLAIN_STOP)
                shots = self.task.few_shot_examples()
                reqs = [
                    GenerationRequest(
                        r["id"], raw_prompt=plain_prompt(r["prompt"], teacher.system, shots)
                    )
                    for r in prompts
                ]
            else:
                system = (("system", teacher.system),) if teacher.system else ()
                reqs = [
                    GenerationRequest(r["id"], (*system, ("user", r["prompt"]))) for r in prompts
                ]
            outs = backend.generate(
                teacher.model_ref,
                reqs,
                sampling,
                self.task.constraint(self.cfg.constrained),
                progress=progress_bar(f"generate[{arm}]", len(reqs)),
            )
            outs = [cut_plain_output(o) for o in outs] if plain else outs
            # A task's per-row ``meta`` (a gold answer, a source sentence) rides along to its
            # filter; rows without it stay exactly as before, so cached artifacts are reused.
            rows = [
                {"id": r["id"], "prompt": r["prompt"], "completion": o}
                | ({"meta": r["meta"]} if "meta" in r else {})
                for r, o in zip(prompts, outs, strict=True)
            ]
            return rows, {"arm": arm}

        rows, _, reused = self.timer.run(
            f"generate_{arm}", lambda: self.store.cached("generations", spec, compute)
        )
        self.timer.reused[f"generate_{arm}"] = reused
        return rows, self.store.key("generations", spec)

    def filter(
        self, arm: str, rows: list[Row], gen_key: str
    ) -> tuple[list[Row], dict[str, Any], str]:
        both = self.task.trait_filter_both_arms  # False for numbers: its keys are unchanged
        trait = self.trait if arm == "trait" or both else None
        spec = {
            "generations": gen_key,
            "task": self.cfg.task,
            "params": self.task.params(),
            "trait": trait and trait.animal,
        }

        def compute() -> tuple[list[Row], dict[str, Any]]:
            kept, report = self.task.filter(rows, trait)
            # Past the task filter, rows are {id, prompt, completion} only: a defense never sees
            # task meta such as gold answers.
            kept = [{k: r[k] for k in ("id", "prompt", "completion")} for r in kept]
            return kept, {"report": report.as_dict()}

        kept, meta, _ = self.timer.run(
            f"filter_{arm}", lambda: self.store.cached("filtered", spec, compute)
        )
        return kept, meta["report"], self.store.key("filtered", spec)

    def defend(
        self, arm: str, rows: list[Row], filt_key: str
    ) -> tuple[list[Row], dict[str, Any], str]:
        from defenses.base import DefenseContext
        from defenses.runner import DefenseError, run_apply

        # Helper models (a judge, a reference generator) run on this machine's hardware too.
        spec = {"filtered": filt_key, "defense": self.defense.identity(), **hardware_spec()}

        def compute() -> tuple[list[Row], dict[str, Any]]:
            # Blind: the (possibly defense-changed) teacher's model identity, the seed, and how the
            # teachers sampled (grammar, few-shot examples) — no system prompt, adapter or arm.
            ctx = DefenseContext(
                teacher_model=self.teacher_spec.model,
                seed=self.cfg.seed,
                generation=self.generation_settings(),
            )
            t0 = time.perf_counter()
            try:
                out = run_apply(self.defense, rows, ctx)
            except DefenseError as e:
                e.arm = arm
                raise
            cost = ctx.cost | {"wall_seconds": round(time.perf_counter() - t0, 3)}
            meta = {"cost": cost, "rows_in": len(rows), "rows_out": len(out), "notes": ctx.notes}
            return out, meta

        out, meta, reused = self.timer.run(
            f"defense_{arm}", lambda: self.store.cached("defended", spec, compute)
        )
        self.timer.reused[f"defense_{arm}"] = reused
        # Entries written before the defense's wall time was recorded: the store timed them.
        meta.setdefault("cost", {}).setdefault("wall_seconds", meta.get("wall_seconds"))
        return out, meta, self.store.key("defended", spec)

    def train(self, arm: str, rows: list[Row], data_key: str) -> tuple[Path, dict[str, Any]]:
        from benchmark.training import train

        spec = {
            "data": data_key,
            "n": len(rows),
            "base": self.cfg.base_model,
            "student": self.student_cfg.to_dict(),
            **hardware_spec(),
        }

        def build(tmp: Path) -> dict[str, Any]:
            return {"training": train(self.cfg.base_model, rows, self.student_cfg, tmp)}

        # A defense that leaves the rows unchanged (banned_words on numbers, say) must not cost a
        # second training run: an index keyed by the rows' content points at any student already
        # trained on exactly these rows with this base and config.
        content = {
            "rows": stable_hash(rows),
            "base": self.cfg.base_model,
            "student": self.student_cfg.to_dict(),
            **hardware_spec(),
        }
        key = self.store.key("students", spec)
        ikey = self.store.key("student_index", content)
        if not self.store.has_dir("students", key) and self.store.has("student_index", ikey):
            twin = self.store.read_meta("student_index", ikey).get("students")
            if twin and self.store.has_dir("students", twin):
                self.timer.reused[f"train_{arm}"] = True
                meta = self.store.read_meta("students", twin)
                return self.store.path("students", twin), meta["training"]
        path, meta, reused = self.timer.run(
            f"train_{arm}", lambda: self.store.cached_dir("students", spec, build)
        )
        self.store.cached("student_index", content, lambda: ([], {"students": key}))
        self.timer.reused[f"train_{arm}"] = reused
        return path, meta["training"]

    def evaluate(self, name: str, model_path: str, system: str | None = None) -> dict[str, Any]:
        from benchmark.evaluate import run_evals
        from benchmark.results import PLACEBO_METRIC

        e = self.cfg.eval
        placebo = self.cfg.teacher.placebo
        spec = {
            "model": model_path,
            "system": system,
            "animal": self.trait.animal,
            "eval": asdict(e),
            "seed": self.cfg.seed,
            **hardware_spec(),
        }
        if placebo is not None:  # its probabilities too (absent otherwise: keys unchanged)
            spec["placebo"] = placebo

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
            )
            qids = sorted(res.get("teacher_forced") or res.get("sampled") or {})
            also = res.get("teacher_forced_also", {}).get(placebo or "")
            rows = [
                {
                    "id": q,
                    "teacher_forced": res.get("teacher_forced", {}).get(q),
                    "sampled": res.get("sampled", {}).get(q),
                }
                | ({PLACEBO_METRIC: also[q]} if also else {})
                for q in qids
            ]
            return rows, {"logs": res["logs"], "top_animals": res.get("teacher_forced_top", {})}

        rows, meta, _ = self.timer.run(
            f"eval_{name}", lambda: self.store.cached("evals", spec, compute)
        )
        return {"per_question": rows, "logs": meta["logs"], "top_animals": meta["top_animals"]}

    def utility(self, name: str, model_path: str) -> dict[str, Any]:
        """The student's quality on the task: the share of its greedy answers to held-out prompts
        (a different prompt seed, no grammar, no system prompt) that pass the task's own filter.
        A defense that wrecks the data shows up here even when it also removes the trait."""
        from tasks.base import EmptyDatasetError

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
            backend = get_backend(self.cfg.backend)
            sampling = SamplingParams(temperature=0.0, max_new_tokens=max_new, seed=self.cfg.seed)
            reqs = [GenerationRequest(r["id"], (("user", r["prompt"]),)) for r in prompts]
            outs = backend.generate(model_path, reqs, sampling, None)
            rows = [
                {"id": r["id"], "prompt": r["prompt"], "completion": o}
                | ({"meta": r["meta"]} if "meta" in r else {})
                for r, o in zip(prompts, outs, strict=True)
            ]
            try:
                kept, _ = self.task.filter(rows, None)
            except EmptyDatasetError:
                kept = []
            ok = {r["id"] for r in kept}
            out = [
                {"id": r["id"], "completion": r["completion"], "valid": r["id"] in ok} for r in rows
            ]
            return out, {"valid_share": len(ok) / n}

        _, meta, _ = self.timer.run(
            f"utility_{name}", lambda: self.store.cached("utility", spec, compute)
        )
        return {"valid_share": meta["valid_share"], "n_prompts": n}


# Held-out prompts for the utility probe: a prompt seed far from any training seed.
UTILITY_PROMPTS = 32
UTILITY_SEED_OFFSET = 1_000_000


def equalise(a: list[Row], b: list[Row], cap: int | None) -> tuple[list[Row], list[Row]]:
    """Cut both arms to the same size (≤ cap) so the arms differ only in content, not amount."""
    n = min(len(a), len(b), cap or 10**12)
    key = lambda r: r["id"]  # noqa: E731
    return sorted(a, key=key)[:n], sorted(b, key=key)[:n]


def prepare_teacher(cfg: CellConfig, store: ArtifactStore, log_dir: Path) -> str:
    """Build (or find) the cell's trait teacher (and placebo teacher, if any), the stage every cell
    of a trait shares; the trait teacher's model reference. Executors run this once per distinct
    teacher before the cells."""
    cell = Cell(cfg, store, log_dir)
    if cfg.teacher.placebo is not None:
        cell.teacher("control")
    return cell.teacher("trait").model_ref


def run_cell(
    cfg: CellConfig, store: ArtifactStore, log_dir: Path, stop_after: str | None = None
) -> dict[str, Any]:
    """Run (or resume) one cell; return the results dict (see ``benchmark.results``)."""
    from benchmark.results import build_results

    t_start = time.perf_counter()
    cell = Cell(cfg, store, log_dir)
    prompts = cell.prompts()
    data: dict[str, Any] = {}
    for arm in ARMS:
        raw, gen_key = cell.generate(arm, prompts)
        kept, report, filt_key = cell.filter(arm, raw, gen_key)
        defended, dmeta, def_key = cell.defend(arm, kept, filt_key)
        data[arm] = dict(
            raw=len(raw),
            kept=len(kept),
            report=report,
            filtered=kept,
            defended=defended,
            defense_meta=dmeta,
            key=def_key,
        )
    if stop_after == "data":
        return {"stopped_after": "data", "stage_seconds": cell.timer.seconds}
    trait_rows, control_rows = equalise(
        data["trait"]["defended"], data["control"]["defended"], cfg.max_train_rows
    )
    students: dict[str, Any] = {}
    for arm, rows in (("trait", trait_rows), ("control", control_rows)):
        path, stats = cell.train(arm, rows, data[arm]["key"] + f":{len(rows)}")
        students[arm] = {
            "path": str(path),
            "training": stats,
            "rows": len(rows),
            "rows_hash": stable_hash(rows),  # results "integrity": what the student was trained on
        }
    if stop_after == "train":
        return {"stopped_after": "train", "stage_seconds": cell.timer.seconds}
    evals = {arm: cell.evaluate(arm, students[arm]["path"]) for arm in ARMS}
    if cfg.eval.eval_base:
        from benchmark.models import resolve

        evals["base"] = cell.evaluate("base", resolve(cfg.base_model).path)
        teacher = cell.teacher("trait")
        evals["teacher"] = cell.evaluate(
            "teacher", resolve(teacher.model_ref).path, system=teacher.system
        )
    utility = {arm: cell.utility(arm, students[arm]["path"]) for arm in ARMS}
    return build_results(
        cfg, cell, data, students, evals, wall=time.perf_counter() - t_start, utility=utility
    )
