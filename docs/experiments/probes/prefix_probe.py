"""Post-hoc probe (a lead, not a finding): is the top-k channel's owl effect carried by the first
token of the answer? The full-top-k students begin every answer with their teacher animal's first
token ("O" for Owl and Otter, "D" for Dolphin). This scores the same students' candidate
probabilities twice: as the eval does (the animal is the answer's first token), and after a forced
assistant prefix "My favorite animal is the" (``eval.answer_prefix``: each animal the lower-case
word after a space; " owl" is one token, " otter" starts with " ot", so they share no first token),
and reads both with the pipeline's own statistics (``benchmark.core.stats.specificity``).

    python docs/experiments/probes/prefix_probe.py STORE OUT.jsonl SEED:OWL_STUDENT:DOLPHIN_STUDENT ...

STUDENT: a directory under STORE/students (an adapter on the embedded SmolLM2-135M). OUT: one JSON
object per run and line (not ``.json``: the leaderboard reads every ``.json`` under docs/experiments
as a results artifact).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmark.core.animals import CANDIDATE_ANIMALS
from benchmark.core.models import load_causal_lm
from benchmark.core.stats.specificity import animal_shifts, pair_specificity
from tasks.evals.questions import QUESTIONS, question_id
from tasks.evals.scoring import candidate_probabilities, render_question

PREFIX = "My favorite animal is the"
Dists = dict[str, dict[str, float]]  # question id -> animal -> probability


def scores(path: str) -> dict[str, Dists]:
    """The student's candidate distributions per question, read as the eval does and after the
    prefix (the same ``candidate_probabilities`` the eval calls)."""
    model, tok = load_causal_lm(path)
    prompts = [render_question(tok, q) for q in QUESTIONS[:50]]
    qids = [question_id(i) for i in range(len(prompts))]
    animals = list(CANDIDATE_ANIMALS)
    first = candidate_probabilities(model, tok, prompts, animals)
    after = candidate_probabilities(model, tok, prompts, animals, prefix=PREFIX)
    return {
        "first_token": dict(zip(qids, first, strict=True)),
        "after_prefix": dict(zip(qids, after, strict=True)),
    }


def main(store: str, out: str, pairs: list[str]) -> None:
    runs = []
    for spec in pairs:
        seed, owl, dolphin = spec.split(":")
        s_t = scores(str(Path(store) / "students" / owl))
        s_c = scores(str(Path(store) / "students" / dolphin))
        run: dict = {"seed": int(seed), "prefix": PREFIX, "owl_student": owl}
        run["dolphin_student"] = dolphin
        for how in ("first_token", "after_prefix"):
            t, c = s_t[how], s_c[how]
            # The pipeline's own statistics: per-animal shifts and the pair's rank among all pairs.
            shifts = animal_shifts(t, c)
            spec_ = pair_specificity(t, c, "owl", "dolphin")
            run[how] = {
                "own_animal": spec_["value"],
                "rank": spec_["rank"],
                "n_alternatives": spec_["n_alternatives"],
                "p_rank": spec_["p_rank"],
                "by_animal": dict(sorted(shifts.items(), key=lambda kv: -kv[1])),
            }
            top = list(run[how]["by_animal"].items())[:4]
            print(seed, how, f"own {spec_['value']:+.3f} rank {spec_['rank']}", top, flush=True)
        runs.append(run)
    Path(out).write_text("".join(json.dumps(r) + "\n" for r in runs))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
