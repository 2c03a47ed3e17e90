"""The static export (``leaderboard.export``): a self-contained site with the same numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from benchmark.run.synthetic import Spec, artifact, write
from leaderboard import ranking as rk
from leaderboard.export import export, slug
from leaderboard.loader import load


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("export")
    specs = [
        Spec("numbers", name, "owl", s, leak_pp=leak + 0.05 * (s % 3), kept=kept, params=params)
        for name, leak, kept, params in (
            ("none", 0.3, 1.0, {}),
            ("works", 0.0, 0.7, {}),
            ("<i onclick=x>", 0.2, 1.0, {}),  # names are data, never markup
            ("canonicalize", -0.2, 1.0, {"mode": "resample"}),
        )
        for s in range(8)
    ]
    write(root / "results" / "quick", [artifact(s) for s in specs])
    (root / "results" / "quick" / "broken.json").write_text("{")
    return root / "results", root / "site"


def test_the_site_is_self_contained(site: tuple[Path, Path]) -> None:
    results, out = site
    index = export([results], out)
    assert index == out / "index.html"
    text = index.read_text()
    # Nothing is fetched from elsewhere: no script, stylesheet, image or font source.
    assert not re.search(r"""(src|href)=['"]?https?:""", text)
    assert "<i onclick=x>" not in text and "&lt;i onclick=x&gt;" in text
    assert "<svg" in text and "application/vnd.vegalite+json" in text
    assert "Skipped artifacts (1)" in text and "broken.json" in text
    # Every defense link resolves to a page that exists.
    links = re.findall(r"href='(defense/[^']+\.html)'", text)
    assert len(links) == 4 and all((out / link).is_file() for link in links)
    page = (out / "defense" / f"{slug('works v1')}.html").read_text()
    assert "better" in page and "../index.html" in page


def test_the_csv_and_json_carry_the_rankings_numbers(site: tuple[Path, Path]) -> None:
    results, out = site
    export([results], out)
    csv = pd.read_csv(out / "leaderboard.csv")
    want = rk.ranking(load([results]).cells, "teacher_forced")
    assert list(csv["defense"]) == list(want["defense"])
    assert csv["effect"].tolist() == pytest.approx(
        want["effect"].astype(float).tolist(), nan_ok=True
    )
    assert set(csv["setup_label"]) == {"quick"} and set(csv["metric"]) == {"teacher_forced"}
    doc = json.loads((out / "leaderboard.json").read_text())
    assert len(doc["rows"]) == len(csv) and doc["skipped"][0]["file"].endswith("broken.json")
    assert doc["rows"][0]["verdict"] == "better" and "Holm" in doc["rule"]


def test_slugs_are_unique_and_plain() -> None:
    a, b = slug('x v1 (mode="a")'), slug("x v1 (mode=a)")
    assert a != b and re.fullmatch(r"[a-z0-9-]+", a)


def test_rows_kept_per_arm_reach_the_ranking_and_the_page(tmp_path: Path) -> None:
    """A filter that drops more of the trait arm's rows tells the arms apart; the mean alone
    hides that, so each arm's share is a column and on the defense's page."""
    specs = [Spec("numbers", "none", "owl", s) for s in range(5)] + [
        Spec("numbers", "picky", "owl", s, kept=0.90, kept_control=0.98) for s in range(5)
    ]
    write(tmp_path / "results" / "quick", [artifact(s) for s in specs])
    ranked = rk.ranking(load([tmp_path / "results"]).cells, "teacher_forced")
    row = ranked.set_index("name").loc["picky"]
    assert row["rows_kept_trait"] == pytest.approx(0.90)
    assert row["rows_kept_control"] == pytest.approx(0.98)
    assert row["rows_kept"] == pytest.approx(0.94)
    assert ranked.set_index("name").loc["none", "rows_kept_trait"] == pytest.approx(1.0)
    export([tmp_path / "results"], tmp_path / "site")
    page = (tmp_path / "site" / "defense" / f"{slug('picky v1')}.html").read_text()
    assert "94.0 % (trait 90.0 % · control 98.0 %)" in page
