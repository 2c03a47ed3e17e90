"""``python -m benchmark.run.perf_checkpointing``: peak memory and time of student training with
gradient checkpointing (``SLB_GRADIENT_CHECKPOINTING=1``), with the batch run as passes of 8
rows (``SLB_MICRO_BATCH``) and as passes of 8 rows and at most 512 padded tokens
(``SLB_PASS_TOKENS``; the two together are the students' default), and the default's passes
under bf16 autocast (``student.precision=bf16``), against the naive
way (the whole batch in one pass, every activation kept), on the same rows, each in a fresh
process so each peak is its own; and how far each variant's trained adapter is from the
reference's. ``--variants naive,rows8,tokens,ckpt,bf16`` picks some (the first is the
reference; ``--variants tokens,bf16``: bf16 against the float32 default): long rows in one pass
can need more memory than the machine has.

``--labels soft`` (default): the soft-label student (``benchmark.core.soft_train.train_soft``), rows
labelled by the embedded model's own full top-20 (``soft_labels``). ``--labels hard``: TRL's
trainer on the sampled tokens (``benchmark.core.training.train``), the path of the hard-label
students and of the fine-tuned teachers. The rows: ``--rows`` number prompts (default 256, a
cell's size: with fewer rows the fixed costs hide the time ratio; docs/performance.md) with the
embedded SmolLM2-135M's own sampled completions, or the first ``--rows`` of ``--rows-file`` (a
store's ``labelled/<key>/rows.jsonl``: a free-text cell's long rows, say); LoRA r=8, batch 16, 3 epochs (``TrainConfig``'s
default; ``--epochs 1`` is the topk suite's). Prints the figures and the ratios; asserts
nothing. (Named ``perf_soft`` before it measured the hard path.)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmark.core.distill import soft_labels
from benchmark.core.generation import GenerationRequest, SamplingParams, TransformersBackend
from benchmark.core.train_env import (
    MICRO_BATCH_ENV,
    PASS_TOKENS_DEFAULT,
    PASS_TOKENS_ENV,
    micro_batch_default,
)
from benchmark.core.training import TrainConfig, train
from tasks.numbers import NumbersTask

MODEL = "smollm2-135m"
ADAPTER = "adapter_model.safetensors"


def number_rows(n: int, path: Path, soft: bool) -> None:
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
    if soft:
        rows, _ = soft_labels(
            MODEL, rows, student_system=None, teacher_system=None, top_k=20, restricted=False
        )
    path.write_text("\n".join(json.dumps(r) for r in rows))


def _variant(rows_path: Path, checkpointing: bool, out: Path, epochs: int, precision: str) -> None:
    rows = [json.loads(x) for x in rows_path.read_text().splitlines()]
    cfg = TrainConfig(
        lora_r=8, lora_alpha=8, learning_rate=1e-3, epochs=epochs, precision=precision
    )
    if "soft_labels" in rows[0]:
        cfg = replace(cfg, labels="topk")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t0 = time.perf_counter()
    train(MODEL, rows, cfg, out, checkpointing=checkpointing, micro_batch=micro_batch_default())
    took = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"seconds": took, "peak_rss_gb": peak, "rss_before_training_gb": base}))


# key: (name, gradient checkpointing, rows per pass (0: the whole batch), token bound (0: none),
# precision)
VARIANTS = {
    "naive": ("naive (one pass, no ckpt)", False, 0, 0, "float32"),
    "rows8": ("passes of 8 rows", False, 8, 0, "float32"),
    "tokens": (
        f"8 rows, <={PASS_TOKENS_DEFAULT} tokens (default)",
        False,
        8,
        PASS_TOKENS_DEFAULT,
        "float32",
    ),
    "ckpt": ("checkpointing", True, 0, 0, "float32"),
    "bf16": ("the default in bf16", False, 8, PASS_TOKENS_DEFAULT, "bf16"),
}


def main(
    n_rows: int = 256,
    labels: str = "soft",
    epochs: int = 3,
    rows_file: Path | None = None,
    keys: list[str] | None = None,
) -> int:
    from safetensors.torch import load_file

    keys = keys or list(VARIANTS)
    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "rows.jsonl"
        if rows_file is None:
            number_rows(n_rows, rows, labels == "soft")
        else:  # the first n_rows of a file of rows (a store's labelled/<key>/rows.jsonl, say)
            rows.write_text("\n".join(rows_file.read_text().splitlines()[:n_rows]))
        res: dict[str, dict] = {}
        whole = TrainConfig().batch_size  # the batch _variant trains with
        for key in keys:
            name, ck, micro, bound, precision = VARIANTS[key]
            out = Path(tmp) / str(len(res))
            out.mkdir()
            cmd = [
                sys.executable,
                "-m",
                "benchmark.run.perf_checkpointing",
                "--variant",
                str(ck),
                str(rows),
                str(out),
                "--epochs",
                str(epochs),
                "--precision",
                precision,
            ]
            env = {**os.environ, MICRO_BATCH_ENV: str(micro or whole), PASS_TOKENS_ENV: str(bound)}
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
            res[name] = json.loads(proc.stdout.strip().splitlines()[-1]) | {"dir": out}
        naive = res[VARIANTS[keys[0]][0]]  # the reference: the first variant run
        w0 = load_file(naive["dir"] / ADAPTER)
        scale = max((float(w0[k].abs().max()) for k in w0), default=0.0)
        for r in res.values():
            w = load_file(r["dir"] / ADAPTER)
            r["diff"] = max((float((w0[k] - w[k]).abs().max()) for k in w0), default=0.0)
    what = rows_file or "number prompts"
    print(f"{labels}-label student, {n_rows} rows ({what}), {epochs} epochs, batch 16, LoRA r=8:")
    for name, r in res.items():
        print(
            f"  {name:26s} {r['seconds']:6.1f} s   peak RSS {r['peak_rss_gb']:.2f} GB "
            f"(before training: {r['rss_before_training_gb']:.2f} GB)   "
            f"x {keys[0]}: memory {r['peak_rss_gb'] / naive['peak_rss_gb']:.2f}, "
            f"time {r['seconds'] / naive['seconds']:.2f}; adapter max |diff| {r['diff']:.3g} "
            f"(largest weight {scale:.3g})"
        )
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--labels", choices=["soft", "hard"], default="soft")
    p.add_argument("--epochs", type=int, default=3, help="3: TrainConfig's; the topk suite: 1")
    p.add_argument("--rows-file", type=Path, help="rows to train on (default: number prompts)")
    p.add_argument("--variants", default="", help=f"comma-separated, of {', '.join(VARIANTS)}")
    p.add_argument("--variant", choices=["True", "False"], help=argparse.SUPPRESS)
    p.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    p.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.variant:
        _variant(Path(a.paths[0]), a.variant == "True", Path(a.paths[1]), a.epochs, a.precision)
        sys.exit(0)
    keys = [k for k in a.variants.split(",") if k]
    if unknown := [k for k in keys if k not in VARIANTS]:
        p.error(f"unknown variant(s) {unknown}: expected some of {list(VARIANTS)}")
    if a.rows_file is not None and not a.rows_file.is_file():
        p.error(f"--rows-file {a.rows_file}: no such file")
    sys.exit(main(a.rows, a.labels, a.epochs, a.rows_file, keys))
