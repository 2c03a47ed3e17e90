"""The Streamlit app, driven headless with ``streamlit.testing.v1.AppTest``: verdicts and order
as displayed, the forest plot, flags, filters, the defense page and its URLs, the skipped panel,
no crash on bad input. Artifacts are synthetic (``benchmark.run.synthetic``), written to a tmp dir,
or copies of the committed ones."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from benchmark.core.setup_keys import PRIMARY_SUITE
from benchmark.run import cli
from benchmark.run.synthetic import Spec, artifact, write
from leaderboard.loader import DIRS_ENV

APP = str(Path(__file__).resolve().parent.parent / "leaderboard" / "app.py")
DEFENSES = {  # name: (true leakage pp, share of rows kept)
    "none": (0.30, 1.0),
    "crossbase": (0.0, 1.0),
    "paraphrase": (0.0, 0.9),  # as good as crossbase
    "strict": (0.10, 0.05),  # keeps too few rows
}
SEEDS = range(8)  # 2/2**8 x 3 entries < 0.05: the sign-flip floor lets Holm pass all three


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lb") / "results"
    arts = [
        artifact(
            Spec(
                task, name, trait, seed, leak_pp=leak, noise_pp=0.15, kept=kept, helper_seconds=1.5
            )
        )
        for name, (leak, kept) in DEFENSES.items()
        for task in ("numbers", "code")
        for trait in ("owl", "cat")
        for seed in SEEDS
    ]
    write(root / "quick", arts)
    (root / "quick" / "broken.json").write_text('{"schema": "slb.results/1"')
    partial = dict(arts[0], config=dict(arts[0]["config"], seed=7))
    partial.pop("scores")
    (root / "quick" / "partial.json").write_text(json.dumps(partial))
    return root


def _run(monkeypatch: pytest.MonkeyPatch, root: Path) -> AppTest:
    monkeypatch.setenv(DIRS_ENV, str(root))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _table(at: AppTest, column: str) -> pd.DataFrame:
    """The dataframe element that has ``column`` (the app shows several)."""
    frames = [d.value for d in at.dataframe if column in d.value.columns]
    assert frames, f"no table with a {column!r} column"
    return frames[0]


def test_verdicts_order_flags_and_skipped_panel(
    monkeypatch: pytest.MonkeyPatch, results: Path
) -> None:
    at = _run(monkeypatch, results)
    table = _table(at, "rank")
    names = [d.split(" ")[0] for d in table["defense"]]
    assert set(names[:2]) == {"crossbase", "paraphrase"} and names[2:] == ["strict", "none"]
    assert list(table["rank"]) == ["1", "2", "3", "—"]
    assert list(table["verdict"]) == ["better", "better", "better", "baseline"]
    flags = dict(zip(names, table["flags"], strict=True))
    assert "keeps < 10% of rows" in flags["strict"]
    assert flags["crossbase"] == "—"
    col = "reduction vs none, pp [95 % CI over seeds]"
    assert table.set_index(pd.Index(names)).loc["none", col] == "n/a"
    assert table.set_index(pd.Index(names)).loc["strict", col].startswith("+0.2")
    # The forest plot comes first, drawn from the same rows.
    charts = at.get("vega_lite_chart")
    assert charts and "reduction vs none" in charts[0].proto.spec

    skipped = _table(at, "reason").set_index("file")["reason"]
    by_name = {Path(f).name: r for f, r in skipped.items()}
    assert set(by_name) == {"broken.json", "partial.json"}
    assert "not readable JSON" in by_name["broken.json"]
    assert "scores is missing" in by_name["partial.json"]
    assert any("Skipped artifacts (2)" in e.label for e in at.expander)
    assert [b.proto.label for b in at.get("download_button")] == ["Download table as CSV"]


def test_filters_change_what_is_pooled(monkeypatch: pytest.MonkeyPatch, results: Path) -> None:
    at = _run(monkeypatch, results)
    n = len(SEEDS)
    assert set(_table(at, "rank")["cells"]) == {4 * n}
    at.sidebar.multiselect(key="tasks").set_value(["code"]).run()
    table = _table(at, "rank")
    assert set(table["cells"]) == {2 * n} and set(table["tasks"]) == {"code"}
    at.sidebar.multiselect(key="traits").set_value(["owl"]).run()
    table = _table(at, "rank")
    assert set(table["cells"]) == {n} and set(table["traits"]) == {"owl"}
    at.sidebar.multiselect(key="tasks").set_value([]).run()
    assert not at.exception
    assert any("No results artifacts match" in i.value for i in at.info)


def test_defense_page(monkeypatch: pytest.MonkeyPatch, results: Path) -> None:
    at = _run(monkeypatch, results)
    at.sidebar.radio(key="page").set_value("strict v1").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["verdict"] == "better" and metrics["rows kept"] == "5.0 %"
    # The tiles are the ranking statistic's: the same reduction as the ranking row.
    assert metrics["reduction vs none, pp"].startswith("+0.2")
    assert any("keeps < 10% of rows" in w.value for w in at.warning)
    groups = _table(at, "seeds")
    assert len(groups) == 4 and set(groups["seeds"]) == {"0, 1, 2, 3, 4, 5, 6, 7"}
    assert set(groups["paired seeds"]) == {8}
    examples = _table(at, "defended_completion")
    assert "(dropped)" in set(examples["defended_completion"])
    assert any("inspect view --log-dir" in c.value for c in at.code)
    assert "Synthetic defense 'strict'" in " ".join(m.value for m in at.markdown)


@pytest.mark.parametrize("link", ["strict v1", "strict"])
def test_defense_urls_resolve(monkeypatch: pytest.MonkeyPatch, results: Path, link: str) -> None:
    """``?defense=<entry>`` as the ranking shows it, or a defense name with one entry."""
    monkeypatch.setenv(DIRS_ENV, str(results))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["defense"] = link
    at.run()
    assert not at.exception and not at.error
    assert at.subheader[0].value == "strict v1"


def test_a_bad_defense_url_says_so(monkeypatch: pytest.MonkeyPatch, results: Path) -> None:
    monkeypatch.setenv(DIRS_ENV, str(results))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["defense"] = "nonesuch v9"
    at.run()
    assert not at.exception
    assert "No defense entry 'nonesuch v9'" in at.error[0].value
    assert "strict v1" in at.error[0].value  # it lists what is there
    assert _table(at, "rank") is not None  # and shows the leaderboard


def test_placebo_setup_shows_the_own_animal_statistic(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The real placebo-controlled baseline: the page reads the own-animal statistic, and the
    baseline's page shows it over seeds."""
    real = Path(APP).parent.parent / "submissions" / "none" / "results" / "quick"
    shutil.copytree(real, tmp_path / "results" / "quick-placebo")
    at = _run(monkeypatch, tmp_path / "results")
    assert any("own animal, log-odds" in h.value for h in at.subheader)
    ranking = _table(at, "leakage, log-odds [CI over seeds]")
    assert ranking["leakage, log-odds [CI over seeds]"].iloc[0].startswith("+0.")
    assert list(ranking["verdict"]) == ["baseline"]
    at.sidebar.radio(key="page").set_value("none v1").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["verdict"] == "baseline"


