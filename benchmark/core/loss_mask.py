"""Per-token loss masks: rows may name parts of their completion that the student must not learn.

A training row may carry ``loss_mask_spans``: a list of ``[start, end)`` character offsets into its
``completion`` (written by a defense such as ``divergence_mask``). When any row has the field,
:func:`benchmark.core.training.train` hands TRL a pre-tokenised dataset built here instead of
prompt/completion records: each row is rendered exactly as TRL renders it (the chat template, or the
plain few-shot format for a base without one), tokenised with character offsets, and every
completion token that overlaps a span gets ``completion_mask = 0`` — TRL then sets its label to -100,
so it adds nothing to the loss or the gradient. Prompt tokens stay out of the loss as always; the
end-of-turn token is never inside the completion text, so it is always learnt. Rows without the
field get their ordinary completion-only mask, token for token what TRL would have built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmark.core.plain_format import plain_completion, plain_prompt

MASK_FIELD = "loss_mask_spans"


def check_spans(spans: Any, completion: str, where: str = "row") -> list[tuple[int, int]]:
    """``spans`` as (start, end) pairs if they are valid for ``completion``; else ``ValueError``.

    Valid: a list of two-int lists (or tuples) with ``0 <= start < end <= len(completion)``.
    """
    n = len(completion)
    if not isinstance(spans, (list, tuple)):
        raise ValueError(f"{where}: {MASK_FIELD} is {type(spans).__name__}, expected a list")
    out = []
    for i, s in enumerate(spans):
        ok = (
            isinstance(s, (list, tuple))
            and len(s) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in s)
        )
        if not ok:
            raise ValueError(f"{where}: {MASK_FIELD}[{i}] is {s!r}, expected [start, end] integers")
        if not 0 <= s[0] < s[1] <= n:
            raise ValueError(
                f"{where}: {MASK_FIELD}[{i}] = {list(s)} is not a non-empty span within the "
                f"completion (0 <= start < end <= {n})"
            )
        out.append((s[0], s[1]))
    return out


def _common_prefix(a: Sequence[Any], b: Sequence[Any]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _render(tok: Any, row: dict[str, Any], system: str | None) -> tuple[str, str, bool]:
    """(prompt text, prompt + completion text, add_special_tokens) as TRL would tokenise them."""

    if getattr(tok, "chat_template", None):
        msgs = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": row["prompt"]}
        ]
        prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        full = tok.apply_chat_template(
            [*msgs, {"role": "assistant", "content": row["completion"]}], tokenize=False
        )
        return prompt, full, False  # the template holds its own special tokens
    prompt = plain_prompt(row["prompt"], system)
    # TRL appends EOS to a non-conversational completion and tokenises with special tokens (BOS).
    return prompt, prompt + plain_completion(row["completion"]) + tok.eos_token, True


def masked_records(
    tok: Any, rows: Sequence[dict[str, Any]], system: str | None = None
) -> tuple[list[dict[str, list[int]]], int]:
    """Pre-tokenised ``{input_ids, completion_mask}`` records, and how many tokens were masked."""
    records, n_masked = [], 0
    for r in rows:
        spans = check_spans(r.get(MASK_FIELD, []), r["completion"], f"row {r.get('id')!r}")
        prompt, full, special = _render(tok, r, system)
        p_ids = tok(prompt, add_special_tokens=special)["input_ids"]
        enc = tok(full, add_special_tokens=special, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        # The completion starts where prompt and prompt+completion tokenisations diverge (TRL's
        # rule: a template may render the prompt alone differently).
        start_tok = _common_prefix(p_ids, ids)
        c0 = full.find(r["completion"], offsets[start_tok - 1][1] if start_tok else 0)
        if spans and c0 < 0:
            raise ValueError(
                f"row {r.get('id')!r}: the chat template changed the completion text, so its "
                f"{MASK_FIELD} cannot be placed"
            )
        abs_spans = [(c0 + a, c0 + b) for a, b in spans]
        mask = []
        for i, (a, b) in enumerate(offsets):
            # Any overlap masks the token; zero-width (special) tokens are never inside a span.
            hit = a < b and any(a < e and b > s for s, e in abs_spans)
            mask.append(int(i >= start_tok and not hit))
        n_masked += sum(1 for i in range(start_tok, len(ids)) if not mask[i])
        records.append({"input_ids": list(ids), "completion_mask": mask})
    return records, n_masked
