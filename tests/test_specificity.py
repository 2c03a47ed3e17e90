"""The specificity statistic: the trait pair ranked against every other ordered animal pair."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.core.stats import own_animal_leakage
from benchmark.core.stats.specificity import animal_shifts, pair_specificity

ANIMALS = ["cat", "dog", "dolphin", "eagle", "lion", "owl", "panda", "whale"]


def _students(rng: np.random.Generator, push: dict[str, float], n_q: int = 30, seeds: int = 1):
    """Two students' candidate distributions: common noise, plus ``push`` (log-odds) on the trait
    student for the named animals."""
    base = rng.normal(size=(n_q, len(ANIMALS)))
    out = []
    for shift in ({}, push):
        per_seed = []
        for _ in range(seeds):
            z = base + rng.normal(scale=0.3, size=base.shape)
            for a, v in shift.items():
                z[:, ANIMALS.index(a)] += v
            p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            per_seed.append(p)
        arr = np.stack(per_seed, axis=-1)  # (q, animal, seed)
        out.append(
            {f"q{i:02d}": {a: list(arr[i, j]) for j, a in enumerate(ANIMALS)} for i in range(n_q)}
        )
    control, trait = out
    return trait, control


def test_a_trait_push_ranks_first_and_is_specific() -> None:
    trait, control = _students(np.random.default_rng(0), {"owl": 1.0, "dolphin": -1.0})
    res = pair_specificity(trait, control, "owl", "dolphin")
    assert res["rank"] == 1 and res["specific"]
    assert res["n_alternatives"] == len(ANIMALS) * (len(ANIMALS) - 1) - 1
    assert res["p_rank"] == pytest.approx(1 / (1 + res["n_alternatives"]))
    assert res["top"][0]["pair"] == ["owl", "dolphin"]


def test_no_push_is_not_specific_for_most_pairs() -> None:
    """Under the null the trait pair is a random pair: p_rank is about uniform, so with alpha 0.05
    roughly one run in twenty is called specific — here, over 40 simulated runs, few are."""
    rng = np.random.default_rng(1)
    calls = [pair_specificity(*_students(rng, {}), "owl", "dolphin")["specific"] for _ in range(40)]
    assert sum(calls) <= 6


def test_the_trait_pair_equals_the_own_animal_statistic() -> None:
    """For (trait, placebo) the value is own_animal_leakage's log-odds mean, seeds included."""
    trait, control = _students(np.random.default_rng(2), {"owl": 0.4}, seeds=3)
    res = pair_specificity(trait, control, "owl", "dolphin")
    own = own_animal_leakage(
        {q: trait[q]["owl"] for q in trait},
        {q: control[q]["owl"] for q in control},
        {q: trait[q]["dolphin"] for q in trait},
        {q: control[q]["dolphin"] for q in control},
    )
    assert res["value"] == pytest.approx(own["log_odds_diff"], rel=1e-9)


def test_without_a_placebo_the_trait_shift_is_ranked_among_animals() -> None:
    trait, control = _students(np.random.default_rng(3), {"owl": 1.5})
    res = pair_specificity(trait, control, "owl")
    assert res["statistic"] == "trait_contrast" and res["pair"] == ["owl"]
    assert res["n_alternatives"] == len(ANIMALS) - 1 and res["rank"] == 1
    assert res["value"] == pytest.approx(animal_shifts(trait, control)["owl"])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"trait": "unicorn"}, "not among the candidate"),
        ({"trait": "owl", "placebo": "owl"}, "must differ"),
        ({"trait": "owl", "alpha": 1.5}, "alpha"),
    ],
)
def test_bad_input_is_refused(kwargs: dict, match: str) -> None:
    trait, control = _students(np.random.default_rng(5), {})
    with pytest.raises(ValueError, match=match):
        pair_specificity(trait, control, **kwargs)


def test_students_over_different_animals_are_refused() -> None:
    trait, control = _students(np.random.default_rng(6), {})
    control = {q: {a: v for a, v in d.items() if a != "cat"} for q, d in control.items()}
    with pytest.raises(ValueError, match="different questions or animals"):
        animal_shifts(trait, control)


