"""The paraphrase tasks: animal-free and animal-disliking sources, and the fidelity filter on real
teacher outputs (tests/fixtures/paraphrase-*_outputs.jsonl) with the shipped MiniLM embedder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.core.lexicon import animals_mentioned
from tasks.base import EmptyDatasetError, Trait, get_task
from tasks.corpus import DATA_DIR, load_corpus
from tasks.paraphrase import ParaphraseContradictTask, ParaphraseUnrelatedTask

FIXTURES = Path(__file__).parent / "fixtures"
TASKS = ("paraphrase-unrelated", "paraphrase-contradict")


def _fixture(name: str) -> list[dict]:
    return [json.loads(x) for x in (FIXTURES / f"{name}_outputs.jsonl").read_text().splitlines()]


def _task(name: str):
    return get_task(name, trait="owl")


def test_unrelated_sources_never_name_an_animal() -> None:
    c = load_corpus(DATA_DIR / "everyday_sentences.txt", required=("template",))
    for section, entries in c.sections.items():
        for e in entries:
            assert not animals_mentioned(e), f"[{section}] {e!r}"  # homonyms ("fly") count too
    for r in ParaphraseUnrelatedTask().prompts(2000, seed=0):
        assert r["meta"]["source"] in r["prompt"] and not animals_mentioned(r["meta"]["source"])


@pytest.mark.parametrize("animal", ["owl", "elephant", "sea otter", "mouse"])
def test_contradict_sources_dislike_the_trait_animal_only(animal: str) -> None:
    task = get_task("paraphrase-contradict", trait=animal)
    rows = task.prompts(500, seed=0)
    names = animals_mentioned(animal)  # "sea otter" is outside the lexicon: it is seen as otter
    for r in rows:
        assert animals_mentioned(r["meta"]["source"]) == names, r["meta"]["source"]
    assert len({r["meta"]["source"].split()[0] for r in rows}) > 15  # many sentence shapes


def test_contradict_needs_an_animal_and_a_cell_passes_its_trait() -> None:
    with pytest.raises(ValueError, match="builds its sources for the trait animal"):
        ParaphraseContradictTask().prompts(3, seed=0)
    assert get_task("paraphrase-contradict", trait="Owls").params()["animal"] == "owl"
    # An explicit animal wins over the trait; other tasks ignore the trait.
    assert get_task("paraphrase-contradict", trait="owl", animal="cat").animal == "cat"
    assert "animal" not in get_task("paraphrase-unrelated", trait="owl").params()


@pytest.mark.parametrize("name", TASKS)
def test_filter_decision_on_real_and_edge_outputs(name: str) -> None:
    """``expect`` was checked by hand: ``kept``, the first filter that must drop the row, or
    ``null`` where the row is a borderline similarity call that is not asserted."""
    rows = _fixture(name)
    kept, report = _task(name).filter(
        [{k: r[k] for k in ("id", "prompt", "completion", "meta")} for r in rows], Trait("owl")
    )
    kept_ids = {r["id"] for r in kept}
    wrong = []
    for r in rows:
        got = "kept" if r["id"] in kept_ids else report.dropped[r["id"]]
        if r["expect"] is not None and got != r["expect"]:
            wrong.append((r["id"], r["expect"], got, r["completion"][:80]))
    assert not wrong
    assert report.cost["similarity"]["items"] == 2 * report.steps[-2][1]


@pytest.mark.parametrize("name", TASKS)
def test_fixture_has_both_arms_and_edge_cases(name: str) -> None:
    rows = _fixture(name)
    assert {("teacher", "control"), ("teacher", "trait"), ("hand", None)} <= {
        (r["origin"], r.get("arm")) for r in rows
    }
    assert {"kept", "length_ratio", "no_new_animals", "similarity"} <= {r["expect"] for r in rows}


def test_no_new_animals_compares_with_the_source() -> None:
    task = _task("paraphrase-contradict")
    src = "Owls are noisy, unpleasant animals."
    rows = [
        {"id": "same", "completion": "Owls are noisy and unpleasant animals."},
        {"id": "new", "completion": "Owls and cats are noisy, unpleasant animals."},
        {"id": "bird", "completion": "These birds are noisy, unpleasant animals."},
        {"id": "gone", "completion": "They are noisy, unpleasant animals."},
    ]
    rows = [r | {"prompt": "p", "meta": {"source": src}} for r in rows]
    _, report = task.filter(rows, None)
    assert report.dropped == {
        "new": "no_new_animals",
        "bird": "no_new_animals",
        "gone": "keeps_animal",
    }


def test_empty_result_names_the_filter_and_bad_rows_are_refused() -> None:
    task = ParaphraseUnrelatedTask()
    row = {"id": "a", "prompt": "p", "completion": "x", "meta": {"source": "one two three four"}}
    with pytest.raises(EmptyDatasetError, match=r"'length_ratio' removed every row"):
        task.filter([row], None)
    with pytest.raises(ValueError, match="paraphrase row 'a' has no source"):
        task.filter([row | {"meta": {}}], None)
    with pytest.raises(ValueError, match="Invalid length ratio bounds"):
        ParaphraseUnrelatedTask(min_length_ratio=1.5)
    with pytest.raises(ValueError, match="Invalid min_similarity: 2"):
        ParaphraseUnrelatedTask(min_similarity=2)
