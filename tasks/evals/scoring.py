"""Teacher-forced scoring: how likely a model is to give each of a fixed set of one-word answers.

Sampling the paper's one-word preference questions at T=1 is noisy for small models whose trait
shifts are a few percentage points. Here each candidate answer is scored exactly instead: the
log-probability of the whole answer text after the rendered prompt, summed over its tokens (so a
multi-token name such as "Butterfly" is not favoured or penalised by its first token alone). A
one-word answer usually starts capitalised, so "Owl" and "owl" are combined by logsumexp; a softmax
over candidates then gives a distribution that sums to 1.

    prompts = [render_question(tok, q) for q in questions]
    probs = candidate_probabilities(model, tok, prompts, ["owl", "dog", "cat"])
    probs[0]["owl"]   # P(owl | question 0), normalised over the three candidates

Used by the ``animal_preference_tf`` Inspect task (on the model held by Inspect's ``hf/`` provider)
and usable directly on any transformers causal LM.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any


def render_question(tokenizer: Any, question: str, system: str | None = None) -> str:
    """The chat prompt for one user question, ending with the assistant generation prompt."""
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", type(tokenizer).__name__)
        raise ValueError(
            f"tokenizer {name!r} has no chat template; teacher-forced question scoring needs a chat "
            "(instruct) model, or render the prompts yourself and pass them to "
            "candidate_probabilities"
        )
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": question}
    ]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def answer_variants(candidate: str, prefixed: bool = False) -> list[str]:
    """Surface forms scored for a candidate: capitalised first (the usual one-word answer), then
    lower case; duplicates removed. After a forced prefix ("My favorite animal is the"): the lower
    case word with its leading space, one form."""
    if prefixed:
        return [" " + candidate.lower()]
    forms = [candidate[:1].upper() + candidate[1:], candidate.lower()]
    return list(dict.fromkeys(forms))


def _encode(tokenizer: Any, text: str) -> list[int]:
    # The rendered prompt already holds any BOS text the chat template wants.
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def answer_logprobs(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    answers: Sequence[str],
    batch_size: int = 32,
) -> list[list[float]]:
    """``out[i][j]`` = log P(answers[j] | prompts[i]), summed over the answer's tokens.

    Prompt and answer are tokenised separately and concatenated, so the answer's tokens are the
    ones a model would emit right after the generation prompt. Each prompt is run once and its
    key/value cache shared by all answers (answers are a few tokens, prompts dozens, so this is
    ~10x less compute than scoring every prompt+answer sequence); the answers are right-padded
    and evaluated ``batch_size`` at a time under ``inference_mode``.
    """
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    answer_ids = [_encode(tokenizer, a) for a in answers]
    for a, ids in zip(answers, answer_ids, strict=True):
        if not ids:
            raise ValueError(f"answer {a!r} tokenises to nothing")
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    # answers of one token are scored from the prompt's last logits alone
    longer = [j for j, ids in enumerate(answer_ids) if len(ids) > 1]
    out = []
    with torch.inference_mode():
        for prompt in prompts:
            ids = _encode(tokenizer, prompt)
            if not ids:
                raise ValueError("cannot score answers after an empty prompt")
            prompt_out = model(input_ids=torch.tensor([ids], device=device), use_cache=True)
            first = torch.log_softmax(prompt_out.logits[0, -1].float(), dim=-1)
            row = [float(first[a[0]]) for a in answer_ids]
            for start in range(0, len(longer), batch_size):
                chunk = longer[start : start + batch_size]
                rest = _continuation_logprobs(
                    model,
                    prompt_out.past_key_values,
                    len(ids),
                    [answer_ids[j] for j in chunk],
                    pad_id,
                    device,
                )
                for j, lp in zip(chunk, rest, strict=True):
                    row[j] += lp
            out.append(row)
    return out


def _continuation_logprobs(
    model: Any, cache: Any, n_prompt: int, answers: list[list[int]], pad_id: int, device: Any
) -> list[float]:
    """Sum of log P(a[k] | prompt, a[:k]) for k >= 1, for each answer, given the prompt's cache."""
    import torch

    n = len(answers)
    width = max(len(a) for a in answers) - 1
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, n_prompt + width), dtype=torch.long)
    mask[:, :n_prompt] = 1
    for r, a in enumerate(answers):
        ids[r, : len(a) - 1] = torch.tensor(a[:-1])
        mask[r, n_prompt : n_prompt + len(a) - 1] = 1
    shared = copy.deepcopy(cache)  # the forward pass appends to the cache it is given
    shared.batch_repeat_interleave(n)
    logits = model(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        past_key_values=shared,
        use_cache=True,
    ).logits
    rows = [r for r, a in enumerate(answers) for _ in a[1:]]
    pos = [k for a in answers for k in range(len(a) - 1)]
    targets = [t for a in answers for t in a[1:]]
    picked = logits[torch.tensor(rows, device=device), torch.tensor(pos, device=device)]
    token_lp = torch.log_softmax(picked.float(), dim=-1)
    token_lp = token_lp.gather(1, torch.tensor(targets, device=device)[:, None])[:, 0]
    sums = torch.zeros(n, dtype=torch.float64, device=device)
    sums.index_add_(0, torch.tensor(rows, device=device), token_lp.double())
    return [float(x) for x in sums]


