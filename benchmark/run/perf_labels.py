"""``python -m benchmark.run.perf_labels``: time of the soft-label stage (``soft_labels``: the
teacher scores each completion token) the way it runs, batches of rows of similar length and the
LM head on the completion positions only, against the naive way (rows in order, the head on every
position), on the same rows, alternating the two ``--repeats`` times in one process; and how far
apart their labels are (the same top-k ids? the largest difference of a stored log-probability).

The rows: ``--rows`` number prompts (default 256, a cell's size) with the embedded SmolLM2-135M's
own sampled completions, labelled by the same model, restricted to the number grammar (the
confirmation's setting; ``--full`` for the full top-20). Prints the figures and the ratio;
asserts nothing. Memory is not measured here (both ways hold one batch's activations; the naive
way also every position's logits).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from benchmark.core.distill import SOFT_FIELD, soft_labels
from benchmark.run.perf_checkpointing import MODEL, number_rows
from tasks.numbers import NumbersTask


def main(n_rows: int = 256, repeats: int = 2, restricted: bool = True) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.jsonl"
        number_rows(n_rows, path, soft=False)
        rows = [json.loads(x) for x in path.read_text().splitlines()]
    constraint = NumbersTask().constraint(True)
    seconds: dict[str, list[float]] = {"naive": [], "by length, head on completions": []}
    out: dict[str, list] = {}
    for _ in range(repeats):
        for name in seconds:
            t0 = time.perf_counter()
            out[name], _ = soft_labels(
                MODEL,
                rows,
                student_system=None,
                teacher_system=None,
                top_k=20,
                restricted=restricted,
                constraint=constraint,
                naive=name == "naive",
            )
            seconds[name].append(time.perf_counter() - t0)
    a, b = (out[n] for n in seconds)
    same_ids = sum(x[SOFT_FIELD]["ids"] == y[SOFT_FIELD]["ids"] for x, y in zip(a, b, strict=True))
    diffs = [
        abs(p - q)
        for x, y in zip(a, b, strict=True)
        for u, v in zip(x[SOFT_FIELD]["logprobs"], y[SOFT_FIELD]["logprobs"], strict=True)
        for p, q in zip(u, v, strict=True)
    ]
    best = {n: min(s) for n, s in seconds.items()}
    naive, ours = best.values()
    print(f"rows: {len(rows)} number rows, labels {'restricted' if restricted else 'full'} top-20")
    for name, s in seconds.items():
        print(f"{name}: best of {repeats} {best[name]:.1f} s (all: {[round(x, 1) for x in s]})")
    print(f"ratio naive / ours: {naive / ours:.2f}x")
    print(
        f"labels: top-k ids identical in {same_ids} of {len(a)} rows; stored log-probabilities "
        f"differ in {sum(d > 0 for d in diffs)} of {len(diffs)}, at most {max(diffs, default=0):.1e}"
    )
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="the full top-20, not restricted")
    a = ap.parse_args()
    sys.exit(main(a.rows, a.repeats, not a.full))
