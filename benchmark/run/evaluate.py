"""Run the Inspect evals on one model and return per-question scores.

The pipeline scores every model (trait student, control student, base, teacher) through the same
Inspect tasks a user runs by hand (``tasks/evals/animal_preference.py``), with Inspect's ``hf/``
provider on a local model or adapter directory; the ``.eval`` logs are kept next to the results so
``inspect view`` opens them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tasks.evals.animal_preference import animal_preference, animal_preference_tf

log = logging.getLogger(__name__)


def _per_question(log_obj: Any, scorer: str) -> dict[str, float]:
    if log_obj.status != "success":
        err = getattr(log_obj.error, "message", log_obj.error)
        raise RuntimeError(f"Inspect eval {log_obj.eval.task} failed: {err}")
    sums: dict[str, list[float]] = {}
    for s in log_obj.samples or []:
        sc = s.scores.get(scorer)
        if sc is None:
            raise RuntimeError(f"sample {s.id} has no {scorer!r} score")
        sums.setdefault(str(s.id), []).append(float(sc.value))
    return {q: sum(v) / len(v) for q, v in sorted(sums.items())}


def run_evals(
    model_path: str,
    animal: str,
    *,
    questions: int,
    samples_per_question: int,
    teacher_forced: bool,
    log_dir: Path,
    system: str | None = None,
    seed: int = 0,
    also: tuple[str, ...] = (),
    answer_prefix: str = "",
) -> dict[str, Any]:
    """Evaluate ``model_path`` (a model or PEFT adapter dir) and return per-question scores.

    Returns ``{"teacher_forced": {qid: p}, "sampled": {qid: rate}, "logs": [paths]}``; a metric
    that was not requested is absent. ``"teacher_forced_distributions": {qid: {animal: p}}`` holds
    every candidate's probability (for the specificity check). ``also`` names other candidate animals whose teacher-forced
    probabilities to return too, from the same eval (``"teacher_forced_also": {animal: {qid: p}}``;
    an animal outside the candidate list is left out). ``answer_prefix``: the teacher-forced
    eval scores each animal after this forced start of the answer (``EvalConfig.answer_prefix``).
    """
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import get_model

    out: dict[str, Any] = {"logs": []}
    # Not memoized: Inspect keeps every model it memoizes for the life of the process, so a run of
    # many cells kept every student it evaluated (~0.5 GB each at 135 M).
    model_args: dict[str, Any] = {} if _cuda() else {"device": "cpu"}
    model = get_model(f"hf/{model_path}", memoize=False, **model_args)
    common: dict[str, Any] = dict(model=model, log_dir=str(log_dir), display="none", seed=seed)
    jobs = []
    if teacher_forced:
        jobs.append(
            (
                "teacher_forced",
                animal_preference_tf(
                    animal=animal, questions=questions, system=system, prefix=answer_prefix
                ),
                "trait_probability",
            )
        )
    if samples_per_question > 0:
        t = animal_preference(
            animal=animal,
            samples_per_question=samples_per_question,
            questions=questions,
            system=system,
        )
        jobs.append(("sampled", t, "names_animal"))
    try:
        for key, task_obj, scorer in jobs:
            (lg,) = inspect_eval(task_obj, **common)
            out[key] = _per_question(lg, scorer)
            out["logs"].append(lg.location)
            if key == "teacher_forced":
                out["teacher_forced_top"] = _top_animals(lg, scorer)
                out["teacher_forced_distributions"] = dict(sorted(_distributions(lg, scorer)))
                out["teacher_forced_also"] = {
                    a: probs for a in also if (probs := _candidate_per_question(lg, scorer, a))
                }
    finally:
        _drop_weights(model)
    return out


def _drop_weights(model: Any) -> None:
    """Free the torch model behind an Inspect ``hf/`` model that will not be used again. Inspect
    keeps that Model reachable after ``eval`` returns (measured in session 33: ~0.5 GB of RSS
    held at 135 M after the first eval of a process, gc and heap trim notwithstanding), and a
    long multi-cell run then carries it under every later stage."""
    api = getattr(model, "api", None)
    if api is not None and getattr(api, "model", None) is not None:
        api.model = None


def _candidate_per_question(log_obj: Any, scorer: str, animal: str) -> dict[str, float]:
    """P(animal) per question from the candidate distributions the teacher-forced scorer stored;
    {} when ``animal`` is not a candidate."""
    out = {}
    for qid, probs in _distributions(log_obj, scorer):
        if animal not in probs:
            return {}
        out[qid] = float(probs[animal])
    return dict(sorted(out.items()))


def _top_animals(log_obj: Any, scorer: str) -> dict[str, float]:
    """Mean candidate distribution over questions (what the model prefers overall)."""
    acc: dict[str, float] = {}
    n = 0
    for _, probs in _distributions(log_obj, scorer):
        for k, v in probs.items():
            acc[k] = acc.get(k, 0.0) + float(v)
        n += 1
    ranked = sorted(((k, v / max(n, 1)) for k, v in acc.items()), key=lambda kv: -kv[1])
    return dict(ranked[:8])


def _distributions(log_obj: Any, scorer: str) -> list[tuple[str, dict[str, float]]]:
    """(question id, candidate distribution) per sample, as the teacher-forced scorer stored it."""
    return [
        (str(s.id), (s.scores[scorer].metadata or {}).get("probabilities") or {})
        for s in log_obj.samples or []
    ]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
