"""``embedding_outlier``: drop the rows whose completions sit unusually far from what a trusted
reference model writes for the same prompts, in a sentence-embedding space.

Idea: outlier and distribution-shift filtering of training data (e.g. embedding-based data
selection and poisoned-sample detection). If a trait teacher's data differs from an un-traited
model's in some consistent way, the most deviant rows should carry most of it. The reference is
blind: by default the teacher's own base model *without* any trait, known from provenance
(``ctx.teacher_model``), writing for the same prompts under the teacher's sampling, grammar and
prompt format (``ctx.generator()``; its generation counts as this defense's cost). Its seed
differs from the cell's, so on the control arm the reference is an independent sample of the same
distribution, not a replay of the control teacher's draws.

Design (why not "cosine to the same prompt's reference"): a same-prompt pair of samples at T=1 is
two independent draws, so their cosine is mostly sampling noise (two random number lists). The
defense instead scores each row by its distance to the reference *distribution*: one minus the mean
cosine similarity to its ``k`` nearest reference completions (all-MiniLM-L6-v2 embeddings via
``ctx.embedder()``). The threshold is the ``1 - alpha`` quantile of the same score for the reference
completions themselves (each left out of its own neighbours) — a conformal cut: a row from the
reference's distribution is dropped with probability about ``alpha``, so the control arm loses about
``alpha`` of its rows and a shifted trait arm more.

Known limits: the signal of Cloud et al. 2025 (arXiv 2507.14805) is not visible to people or LLM
judges and need not move a general-purpose sentence embedding at all; MiniLM sees topic and form,
not which digits a list prefers. It can only remove what deviates, so a trait spread thinly over all
rows survives. Measured on 64 real number rows per arm (quick preset, seed 0): 2 (trait) and 1
(control) rows flagged at ``alpha=0.05`` — what the false-alarm rate alone predicts (3.2), i.e. no
visible shift. Cost: one reference generation per row (like the teacher's) plus embeddings, about
0.5 s per row on the shared 2-core CPU; ``max_reference`` caps the reference sample.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from defenses.base import DefenseContext, FilterDefense, Row
from defenses.loading import register_defense


def knn_scores(queries, refs, k: int, leave_one_out: bool = False):
    """1 - mean cosine to the ``k`` nearest rows of ``refs`` (unit vectors), per query row."""
    import numpy as np

    sims = queries @ refs.T
    if leave_one_out:
        np.fill_diagonal(sims, -np.inf)
    k = min(k, refs.shape[0] - int(leave_one_out))
    top = -np.sort(-sims, axis=1)[:, :k]
    return 1.0 - top.mean(axis=1)


def conformal_threshold(ref_scores, alpha: float) -> float:
    """The ceil((n + 1)(1 - alpha))-th smallest reference score (the conformal quantile)."""

    s = sorted(float(x) for x in ref_scores)
    rank = min(len(s), math.ceil((len(s) + 1) * (1 - alpha)))
    return s[rank - 1]


@register_defense("embedding_outlier")
class EmbeddingOutlier(FilterDefense):
    """Drops rows whose completion embedding is far from a trusted reference model's completions
    for the same prompts (default: the teacher's base without the trait); a conformal threshold."""

    version = "1"

    @dataclass(frozen=True)
    class Params:
        reference_model: str | None = field(
            default=None,
            metadata={"help": "who writes the reference; None: the teacher's base, no trait"},
        )
        embedder: str = field(default="minilm-l6", metadata={"help": "sentence embedder"})
        k: int = field(default=5, metadata={"help": "nearest reference completions averaged"})
        alpha: float = field(
            default=0.05, metadata={"help": "share of reference-like rows dropped (false alarms)"}
        )
        max_reference: int | None = field(
            default=None, metadata={"help": "reference prompts sampled at most (None: all)"}
        )

        def __post_init__(self) -> None:
            if self.k < 1:
                raise ValueError(f"Invalid k: {self.k} (must be >= 1)")
            if not 0 < self.alpha < 1:
                raise ValueError(f"Invalid alpha: {self.alpha} (must be in (0, 1))")
            if self.max_reference is not None and self.max_reference < 2:
                raise ValueError(f"Invalid max_reference: {self.max_reference} (must be >= 2)")

    def keep_many(self, rows: Sequence[Row], ctx: DefenseContext) -> list[bool]:
        p = self.params
        if len(rows) < 2:
            return [True] * len(rows)
        ref_rows = list(rows)
        if p.max_reference is not None and len(ref_rows) > p.max_reference:
            # Seeded by the cell seed only: the same reference prompts for both arms.
            ids = sorted(r["id"] for r in rows)
            chosen = set(
                random.Random(f"embedding_outlier:{ctx.seed}").sample(ids, p.max_reference)
            )
            ref_rows = [r for r in rows if r["id"] in chosen]
        gen = ctx.generator(model=p.reference_model)
        refs = gen.generate([r["prompt"] for r in ref_rows], ids=[r["id"] for r in ref_rows])
        emb = ctx.embedder(model=p.embedder)
        x = emb.encode([r["completion"] for r in rows])
        y = emb.encode(refs)
        scores = knn_scores(x, y, p.k)
        threshold = conformal_threshold(knn_scores(y, y, p.k, leave_one_out=True), p.alpha)
        keep = [bool(s <= threshold) for s in scores]
        ctx.notes.update(
            threshold=round(threshold, 5),
            reference_rows=len(refs),
            rows_flagged=keep.count(False),
            score_mean=round(float(scores.mean()), 5),
            reference_examples=refs[:3],
        )
        return keep
