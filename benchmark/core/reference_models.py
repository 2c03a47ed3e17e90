"""Reference helpers a defense borrows to ask "what would a trusted model have written here?".

Both run a *trusted reference* model — by default the teacher's own base model without any trait,
as the defense knows it from provenance — under the teacher's generation settings
(:class:`GenerationSettings`: sampling, the task's grammar, few-shot examples for a base without a
chat template; never a system prompt or adapter). They count their use like the helpers in
``benchmark.core.helper_models``, so a defense's cost is reported.

* :class:`Generator` — writes reference completions for prompts (``embedding_outlier``).
* :class:`TokenScorer` — the surprisal (−log p, nats) the reference assigns to each token of a given
  completion after its prompt, with the token's character span (``divergence_mask``). Under the
  teacher's grammar the probability is renormalised over the tokens the grammar allowed there, so a
  token is surprising only relative to the choices the teacher really had.

Both prompt a chat model with its chat template and a base model in the plain few-shot format
(``benchmark.core.plain_format``), as the pipeline prompted the teacher.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from benchmark.core.backends import get_backend
from benchmark.core.generation import GenerationRequest, SamplingParams, progress_bar
from benchmark.core.helper_models import Usage
from benchmark.core.models import load_causal_lm, load_tokenizer
from benchmark.core.plain_format import (
    PLAIN_STOP,
    cut_plain_output,
    has_chat_template,
    plain_prompt,
)


@dataclass(frozen=True)
class GenerationSettings:
    """How the teacher generated, minus the trait: what a reference must copy to be comparable."""

    sampling: SamplingParams = field(default_factory=SamplingParams)
    constraint: Any = None  # the task's logits-level grammar, if generation used one
    shots: tuple[tuple[str, str], ...] = ()  # worked examples for a base without a chat template
    backend: str = "transformers"

    def __repr__(self) -> str:
        # Compact: it names the helper in cost reports (DefenseContext keys helpers by repr).
        s = self.sampling
        grammar = type(self.constraint).__name__ if self.constraint is not None else "none"
        return (
            f"T={s.temperature},top_p={s.top_p},min_p={s.min_p},max_new={s.max_new_tokens},"
            f"grammar={grammar},shots={len(self.shots)},{self.backend}"
        )


def _request(rid: str, prompt: str, chat: bool, shots: Sequence[Sequence[str]]) -> Any:
    if chat:
        return GenerationRequest(rid, (("user", prompt),))
    return GenerationRequest(rid, raw_prompt=plain_prompt(prompt, None, shots))


@dataclass
class Generator:
    """Reference completions from ``model`` under the teacher's settings and its own ``seed``."""

    model: str
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    seed: int = 0
    batch_size: int = 64
    usage: Usage = field(default_factory=Usage)
    _backend: Any = field(default=None, repr=False)

    def generate(self, prompts: Sequence[str], ids: Sequence[str] | None = None) -> list[str]:
        """One completion per prompt, in order; ``ids`` (default positions) seed the batches."""

        s = self.settings
        if self._backend is None:
            kw = {"batch_size": self.batch_size} if s.backend == "transformers" else {}
            self._backend = get_backend(s.backend, **kw)
        ids = list(ids) if ids is not None else [f"ref-{i:06d}" for i in range(len(prompts))]
        chat = has_chat_template(self.model)
        reqs = [_request(i, p, chat, s.shots) for i, p in zip(ids, prompts, strict=True)]
        t0 = time.perf_counter()
        sampling = replace(s.sampling, seed=self.seed, stop=() if chat else PLAIN_STOP)
        outs = self._backend.generate(
            self.model,
            reqs,
            sampling,
            s.constraint,
            progress=progress_bar(f"reference[{self.model}]", len(reqs)),
        )
        outs = outs if chat else [cut_plain_output(o) for o in outs]
        tok = load_tokenizer(self.model)
        n_tok = sum(len(tok.encode(o, add_special_tokens=False)) for o in outs)
        self.usage.add(len(prompts), n_tok, time.perf_counter() - t0)
        return outs


