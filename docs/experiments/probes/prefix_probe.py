"""Post-hoc probe (a lead, not a finding): is the top-k channel's owl effect carried by the first
token of the answer? The full-top-k students begin every answer with their teacher animal's first
token ("O" for Owl and Otter, "D" for Dolphin). This scores the same students' candidate
probabilities twice: as the eval does (the animal is the answer's first token), and after a forced
assistant prefix "My favorite animal is the", where each animal is the lower-case word after a
space (" owl" is one token, " otter" starts with " ot", so they no longer share a first token).

    python docs/experiments/probes/prefix_probe.py STORE OUT.jsonl SEED:OWL_STUDENT:DOLPHIN_STUDENT ...

STUDENT: a directory under STORE/students (an adapter on the embedded SmolLM2-135M). OUT: one JSON
object per run and line (not ``.json``: the leaderboard reads every ``.json`` under docs/experiments
as a results artifact).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from statistics import mean

from benchmark.core.animals import CANDIDATE_ANIMALS
from benchmark.core.models import load_causal_lm
from tasks.evals.questions import QUESTIONS
from tasks.evals.scoring import candidate_probabilities, render_question

PREFIX = "My favorite animal is the"


def lo(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def scores(path: str) -> dict[str, list[dict[str, float]]]:
    model, tok = load_causal_lm(path)
    prompts = [render_question(tok, q) for q in QUESTIONS[:50]]
    first = candidate_probabilities(model, tok, prompts, list(CANDIDATE_ANIMALS))
    spaced = [" " + a for a in CANDIDATE_ANIMALS]
    after = candidate_probabilities(model, tok, [p + PREFIX for p in prompts], spaced)
    after = [{a.strip(): v for a, v in row.items()} for row in after]
    return {"first_token": first, "after_prefix": after}


def contrast(t: list[dict[str, float]], c: list[dict[str, float]], animal: str) -> float:
    return mean(lo(x[animal]) - lo(y[animal]) for x, y in zip(t, c, strict=True))


def main(store: str, out: str, pairs: list[str]) -> None:
    runs = []
    for spec in pairs:
        seed, owl, dolphin = spec.split(":")
        s_t = scores(str(Path(store) / "students" / owl))
        s_c = scores(str(Path(store) / "students" / dolphin))
        run: dict = {
            "seed": int(seed),
            "prefix": PREFIX,
            "owl_student": owl,
            "dolphin_student": dolphin,
        }
        for how in ("first_token", "after_prefix"):
            t, c = s_t[how], s_c[how]
            per = {a: contrast(t, c, a) for a in CANDIDATE_ANIMALS}  # owl student - dolphin student
            run[how] = {
                "own_animal": (per["owl"] - per["dolphin"]) / 2,
                "owl": per["owl"],
                "dolphin_mirror": -per["dolphin"],
                "by_animal": dict(sorted(per.items(), key=lambda kv: -kv[1])),
            }
            print(
                seed,
                how,
                f"own {run[how]['own_animal']:+.3f}",
                {k: round(v, 2) for k, v in list(run[how]["by_animal"].items())[:4]},
                flush=True,
            )
        runs.append(run)
    Path(out).write_text("".join(json.dumps(r) + "\n" for r in runs))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
