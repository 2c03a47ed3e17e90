"""``cross_base_teacher``: the data is written by a teacher built on a *different base model* than
the student's.

Idea: Cloud et al. 2025 ("Subliminal Learning", arXiv 2507.14805) find that the trait transmits
when teacher and student share their base model (or initialisation) and not across model families,
and their theorem ties transmission to a shared initialisation. A pipeline owner who controls which model writes the data can pick one from another
family. The teacher hook swaps the teacher's model; the pipeline still gives the trait arm its trait
on that new base (the system prompt in front of its prompt, or a trait adapter trained on the new
base) and the control arm the same new base without it, while the student stays the cell's base. A
base without a chat template (the default, Gemma-3-270M pretrained) is prompted few-shot in
``benchmark.core.plain_format``, with the task's worked examples (``Task.few_shot_examples``).

Measured yields, costs and results of this defense are in ``docs/results.md``.

Known limits: it changes the data itself, not only its hidden signal — another model writes other
numbers, code or prose, so the student's task quality must be checked (the valid yield and the
student's utility are in the results); at 270 M the cross-base teacher is weak (a pretrained model
prompted few-shot, held to the task grammar where there is one) and tends to reuse numbers from its
two worked examples. Its cost is a second model to host
and run, not counted as helper use: generation time is in the results' stage timings. The paper
tested model families, not every pair; bases that share pretraining data or were distilled from one
another may still transmit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from benchmark.core.types import TeacherSpec
from defenses.base import Defense
from defenses.loading import register_defense


@register_defense("cross_base_teacher")
class CrossBaseTeacher(Defense):
    """The data is written by a teacher on another base model (default Gemma-3-270M) than the
    student's; subliminal transmission needs a shared base (Cloud et al. 2025)."""

    version = "1"

    @dataclass(frozen=True)
    class Params:
        model: str = field(
            default="gemma3-270m",
            metadata={"help": "the teacher's new base: embedded name, local dir or hub id"},
        )

        def __post_init__(self) -> None:
            if not self.model.strip():
                raise ValueError("Invalid model: empty (name the teacher's new base model)")

    def teacher(self, spec: TeacherSpec) -> TeacherSpec:
        if self.params.model == spec.model:
            raise ValueError(
                f"model {self.params.model!r} is already the teacher's base; "
                "choose a base from another family"
            )
        return replace(spec, model=self.params.model)
