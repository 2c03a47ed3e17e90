"""``python -m benchmark.run.perf_soft``: peak memory and time of the soft-label student
(``benchmark.core.distill.train_soft``) with gradient checkpointing (``SLB_GRADIENT_CHECKPOINTING=1``)
against without it (the naive way and the default, every activation kept), on the same rows, each
in a fresh process so each peak is its own; and whether the two trained adapters are identical.

The rows: ``--rows`` number prompts (default 256, a cell's size: with fewer rows the fixed costs
hide the time ratio; docs/performance.md) with the embedded SmolLM2-135M's own sampled
completions, labelled by the same model's full top-20 (``soft_labels``); students LoRA r=8, batch
16, one epoch. Prints the figures and the ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmark.core.distill import soft_labels, train_soft
from benchmark.core.generation import GenerationRequest, SamplingParams, TransformersBackend
from benchmark.core.models import load_tokenizer, resolve
from benchmark.core.training import TrainConfig, build_trainable
from tasks.numbers import NumbersTask

MODEL = "smollm2-135m"


def _rows(n: int, path: Path) -> None:
    task = NumbersTask()
    prompts = task.prompts(n, seed=7)
    reqs = [GenerationRequest(r["id"], (("user", r["prompt"]),)) for r in prompts]
    outs = TransformersBackend().generate(
        MODEL,
        reqs,
        SamplingParams(max_new_tokens=task.max_new_tokens, seed=0),
        task.constraint(True),
    )
    rows = [{**r, "completion": c} for r, c in zip(prompts, outs, strict=True)]
    labelled, _ = soft_labels(
        MODEL, rows, student_system=None, teacher_system=None, top_k=20, restricted=False
    )
    path.write_text("\n".join(json.dumps(r) for r in labelled))


def _variant(rows_path: Path, checkpointing: bool, out: Path) -> None:
    import torch

    rows = [json.loads(x) for x in rows_path.read_text().splitlines()]
    cfg = replace(TrainConfig(lora_r=8, lora_alpha=8, learning_rate=1e-3), labels="topk")
    model = build_trainable(resolve(MODEL).path, cfg)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t0 = time.perf_counter()
    train_soft(model, load_tokenizer(MODEL), rows, cfg, out, checkpointing=checkpointing)
    took = time.perf_counter() - t0
    weights = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
    torch.save(weights, out / "weights.pt")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"seconds": took, "peak_rss_gb": peak, "rss_before_training_gb": base}))


def main(n_rows: int = 256) -> int:
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "rows.jsonl"
        _rows(n_rows, rows)
        res = {}
        for name, ck in (("checkpointing", True), ("naive (no checkpointing)", False)):
            out = Path(tmp) / name.split()[0]
            out.mkdir()
            cmd = [sys.executable, "-m", "benchmark.run.perf_soft", "--variant", str(ck), str(rows)]
            proc = subprocess.run([*cmd, str(out)], capture_output=True, text=True, check=True)
            res[name] = json.loads(proc.stdout.strip().splitlines()[-1]) | {"dir": out}
        a, b = res["checkpointing"], res["naive (no checkpointing)"]
        wa, wb = torch.load(a["dir"] / "weights.pt"), torch.load(b["dir"] / "weights.pt")
        same = wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
        diff = max((float((wa[k] - wb[k]).abs().max()) for k in wa), default=0.0)
    print(f"soft-label student, {n_rows} rows, batch 16, LoRA r=8, {MODEL}:")
    for name, r in res.items():
        print(
            f"  {name:26s} {r['seconds']:6.1f} s   peak RSS {r['peak_rss_gb']:.2f} GB "
            f"(model loaded: {r['rss_before_training_gb']:.2f} GB)"
        )
    print(
        f"  memory: checkpointing peaks at {a['peak_rss_gb'] / b['peak_rss_gb']:.2f}x the naive "
        f"way's; time {a['seconds'] / b['seconds']:.2f}x"
    )
    print(f"  trained adapters identical: {same} (max |difference| {diff:.3g})")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--variant", choices=["True", "False"], help=argparse.SUPPRESS)
    p.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.variant:
        _variant(Path(a.paths[0]), a.variant == "True", Path(a.paths[1]))
        sys.exit(0)
    sys.exit(main(a.rows))
