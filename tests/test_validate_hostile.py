"""Hostile and broken input to `slb validate` and `submission.yaml` loading: every bad file is one
problem line naming the file and what was expected, never a traceback, and the other files are
still checked. Huge files are refused by size before they are parsed; YAML bombs and `!!python`
tags stay harmless."""

from __future__ import annotations

import copy
import json
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmark.core.store import ArtifactStore
from benchmark.run.checking import MAX_RESULT_BYTES
from benchmark.run.cli import main
from benchmark.run.submission import MAX_SUBMISSION_BYTES, load_submission
from benchmark.run.validate import validate_submission

ROOT = Path(__file__).resolve().parent.parent
NONE = ROOT / "submissions" / "none"
SUITE = "quick"


def _set(path: str, value: Any) -> Callable[[dict], dict]:
    """A mutation of a valid artifact: set ``path`` (``a.b[2].c``) to ``value``."""
    keys: list[Any] = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path)]

    def mutate(art: dict) -> dict:
        node = art
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
        return art

    return mutate


def _nested(depth: int) -> Any:
    v: Any = 1
    for _ in range(depth):
        v = [v]
    return v


def _text(mutate: Callable[[dict], dict], old: str, new: str) -> Callable[[dict], str]:
    """A mutation whose JSON text is then edited (NaN and Infinity cannot come from json.dumps
    with allow_nan=False, which is how a hostile file differs from a written one)."""
    return lambda art: json.dumps(mutate(art)).replace(old, new, 1)


# name -> (the file's content: bytes, or a function of a valid artifact; expected in the line)
BAD_ARTIFACTS: dict[str, tuple[Any, str]] = {
    "top_list": (b"[1, 2]", "top level is a list, expected a results object"),
    "top_number": (b"42", "top level is an int, expected a results object"),
    "top_string": (b'"x"', "top level is a str, expected a results object"),
    "top_null": (b"null", "top level is null, expected a results object"),
    "top_nan": (b"NaN", "the top level is nan: expected a finite number"),
    "empty": (b"", "unreadable JSON"),
    "not_utf8": (b'\xff\xfe{"a": 1}', "unreadable JSON"),
    "truncated": (lambda art: json.dumps(art)[:500], "unreadable JSON"),
    "huge_int": (b'{"schema": ' + b"9" * 5000 + b"}", "unreadable JSON"),
    "deep_lists": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply to decode"),
    "deep_dicts": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply to decode"),
    "deep_in_config": (_set("config.extra", _nested(200)), "nested deeper than 32 levels"),
    "nan_score": (
        _text(_set("scores.trait[0].teacher_forced", 0.123456), "0.123456", "NaN"),
        "nan at scores.trait[0].teacher_forced: expected a finite number",
    ),
    "infinite_leakage": (
        _text(_set("leakage.teacher_forced.trait_vs_control.diff_pp", 7.654321), "7.654321",
              "-Infinity"),
        "-inf at leakage.teacher_forced.trait_vs_control.diff_pp: expected a finite number",
    ),  # fmt: skip
    "overflow": (
        _text(_set("data.trait.generated", 123456789), "123456789", "1e999"),
        "inf at data.trait.generated: expected a finite number",
    ),
    "missing_scores": (lambda art: {k: v for k, v in art.items() if k != "scores"},
                       "missing required fields ['scores']"),  # fmt: skip
    "schema": (_set("schema", "slb.results/0"), "schema 'slb.results/0', expected"),
    "config_list": (_set("config", [1]), "config is a list, expected an object"),
    "defense_str": (_set("defense", "none"), "defense is a str, expected an object"),
    "run_info_list": (_set("run_info", []), "run_info is a list, expected an object"),
    "data_str": (_set("data", "x"), "data is a str, expected an object"),
    "scores_list": (_set("scores", []), "scores is a list, expected an object"),
    "leakage_number": (_set("leakage", 3), "leakage is an int, expected an object"),
    "integrity_str": (_set("integrity", "x"), "integrity is a str, expected an object of hashes"),
    "integrity_null": (_set("integrity", None), "integrity is null, expected an object of hashes"),
    "integrity_list": (_set("integrity", ["x"]), "integrity is a list, expected an object"),
    "score_list_str": (_set("scores.base", "x"), "scores.base is a str, expected a list"),
    "score_row_list": (_set("scores.trait[0]", [1]), "scores.trait[0] is a list, expected an obj"),
    "score_row_no_id": (_set("scores.trait[2].id", 7), "scores.trait[2] is a dict, expected"),
    "score_above_1": (_set("scores.control[3].teacher_forced", 1.5), "expected a number in [0, 1]"),
    "score_negative": (_set("scores.base[1].sampled", -0.1), "expected a number in [0, 1]"),
    "score_bool": (_set("scores.control[0].teacher_forced", True), "True, expected a number"),
    "score_str": (_set("scores.trait[0].teacher_forced", "0.5"), "'0.5', expected a number"),
    "candidates_str": (_set("scores.trait[0].candidates", "owl"), "candidates is a str"),
    "arm_str": (_set("data.trait", "x"), "data.trait is a str, expected an object"),
    "arm_missing": (lambda art: _set("data", {"trait": art["data"]["trait"]})(art),
                    "data.control is null, expected an object"),  # fmt: skip
    "count_str": (_set("data.control.generated", "800"), "data.control lacks ['generated']"),
    "count_negative": (_set("data.trait.trained_on", -1), "lacks ['trained_on'] as row counts"),
    "count_float": (_set("data.trait.after_defense", 799.5), "lacks ['after_defense']"),
    "kept_share_str": (_set("data.trait.rows_kept_share", "1"), "rows_kept_share is a str"),
    "cost_list": (_set("data.control.defense_cost", [1]), "defense_cost is not an object"),
    "cost_str_value": (_set("data.trait.defense_cost.helper_seconds", "x"), "defense_cost is"),
    "key_list": (_set("data.trait.defended_key", ["x"]), "defended_key is a list"),
    "key_path": (_set("data.trait.defended_key", "../../../etc/passwd"), "Invalid key"),
    "leakage_metric_list": (_set("leakage.teacher_forced", [1]), "leakage.teacher_forced is a list"),
    "seed_str": (_set("config.seed", "0"), "config.seed is '0', expected an integer"),
    "trait_list": (_set("config.trait", ["owl"]), "config.trait is a list, expected a str"),
    "setup_str": (_set("setup", "x"), "setup is a str, expected an object"),
    "one_question": (lambda art: _set("scores.control", art["scores"]["control"][:1])(
        _set("scores.trait", art["scores"]["trait"][:1])(art)), "fewer than 2 scored questions"),
}  # fmt: skip

