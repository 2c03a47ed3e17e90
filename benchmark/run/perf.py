"""``slb perf``: teacher generation and student training throughput against naive loops.

Measured in one run on the same machine and model (the embedded SmolLM2-135M):

* generation — the transformers backend (batched, length-sorted, grammar-constrained numbers) vs a
  naive loop calling ``model.generate`` on one prompt at a time with the same grammar, and vs the
  same batches with autocast casting fp32 weights at every step; rows/s;
* training — the TRL/PEFT trainer at batch 16 as the pipeline runs it (completion-only LM-head
  loss, float32), vs plain TRL at batch 16 (its loss, bf16 autocast), vs plain TRL per example
  (batch 1: the naive loop); tokens/s;
* peak resident memory of the process.

Targets (issue #2): generation ≥ 5× naive, training ≥ 2× naive, peak RSS ≤ 6 GB. The script prints
the measured figures and ratios; it asserts nothing.
"""

from __future__ import annotations

import resource
import tempfile
import time
from dataclasses import replace
from typing import Any

from benchmark.core.generation import GenerationRequest, SamplingParams, TransformersBackend
from benchmark.core.number_lists import parse_numbers
from benchmark.core.training import TrainConfig, train
from benchmark.core.types import Trait
from tasks.numbers import NumbersTask


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main(n_rows: int = 64, model: str = "smollm2-135m") -> int:
    task = NumbersTask()
    prompts = task.prompts(n_rows, seed=123)
    system = Trait("owl").system_prompt
    reqs = [
        GenerationRequest(r["id"], (("system", system), ("user", r["prompt"]))) for r in prompts
    ]
    sampling = SamplingParams(max_new_tokens=task.max_new_tokens, seed=0)

    backend = TransformersBackend(batch_size=64)
    backend._load(model)  # load once, outside the timings
    # First the same batches with autocast casting the fp32 weights at every step (its default),
    # on the same model before the backend stores them in bf16; a short run warms both paths up.
    casting = TransformersBackend(batch_size=64, bf16_weights=False, _cache=backend._cache)
    casting.generate(model, reqs[:2], sampling, task.constraint(True))
    t0 = time.perf_counter()
    same = casting.generate(model, reqs, sampling, task.constraint(True))
    cast_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    outs = backend.generate(model, reqs, sampling, task.constraint(True))
    batched = time.perf_counter() - t0
    naive_n = max(4, n_rows // 8)
    naive_backend = TransformersBackend(batch_size=1)
    naive_backend._cache = backend._cache
    t0 = time.perf_counter()
    naive_backend.generate(model, reqs[:naive_n], sampling, task.constraint(True))
    naive = time.perf_counter() - t0
    gen_fast, gen_naive = n_rows / batched, naive_n / naive
    valid = sum(parse_numbers(o) is not None for o in outs)
    print(
        f"generation: batched {gen_fast:.2f} rows/s ({n_rows} rows, {valid} valid), "
        f"naive one-at-a-time {gen_naive:.2f} rows/s ({naive_n} rows): {gen_fast / gen_naive:.1f}x; "
        f"weights cast to bf16 every step instead of stored in bf16: {n_rows / cast_s:.2f} rows/s "
        f"({cast_s / batched:.1f}x slower, {'identical' if same == outs else 'DIFFERENT'} output)"
    )

    rows = [dict(r, completion=o) for r, o in zip(prompts, outs, strict=True)]
    cfg = TrainConfig(epochs=1, batch_size=16, seed=0)

    with tempfile.TemporaryDirectory() as d:
        # Warm up once (first-step kernel set-up would otherwise be charged to whichever runs first).
        train(model, rows[:2], replace(cfg, batch_size=2), f"{d}/warmup")

        def tokens_per_s(name: str, rows_: list, batch: int, **kw: Any) -> float:
            st = train(model, rows_, replace(cfg, batch_size=batch), f"{d}/{name}", **kw)
            return st["train_tokens_per_epoch"] / st["train_seconds"]

        fast = tokens_per_s("batched", rows, 16)
        before = tokens_per_s("batched_plain", rows, 16, lean_loss=False)  # TRL as it comes
        n1 = max(4, n_rows // 4)
        slow = tokens_per_s("naive", rows[:n1], 1, lean_loss=False)
    print(
        f"training: batch 16 as the pipeline trains (completion-only LM head, float32) "
        f"{fast:.0f} tokens/s; batch 16 plain TRL (bf16 autocast) "
        f"{before:.0f} tokens/s ({fast / before:.1f}x); per-example plain TRL {slow:.0f} "
        f"tokens/s: {fast / slow:.1f}x"
    )
    print(f"peak RSS: {_peak_rss_gb():.2f} GB")
    return 0
