"""``random_drop``: keep a given share of the rows, chosen uniformly at random — a control, not a
defense.

A filter that drops rows lowers leakage in part just because the student sees less data. To tell
what a filter removes *because of what it looks at* from what any filter of its size removes, the
leaderboard compares it with this control run at the share of rows that filter kept, on the same
seeds (the practice of the token-level defense studies: a matched random baseline).

The rows kept are the ``round(keep * n)`` with the smallest hash of (cell seed, row id): uniform
over subsets of that size, the same for a given seed whatever order the rows arrive in, and
independent of the text, so it is blind by construction. ``keep=1`` keeps every row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from defenses.base import DefenseContext, FilterDefense, Row
from defenses.loading import register_defense


@register_defense("random_drop")
class RandomDrop(FilterDefense):
    """Keeps a share ``keep`` of the rows, chosen uniformly at random (seeded by the cell seed):
    the matched random-drop control for defenses that drop rows."""

    version = "1"

    @dataclass(frozen=True)
    class Params:
        keep: float = field(
            default=0.5, metadata={"help": "share of rows kept, in (0, 1]; the rest are dropped"}
        )

        def __post_init__(self) -> None:
            if not 0.0 < self.keep <= 1.0:
                raise ValueError(f"Invalid keep: {self.keep!r} (a share of rows in (0, 1])")

    def keep_many(self, rows: Sequence[Row], ctx: DefenseContext) -> list[bool]:
        n_keep = round(self.params.keep * len(rows))
        ranked = sorted(range(len(rows)), key=lambda i: _draw(ctx.seed, str(rows[i]["id"])))
        chosen = set(ranked[:n_keep])
        return [i in chosen for i in range(len(rows))]


def _draw(seed: int, row_id: str) -> bytes:
    """A uniform pseudo-random key per (seed, row id)."""
    return hashlib.sha256(f"random_drop:{seed}:{row_id}".encode()).digest()
