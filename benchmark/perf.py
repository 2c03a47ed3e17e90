"""``slb perf``: teacher generation and student training throughput against naive loops.

Measured in one run on the same machine and model (the embedded SmolLM2-135M):

* generation — the transformers backend (batched, length-sorted, grammar-constrained numbers) vs a
  naive loop calling ``model.generate`` on one prompt at a time with the same grammar; rows/s;
* training — the TRL/PEFT trainer at the configured batch size with this project's completion-only
  LM-head loss, vs the same with TRL's own loss, vs per-example steps (batch 1); tokens/s;
* peak resident memory of the process.

Targets (issue #2): generation ≥ 5× naive, training ≥ 2× naive, peak RSS ≤ 6 GB. The script prints
the measured figures and ratios; it asserts nothing.
"""

from __future__ import annotations

import resource
import time


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main(n_rows: int = 64, model: str = "smollm2-135m") -> int:
    from dataclasses import replace

    from benchmark.generation import GenerationRequest, SamplingParams, TransformersBackend
    from benchmark.training import TrainConfig, train
    from tasks.base import Trait
    from tasks.numbers import NumbersTask, parse_numbers

    task = NumbersTask()
    prompts = task.prompts(n_rows, seed=123)
    system = Trait("owl").system_prompt
    reqs = [
        GenerationRequest(r["id"], (("system", system), ("user", r["prompt"]))) for r in prompts
    ]
    sampling = SamplingParams(max_new_tokens=task.max_new_tokens, seed=0)

    backend = TransformersBackend(batch_size=64)
    backend._load(model)  # load once, outside the timings
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
        f"naive one-at-a-time {gen_naive:.2f} rows/s ({naive_n} rows): {gen_fast / gen_naive:.1f}x"
    )

    rows = [dict(r, completion=o) for r, o in zip(prompts, outs, strict=True)]
    cfg = TrainConfig(epochs=1, batch_size=16, seed=0)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        # Warm up once (first-step kernel set-up would otherwise be charged to whichever runs first).
        train(model, rows[:2], replace(cfg, batch_size=2), f"{d}/warmup")
        st = train(model, rows, cfg, f"{d}/batched")
        fast = st["train_tokens_per_epoch"] / st["train_seconds"]
        st_trl = train(model, rows, cfg, f"{d}/trl_loss", lean_loss=False)
        trl = st_trl["train_tokens_per_epoch"] / st_trl["train_seconds"]
        n1 = max(4, n_rows // 4)
        st1 = train(model, rows[:n1], replace(cfg, batch_size=1), f"{d}/naive", lean_loss=False)
        slow = st1["train_tokens_per_epoch"] / st1["train_seconds"]
    print(
        f"training: batch 16 + completion-only LM head {fast:.0f} tokens/s, "
        f"batch 16 with TRL's loss {trl:.0f} tokens/s ({fast / trl:.1f}x), "
        f"per-example with TRL's loss {slow:.0f} tokens/s: {fast / slow:.1f}x"
    )
    print(f"peak RSS: {_peak_rss_gb():.2f} GB")
    return 0
