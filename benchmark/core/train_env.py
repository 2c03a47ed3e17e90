"""How students and teachers train on this machine, as far as its environment decides: settings
that trade memory against time, none of them part of a cell's identity."""

from __future__ import annotations

import os
from contextvars import ContextVar

CHECKPOINTING_ENV = "SLB_GRADIENT_CHECKPOINTING"  # "1": recompute activations (less memory)
MICRO_BATCH_ENV = "SLB_SOFT_MICRO_BATCH"  # rows per forward/backward pass of a soft-label batch
MICRO_BATCH_DEFAULT = 8
# Per arm ("trait", "control"), the rows per pass its soft-label student must train in, where a
# caller repeats how an artifact's students trained (``slb reproduce``: passes give the batch's
# gradient, not its bits); an arm not named, or None: :func:`micro_batch_default`.
SOFT_PASSES: ContextVar[dict[str, int] | None] = ContextVar("SOFT_PASSES", default=None)


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
    """Rows per forward/backward pass of the soft-label student: ``$SLB_SOFT_MICRO_BATCH`` (a
    positive integer; unset: 8). A batch of ``cfg.batch_size`` rows runs as passes of this many,
    each pass's summed loss divided by the whole batch's learnt positions, so the gradient is the
    batch's (the same sum, in another order, so not the same bits: ``slb reproduce`` retrains in
    the passes an artifact records). The activations kept are one pass's: at batch 16 and 8 rows a
    pass the students' peak memory falls by about a third (docs/performance.md has the figures).
    Not part of a cell's identity: a stored student is reused whatever this says."""
    v = os.environ.get(MICRO_BATCH_ENV, str(MICRO_BATCH_DEFAULT)).strip()
    if not v.isdigit() or int(v) < 1:
        raise ValueError(f"Invalid ${MICRO_BATCH_ENV}: {v!r} (expected a positive integer)")
    return int(v)


def check_training_env() -> None:
    """Raise ValueError naming the variable if ``$SLB_GRADIENT_CHECKPOINTING`` or
    ``$SLB_SOFT_MICRO_BATCH`` is set to something invalid: cells and suites call it before their
    first stage, not minutes later when the first student trains."""
    checkpointing_default()
    micro_batch_default()
