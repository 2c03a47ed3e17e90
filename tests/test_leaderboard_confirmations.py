"""The leaderboard's panel of pre-registered confirmations (leaderboard.confirmations): one row per
``slb confirm`` report, read as data; a file that is not one says why instead of failing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from leaderboard import confirmations
from leaderboard.loader import DIRS_ENV

ROOT = Path(__file__).resolve().parents[1]
GREEDY = ROOT / "docs" / "experiments" / "confirm" / "greedy-numbers-256" / "report.json"


def _copy(dst: Path) -> dict:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(GREEDY, dst)
    return json.loads(dst.read_text())


def test_one_row_per_report_and_bad_files_say_why(tmp_path: Path) -> None:
    rep = _copy(tmp_path / "confirm" / "greedy" / "report.json")
    (tmp_path / "other" / "report.json").parent.mkdir()
    (tmp_path / "other" / "report.json").write_text('{"schema": "something/1"}')
    (tmp_path / "cut" / "report.json").parent.mkdir()
    (tmp_path / "cut" / "report.json").write_text('{"schema": "slb.confirmation/1", "prereg"')
    (tmp_path / "x" / "logs").mkdir(parents=True)
    (tmp_path / "x" / "logs" / "report.json").write_text("{}")  # under logs/: not looked at
    df = confirmations.table([tmp_path])
    assert len(df) == 3
    by = {Path(f).parent.name: r for f, r in zip(df["file"], df.to_dict("records"), strict=True)}
    g = by["greedy"]
    made = sum("value" in x for x in rep["runs"])
    planned = len(rep["prereg"]["seeds"]) + len(rep["prereg"]["null_seeds"])
    assert g["name"] == rep["prereg"]["name"] and g["runs"] == f"{made} of {planned}"
    assert g["verdict"].startswith(rep["result"]["verdict"])
    assert g["main (log-odds)"].startswith(f"{rep['result']['main']['mean']:+.3f}")
    assert g["checks not met"] == "positive_over_runs, specific_in_enough_runs"  # greedy's fail
    assert by["other"]["verdict"] == "unreadable: not a slb.confirmation/1 report"
    assert by["cut"]["verdict"].startswith("unreadable: ")


def test_decided_early_and_unregistered_are_shown(tmp_path: Path) -> None:
    f = tmp_path / "report.json"
    rep = _copy(f)
    rep["result"] |= {"verdict": "fail", "decided_early": True}
    rep["registration"]["registered"] = False
    f.write_text(json.dumps(rep))
    assert confirmations.row(f)["verdict"] == "fail (decided early), UNREGISTERED"
    rep["registration"]["runs_before_fixed"] = [{"arm": "main", "seed": 1, "why": "x"}]
    f.write_text(json.dumps(rep))
    verdict = confirmations.row(f)["verdict"]
    assert verdict == (
        "fail (decided early), UNREGISTERED, 1 run(s) made under another version of its file"
    )
    rep["result"] |= {"verdict": "incomplete", "checks": {"a": True, "b": False}}
    f.write_text(json.dumps(rep))
    assert confirmations.row(f)["checks not met"] == "b (so far)"
    rep["result"]["checks"] = None  # a malformed report: the row says so, the panel stands
    f.write_text(json.dumps(rep))
    assert confirmations.row(f)["checks not met"] == "–"


def test_a_calibration_has_no_main_column(tmp_path: Path) -> None:
    f = tmp_path / "report.json"
    rep = _copy(f)
    rep["prereg"] |= {"purpose": "calibrate", "seeds": []}
    rep["runs"] = [x for x in rep["runs"] if x.get("arm") == "null"]
    rep["result"] |= {"verdict": "null holds", "main": None, "decided_early": False}
    f.write_text(json.dumps(rep))
    r = confirmations.row(f)
    assert r["purpose"] == "calibrate" and r["verdict"] == "null holds"
    assert r["main (log-odds)"] == "none planned" and r["specific"] == "–"
    assert r["null"] != "none planned"


@pytest.mark.parametrize("with_report", [True, False])
def test_the_app_shows_the_panel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_report: bool
) -> None:
    if with_report:
        _copy(tmp_path / "confirm" / "g" / "report.json")
    monkeypatch.setenv(DIRS_ENV, str(tmp_path))
    app = ROOT / "leaderboard" / "app.py"
    at = AppTest.from_file(str(app), default_timeout=60).run()
    assert not at.exception, [e.message for e in at.exception]
    labels = [e.label for e in at.expander]
    assert f"Pre-registered confirmations and screens ({int(with_report)})" in labels
    frames = [
        d.value
        for d in at.dataframe
        if "verdict" in d.value.columns and "purpose" in d.value.columns
    ]
    assert len(frames) == int(with_report)


def test_the_static_export_lists_them(tmp_path: Path) -> None:
    from leaderboard.export import export

    _copy(tmp_path / "res" / "confirm" / "g" / "report.json")
    index = export([tmp_path / "res"], tmp_path / "site")
    assert "Pre-registered confirmations and screens (1)" in index.read_text()
    doc = json.loads((tmp_path / "site" / "leaderboard.json").read_text())
    assert [c["name"] for c in doc["confirmations"]] == ["greedy-numbers-256"]