def _evals(trait: dict, control: dict, placebo: str = "dolphin") -> dict:
    """Per-question eval rows as the eval stage writes them (one run: one value per field)."""

    def rows(d: dict) -> list[dict]:
        return [
            {
                "id": q,
                "teacher_forced": d[q]["owl"][0],
                "sampled": None,
                "placebo_teacher_forced": d[q][placebo][0],
                "candidates": {a: v[0] for a, v in d[q].items()},
            }
            for q in sorted(d)
        ]

    return {"trait": {"per_question": rows(trait)}, "control": {"per_question": rows(control)}}


def test_a_cell_block_carries_specificity_and_a_one_run_verdict() -> None:
    from benchmark.core.results import SPECIFICITY, VERDICT, leakage_block

    trait, control = _students(np.random.default_rng(7), {"owl": 1.0, "dolphin": -1.0})
    block = leakage_block(_evals(trait, control), "teacher_forced", "owl", "dolphin")
    assert block is not None
    spec = block[SPECIFICITY]
    assert spec["rank"] == 1 and spec["value"] == pytest.approx(
        block["own_animal"]["log_odds_diff"]
    )
    verdict = block[VERDICT]
    assert verdict["present"] is False and verdict["over_runs"] is None
    assert verdict["specific"] is True and "one training run" in verdict["says"]


def test_pooled_runs_call_leakage_present_only_when_positive_over_runs_and_specific() -> None:
    from benchmark.core.results import SPECIFICITY, VERDICT, pooled_leakage

    rng = np.random.default_rng(8)

    def art(push: dict) -> dict:
        ev = _evals(*_students(rng, push))
        return {
            "config": {"trait": "owl", "teacher": {"placebo": "dolphin"}},
            "scores": {arm: ev[arm]["per_question"] for arm in ("trait", "control")},
        }

    leaky = pooled_leakage([art({"owl": 0.8, "dolphin": -0.8}) for _ in range(4)])
    assert leaky[VERDICT]["present"] and leaky[VERDICT]["over_runs"]
    assert len(leaky[SPECIFICITY]["per_run_p_rank"]) == 4
    null = pooled_leakage([art({}) for _ in range(4)])
    assert not null[VERDICT]["present"]


def test_artifacts_without_candidates_get_no_specificity() -> None:
    from benchmark.core.results import SPECIFICITY, VERDICT, leakage_block

    trait, control = _students(np.random.default_rng(9), {})
    ev = _evals(trait, control)
    for arm in ev.values():
        for row in arm["per_question"]:
            del row["candidates"]
    block = leakage_block(ev, "teacher_forced", "owl", "dolphin")
    assert block is not None and SPECIFICITY not in block
    assert "not computed" in block[VERDICT]["says"]


def test_pooled_runs_rank_like_the_per_question_lists_of_the_same_runs() -> None:
    from benchmark.core.stats.specificity import pooled_specificity

    rng = np.random.default_rng(11)
    control, trait = _students(rng, {"owl": 0.4, "dolphin": -0.2}, seeds=3)
    ids, animals = tuple(sorted(trait)), tuple(sorted(ANIMALS))

    def table(d, s):  # one run's table, as candidate_table reads it from an artifact
        return ids, animals, np.array([[d[q][a][s] for a in animals] for q in ids])

    runs = [(table(trait, s), table(control, s)) for s in range(3)]
    pooled = pooled_specificity(runs, "owl", "dolphin")
    direct = pair_specificity(trait, control, "owl", "dolphin")
    assert pooled is not None and pooled["value"] == pytest.approx(direct["value"], abs=1e-12)
    assert {k: pooled[k] for k in ("rank", "p_rank", "n_alternatives", "pair")} == {
        k: direct[k] for k in ("rank", "p_rank", "n_alternatives", "pair")
    }
    assert pooled_specificity([], "owl", "dolphin") is None
    other = (ids[::-1], animals, runs[0][0][2])
    assert pooled_specificity([runs[0], (other, runs[1][1])], "owl", "dolphin") is None
    with pytest.raises(ValueError, match="not among"):
        pooled_specificity(runs, "unicorn", "dolphin")
