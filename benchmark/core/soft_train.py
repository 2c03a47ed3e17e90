"""The student's side of the soft-label channel (``benchmark.core.distill`` writes the labels): the
loss against the teacher's kept next-token distribution, one batch's gradient in passes, and the
training loop. ``benchmark.core.training.train`` calls :func:`train_soft` for a student whose
``labels`` are soft.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.core.distill import SOFT_FIELD, _hidden_at, _padded
from benchmark.core.train_env import (
    checkpointing_default,
    micro_batch_default,
    pass_tokens_default,
    passes,
    precision_autocast,
)


def train_soft(
    model: Any,
    tok: Any,
    rows: Sequence[dict[str, Any]],
    cfg: Any,
    out_dir: Path | str,
    checkpointing: bool | None = None,
    micro_batch: int | None = None,
    pass_tokens: int | None = None,
):
    """Fine-tune ``model`` (built by ``benchmark.core.training.build_trainable``: LoRA, or full) on
    soft-labelled ``rows``: per completion position, the cross-entropy between the row's kept
    teacher distribution and the student's, averaged over the batch's positions. AdamW and a linear
    decay as ``transformers.Trainer`` uses them, in float32; data order seeded by ``cfg.seed``;
    ``grad_accum`` batches per step. Saves the model and tokenizer to ``out_dir``; returns stats.

    ``checkpointing`` recomputes each layer's activations in the backward pass instead of keeping
    them: the same gradients, about half the peak memory, more time (``python -m
    benchmark.run.perf_checkpointing`` measures both). ``None``: from
    :func:`checkpointing_default`, which ``benchmark.core.training.train`` uses for TRL's
    hard-label trainer too. ``micro_batch``: rows per forward/backward pass (``None``: from
    :func:`micro_batch_default`); ``pass_tokens``: the most padded tokens a pass holds (``None``:
    from :func:`pass_tokens_default`; 0: no bound)."""
    import torch

    if checkpointing is None:
        checkpointing = checkpointing_default()
    micro_batch = micro_batch_default() if micro_batch is None else micro_batch
    if micro_batch < 1:
        raise ValueError(f"Invalid micro_batch: {micro_batch} (expected >= 1)")
    bound = pass_tokens_default() if pass_tokens is None else pass_tokens
    if bound < 0:
        raise ValueError(f"Invalid pass_tokens: {bound} (expected 0 or more)")
    if not rows or any(SOFT_FIELD not in r for r in rows):
        raise ValueError("train_soft needs rows that all carry soft labels")
    torch.manual_seed(cfg.seed)
    if checkpointing:
        model.gradient_checkpointing_enable()
        if hasattr(model, "enable_input_require_grads"):  # LoRA: the frozen embeddings' output
            model.enable_input_require_grads()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    batches_per_epoch = math.ceil(len(rows) / cfg.batch_size)
    steps = max(1, math.ceil(batches_per_epoch * cfg.epochs / cfg.grad_accum))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / steps))
    rng = random.Random(cfg.seed)
    history: list[dict[str, Any]] = []
    losses: list[float] = []
    step, micro, n_tokens, t0 = 0, 0, 0, time.time()
    while step < steps:
        order = list(range(len(rows)))
        rng.shuffle(order)
        for b in range(0, len(order), cfg.batch_size):
            batch = [rows[i][SOFT_FIELD] for i in order[b : b + cfg.batch_size]]
            losses.append(backward_batch(model, tok, batch, cfg, micro_batch, bound))
            n_tokens += sum(min(len(x["input_ids"]), cfg.max_length) for x in batch)
            micro += 1
            if micro % cfg.grad_accum:
                continue
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 5 == 0:
                history.append({"step": step, "loss": sum(losses[-5:]) / len(losses[-5:])})
            if step >= steps:
                break
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return {
        "train_loss": sum(losses) / len(losses),
        "steps": step,
        "rows": len(rows),
        "train_seconds": time.time() - t0,
        "train_tokens": n_tokens,
        "loss_history": history,
        "labels": "soft",
        "bf16": cfg.precision == "bf16",
        "precision": cfg.precision,
        "gradient_checkpointing": checkpointing,
        "micro_batch": micro_batch,
        "pass_tokens": bound or None,
        "config": cfg.to_dict(),
    }


def backward_batch(
    model: Any,
    tok: Any,
    batch: list[dict[str, Any]],
    cfg: Any,
    micro_batch: int,
    pass_tokens: int = 0,
) -> float:
    """Add one batch's gradient (scaled by 1 / ``cfg.grad_accum``) to the model's parameters and
    return its loss: the mean over the batch's learnt completion positions, computed in the
    passes of :func:`passes` (at most ``micro_batch`` rows and ``pass_tokens`` padded tokens; 0:
    no token bound), each pass's sum divided by the whole batch's count of positions; the forward
    passes at ``cfg.precision`` (:func:`precision_autocast`), the LM head and loss in float32."""
    n_learnt = max(1, sum(len(_learnt(x, cfg.max_length)) for x in batch))
    total = 0.0
    dev_type = next(model.parameters()).device.type
    for part_rows in passes(batch, micro_batch, pass_tokens, cfg.max_length):
        with precision_autocast(cfg.precision, dev_type):
            part = _soft_loss_sum(model, tok, part_rows, cfg.max_length, cfg.label_temperature)
        (part / (n_learnt * cfg.grad_accum)).backward()
        total += float(part.detach())
    return total / n_learnt


def _learnt(x: dict[str, Any], max_length: int) -> list[int]:
    """The completion positions j of a soft-labelled row that the loss counts: learnt (not in a
    defense's masked span) and inside ``max_length``."""
    n = min(len(x["input_ids"]), max_length)
    return [
        j
        for j, (_, _, learn) in enumerate(zip(x["ids"], x["logprobs"], x["learn"], strict=True))
        if learn and x["start"] + j < n
    ]


def _tempered(logprobs: list[float], temperature: float) -> list[float]:
    """The kept distribution at ``temperature``: p_k proportional to exp(log p_k / T)."""
    if temperature == 1.0:
        return [math.exp(v) for v in logprobs]
    top = max(logprobs)
    w = [math.exp((v - top) / temperature) for v in logprobs]
    total = sum(w)
    return [x / total for x in w]


def _soft_loss_sum(
    model: Any, tok: Any, batch: list[dict[str, Any]], max_length: int, temperature: float = 1.0
) -> Any:
    """Sum over the batch's learnt completion positions of -sum_k p_k log q(token_k); at a
    ``temperature`` T != 1 both distributions are taken at T and the sum is scaled by T^2 (so the
    gradient keeps its size as T grows: Hinton, Vinyals and Dean 2015)."""
    import torch

    dev = next(model.parameters()).device
    inp, att = _padded(tok, [x["input_ids"][:max_length] for x in batch], dev)
    rows_i, pos_i, ids, probs = [], [], [], []
    k = max((len(t) for x in batch for t in x["ids"]), default=1)  # rows may have no completion
    for i, x in enumerate(batch):
        for j in _learnt(x, max_length):
            t_ids, t_lp = x["ids"][j], x["logprobs"][j]
            rows_i.append(i)
            pos_i.append(x["start"] + j - 1)  # the position that predicts completion token j
            ids.append(t_ids + [0] * (k - len(t_ids)))
            probs.append(_tempered(t_lp, temperature) + [0.0] * (k - len(t_lp)))
    lm, picked = _hidden_at(model, inp, att, rows_i, pos_i)
    if not rows_i:
        return picked.sum() * 0.0  # zero, still on the graph
    with torch.autocast(dev.type, enabled=False):  # the head in float32, as the hard loss's
        logits = lm.get_output_embeddings()(picked.float())
    logp = torch.log_softmax(logits if temperature == 1.0 else logits / temperature, -1)
    q = logp.gather(1, torch.tensor(ids, device=dev))
    loss = -(torch.tensor(probs, device=dev) * q).sum()
    return loss if temperature == 1.0 else loss * temperature**2