# name -> (summary.json content, expected in its one problem line)
BAD_SUMMARIES: dict[str, tuple[bytes, str]] = {
    "list": (b"[]", "top level is a list, expected the suite summary object"),
    "garbage": (b"{", "unreadable JSON"),
    "nan": (b'{"cells": [NaN]}', "nan at cells[0]: expected a finite number"),
    "deep": (b"[" * 100_000, "nested too deeply to decode"),
    "cells_str": (b'{"cells": "abc"}', "cells is a str, expected a list of cell names"),
    "cells_unhashable": (b'{"cells": [["x"], {}]}', "cells[0] is a list, expected cell names"),
    "errors_str": (b'{"errors": ["boom"]}', "errors[0] is a str, expected error records"),
    "pooled_str": (b'{"pooled": "x"}', "pooled is a str, expected a list of objects with task"),
    "pooled_partial": (b'{"pooled": [{"task": "numbers"}]}', "pooled[0] is a dict, expected"),
    "pooled_leakage_list": (
        b'{"pooled": [{"task": "t", "defense": "d", "trait": "owl", "leakage": []}]}',
        "pooled[0] is a dict, expected objects with task, defense, trait (strings) and leakage",
    ),
    "missing_cell": (b'{"cells": ["nope"]}', "lists cell 'nope', whose artifact is missing"),
}


def _write(path: Path, content: Any, art: dict) -> None:
    if callable(content):
        content = content(copy.deepcopy(art))
    if isinstance(content, dict):
        content = json.dumps(content)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


