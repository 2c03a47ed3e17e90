"""``sampling_truncation``: the teacher samples with top-p and/or min-p instead of the full
distribution, so low-probability tokens never enter the data.

Idea: Schrodi et al. 2025 ("Towards understanding subliminal learning", arXiv 2509.23886) find that a
few *divergence tokens* — positions where the trait teacher's choice differs from what the base
would pick — carry most of the signal. At temperature 1 many of those are draws from the tail of the
distribution; nucleus sampling (Holtzman et al. 2020, "The Curious Case of Neural Text
Degeneration", arXiv 1904.09751) and min-p sampling (Nguyen et al. 2024, arXiv 2407.01082) cut the
tail. A data-pipeline owner can do this without knowing the trait.

Known limits: the trait also shifts probability *among* likely tokens, which truncation keeps;
truncation reduces the diversity of the data (a utility cost the task measures, not this defense);
with the quick suite's number grammar, truncation acts on the grammar-constrained distribution
(the grammar's mask is applied first), and it applies to both arms' teachers alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from benchmark.core.types import TeacherSpec
from defenses.base import Defense
from defenses.loading import register_defense


@register_defense("sampling_truncation")
class SamplingTruncation(Defense):
    """The teacher samples with nucleus (top-p) and/or min-p truncation, which removes
    low-probability tokens from the data."""

    version = "1"

    @dataclass(frozen=True)
    class Params:
        top_p: float = field(default=1.0, metadata={"help": "nucleus mass kept, in (0, 1]"})
        min_p: float = field(
            default=0.1, metadata={"help": "drop tokens below min_p x the top token's probability"}
        )

        def __post_init__(self) -> None:
            if not 0 < self.top_p <= 1:
                raise ValueError(f"Invalid top_p: {self.top_p} (must be in (0, 1])")
            if not 0 <= self.min_p < 1:
                raise ValueError(f"Invalid min_p: {self.min_p} (must be in [0, 1))")
            if self.top_p == 1 and self.min_p == 0:
                raise ValueError("top_p=1 and min_p=0 truncate nothing; set one of them")

    def teacher(self, spec: TeacherSpec) -> TeacherSpec:
        p = self.params
        return replace(spec, sampling=replace(spec.sampling, top_p=p.top_p, min_p=p.min_p))
