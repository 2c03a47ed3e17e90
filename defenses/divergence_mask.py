"""``divergence_mask``: the student does not learn from the completion tokens a trusted reference
model finds least likely — where the teacher's choice diverged from what the base would have done.

Idea: Schrodi et al. 2025 ("Towards understanding subliminal learning", arXiv 2509.23886) find that
a few *divergence tokens* — positions where a trait teacher's choice differs from what the same
model without the trait would pick — carry most of the signal, and that masking them from the loss
largely stops transmission. They locate those tokens with the trait teacher itself; a defender does
not have it. This blind version uses the teacher's base model *without* the trait (known from
provenance; ``ctx.scorer()``) as the reference: each completion token is scored by its surprisal
−log p under the reference, given the prompt as the teacher saw it (chat template, or the plain
few-shot format), and renormalised over the tokens the task grammar allowed there when generation
used one (so a digit is surprising relative to the other digits, not to prose). The ``fraction`` of
all completion tokens with the highest surprisal (or those above ``threshold`` nats) are written to
each row as ``loss_mask_spans`` (character spans of the completion), and training sets their labels
to ignored (``benchmark.core.loss_mask``). Rows and text are unchanged; only the loss is.

Known limits: a token the base finds unlikely is not necessarily one the trait caused — at T=1
most surprising tokens are ordinary sampling noise, so the mask removes many harmless tokens and may
miss trait-driven ones that the base also found plausible (the paper's divergence tokens are defined
against the trait teacher, which is not available here). The trait can also be spread over many
mildly shifted tokens rather than a few divergent ones. Masking ``fraction`` of the tokens costs the
student that share of its training signal. ``reference_model`` may be another model with any
tokenizer (spans are in characters), but then "what the base would have done" is another model's
opinion.
Measured mask shares and costs are in ``docs/results.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchmark.core.loss_mask import MASK_FIELD
from defenses.base import Defense, DefenseContext, Row
from defenses.loading import register_defense


def merge_spans(spans: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Sorted, overlapping or touching spans merged; empty ones dropped."""
    out: list[list[int]] = []
    for a, b in sorted(s for s in spans if s[0] < s[1]):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


@register_defense("divergence_mask")
class DivergenceMask(Defense):
    """Masks from the student's loss the completion tokens a trusted reference (default: the
    teacher's base without the trait) finds least likely — a blind take on divergence tokens."""

    version = "1"

    @dataclass(frozen=True)
    class Params:
        fraction: float = field(
            default=0.1,
            metadata={"help": "share of all completion tokens masked, most surprising first"},
        )
        threshold: float | None = field(
            default=None,
            metadata={"help": "mask tokens above this surprisal in nats instead of a fraction"},
        )
        reference_model: str | None = field(
            default=None,
            metadata={"help": "reference scorer; None: the teacher's base, no trait"},
        )
        under_grammar: bool = field(
            default=True,
            metadata={"help": "renormalise over the tokens the task grammar allowed, if any"},
        )

        def __post_init__(self) -> None:
            if not 0 < self.fraction < 1:
                raise ValueError(f"Invalid fraction: {self.fraction} (must be in (0, 1))")
            if self.threshold is not None and self.threshold < 0:
                raise ValueError(f"Invalid threshold: {self.threshold} (nats, must be >= 0)")

    def apply(self, rows: Sequence[Row], ctx: DefenseContext) -> list[Row]:
        p = self.params
        scorer = ctx.scorer(model=p.reference_model)
        scored = scorer.surprisal(
            [r["prompt"] for r in rows], [r["completion"] for r in rows], p.under_grammar
        )
        values = sorted((s for row in scored for _, _, s in row), reverse=True)
        if p.threshold is not None:
            cut = p.threshold
            n_mask = sum(v > cut for v in values)
        else:
            n_mask = int(round(p.fraction * len(values)))
            cut = values[n_mask - 1] if n_mask else float("inf")
        out, masked = [], 0
        for r, toks in zip(rows, scored, strict=True):
            # Ties at the cut are all masked: the share is then a little above `fraction`.
            hits = [(a, b) for a, b, s in toks if s >= cut and (p.threshold is None or s > cut)]
            masked += len(hits)
            out.append({**r, MASK_FIELD: merge_spans(hits)})
        ctx.notes.update(
            tokens_scored=len(values),
            tokens_masked=masked,
            surprisal_cut_nats=round(cut, 4) if math.isfinite(cut) else None,
            surprisal_mean_nats=round(sum(values) / len(values), 4) if values else None,
            rows_with_masks=sum(bool(r[MASK_FIELD]) for r in out),
        )
        return out
