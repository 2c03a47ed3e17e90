"""``freeze_early_layers``: the student trains with its first ``n_layers`` transformer layers
frozen (no LoRA adapters there; for a full fine-tune, no gradient there).

Idea: Schrodi et al. 2025 ("Towards understanding subliminal learning", arXiv 2509.23886) report
that early layers are critical for subliminal transmission: fine-tuning a single early layer is
enough to transmit the trait. If the hidden signal is picked up mainly through early layers,
leaving them untouched should reduce leakage while the later layers still learn the task. A
training-side defense: it needs no access to the data or the trait.

Known limits: the finding is from specific models and traits, and later layers may carry the
signal for others; freezing costs the student capacity (its quality on the task should be checked);
``n_layers`` must be smaller than the student's layer count (SmolLM2-135M has 30) — a larger value
is refused when training starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from benchmark.core.training import TrainConfig
from defenses.base import Defense
from defenses.loading import register_defense


@register_defense("freeze_early_layers")
class FreezeEarlyLayers(Defense):
    """The student trains with its first n_layers transformer layers frozen, where subliminal
    signals are reported to be absorbed (Schrodi et al. 2025)."""

    version = "1"

    @dataclass(frozen=True)
    class Params:
        n_layers: int = field(default=10, metadata={"help": "how many leading layers to freeze"})

        def __post_init__(self) -> None:
            if self.n_layers < 1:
                raise ValueError(f"Invalid n_layers: {self.n_layers} (must be >= 1)")

    def training(self, cfg: TrainConfig) -> TrainConfig:
        frozen = sorted({*cfg.frozen_layers, *range(self.params.n_layers)})
        return replace(cfg, frozen_layers=tuple(frozen))
