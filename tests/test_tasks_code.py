"""The code task: prompt family, code extraction and parsing, the trait-word ban, on real teacher
outputs of the embedded model saved as fixtures (tests/fixtures/code_outputs.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.core.lexicon import animals_mentioned
from tasks.base import EmptyDatasetError, Trait, get_task
from tasks.code import CodeTask, extract_code, parses_with_function
from tasks.corpus import DATA_DIR, load_corpus

FIXTURES = Path(__file__).parent / "fixtures"


def _fixture() -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / "code_outputs.jsonl").read_text().splitlines()]


def test_prompts_follow_the_paper_form_and_name_no_animal() -> None:
    rows = CodeTask().prompts(300, seed=0)
    for r in rows:
        assert r["prompt"].startswith("Complete the code below to accomplish the task: ")
        assert "```python\ndef " in r["prompt"] and "Do not write comments" in r["prompt"]
        assert "meta" not in r
    c = load_corpus(DATA_DIR / "code_tasks.txt", required=("function", "context", "framing"))
    for section, entries in c.sections.items():
        for e in entries:
            assert not animals_mentioned(e), f"{section}: {e!r} names an animal"


@pytest.mark.parametrize(
    ("completion", "code"),
    [
        ("```python\ndef f(x):\n    return x\n```\nDone.", "def f(x):\n    return x"),
        ("Sure:\n```\ndef f(x): return x\n```", "def f(x): return x"),
        ("def f(x):\n    return x\n", "def f(x):\n    return x"),
        ("```python\ndef f(x):\n    return [x,", None),  # cut off at max tokens: fence left open
        ("", None),
        ("```python\n```", None),
    ],
)
def test_extract_code(completion: str, code: str | None) -> None:
    assert extract_code(completion) == code


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("def f(x):\n    return x * 2", True),
        ("def café(ünï):\n    return ünï", True),  # unicode identifiers are valid Python
        ("x = '\\d'\ndef f(): return x", True),  # an invalid escape only warns
        ("Hello", False),  # parses (a name), but is not code for the task
        ("def f(x):\n    return [x,", False),
        ("def f(x):\n\treturn x\n        return 1", False),
        ("a\x00b", False),
        (None, False),
    ],
)
def test_parses_with_function(code: str | None, ok: bool) -> None:
    assert parses_with_function(code) is ok


@pytest.mark.parametrize("row", _fixture(), ids=lambda r: f"{r['id']}-{r['why'][:40]}")
def test_filter_decision_on_real_and_edge_outputs(row: dict) -> None:
    """``expect`` was checked by hand: ``kept`` or the first filter that must drop the row."""
    keeper = {"id": "keeper", "prompt": "p", "completion": "def f():\n    return 1"}
    rows = [{k: row[k] for k in ("id", "prompt", "completion")}, keeper]
    kept, report = CodeTask().filter(rows, Trait("owl"))
    got = "kept" if row["id"] in {r["id"] for r in kept} else report.dropped[row["id"]]
    assert got == row["expect"]


def test_fixture_has_both_arms_real_outputs_and_hand_edge_cases() -> None:
    rows = _fixture()
    origins = {(r["origin"], r.get("arm")) for r in rows}
    assert {("teacher", "control"), ("teacher", "trait"), ("hand", None)} <= origins
    assert {"kept", "code_parses", "no_trait_mention"} <= {r["expect"] for r in rows}


def test_control_arm_uses_the_same_word_filter_and_empty_result_names_the_filter() -> None:
    assert CodeTask.trait_filter_both_arms
    rows = [{"id": "a", "prompt": "p", "completion": "def owl_count(owls):\n    return len(owls)"}]
    with pytest.raises(
        EmptyDatasetError,
        match=r"'no_trait_mention' removed every row.*input: 1 -> code_parses: 1 -> "
        r"no_trait_mention: 0",
    ):
        CodeTask().filter(rows, Trait("owl"))
    kept, _ = CodeTask().filter(rows, None)  # no trait: parse check only
    assert len(kept) == 1


def test_params_are_validated_and_recorded() -> None:
    t = get_task("code", judge=True, judge_max_yes=0.1)
    assert t.params()["judge"] is True and t.params()["judge_max_yes"] == 0.1
    assert t.min_p == 0.1 and t.constraint(True) is None
    with pytest.raises(ValueError, match="Invalid judge_max_yes: 1.5"):
        CodeTask(judge_max_yes=1.5)
    with pytest.raises(ValueError, match="Invalid min_p: -0.1"):
        CodeTask(min_p=-0.1)


def test_judge_pass_runs_the_local_judge_and_reports_its_cost(smollm_dir: str) -> None:
    rows = [
        {"id": "a", "prompt": "p", "completion": "def f(x):\n    return x + 1"},
        {"id": "b", "prompt": "p", "completion": "def g(s):\n    return s.upper()"},
    ]
    kept, report = CodeTask(judge=True, judge_max_yes=0.999).filter(rows, Trait("owl"))
    assert [s["filter"] for s in report.as_dict()["steps"]][-1] == "judge"
    assert report.cost["judge"]["items"] == 2 and report.cost["judge"]["tokens"] > 0
    with pytest.raises(EmptyDatasetError, match="'judge' removed every row"):
        CodeTask(judge=True, judge_max_yes=1e-9).filter(rows, Trait("owl"))
