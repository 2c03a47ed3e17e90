"""Shipped template corpora: loading, filling, and errors that name the file and line."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tasks.base import get_task, known_tasks
from tasks.corpus import DATA_DIR, CorpusError, distinct, load_corpus
from tasks.cot import CotTask

NEW_TASKS = ("code", "cot", "paraphrase-unrelated", "paraphrase-contradict")


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "corpus.txt"
    p.write_text(text, encoding="utf-8")
    return p


def test_all_five_tasks_are_registered_and_unknown_names_list_them() -> None:
    assert set(NEW_TASKS) | {"numbers"} <= set(known_tasks())
    with pytest.raises(ValueError, match="unknown task 'paraphrase'; known tasks: code, cot, "):
        get_task("paraphrase")


@pytest.mark.parametrize("name", NEW_TASKS)
def test_ten_thousand_distinct_deterministic_prompts(name: str) -> None:
    task = get_task(name, trait="owl")
    rows = task.prompts(10_000, seed=0)
    assert len({r["prompt"] for r in rows}) == 10_000
    assert len({r["id"] for r in rows}) == 10_000
    assert task.prompts(50, seed=0) == rows[:50]  # a smaller run is a prefix of a larger one
    assert task.prompts(50, seed=1) != rows[:50]
    assert set(rows[0]) <= {"id", "prompt", "meta"}


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"corpus file not found: .*nothing\.txt"):
        load_corpus(tmp_path / "nothing.txt", required=())


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("orphan entry\n[a]\nx\n", r"corpus\.txt:1: entry 'orphan entry' comes before any"),
        ("# c\n\n[a]\nx\n[Bad Header]\ny\n", r"corpus\.txt:5: bad section header"),
        ("[a]\nx\n[b]\ny\n[a]\nz\n", r"corpus\.txt:5: section \[a\] repeats \(first at line 1\)"),
        ("[a]\nx\n[b]\n# only a comment\n", r"corpus\.txt:3: section \[b\] is empty"),
        ("[template]\nok {a}\nbad {nope}\n[a]\nx\n", r"corpus\.txt:3: slot \{nope\} names no"),
        ("[a]\nx\n", r"corpus\.txt: missing section\(s\) \[template\]"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(CorpusError, match=match):
        load_corpus(_write(tmp_path, text), required=("template",), templates=("template",))


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "latin1.txt"
    p.write_bytes("[a]\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(CorpusError, match="not UTF-8"):
        load_corpus(p, required=())


def test_fill_reuses_slots_draws_distinct_seconds_and_capitalises(tmp_path: Path) -> None:
    c = load_corpus(
        _write(tmp_path, "[t]\n{Who} met {who#2}; {who} paid {n:3..3} {x}.\n[who]\nann\nbo\n"),
        required=("t", "who"),
        templates=("t",),
        given=("x",),
    )
    for seed in range(20):
        text, nums = c.fill(c["t"][0], random.Random(seed), {"x": "coins"})
        first, rest = text.split(" met ")
        second = rest.split(";")[0]
        assert first in ("Ann", "Bo") and second in ("ann", "bo") and second != first.lower()
        assert f"; {first.lower()} paid 3 coins." in text and nums == {"n": 3}


def test_distinct_refuses_to_spin_when_the_generator_is_too_small() -> None:
    with pytest.raises(CorpusError, match="only 2 distinct prompts"):
        distinct(lambda rng: rng.choice("ab"), 5, seed="tiny")
    with pytest.raises(ValueError, match="Invalid number of prompts: 0"):
        distinct(lambda rng: "a", 0, seed="x")


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("a:1..3 | a + | {a} x", r"cot\.txt:2: formula 'a \+'"),
        (
            "a:1..3 | a + b | {a} x",
            r"cot\.txt:2: formula 'a \+ b': unsupported or unknown term 'b'",
        ),
        ("a:1..3 | a | {a} and {b}", r"cot\.txt:2: \{b\} is used but not drawn"),
        ("a:1..3 | a | {a} {colour}", r"cot\.txt:2: slot \{colour\} names no section"),
        ("a:5..1 | a | {a}", r"cot\.txt:2: bad draws"),
        ("a + 1 | {a}", r"cot\.txt:2: expected 'draws \| answer formula \| text'"),
        ("a:1..3 | a - 9 | {a} left", r"cot\.txt:2: no draw in 100 gives a non-negative integer"),
    ],
)
def test_cot_templates_are_checked(tmp_path: Path, line: str, match: str) -> None:
    p = tmp_path / "cot.txt"
    p.write_text(f"[problem]\n{line}\n[name]\nAnn\n[item]\npens\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=match):
        CotTask(corpus=str(p)).prompts(3, seed=0)


def test_shipped_files_are_documented() -> None:
    readme = (DATA_DIR / "README.md").read_text()
    for f in sorted(DATA_DIR.glob("*.txt")):
        assert f.name in readme and "Apache-2.0" in readme
