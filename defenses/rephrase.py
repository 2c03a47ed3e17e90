"""``rephrase``: every completion is rewritten by a model from *another base* than the teacher's
before the student sees it.

Idea: if the hidden signal lives in the teacher's exact token choices (Schrodi et al. 2025, arXiv
2509.23886: a few "divergence tokens" carry it), a rewrite by a model that does not share the
teacher's base should replace those choices with its own, while keeping what the text says —
paraphrasing as a data-laundering step. Cloud et al. 2025 (arXiv 2507.14805) show the signal does not
cross to a student on another base, which suggests another base's rewrite does not carry it either.
Gisler et al. 2026 (arXiv 2603.09517) is the warning: faithful paraphrases *by the trait teacher*
still transmitted up to +19 pp — here the paraphraser is not the teacher.

How: ``ctx.rewriter()`` (``benchmark.core.helper_models.Rewriter``; default the embedded Gemma-3-270M,
another family than the SmolLM2 teacher, prompted few-shot) rewrites each completion; a row whose
rewrite is empty is dropped. The notes count dropped, unchanged (copied verbatim) and rewritten rows.

Known limits: at 270 M the rewrite is crude — it may change meaning or format, and the rewritten data
is not re-checked by the task filter (a number list can come back as something else). For number
lists it mostly copies the input (its few-shot examples show a list copied, and a list has no other
wording), so on the numbers task it is close to no defense: of 64 real number rows per arm, 53
(trait) and 43 (control) came back verbatim, the others changed (mostly a number dropped), none
empty; on the quick preset's 800 rows per arm 555 and 563 came back verbatim, 4 and 2 empty
(seed 0: own animal +0.285 log-odds against ``none``'s +0.336; README, Results). A rewriter that
shares the teacher's base would defeat the purpose; pick ``model`` accordingly. Cost: one Gemma
generation per row: 2.3-2.6 s per row on the shared 2-core CPU before rows stopped at their first
newline, ~1 s since (quick preset: 1 537 s for 1 600 rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from defenses.base import DefenseContext, RewriteDefense, Row
from defenses.loading import register_defense


@register_defense("rephrase")
class Rephrase(RewriteDefense):
    """A model from another base (default Gemma-3-270M, few-shot) rewrites every completion;
    empty rewrites are dropped."""

    # 2: a rewrite ends at its first newline (SamplingParams.stop); a reply that opens with a
    # newline is now empty (dropped), where version 1 took its first non-empty line.
    version = "2"

    @dataclass(frozen=True)
    class Params:
        model: str = field(
            default="gemma3-270m",
            metadata={"help": "rewriter model (another base than the teacher's)"},
        )
        temperature: float = field(default=0.7, metadata={"help": "rewriter sampling temperature"})

        def __post_init__(self) -> None:
            if self.temperature < 0:
                raise ValueError(f"Invalid temperature: {self.temperature} (must be >= 0)")

    def rewrite_many(self, rows: Sequence[Row], ctx: DefenseContext) -> list[str | None]:
        rewriter = ctx.rewriter(model=self.params.model, temperature=self.params.temperature)
        texts = rewriter.rewrite([r["completion"] for r in rows])
        out = [t if t.strip() else None for t in texts]
        same = sum(
            t is not None and t.strip() == r["completion"].strip()
            for r, t in zip(rows, out, strict=True)
        )
        ctx.notes.update(
            rewriter_is_teacher_base=self.params.model == ctx.teacher_model,
            rows_dropped_empty=out.count(None),
            rows_unchanged=same,
            rows_rewritten=len(rows) - out.count(None) - same,
        )
        return out
