"""`slb submit` runs the matched random drop for a defense that drops rows, into the folder that
owns those artifacts, at the share the defense kept, per task, on the same seeds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from benchmark.run import submission
from benchmark.run.validate import diff_numbers

REPO = Path(__file__).resolve().parents[1]


def _cell(results: Path, name: str, task: str, shares: tuple[float, float]) -> None:
    results.mkdir(parents=True, exist_ok=True)
    art = {
        "config": {"task": task},
        "data": {
            arm: {"defense_kept_share": s}
            for arm, s in zip(("trait", "control"), shares, strict=True)
        },
    }
    (results / f"{name}.json").write_text(json.dumps(art))


def test_a_dropping_defense_gets_its_matched_random_drop(tmp_path: Path, monkeypatch) -> None:
    subs = tmp_path / "submissions"
    shutil.copytree(
        REPO / "submissions" / "example-digit-entropy",
        subs / "example-digit-entropy",
        ignore=shutil.ignore_patterns("results"),
    )
    calls: list[dict] = []

    def fake_run_suite(suite, store, results_dir, **kw):
        calls.append({"results": Path(results_dir), **kw})
        if kw["defenses"] == ["random_drop"]:
            return {"cells": [], "errors": []}
        out = Path(results_dir) / suite
        _cell(out, "a", "numbers", (0.8, 0.76))
        _cell(out, "b", "numbers", (0.82, 0.78))
        _cell(out, "c", "code", (1.0, 1.0))  # kept everything: no control needed
        return {"cells": ["a", "b", "c"], "errors": []}

    monkeypatch.setattr(submission, "run_suite", fake_run_suite)
    # Skipped on request (seeds run one call at a time would each get a share of their own).
    submission.submit(subs / "example-digit-entropy", None, "quick", [0, 1], matched_drop=False)
    assert len(calls) == 1 and calls[0]["defenses"] != ["random_drop"]
    calls.clear()
    submission.submit(subs / "example-digit-entropy", store=None, suite="quick", seeds=[0, 1])
    assert len(calls) == 2
    drop = calls[1]
    assert drop["defenses"] == ["random_drop"] and drop["tasks"] == ["numbers"]
    assert drop["overrides"]["defense_params"] == {"keep": 0.79}
    assert (
        drop["seeds"] == [0, 1] and drop["results"] == (subs / "random_drop" / "results").resolve()
    )


def test_a_reference_or_the_control_itself_gets_none(tmp_path: Path, monkeypatch) -> None:
    subs = tmp_path / "submissions"
    for name in ("canonicalize-resample", "random_drop"):
        shutil.copytree(
            REPO / "submissions" / name, subs / name, ignore=shutil.ignore_patterns("results")
        )
    calls: list[list[str]] = []

    def fake_run_suite(suite, store, results_dir, **kw):
        calls.append(kw["defenses"])
        out = Path(results_dir) / suite
        _cell(out, "a", "numbers", (0.5, 0.5))
        return {"cells": ["a"], "errors": []}

    monkeypatch.setattr(submission, "run_suite", fake_run_suite)
    for name in ("canonicalize-resample", "random_drop"):
        submission.submit(subs / name, store=None, suite="quick", seeds=[0])
    assert calls == [["canonicalize"], ["random_drop"]]


def test_reference_field_is_checked(tmp_path: Path) -> None:
    folder = tmp_path / "x"
    folder.mkdir()
    text = (
        (REPO / "submissions" / "none" / "submission.yaml")
        .read_text()
        .replace("name: none", "name: x")
    )
    (folder / "submission.yaml").write_text(text + "reference: baseline-ish\n")
    sub, problems = submission.load_submission(folder)
    assert sub is None and any("'reference' must be one of" in p for p in problems)
    (folder / "submission.yaml").write_text(
        text.replace("{builtin: none}", "{builtin: /abs/x.py:P}")
    )
    sub, problems = submission.load_submission(folder)
    assert sub is None and any("is not a built-in defense" in p for p in problems)


def test_the_shared_control_folder_pools_every_defenses_drops(tmp_path: Path, monkeypatch) -> None:
    """Two dropping defenses' matched drops land in one folder; each `slb submit` call's own
    summary would list only its own runs (the other defense's pool lost from the summary), so the
    folder's summary is rebuilt over every run there, one pool per share."""
    subs = tmp_path / "submissions"
    shutil.copytree(REPO / "submissions" / "random_drop", subs / "random_drop")
    shutil.copytree(
        REPO / "submissions" / "example-digit-entropy",
        subs / "example-digit-entropy",
        ignore=shutil.ignore_patterns("results"),
    )
    out = subs / "random_drop" / "results" / "restricted"
    committed = json.loads((out / "summary.json").read_text())
    first = sorted(out.glob("numbers__*.json"))[0]

    def fake_run_suite(suite, store, results_dir, **kw):
        if kw["defenses"] == ["random_drop"]:  # a new share's run at one seed, as run_suite writes
            art = json.loads(first.read_text())
            art["config"]["defense_params"] = {"keep": 0.79}
            (out / "numbers__random_drop__owl__seed760__0000aaaa.json").write_text(json.dumps(art))
            own = {"suite": suite, "cells": ["numbers__random_drop__owl__seed760__0000aaaa"]}
            (out / "summary.json").write_text(json.dumps({**own, "pooled": [], "errors": []}))
            return {**own, "errors": []}
        mine = Path(results_dir) / suite
        _cell(mine, "a", "numbers", (0.8, 0.78))
        return {"cells": ["a"], "errors": []}

    monkeypatch.setattr(submission, "run_suite", fake_run_suite)
    submission.submit(subs / "example-digit-entropy", None, "restricted", [760])
    got = json.loads((out / "summary.json").read_text())
    assert len(got["cells"]) == 6 and set(committed["cells"]) < set(got["cells"])
    assert [p["seeds"] for p in got["pooled"]] == [[760, 761, 762, 763, 764]]
    pooled, before = got["pooled"][0]["leakage"], committed["pooled"][0]["leakage"]
    assert not diff_numbers(before, pooled, "pool")  # the same five cells' pool
