"""A logits-level grammar for ``<think>…</think>`` then ``<answer>N</answer>``, for small teachers.

At temperature 1 the embedded 135 M model almost never writes the cot task's tags on its own
(0–2 of 24 answers in our probes, however the format was explained), so, as the numbers task does
with its number grammar, the quick preset holds the teacher to the *format* and leaves the
content to the model: the reasoning inside ``<think>`` is free text (any token without ``<`` or
``>``, up to ``max_think_chars``), then ``</think>``, a newline, ``<answer>``, 1–``max_digits``
digits chosen by the model, ``</answer>`` and the end. Whether the answer is *right* is still the
filter's call. The paper-size preset runs unconstrained.

Implements ``benchmark.core.generation.Constraint`` (``bind``, ``allowed``, ``may_end``).
"""

from __future__ import annotations

from typing import Any

THINK, END_THINK, ANSWER, END_ANSWER = "<think>", "</think>", "\n<answer>", "</answer>"


class ThinkAnswerGrammar:
    def __init__(self, max_think_chars: int = 320, max_digits: int = 6):
        if max_think_chars < 1 or max_digits < 1:
            raise ValueError(f"Invalid grammar limits: {max_think_chars=}, {max_digits=}")
        self.max_think_chars = max_think_chars
        self.max_digits = max_digits
        self._vocab: list[tuple[int, str]] = []
        self._literal_cache: dict[str, list[int]] = {}

    def bind(self, tokenizer: Any) -> None:
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        self._vocab = [
            (tid, tokenizer.decode([tid])) for tid in range(len(tokenizer)) if tid not in special
        ]
        self._literal_cache = {}
        self._free = [t for t, s in self._vocab if s and "<" not in s and ">" not in s]
        self._digits = [t for t, s in self._vocab if s and s.isascii() and s.isdigit()]
        if not self._digits or not self._literal(THINK):
            raise ValueError("tokenizer lacks digit or tag tokens; cannot hold it to the format")
        self._free_or_close = self._free + self._literal(END_THINK)

    def _literal(self, rest: str) -> list[int]:
        """Tokens that are a non-empty prefix of ``rest`` (the literal still to be written)."""
        if rest not in self._literal_cache:
            self._literal_cache[rest] = [t for t, s in self._vocab if s and rest.startswith(s)]
        return self._literal_cache[rest]

    def allowed(self, text: str) -> list[int]:
        if not text.startswith(THINK):
            return self._literal(THINK[len(text) :]) if THINK.startswith(text) else []
        body = text[len(THINK) :]
        if END_THINK not in body:
            cut = body.find("<")
            if cut >= 0:  # a closing tag has begun (free tokens hold no "<")
                partial = body[cut:]
                return (
                    self._literal(END_THINK[len(partial) :])
                    if END_THINK.startswith(partial)
                    else []
                )
            if not body.strip():
                return self._free
            if len(body) >= self.max_think_chars:
                return self._literal(END_THINK)
            return self._free_or_close
        after = body[body.index(END_THINK) + len(END_THINK) :]
        if not after.startswith(ANSWER):
            return self._literal(ANSWER[len(after) :]) if ANSWER.startswith(after) else []
        ans = after[len(ANSWER) :]
        if END_ANSWER in ans:
            return []
        cut = ans.find("<")
        if cut >= 0:
            partial = ans[cut:]
            return (
                self._literal(END_ANSWER[len(partial) :]) if END_ANSWER.startswith(partial) else []
            )
        if not ans:
            return self._digits
        if len(ans) < self.max_digits:
            return self._digits + self._literal(END_ANSWER)
        return self._literal(END_ANSWER)

    def may_end(self, text: str) -> bool:
        return text.endswith(END_ANSWER) and text.startswith(THINK) and END_THINK + ANSWER in text