def _big(path: Path, size: int) -> None:
    """A file of ``size`` bytes without writing them (sparse): refused by its size alone."""
    path.write_text('{"schema": "slb.results/1"}')
    with path.open("r+b") as f:
        f.truncate(size)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, str, list[str]]:
    """A copy of the `none` submission with one valid suite, every bad artifact beside its valid
    cells, and one more suite per bad summary; validated once (with a store, so the store key
    check runs too). Returns the folder, the rendered report and its problem lines."""
    folder = tmp_path_factory.mktemp("hostile") / "none"
    shutil.copytree(NONE / "results" / SUITE, folder / "results" / SUITE)
    shutil.copy(NONE / "submission.yaml", folder / "submission.yaml")
    suite = folder / "results" / SUITE
    cells = sorted(suite.glob("numbers__*.json"))
    art = json.loads(cells[0].read_text())
    for name, (content, _) in BAD_ARTIFACTS.items():
        _write(suite / f"bad_{name}.json", content, art)
    _big(suite / "bad_too_big.json", MAX_RESULT_BYTES + 1)
    (suite / "bad_directory.json").mkdir()
    (suite / "bad_dev_null.json").symlink_to("/dev/null")
    for name, (content, _) in BAD_SUMMARIES.items():
        other = folder / "results" / f"s-{name}"
        other.mkdir()
        shutil.copy(cells[0], other / cells[0].name)
        (other / "summary.json").write_bytes(content)
    big = folder / "results" / "s-big"
    big.mkdir()
    shutil.copy(cells[0], big / cells[0].name)
    _big(big / "summary.json", MAX_RESULT_BYTES + 1)
    # A summary that pools a cell refused above: one line for the cell, a warning for the pool.
    refused = folder / "results" / "s-refused-cell"
    shutil.copytree(suite, refused, ignore=lambda d, names: [n for n in names if "bad_" in n])
    (refused / cells[1].name).write_text("[]")
    store = ArtifactStore(tmp_path_factory.mktemp("store"))
    t0 = time.perf_counter()
    report = validate_submission(folder, store)
    assert time.perf_counter() - t0 < 60
    return folder, report.render(), report.problems


def test_every_bad_artifact_is_one_line_naming_it(hostile) -> None:
    folder, out, problems = hostile
    suite = folder / "results" / SUITE
    expected = {f"bad_{k}": v[1] for k, v in BAD_ARTIFACTS.items()}
    expected |= {
        "bad_too_big": f"{MAX_RESULT_BYTES + 1} bytes, over the {MAX_RESULT_BYTES}-byte cap",
        "bad_directory": "not a regular file (expected a result file)",
        "bad_dev_null": "not a regular file (expected a result file)",
    }
    wrong = []
    for stem, want in expected.items():
        lines = [p for p in problems if p.startswith(f"{suite / stem}.json: ")]
        if len(lines) != 1 or want not in lines[0]:
            wrong.append((stem, want, lines))
    assert not wrong, "\n".join(map(str, wrong))
    assert "Traceback" not in out and all("\n" not in p for p in problems)
    assert all(len(p) < 400 for p in problems), max(problems, key=len)
    # The valid cells beside them and their summary are still checked, and pass.
    assert not [p for p in problems if f"{suite}/numbers__" in p or f"{suite}/summary" in p]
    # bad_key_path is read (its defended_key is refused by the store lookup), the rest are not.
    assert f"ok: {suite}: 4 artifact(s) checked" in out


def test_every_bad_summary_is_one_line_naming_it(hostile) -> None:
    folder, out, problems = hostile
    expected = {name: want for name, (_, want) in BAD_SUMMARIES.items()}
    expected["big"] = f"over the {MAX_RESULT_BYTES}-byte cap for a suite summary"
    wrong = []
    for name, want in expected.items():
        suite = folder / "results" / f"s-{name}"
        lines = [p for p in problems if p.startswith(str(suite))]
        if (
            len(lines) != 1
            or not lines[0].startswith(f"{suite}/summary.json: ")
            or want not in lines[0]
        ):
            wrong.append((name, want, lines))
        assert f"ok: {suite}: 1 artifact(s) checked" in out
    assert not wrong, "\n".join(map(str, wrong))


def test_a_pooled_cell_that_was_refused_is_reported_once(hostile) -> None:
    folder, out, problems = hostile
    suite = folder / "results" / "s-refused-cell"
    lines = [p for p in problems if p.startswith(str(suite))]
    assert len(lines) == 1 and "top level is a list" in lines[0], lines
    assert f"warning: {suite}/summary.json: pooled none not recomputed: cells [" in out


def test_malformed_integrity_is_not_taken_for_an_old_artifact(hostile) -> None:
    """Only an absent integrity block "predates integrity hashes" (test_submissions.py)."""
    folder, out, problems = hostile
    bad = folder / "results" / SUITE / "bad_integrity_str.json"
    assert not [w for w in out.splitlines() if str(bad) in w and "predates" in w]


