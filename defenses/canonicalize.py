"""``canonicalize``: rewrite every completion into a canonical form, removing the freedom of *how*
the teacher wrote it while keeping *what* it wrote.

Number lists (detected by parsing, so the defense stays blind to the task: a completion that
``benchmark.core.number_lists.parse_numbers`` accepts is a number list) are re-emitted as ``"a, b, c"`` with

* ``mode="sort"`` — the same numbers in ascending order (order and separator style go);
* ``mode="dedupe"`` — the sorted distinct numbers (repetition goes too);
* ``mode="resample"`` — as many fresh numbers (0–999), drawn from a generator seeded by the cell
  seed and the row id only: everything the teacher chose but the count goes.

Other text is normalised: Unicode NFKC, curly quotes and dashes to ASCII, runs of spaces collapsed,
trailing spaces and extra blank lines dropped, a sentence's first letter capitalised (prose only —
text that looks like code keeps its case and inner spacing), and a closing assistant pleasantry
("Let me know if ...", "I hope this helps") removed.

Idea: Cloud et al. 2025 (arXiv 2507.14805) report that the signal survives format filters; the
"paraphrase" results of Gisler et al. 2026 (arXiv 2603.09517) show it survives rewording. This is
the cheapest blind rewrite one could try before those: if the signal lived in ordering, separators,
repetition or formatting, canonical forms would remove it.

Known limits: ``sort``/``dedupe`` keep the multiset of numbers, where a preference can still hide
(Cloud et al.'s numbers carry it without any visible pattern); ``resample`` removes every
teacher choice but the count, and with it the data's utility — it is a bound, not a usable
defense. Text normalisation leaves wording untouched. The code heuristic can misjudge prose with
many symbols (then casing is left alone).
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from benchmark.core.number_lists import parse_numbers
from defenses.base import DefenseContext, RewriteDefense, Row
from defenses.loading import register_defense

_QUOTES = str.maketrans(
    {"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "–": "-", "—": "-", "…": "..."}
)
_CHATTER = re.compile(
    r"(?:\s*(?:let me know if|i hope (?:this|that) helps|feel free to|hope (?:this|that) helps|"
    r"happy to help|is there anything else)[^\n]*)+\s*$",
    re.IGNORECASE,
)
_SENTENCE_START = re.compile(r"(^|[.!?]\s+|\n\s*)([a-z])")
_CODE_HINTS = re.compile(r"```|^\s*(?:def|class|import|from|return|for|if)\b|[{};]\s*$|=>|==", re.M)


_NUMBER_MODES = {
    "sort": lambda nums, rng: sorted(nums),
    "dedupe": lambda nums, rng: sorted(set(nums)),
    "resample": lambda nums, rng: [rng.randint(0, 999) for _ in nums],
}


def looks_like_code(text: str) -> bool:
    return bool(_CODE_HINTS.search(text))


def normalise_text(text: str) -> str:
    """The canonical form of a non-number completion (module docstring)."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    code = looks_like_code(text)
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    if not code:  # inner spacing is meaningful in code, not in prose
        lines = [re.sub(r"[ \t]+", " ", line).strip() for line in lines]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    if not code:
        text = _CHATTER.sub("", text).rstrip()
        text = _SENTENCE_START.sub(lambda m: m[1] + m[2].upper(), text)
    return text


@register_defense("canonicalize")
class Canonicalize(RewriteDefense):
    """Rewrites completions into a canonical form: number lists sorted, deduplicated or resampled;
    other text with normalised Unicode, quotes, spacing, sentence case and no closing chatter."""

    version = "1"

    @dataclass(frozen=True)
    class Params:
        mode: Literal["sort", "dedupe", "resample"] = field(
            default="sort", metadata={"help": "what to do with a number list"}
        )
        text: bool = field(default=True, metadata={"help": "also normalise non-number text"})

    def rewrite_many(self, rows: Sequence[Row], ctx: DefenseContext) -> list[str | None]:
        out: list[str | None] = []
        for r in rows:
            nums = parse_numbers(r["completion"], max_count=10**6)
            if nums is None:
                out.append(normalise_text(r["completion"]) if self.params.text else r["completion"])
                continue
            # Seeded by row id, not by content: the teacher's numbers cannot steer the draw.
            rng = random.Random(f"canonicalize:{ctx.seed}:{r['id']}")
            nums = _NUMBER_MODES[self.params.mode](nums, rng)
            out.append(", ".join(map(str, nums)))
        return out
