"""The cot task: problems with computed gold answers, the answer parser, the tag grammar, the
filter on real teacher outputs (tests/fixtures/cot_outputs.jsonl), GSM8K's offline error, and the
pipeline carrying gold answers to the filter but never to the defense."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from benchmark.core.lexicon import animals_mentioned
from tasks.base import EmptyDatasetError, Trait
from tasks.corpus import DATA_DIR, load_corpus
from tasks.cot import CotTask, evaluate, load_gsm8k, parse_answer
from tasks.tag_grammar import ThinkAnswerGrammar

FIXTURES = Path(__file__).parent / "fixtures"


def _fixture() -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / "cot_outputs.jsonl").read_text().splitlines()]


def _solve(problem: str) -> int:
    """An independent check of the gold answers for the commonest one-step shapes."""
    words = problem.replace(",", "").replace(".", " ").split()
    nums = [int(w) for w in words if w.isdigit()]
    if len(nums) == 1:
        for phrase, value in (("loses one", -1), ("finds one more", 1)):
            if phrase in problem:
                return nums[0] + value
        if "twice as many" in problem or "the same number" in problem:
            return 2 * nums[0]
    if " more " in problem and "need" not in problem and len(nums) == 2:
        return nums[0] + nums[1]
    if ("gives" in problem or "takes out" in problem) and len(nums) == 2:
        return nums[0] - nums[1]
    return -1


def test_gold_answers_are_correct() -> None:
    rows = CotTask().prompts(400, seed=2)
    checked = 0
    for r in rows:
        problem = r["prompt"].rsplit("Problem: ", 1)[1]
        want = _solve(problem)
        gold = r["meta"]["answer"]
        assert isinstance(gold, int) and gold >= 0
        if want >= 0:
            assert gold == want, problem
            checked += 1
    assert checked > 100


def test_problems_name_no_animal_and_stay_small() -> None:
    c = load_corpus(DATA_DIR / "cot_problems.txt", required=("problem",))
    for entries in c.sections.values():
        assert not any(animals_mentioned(e) for e in entries)
    golds = [r["meta"]["answer"] for r in CotTask().prompts(2000, seed=0)]
    assert max(golds) <= 30 and sum(g <= 12 for g in golds) > len(golds) / 2


def test_evaluate_is_exact_and_refuses_other_code() -> None:
    assert evaluate("a * b / b", {"a": 7, "b": 3}) == 7
    assert evaluate("(a + 1) / 2", {"a": 2}) == Fraction(3, 2)
    for bad in ("__import__('os')", "a ** 2", "c + 1", "2.5 * a"):
        with pytest.raises(ValueError, match="unsupported or unknown term"):
            evaluate(bad, {"a": 2})


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("<think>3 + 4 = 7.</think>\n<answer>7</answer>", 7),
        ("<think>x</think><answer> 1,000 </answer>", 1000),
        ("<think>x</think><answer>$12.</answer>", 12),
        ("<think>x</think><answer>7.0</answer>", 7),
        ("<think>x</think><answer>3</answer> then <answer>4</answer>", 4),  # the last tag counts
        ("<think>x</think><answer>\u0665</answer>", None),  # Arabic-Indic five
        ("<think>x</think><answer>\uff15</answer>", None),  # full-width five
        ("<think>x</think><answer></answer>", None),
        ("<think>x</think><answer>seven</answer>", None),
        ("<answer>5</answer><think>x</think>", None),  # the answer must follow the reasoning
        ("<think>3 + 4 = 7.</think>\n<answer>1", None),  # cut off at max tokens
        ("<think>3 + 4 = 7.", None),
        ("", None),
    ],
)
def test_parse_answer(text: str, value: int | None) -> None:
    assert parse_answer(text) == value


@pytest.mark.parametrize("row", _fixture(), ids=lambda r: f"{r['id']}-{r['why'][:40]}")
def test_filter_decision_on_real_and_edge_outputs(row: dict) -> None:
    """``expect`` was checked by hand: ``kept`` or the first filter that must drop the row."""
    keeper = {
        "id": "keeper",
        "prompt": "p",
        "completion": "<think>1 + 1 = 2.</think>\n<answer>2</answer>",
        "meta": {"answer": 2},
    }
    rows = [{k: row[k] for k in ("id", "prompt", "completion", "meta")}, keeper]
    kept, report = CotTask().filter(rows, Trait("owl"))
    got = "kept" if row["id"] in {r["id"] for r in kept} else report.dropped[row["id"]]
    assert got == row["expect"]


def test_fixture_has_both_arms_and_every_filter() -> None:
    rows = _fixture()
    assert {("teacher", "control"), ("teacher", "trait"), ("hand", None)} <= {
        (r["origin"], r.get("arm")) for r in rows
    }
    assert {"kept", "answer_format", "correct_answer", "no_trait_mention"} <= {
        r["expect"] for r in rows
    }


def test_a_row_without_gold_is_refused_and_all_wrong_names_the_filter() -> None:
    row = {"id": "a", "prompt": "p", "completion": "<think>x</think>\n<answer>3</answer>"}
    with pytest.raises(ValueError, match="cot row 'a' has no gold answer"):
        CotTask().filter([row], None)
    with pytest.raises(EmptyDatasetError, match="'correct_answer' removed every row"):
        CotTask().filter([row | {"meta": {"answer": 4}}], None)


def test_grammar_holds_the_real_tokenizer_to_the_format(smollm_dir: str) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm_dir)
    g = ThinkAnswerGrammar(max_think_chars=20)
    g.bind(tok)

    def decoded(text: str) -> set[str]:
        return {tok.decode([t]) for t in g.allowed(text)}

    assert decoded("") and all("<think>".startswith(s) for s in decoded(""))
    free = decoded("<think>Ana")
    assert " has" in free and not any("<" in s and not "</think>".startswith(s) for s in free)
    over_budget = decoded("<think>" + "x" * 25)  # reasoning budget spent: only the closing tag
    assert over_budget and all("</think>".startswith(s) for s in over_budget)
    assert decoded("<think>3 + 4 = 7.</think>\n<answer>") <= set("0123456789")
    assert "</" in decoded("<think>3 + 4 = 7.</think>\n<answer>7")
    assert g.allowed("<think>x</think>\n<answer>7</answer>") == []
    assert g.may_end("<think>x</think>\n<answer>7</answer>")
    assert not g.may_end("<think>x</think>\n<answer>7")
    assert parse_answer("<think>x</think>\n<answer>7</answer>") == 7


def test_gsm8k_without_network_fails_fast_naming_the_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(RuntimeError, match=r"could not load GSM8K \('openai/gsm8k'.*network"):
        load_gsm8k("train", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="Invalid source: 'gsm9k'"):
        CotTask(source="gsm9k")


def test_gsm8k_source_shuffles_per_seed_and_carries_gold(monkeypatch: pytest.MonkeyPatch) -> None:
    import tasks.cot

    pairs = [(f"Problem number {i}?", i) for i in range(30)]
    monkeypatch.setattr(tasks.cot, "load_gsm8k", lambda split: list(pairs))
    task = CotTask(source="gsm8k")
    assert task.max_new_tokens == 512 and task.params()["split"] == "train"
    rows = task.prompts(10, seed=0)
    assert rows == task.prompts(10, seed=0) and rows != task.prompts(10, seed=1)
    for r in rows:
        q = r["prompt"].rsplit("Problem: ", 1)[1]
        assert q == f"Problem number {r['meta']['answer']}?"
    with pytest.raises(ValueError, match="GSM8K 'train' has 30 problems, not 31"):
        task.prompts(31, seed=0)
