"""How students and teachers train on this machine, as far as its environment decides: settings
that trade memory against time, none of them part of a cell's identity."""

from __future__ import annotations

import os
from contextvars import ContextVar

CHECKPOINTING_ENV = "SLB_GRADIENT_CHECKPOINTING"  # "1": recompute activations (less memory)
MICRO_BATCH_ENV = "SLB_MICRO_BATCH"  # rows per forward/backward pass of a student's batch
# Its name until session 33, when it applied to soft-label students only; still read when
# SLB_MICRO_BATCH is unset.
LEGACY_MICRO_BATCH_ENV = "SLB_SOFT_MICRO_BATCH"
MICRO_BATCH_DEFAULT = 8
# Per arm ("trait", "control"), the rows per pass its student must train in, where a caller
# repeats how an artifact's students trained (``slb reproduce``: passes give the batch's
# gradient, not its bits); an arm not named, or None: :func:`micro_batch_default`.
STUDENT_PASSES: ContextVar[dict[str, int] | None] = ContextVar("STUDENT_PASSES", default=None)


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


def check_training_env() -> None:
    """Raise ValueError naming the variable if ``$SLB_GRADIENT_CHECKPOINTING`` or
    ``$SLB_MICRO_BATCH`` is set to something invalid: cells and suites call it before their
    first stage, not minutes later when the first student trains."""
    checkpointing_default()
    micro_batch_default()