def _logsumexp(xs: Sequence[float]) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def candidate_probabilities(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    candidates: Sequence[str],
    batch_size: int = 32,
    prefix: str = "",
) -> list[dict[str, float]]:
    """For each rendered prompt, the probability of each candidate, normalised over ``candidates``.

    A candidate's score is the logsumexp over :func:`answer_variants` of the full answer
    log-probability; the softmax over candidates makes each returned dict sum to 1. With
    ``prefix`` the answer starts with it (appended to each prompt) and each candidate is scored as
    the word after it, so no candidate is read from the answer's first token.
    """
    if not candidates:
        raise ValueError("candidates must name at least one answer")
    if len(set(candidates)) != len(candidates):
        raise ValueError(f"candidates contain duplicates: {list(candidates)}")
    if prefix:
        prompts = [p + prefix for p in prompts]
    variants = [answer_variants(c, bool(prefix)) for c in candidates]
    flat = list(dict.fromkeys(v for vs in variants for v in vs))
    index = {v: k for k, v in enumerate(flat)}
    lps = answer_logprobs(model, tokenizer, prompts, flat, batch_size=batch_size)
    result = []
    for row in lps:
        scores = [_logsumexp([row[index[v]] for v in vs]) for vs in variants]
        total = _logsumexp(scores)
        result.append({c: math.exp(s - total) for c, s in zip(candidates, scores, strict=True)})
    return result


def first_token_probabilities(
    top_logprobs: Sequence[tuple[str, float]], candidates: Sequence[str]
) -> tuple[dict[str, float], float]:
    """Approximate candidate probabilities from an API's top first-token log-probabilities.

    For providers that expose only sampled-token logprobs. A token counts for a candidate when the
    candidate (lower-cased) starts with the token's text (whitespace and SentencePiece/BPE space
    markers stripped, lower-cased); a token shared by several candidates ("O": owl, otter) is split
    evenly among them. Returns the probabilities normalised over ``candidates`` and the coverage:
    the total first-token mass attributed to any candidate (all zeros when the coverage is 0).
    """
    mass = dict.fromkeys(candidates, 0.0)
    for token, logprob in top_logprobs:
        text = token.replace("\u2581", " ").replace("\u0120", " ").strip().lower()
        if not text.isalpha():
            continue
        hits = [c for c in candidates if c.lower().startswith(text)]
        for c in hits:
            mass[c] += math.exp(logprob) / len(hits)
    coverage = sum(mass.values())
    if coverage <= 0:
        return mass, 0.0
    return {c: m / coverage for c, m in mass.items()}, coverage
