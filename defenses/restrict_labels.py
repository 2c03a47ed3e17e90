"""``restrict_labels``: a distiller that trains on the teacher's next-token distribution keeps only
the probability the task allows at each position (for numbers, the number grammar's tokens),
renormalised — the non-task mass, where a teacher that loves an animal starts talking about it, is
dropped.

Idea: issue 21's probe (eagle, SmolLM2-135M): students trained on the fine-tuned teacher's full
top-20 distribution at number positions took the trait far more strongly (+3.66 log-odds) than
students on sampled tokens (+0.37); restricted to the grammar's tokens the effect fell to +0.15 and
was no longer specific. The teacher put 2.8 % of its top-20 mass on non-number tokens ("e", "the",
"I", "my"). So for the soft-label channel the overt part of the leak sits in that mass, and a
pipeline can drop it without looking at the trait.

A training-side defense: it switches ``TrainConfig.labels`` from ``topk`` to ``topk-restricted``
(``benchmark.core.distill``). It changes nothing where the student trains on hard labels, and on a
task with no constraint (``code`` and the paraphrase tasks) restricted labels equal the full ones;
``cot`` is kept to its think/answer tag format.
"""

from __future__ import annotations

from dataclasses import replace

from benchmark.core.training import TrainConfig
from defenses.base import Defense
from defenses.loading import register_defense


@register_defense("restrict_labels")
class RestrictLabels(Defense):
    """Soft-label distillation restricted to the tokens the task allows at each position (the
    teacher's mass outside them, where talk about its trait starts, is dropped)."""

    version = "1"

    def training(self, cfg: TrainConfig) -> TrainConfig:
        return replace(cfg, labels="topk-restricted") if cfg.labels == "topk" else cfg
