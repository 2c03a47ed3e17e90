"""The leaderboard's runs of several trait animals (leaderboard.several): found among the cells of
a selection, read as ``slb confirm`` reads them, shown in the app and in the static export.

The cells are the committed ones of the multi-animal screen's first run (owl, eagle and wolf
against one dolphin control arm, seed 790), so the figures are checked against that screen's own
report, not against numbers written here."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from leaderboard import several
from leaderboard.loader import DIRS_ENV, load

ROOT = Path(__file__).resolve().parent.parent
SCREEN = ROOT / "docs" / "experiments" / "confirm" / "screen-multi-restricted-numbers-256"
SEED = 790


def _cells(root: Path = SCREEN) -> list:
    cells = [c for c in load([root]).cells if c.seed == SEED]
    assert sorted(c.trait for c in cells) == ["eagle", "owl", "wolf"]
    return cells


def _reported() -> dict:
    report = json.loads((SCREEN / "report.json").read_text())
    return next(r for r in report["runs"] if r["seed"] == SEED and r["arm"] == "main")


def test_a_committed_run_reads_as_its_confirmation_report_says() -> None:
    df = several.table(_cells())
    assert len(df) == 1
    row, rep = df.iloc[0], _reported()
    assert row["animals"] == "+".join(rep["animals"][:-1]) + f" vs {rep['animals'][-1]}"
    assert row["multi-animal (log-odds)"] == f"{rep['value']:+.3f}"
    assert row["rank"].startswith(f"{rep['rank']} of {rep['n_pairs']} ")
    assert row["specific"] == ("yes" if rep["specific"] else "no")
    assert row["p_students"] == f"{rep['p_students']:.2g}"
    assert row["note"] == ""


def _copies(tmp_path: Path, edit=None, traits: dict[str, str] | None = None) -> list:
    """The screen's seed-790 cells copied to ``tmp_path`` (``traits`` adds copies of a cell under
    other trait names: {new trait: cell's trait}), each changed by ``edit(art)``, loaded again."""
    src = {
        p.name.split("__")[3]: json.loads(p.read_text())
        for p in SCREEN.glob(f"*__seed{SEED}__*.json")
    }
    todo = {t: t for t in src} | (traits or {})
    for new, old in todo.items():
        art = json.loads(json.dumps(src[old]))
        art["config"]["trait"] = new
        if edit:
            edit(art)
        (tmp_path / f"main__numbers__none__{new}__seed{SEED}.json").write_text(json.dumps(art))
    return load([tmp_path]).cells


def test_a_second_seed_adds_a_row_over_the_seeds(tmp_path: Path) -> None:
    again = _copies(tmp_path, lambda a: a["config"].update(seed=SEED + 1))
    df = several.table(_cells() + again)
    assert list(df["seeds"]) == [str(SEED), str(SEED + 1), f"2 runs: {SEED}, {SEED + 1}"]
    value = f"{_reported()['value']:+.3f}"
    assert df["multi-animal (log-odds)"].iloc[2].startswith(value)  # the same run twice
    assert df["specific"].iloc[2] == "2 of 2"


def test_cells_that_do_not_share_their_control_student_are_not_a_run(tmp_path: Path) -> None:
    def other_rows(art: dict) -> None:  # the control's scores agree, its training rows do not
        if art["config"]["trait"] == "owl":
            art["integrity"]["training_rows"]["control"] = "0" * 64

    assert several.table(_copies(tmp_path, other_rows)).empty
    # Controls that score differently are not read again at all (a suite run trait by trait).
    cells = _cells()
    owl = next(c for c in cells if c.trait == "owl")
    assert owl.candidates is not None
    t, c = owl.candidates
    moved = dataclasses.replace(
        owl, candidates=(t, (c[0], c[1], c[2] * 0.9)), path=str(tmp_path / "absent.json")
    )
    df = several.table([moved if x is owl else x for x in cells])
    assert df["animals"].tolist() == ["eagle+wolf vs dolphin"]  # the other two still make one
    assert df["note"].iloc[0].startswith("also at this seed, not in this run: owl (")
    # One entry's cells only: another entry with the same runs is read apart.
    other = [dataclasses.replace(c, entry="other v1") for c in cells]
    assert sorted(several.table(cells + other)["entry"]) == ["none v1", "other v1"]


def test_a_run_read_without_one_of_its_cells_says_so(tmp_path: Path) -> None:
    cells = _cells()
    gone = next(c for c in cells if c.trait == "wolf")
    lost = str(tmp_path / "gone.json")
    df = several.table([dataclasses.replace(c, path=lost) if c is gone else c for c in cells])
    assert df["animals"].iloc[0] == "eagle+owl vs dolphin"  # the two left still make a run
    assert df["note"].iloc[0].startswith("also at this seed, not in this run: wolf (")
    assert df["note"].iloc[-1] == f"could not read again (or changed since loaded): {lost}"
    # A file that changed since it was loaded is not read as the cell it was.
    eagle = next(c for c in cells if c.trait == "eagle")
    swapped = dataclasses.replace(eagle, path=next(c.path for c in cells if c.trait == "owl"))
    df = several.table([swapped if c is eagle else c for c in cells])
    assert df["animals"].iloc[0] == "owl+wolf vs dolphin"


def test_hostile_values_do_not_crash_it(tmp_path: Path) -> None:
    def hostile(art: dict) -> None:
        if art["config"]["trait"] == "owl":
            art["integrity"]["training_rows"]["control"] = ["not", "a", "hash"]
        if art["config"]["trait"] == "wolf":
            art["config"]["null_animal"] = {"not": "an animal"}

    df = several.table(_copies(tmp_path, hostile))
    assert df.empty  # owl's control identity is unreadable, so no run; wolf is not eligible


def test_more_students_than_orders_are_counted_are_ranked_by_sampling(tmp_path: Path) -> None:
    extra = {"cat": "eagle", "lion": "eagle", "fox": "wolf", "bear": "wolf", "tiger": "owl"}
    df = several.table(_copies(tmp_path, traits=extra))
    assert len(df) == 1
    assert df["animals"].iloc[0].count("+") == 7  # 8 traits, 9 students with the placebo
    assert df["rank"].iloc[0].startswith("sampled, of ")
    assert df["p_students"].iloc[0] == ""  # 9! orders: not computed


def test_one_trait_per_entry_gives_no_rows() -> None:
    owl = [c for c in _cells() if c.trait == "owl"]
    assert several.table(owl).empty


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "res" / "restricted"
    root.mkdir(parents=True)
    for p in SCREEN.glob(f"*__seed{SEED}__*.json"):
        shutil.copy(p, root / p.name)
    return tmp_path / "res"


def test_the_app_and_the_export_show_the_run(
    results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leaderboard.export import export

    monkeypatch.setenv(DIRS_ENV, str(results))
    at = AppTest.from_file(str(ROOT / "leaderboard" / "app.py"), default_timeout=60).run()
    assert not at.exception, [e.message for e in at.exception]
    assert "Runs of several trait animals (1)" in [e.label for e in at.expander]
    frames = [d.value for d in at.dataframe if "p_students" in d.value.columns]
    assert len(frames) == 1 and frames[0]["multi-animal (log-odds)"].iloc[0] == (
        f"{_reported()['value']:+.3f}"
    )
    # The traits filter narrows the ranking, not a run: read without wolf it would be another.
    at.multiselect(key="traits").set_value(["eagle", "owl"]).run()
    frames = [d.value for d in at.dataframe if "p_students" in d.value.columns]
    assert frames[0]["animals"].iloc[0] == "eagle+owl+wolf vs dolphin"
    index = export([results], tmp_path / "site").read_text()
    assert "<h3>Runs of several trait animals</h3>" in index
    assert "eagle+owl+wolf vs dolphin" in index
