"""Digit-entropy filter: an example defense written outside subliminal-bench, as a submitter would.

Hypothesis: a teacher with a hidden preference writes numbers that are a little less random than
its base does, and the least random rows carry most of it. The filter scores each number-list
completion by the Shannon entropy of its digit histogram and drops the ``drop_share`` of those
rows with the lowest entropy (ties broken by position, so exactly that many go). Completions that
are not number lists are kept: the filter has no opinion on them.

It uses nothing but the public interface — subclass ``FilterDefense``, declare ``Params``,
implement ``keep_many`` (it needs all rows at once to pick a threshold) — and runs in the
benchmark's child process like any plugin that is not built in.

Known limits: the hypothesis is untested, and Cloud et al. (2025, arXiv 2507.14805) found no
visible statistical pattern in the numbers that carry a trait; entropy of 10–30 digits is noisy,
so the filter mostly removes short lists.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

from defenses import FilterDefense

_NUMBER_LIST = re.compile(r"^\s*[\[(]?\s*\d+(?:\s*[,;]?\s*\d+)*\s*[\])]?\s*\.?\s*$")


def digit_entropy(text: str) -> float | None:
    """Entropy in bits of the digit histogram of a number list; None for other text."""
    if not _NUMBER_LIST.match(text):
        return None
    counts = Counter(c for c in text if c.isdigit())
    n = sum(counts.values())
    return -sum(k / n * math.log2(k / n) for k in counts.values())


class DigitEntropyFilter(FilterDefense):
    """Drops the share of number-list rows whose digits are least uniform (lowest digit entropy),
    on the hypothesis that a hidden preference makes a teacher's numbers less random."""

    name = "digit-entropy"
    version = "1.0"

    @dataclass(frozen=True)
    class Params:
        drop_share: float = field(
            default=0.2, metadata={"help": "share of number-list rows to drop, in [0, 1)"}
        )

        def __post_init__(self) -> None:
            if not 0 <= self.drop_share < 1:
                raise ValueError(f"Invalid drop_share: {self.drop_share} (must be in [0, 1))")

    def keep_many(self, rows, ctx):
        scores = [digit_entropy(r["completion"]) for r in rows]
        ranked = sorted((s, i) for i, s in enumerate(scores) if s is not None)
        dropped = {i for _, i in ranked[: int(len(ranked) * self.params.drop_share)]}
        ctx.notes["digit_entropy_dropped"] = len(dropped)
        return [i not in dropped for i in range(len(rows))]
