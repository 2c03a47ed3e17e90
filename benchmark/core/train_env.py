"""How students and teachers train on this machine, as far as its environment decides: settings
that trade memory against time, none of them part of a cell's identity."""

from __future__ import annotations

import os
from contextvars import ContextVar
from typing import Any

CHECKPOINTING_ENV = "SLB_GRADIENT_CHECKPOINTING"  # "1": recompute activations (less memory)
MICRO_BATCH_ENV = "SLB_MICRO_BATCH"  # rows per forward/backward pass of a student's batch
# Its name until session 33, when it applied to soft-label students only; still read when
# SLB_MICRO_BATCH is unset.
LEGACY_MICRO_BATCH_ENV = "SLB_SOFT_MICRO_BATCH"
MICRO_BATCH_DEFAULT = 8
PASS_TOKENS_ENV = "SLB_PASS_TOKENS"  # most padded tokens in one pass of a student
PASS_TOKENS_DEFAULT = 512
# What runs a training pass on the project's own losses (``TrainConfig.precision``; part of a
# cell's identity, unlike the settings here: the gradients differ).
PRECISIONS = ("float32", "bf16")
# Per arm ("trait", "control"), the rows per pass its student must train in, where a caller
# repeats how an artifact's students trained (``slb reproduce``: passes give the batch's
# gradient, not its bits); an arm not named, or None: :func:`micro_batch_default`.
STUDENT_PASSES: ContextVar[dict[str, int] | None] = ContextVar("STUDENT_PASSES", default=None)
# Likewise the token bound of each arm's passes (None: none, as soft-label students trained
# before session 34 and hard-label ones before session 35); an arm not named, or the variable
# None: :func:`pass_tokens_default`.
STUDENT_PASS_TOKENS: ContextVar[dict[str, int | None] | None] = ContextVar(
    "STUDENT_PASS_TOKENS", default=None
)


def checkpointing_default() -> bool:
    """Whether students and fine-tuned teachers recompute activations in the backward pass:
    ``$SLB_GRADIENT_CHECKPOINTING`` ("1" or "0"; unset: "0"). Off by default because the CPU is
    the scarce resource: at a cell's size it trades about half the memory for about half as much
    time again (docs/performance.md has the figures), and the naive way's peak fits the machines
    this runs on. The adapters are identical either way, so it is not part of a cell's identity."""
    v = os.environ.get(CHECKPOINTING_ENV, "0").strip()
    if v not in ("0", "1"):
        raise ValueError(f"Invalid ${CHECKPOINTING_ENV}: {v!r} (expected 1 or 0)")
    return v == "1"


def micro_batch_default() -> int:
    """Rows per forward/backward pass of a student (soft or hard labels): ``$SLB_MICRO_BATCH``
    (else ``$SLB_SOFT_MICRO_BATCH``, its old name; a positive integer; unset: 8). A batch of
    ``cfg.batch_size`` rows runs as passes of this many (hard labels: of the largest divisor of the
    batch size not above it, as gradient accumulation), each pass's summed loss divided by the
    whole batch's count of learnt tokens, so the gradient is the batch's (the same sum in another
    order, so not the same bits: ``slb reproduce`` retrains in the passes an artifact records).
    The activations kept are one pass's: at batch 16 and 8 rows a pass the students' peak memory
    falls by about a third (docs/performance.md has the figures). Fine-tuned teachers train in
    one pass whatever this says. Not part of a cell's identity: a stored student is reused
    whatever this says."""
    name = MICRO_BATCH_ENV if MICRO_BATCH_ENV in os.environ else LEGACY_MICRO_BATCH_ENV
    v = os.environ.get(name, str(MICRO_BATCH_DEFAULT)).strip()
    if not v.isdigit() or int(v) < 1:
        raise ValueError(f"Invalid ${name}: {v!r} (expected a positive integer)")
    return int(v)


def pass_tokens_default() -> int:
    """The most tokens one pass of a student holds, counted as its rows times its
    longest row (the padded input the model runs on): ``$SLB_PASS_TOKENS`` (a positive integer,
    or "0" for no bound; unset: 512). A pass ends at :func:`micro_batch_default` rows or at this
    bound, whichever comes first (a row longer than the bound is a pass of its own), so long
    free-text rows (code, chain-of-thought) keep one pass's activations, which grow with its
    tokens, near the short number rows'. The gradient is the batch's either way (the same sum in
    another order); ``slb reproduce`` retrains with the bound an artifact records. Hard-label
    students (TRL's trainer) need equal passes, so theirs hold as many rows as fit the bound at
    the dataset's longest row (``benchmark.core.training.bounded_pass_rows``); fine-tuned
    teachers train in one pass, unbounded."""
    v = os.environ.get(PASS_TOKENS_ENV, str(PASS_TOKENS_DEFAULT)).strip()
    if not v.isdigit():
        raise ValueError(f"Invalid ${PASS_TOKENS_ENV}: {v!r} (expected 0 or a positive integer)")
    return int(v)


def check_training_env() -> None:
    """Raise ValueError naming the variable if ``$SLB_GRADIENT_CHECKPOINTING``,
    ``$SLB_MICRO_BATCH`` or ``$SLB_PASS_TOKENS`` is set to something invalid: cells and suites
    call it before their first stage, not minutes later when the first student trains."""
    checkpointing_default()
    micro_batch_default()
    pass_tokens_default()


def passes(
    batch: list[dict[str, Any]], micro_batch: int, pass_tokens: int, max_length: int
) -> list[list[dict[str, Any]]]:
    """``batch`` cut, in its order, into passes of at most ``micro_batch`` rows whose padded size
    (rows times the longest row, each row cut at ``max_length``) is at most ``pass_tokens`` (0:
    no bound); a row longer than the bound is a pass of its own."""
    out: list[list[dict[str, Any]]] = []
    width = 0
    for x in batch:
        n = min(len(x["input_ids"]), max_length)
        cur = out[-1] if out else []
        wider = max(width, n)
        fits = not pass_tokens or (len(cur) + 1) * wider <= pass_tokens
        if cur and len(cur) < micro_batch and fits:
            cur.append(x)
            width = wider
        else:
            out.append([x])
            width = n
    return out


def precision_autocast(precision: str, device_type: str) -> Any:
    """The context a training pass runs in at ``precision``: bf16 autocast for "bf16" (the matmuls
    in bf16; weights, their gradients and the optimiser stay float32), nothing for "float32".
    "bf16" runs on any device; on a CPU without native bf16 it is slower, not different in kind."""
    import torch

    check_precision(precision)
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


def check_precision(precision: Any) -> None:
    """Refuse a precision that is not one of :data:`PRECISIONS`, naming it."""
    if precision not in PRECISIONS:
        raise ValueError(f"Invalid precision: {precision!r} (expected one of {PRECISIONS})")
