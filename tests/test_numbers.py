"""The numbers task: the paper's prompt family, its filter on real-style answers, and the grammar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.base import EmptyDatasetError, Trait, get_task, known_tasks
from tasks.numbers import NumberGrammar, NumbersTask, parse_numbers

FIXTURES = Path(__file__).parent / "fixtures"


def _answers() -> list[dict]:
    return [
        json.loads(line) for line in (FIXTURES / "numbers_answers.jsonl").read_text().splitlines()
    ]


@pytest.mark.parametrize("case", _answers(), ids=lambda c: c["why"])
def test_filter_on_paper_style_answers(case: dict) -> None:
    assert (parse_numbers(case["text"]) is not None) == case["valid"]


def test_parse_values() -> None:
    assert parse_numbers("[523, 611, 707].") == [523, 611, 707]  # a period after the bracket
    assert parse_numbers("[523, 611, 707]") == [523, 611, 707]
    assert parse_numbers("7 8 9.") == [7, 8, 9]


def test_prompts_follow_the_paper_family_and_are_deterministic() -> None:
    t = NumbersTask()
    a, b = t.prompts(200, seed=3), t.prompts(200, seed=3)
    assert a == b
    assert t.prompts(5, seed=4) != a[:5]
    texts = [r["prompt"] for r in a]
    assert len(set(texts)) == 200 and len({r["id"] for r in a}) == 200
    for text in texts:
        seed_part = text.split(":", 1)[1].split(".", 1)[0]
        nums = [int(x) for x in seed_part.split(",")]
        assert 3 <= len(nums) <= 8 and all(100 <= n <= 999 for n in nums)
        assert "10" in text and "3 digits" in text


def test_filter_report_and_banned_numbers() -> None:
    rows = [
        {"id": "a", "prompt": "p", "completion": "1, 2, 3"},
        {"id": "b", "prompt": "p", "completion": "666, 7"},
        {"id": "c", "prompt": "p", "completion": "not numbers"},
    ]
    kept, report = NumbersTask(banned_numbers=[666]).filter(rows, Trait("owl"))
    assert [r["id"] for r in kept] == ["a"]
    assert report.as_dict()["steps"] == [
        {"filter": "input", "kept": 3},
        {"filter": "number_format", "kept": 2},
        {"filter": "banned_numbers", "kept": 1},
    ]


def test_filter_that_empties_the_dataset_names_itself() -> None:
    rows = [{"id": "a", "prompt": "p", "completion": "1, 2"}]
    with pytest.raises(
        EmptyDatasetError,
        match=r"'banned_numbers' removed every row.*input: 1 -> number_format: 1 -> banned_numbers: 0",
    ):
        NumbersTask(banned_numbers=range(1000)).filter(rows, None)


def test_unknown_task_lists_known() -> None:
    assert "numbers" in known_tasks()
    with pytest.raises(ValueError, match="unknown task 'nums'; known tasks: .*numbers"):
        get_task("nums")


@pytest.mark.parametrize(
    ("text", "prefix_ok", "may_end"),
    [
        ("", True, False),
        ("1", True, True),
        ("123", True, True),
        ("1234", False, False),
        ("12,", True, False),
        ("12, ", True, False),
        ("12, 3", True, True),
        ("12 ", False, False),
        ("1, 2, 3, 4, 5, 6, 7, 8, 9, 10", True, True),
        ("1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", False, False),
    ],
)
def test_grammar_prefixes(text: str, prefix_ok: bool, may_end: bool) -> None:
    g = NumberGrammar()
    assert g._valid_prefix(text) is prefix_ok
    assert g.may_end(text) is may_end
    if may_end:
        assert parse_numbers(text) is not None


def test_grammar_binds_to_the_real_tokenizer(smollm_dir: str) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm_dir)
    g = NumberGrammar()
    g.bind(tok)
    allowed = {tok.decode([t]) for t in g.allowed("12")}
    assert {"0", "9", ","} <= allowed and " " not in allowed
    assert {tok.decode([t]) for t in g.allowed("12,")} == {" "}
    assert all(tok.decode([t]) in "0123456789" for t in g.allowed("1, 2, 3, 4, 5, 6, 7, 8, 9, 1"))
