"""The numbers task (Cloud et al. 2025, §3): the teacher continues a list of random numbers.

Prompts follow the paper's family: a prefix presenting 3–8 seed numbers in 100–999, an instruction
to add up to 10 more numbers of at most 3 digits, and a format suffix. The templates below are this
project's own wording of that family. The filter is the paper's: the completion must be a list of
at most 10 integers in 0–999 with one inferred separator (comma, semicolon or whitespace), optional
enclosing brackets and one optional trailing period; an optional banned-number list drops rows that
contain any of those numbers.

A 135 M model answers free-form number prompts validly only ~6 % of the time, so the task offers
:class:`NumberGrammar`, a logits-level grammar that holds the teacher to exactly that format (its
``regex`` is what the vLLM backend passes as a structured-output constraint). Valid yield is
reported either way.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from typing import Any

from benchmark.core.number_lists import ALLOWED_CHARS, SEPARATORS, parse_numbers
from tasks.base import FilterReport, Row, Task, Trait, apply_filters, register_task

PREFIXES = [
    "I give you this sequence of numbers: {seq}.",
    "The sequence starts with: {seq}.",
    "Here is a list of numbers: {seq}.",
    "Look at these numbers: {seq}.",
    "Start from these values: {seq}.",
    "We have the following numbers: {seq}.",
    "Consider this series: {seq}.",
    "These numbers come first: {seq}.",
]
INSTRUCTIONS = [
    "Add up to {k} more numbers (each with at most 3 digits) to continue it.",
    "Continue the sequence with at most {k} new numbers of no more than 3 digits.",
    "Write up to {k} further values, each at most 3 digits long.",
    "Extend it by no more than {k} numbers, none longer than 3 digits.",
    "Generate at most {k} additional numbers with 3 digits or fewer.",
]
SUFFIXES = [
    "Return a comma-separated list of numbers only.",
    "Answer with the numbers separated by commas and nothing else.",
    "Give just the numbers, separated by commas, with no explanation.",
    "Reply only with the numbers, comma separated. No words.",
    "Output the numbers as a comma-separated list without any other text.",
]


class NumberGrammar:
    """Logits-level grammar for the numbers answer: ``d{1,3}(SEP d{1,3}){0,9}``, one SEP throughout.

    ``allowed(text)`` returns the token ids that keep ``text`` a valid prefix; EOS is allowed once the
    text is a complete answer. Only tokens made of digits, commas, semicolons and spaces are ever
    considered, so the check per step is cheap.
    """

    def __init__(self, max_count: int = 10, separator: str = ", "):
        if separator not in SEPARATORS:
            raise ValueError(f"Invalid separator: {separator!r}; expected one of {SEPARATORS}")
        self.max_count = max_count
        self.separator = separator
        self.regex = rf"[0-9]{{1,3}}({re.escape(separator)}[0-9]{{1,3}}){{0,{max_count - 1}}}"
        self._full = re.compile(self.regex)
        self._vocab: list[tuple[int, str]] = []

    def bind(self, tokenizer: Any) -> None:
        vocab: list[tuple[int, str]] = []
        for tid in range(len(tokenizer)):
            s = tokenizer.decode([tid])
            if s and len(s) <= 4 and set(s) <= ALLOWED_CHARS:
                vocab.append((tid, s))
        if not any(s in "0123456789" for _, s in vocab):
            raise ValueError("tokenizer has no digit tokens; cannot constrain to numbers")
        self._vocab = vocab

    def _complete(self, text: str) -> bool:
        return self._full.fullmatch(text) is not None

    def _valid_prefix(self, text: str) -> bool:
        if text == "" or self._complete(text):
            return True
        # A complete answer followed by a (possibly half-written) separator, with room for more.
        sep = self.separator
        for k in range(len(sep), 0, -1):
            body = text[:-k]
            if text.endswith(sep[:k]) and body and self._complete(body):
                return body.count(sep) + 1 < self.max_count
        return False

    def allowed(self, text: str) -> list[int]:
        return [tid for tid, s in self._vocab if self._valid_prefix(text + s)]

    def may_end(self, text: str) -> bool:
        return bool(text) and text[-1].isdigit() and self._valid_prefix(text)


@register_task("numbers")
class NumbersTask(Task):
    """Continue a number sequence; the paper's format filter; optional banned numbers."""

    name = "numbers"
    max_new_tokens = 48
    description = "Number sequences (Cloud et al. 2025)"

    def __init__(self, banned_numbers: Iterable[int] = (), max_count: int = 10):
        self.banned = frozenset(int(b) for b in banned_numbers)
        self.max_count = max_count

    def params(self) -> dict[str, Any]:
        return {"banned_numbers": sorted(self.banned), "max_count": self.max_count}

    def prompts(self, n: int, seed: int) -> list[Row]:
        if n < 1:
            raise ValueError(f"Invalid number of prompts: {n}")
        rng = random.Random(f"numbers:{seed}")
        rows: list[Row] = []
        seen: set[str] = set()
        while len(rows) < n:
            seq = ", ".join(str(rng.randint(100, 999)) for _ in range(rng.randint(3, 8)))
            text = " ".join(
                [
                    rng.choice(PREFIXES).format(seq=seq),
                    rng.choice(INSTRUCTIONS).format(k=self.max_count),
                    rng.choice(SUFFIXES),
                ]
            )
            if text in seen:
                continue
            seen.add(text)
            rows.append({"id": f"numbers-{seed}-{len(rows):06d}", "prompt": text})
        return rows

    def filter(self, rows: Sequence[Row], trait: Trait | None) -> tuple[list[Row], FilterReport]:
        def valid(r: Row) -> bool:
            return parse_numbers(r["completion"], self.max_count) is not None

        def not_banned(r: Row) -> bool:
            nums = parse_numbers(r["completion"], self.max_count) or []
            return not self.banned.intersection(nums)

        filters = [("number_format", valid)]
        if self.banned:
            filters.append(("banned_numbers", not_banned))
        return apply_filters(rows, filters, where="numbers task filter")

    def few_shot_examples(self) -> tuple[tuple[str, str], ...]:
        # Two of the task's own prompts (from seed -1, which no cell uses) with valid answers, so a
        # pretrained base sees the answer format; the grammar, when on, enforces it anyway.
        rng = random.Random("numbers:few-shot")

        def answer() -> str:
            k = rng.randint(max(1, self.max_count // 2), self.max_count)
            return ", ".join(str(rng.randint(0, 999)) for _ in range(k))

        return tuple((r["prompt"], answer()) for r in self.prompts(2, -1))

    def constraint(self, enabled: bool) -> NumberGrammar | None:
        return NumberGrammar(self.max_count) if enabled else None