def test_placebo_setup_with_the_baseline_ranks_by_the_paired_reduction(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The real GPU replicates (five seeds each of none and canonicalize): the page shows the
    paired own-animal reduction over the five seeds and its verdict."""
    subs = Path(APP).parent.parent / "submissions"
    for name in ("none", "canonicalize"):
        shutil.copytree(subs / name / "results" / "quick-placebo-h200", tmp_path / name)
    at = _run(monkeypatch, tmp_path)
    assert any("own animal, log-odds" in h.value for h in at.subheader)
    ranking = _table(at, "reduction vs none, log-odds [95 % CI over seeds]")
    row = ranking.set_index("defense").loc['canonicalize v1 (mode="sort", text=true)']
    assert row["paired seeds"] == 5 and row["verdict"] == "better"  # alone in its Holm family
    assert row["reduction vs none, log-odds [95 % CI over seeds]"].startswith("+0.080 [+0.014")


def test_setups_are_chosen_by_their_labels(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The setup select box shows the label each artifact carries (the largest setup first) and
    the full knob difference from the suite's preset as its help."""
    specs = [Spec("numbers", "none", "owl", s) for s in (0, 1)]
    specs.append(Spec("numbers", "none", "owl", 0, teacher="system_prompt"))
    arts = [artifact(s) for s in specs]
    write(tmp_path / "quick", arts)
    at = _run(monkeypatch, tmp_path)
    box = at.sidebar.selectbox(key="setup")
    diff = "teacher.placebo=unset, teacher.type=system_prompt"
    assert box.options == ["quick", f"quick · {diff}"]
    assert f"`{diff}`" in box.proto.help and "**quick**: the suite's preset" in box.proto.help
    box.set_value(arts[-1]["setup"]["id"]).run()  # the value is the id, shown by its label
    assert not at.exception
    assert set(_table(at, "rank")["cells"]) == {1}


def test_the_suite_box_opens_on_the_primary_suite_when_it_has_cells(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With cells of the primary suite (the confirmed channel) the app opens there; without, on
    the first suite that has cells."""
    write(tmp_path / "quick", [artifact(Spec("numbers", "none", "owl", s)) for s in (0, 1)])
    assert _run(monkeypatch, tmp_path).sidebar.selectbox(key="suite").value == "quick"
    topk = [artifact(Spec("numbers", "none", "owl", s, suite=PRIMARY_SUITE)) for s in (0, 1)]
    write(tmp_path / PRIMARY_SUITE, topk)
    box = _run(monkeypatch, tmp_path).sidebar.selectbox(key="suite")
    assert box.options == sorted(["quick", PRIMARY_SUITE]) and box.value == PRIMARY_SUITE


def test_no_usable_artifacts_does_not_crash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "bad.json").write_text("[]")
    at = _run(monkeypatch, tmp_path)
    assert any("No usable results artifacts" in i.value for i in at.info)
    reason = _table(at, "reason")["reason"].iloc[0]
    assert "top level is a list" in reason


def test_slb_leaderboard_starts_streamlit_on_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def fake_exec(path, cmd, env):
        seen.update(cmd=cmd, dirs=env[DIRS_ENV])

    monkeypatch.setattr(os, "execve", fake_exec)
    assert cli.main(["leaderboard", "a", "b", "--port", "8600", "--headless"]) == 0
    assert seen["cmd"][1:4] == ["-m", "streamlit", "run"] and seen["cmd"][4] == APP
    assert "8600" in seen["cmd"] and "--server.headless" in seen["cmd"]
    assert seen["dirs"].split(os.pathsep) == ["a", "b"]
    args = cli.build_parser().parse_args(["leaderboard"])
    assert args.dirs == ["submissions", "results"]