def test_cli_exits_1_without_a_traceback(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "none"
    shutil.copytree(NONE / "results" / SUITE, folder / "results" / SUITE)
    shutil.copy(NONE / "submission.yaml", folder / "submission.yaml")
    (folder / "results" / SUITE / "bad.json").write_bytes(b"[" * 100_000)
    summary = folder / "results" / SUITE / "summary.json"
    summary.write_text(summary.read_text().replace('"cells": [', '"cells": [[1], ', 1))
    assert main(["validate", str(folder), "--store", str(tmp_path / "store")]) == 1
    out = capsys.readouterr().out
    assert "Traceback" not in out and "PROBLEM: " in out and "2 problem(s)" in out, out


# --- submission.yaml ------------------------------------------------------------------------

GOOD = (NONE / "submission.yaml").read_text()
BOMB = (
    "".join(
        f"{a}: &{a} [{', '.join([f'*{p}'] * 9 if p else ['lol'] * 9)}]\n"
        for p, a in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
    )
    + "name: *i\nauthors: *i\n"
)


def _load(tmp_path: Path, text: str | bytes) -> list[str]:
    folder = tmp_path / "none"
    folder.mkdir(exist_ok=True)
    path = folder / "submission.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    t0 = time.perf_counter()
    sub, problems = load_submission(folder)
    assert time.perf_counter() - t0 < 2, "a bad submission.yaml must be refused quickly"
    assert sub is None and problems
    assert all("\n" not in p and len(p) < 400 for p in problems), problems
    return problems


@pytest.mark.parametrize(
    "text, want",
    [
        (BOMB, "more than 10000 values (YAML aliases expand to copies)"),
        ("[" * 100_000, "nests too deeply to parse"),
        ("a: " + "[" * 50 + "]" * 50, "nested deeper than 32 levels"),
        (b"name: \xff\xfe", "is not UTF-8 text"),
        ("- 1\n- 2\n", "must hold a mapping of fields, got list"),
        ("42", "must hold a mapping of fields, got int"),
        ("params: {x: .nan}\n", "nan at params.x: expected a finite number"),
        ("params: {x: -.inf}\n", "-inf at params.x: expected a finite number"),
        ("a: !!python/object/apply:os.system ['touch PWNED']\n", "is not valid YAML"),
        ("a: !!python/name:os.system\n", "is not valid YAML"),
        ("a: !!python/object/new:os.system [x]\n", "is not valid YAML"),
        ("{[a, b]: 1}\n", "is not valid YAML"),
        (GOOD.replace("name: none", "name: " + "x" * 900_000), "'name' 'xxxxxxxx"),
        (GOOD + "\n" + "x" * 1000 + ": 1\n", "unknown field 'xxxxx"),
        (GOOD.replace("{builtin: none}", '{module: "a\\0.py", class: X}'), "not a usable file"),
        (GOOD.replace("{builtin: none}", "{module: " + "x" * 5000 + ".py, class: X}"),
         "not a usable file name"),
        (GOOD.replace("{builtin: none}", "{1: a, builtin: none, module: x}"),
         "exactly one of builtin, entry_point, module, got ['1', 'builtin', 'module']"),
        (GOOD.replace("{builtin: none}", "{builtin: none, 1: a}"), "unknown key(s) ['1']"),
    ],
)  # fmt: skip
def test_bad_submission_yaml_is_one_line_each(tmp_path: Path, monkeypatch, text, want) -> None:
    assert "defense: {builtin: none}" in GOOD
    monkeypatch.chdir(tmp_path)
    problems = _load(tmp_path, text)
    assert any(want in p for p in problems), problems
    assert not (tmp_path / "PWNED").exists()


def test_huge_submission_yaml_is_refused_by_size_before_parsing(tmp_path: Path) -> None:
    folder = tmp_path / "none"
    folder.mkdir()
    path = folder / "submission.yaml"
    _big(path, 100_000_000)  # the 100 MB file that took 46 s and 423 MB to parse
    t0 = time.perf_counter()
    sub, problems = load_submission(folder)
    assert time.perf_counter() - t0 < 0.5
    assert problems == [
        f"{path}: 100000000 bytes, over the {MAX_SUBMISSION_BYTES}-byte cap for submission.yaml; "
        "not read"
    ]
    path.write_text(GOOD + "#" * (MAX_SUBMISSION_BYTES - len(GOOD.encode()) + 1))
    assert "-byte cap" in _load(tmp_path, path.read_bytes())[0]
    path.write_text(GOOD + "#" * (MAX_SUBMISSION_BYTES - len(GOOD.encode()) - 10))
    assert load_submission(folder)[1] == []  # at the cap, a padded real file still loads


def test_submission_yaml_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "none" / "submission.yaml").mkdir(parents=True)
    sub, problems = load_submission(tmp_path / "none")
    assert sub is None and problems == [
        f"{tmp_path / 'none' / 'submission.yaml'}: not a regular file (expected submission.yaml)"
    ]