@dataclass
class TokenScorer:
    """Per-token surprisal of completions under ``model`` (see the module docstring)."""

    model: str
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    batch_size: int = 16
    usage: Usage = field(default_factory=Usage)
    _loaded: Any = field(default=None, repr=False)

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            self._loaded = load_causal_lm(self.model)
        return self._loaded

    def _encode(self, tok: Any, prompt: str, completion: str) -> tuple[list[int], list, int]:
        """(ids of prompt + completion, completion tokens' char offsets, prompt length)."""
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
            p_ids = tok(text, add_special_tokens=False)["input_ids"]
        else:
            p_ids = tok(plain_prompt(prompt, None, self.settings.shots))["input_ids"]
        enc = tok(completion, add_special_tokens=False, return_offsets_mapping=True)
        return list(p_ids) + list(enc["input_ids"]), list(enc["offset_mapping"]), len(p_ids)

    def surprisal(
        self, prompts: Sequence[str], completions: Sequence[str], under_grammar: bool = True
    ) -> list[list[tuple[int, int, float]]]:
        """For each row, ``(char_start, char_end, nats)`` per completion token, in order."""
        import torch

        model, tok = self._load()
        constraint = self.settings.constraint if under_grammar else None
        if constraint is not None:
            constraint.bind(tok)
        t0 = time.perf_counter()
        rows = [self._encode(tok, p, c) for p, c in zip(prompts, completions, strict=True)]
        out: list[list[tuple[int, int, float]]] = []
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        eos = tok.eos_token_id
        for b in range(0, len(rows), self.batch_size):
            chunk = rows[b : b + self.batch_size]
            width = max(len(ids) for ids, _, _ in chunk)
            keep = max(len(ids) - n_p for ids, _, n_p in chunk) + 1
            # Left padding puts every completion at the end, so only the last `keep` positions'
            # logits are computed; explicit position ids keep padded rows' positions right.
            ids = torch.tensor([[pad] * (width - len(r[0])) + r[0] for r in chunk])
            att = torch.tensor([[0] * (width - len(r[0])) + [1] * len(r[0]) for r in chunk])
            pos = (att.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                logits = model(
                    input_ids=ids.to(model.device),
                    attention_mask=att.to(model.device),
                    position_ids=pos.to(model.device),
                    logits_to_keep=keep,
                ).logits.float()
            logp = torch.log_softmax(logits, dim=-1).cpu()
            for j, (r_ids, offsets, n_p) in enumerate(chunk):
                n_c = len(r_ids) - n_p
                # Kept position t is absolute position width - keep + t; it predicts the next token.
                first = keep - 1 - n_c
                row = []
                for k in range(n_c):
                    lp = logp[j, first + k]
                    tid = r_ids[n_p + k]
                    value = float(lp[tid])
                    if constraint is not None:
                        value -= _allowed_mass(
                            lp, tid, constraint, completions[b + j], offsets, k, eos
                        )
                    row.append((int(offsets[k][0]), int(offsets[k][1]), -value))
                out.append(row)
        n_tok = sum(len(r[0]) for r in rows)
        self.usage.add(len(rows), n_tok, time.perf_counter() - t0)
        return out


def _allowed_mass(
    lp: Any, tid: int, constraint: Any, completion: str, offsets: list, k: int, eos: int | None
) -> float:
    """log of the probability mass the grammar allowed before token ``k`` (EOS included where it
    could end); 0 — no renormalisation — when the grammar would not have allowed the token as
    tokenised here."""
    import torch

    text = completion[: offsets[k - 1][1]] if k else ""
    allowed = list(constraint.allowed(text) or [])
    if tid not in allowed:
        return 0.0
    if eos is not None and constraint.may_end(text):
        allowed.append(eos)
    return float(torch.logsumexp(lp[allowed], dim=-1))
