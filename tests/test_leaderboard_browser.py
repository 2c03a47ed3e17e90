"""The leaderboard in a real browser: ``streamlit run`` the app on synthetic artifacts, open it in
headless Chromium (``leaderboard.headless``), wait for the ranking table and the charts to render,
check what they show, take screenshots; and open the static export from disk.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``.ci/setup`` installs them) and
``selenium`` (dev extra); skips, naming what is missing, without them. The screenshots are copied
to ``/tmp/shots/`` (the whole page, the forest plot, a defense page, the static export) for a
person to look at.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from benchmark.run.synthetic import Spec, artifact, write
from leaderboard import headless
from leaderboard.export import export

SHOTS = Path("/tmp/shots")

pytestmark = pytest.mark.skipif(headless.missing() is not None, reason=str(headless.missing()))


def _png(path: Path) -> bytes:
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return png


def _keep(shot: Path) -> None:
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, SHOTS / shot.name)
    except OSError:
        pass  # the copy is a convenience for a person, not part of the check


def test_leaderboard_renders_in_headless_chromium(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    root = tmp_path / "results"
    arts = [
        artifact(
            Spec(
                "numbers",
                name,
                "owl",
                seed,
                leak_pp=leak + 0.04 * (seed % 3),
                kept=kept,
                params=params,
            )
        )
        for name, leak, kept, params in (
            ("none", 0.3, 1.0, {}),
            ("crossbase", 0.0, 1.0, {}),
            ("strict", 0.1, 0.05, {}),
            ("canonicalize", -0.1, 1.0, {"mode": "resample"}),
        )
        for seed in range(8)
    ]
    arts += [artifact(Spec("numbers", "single", "owl", 0, leak_pp=0.15))]
    write(root / "quick", arts)
    (root / "quick" / "broken.json").write_text("{")

    with headless.serve([root]) as url, headless.chromium() as driver:
        driver.get(url)
        text = headless.wait_for_ranking(driver, "crossbase v1")
        rows = headless.ranking_rows(driver)
        assert [r[:3] for r in rows[:3]] == [
            ["1", "crossbase v1", "better"],
            ["2", "strict v1", "better"],
            ["—", "single v1", "needs more seeds"],
        ]
        assert "reference (bound)" in text and "(overshoot)" in text
        # The forest plot, the heat map and the Pareto plot drew; the bad file is listed.
        forest = headless.wait_for_charts(driver, 3)[0]
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "Skipped artifacts (1)" in body and "Traceback" not in body
        time.sleep(1)  # let the charts finish their transitions before the pictures
        page = tmp_path / "leaderboard.png"
        assert driver.save_screenshot(str(page)) and len(_png(page)) > 20_000
        shot = headless.shoot(driver, forest, tmp_path / "forest.png")
        assert len(_png(shot)) > 5_000

        driver.get(f"{url}/?defense={quote('strict v1')}")
        headless.wait_for_ranking(driver, "numbers")  # the per-group table
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "strict v1" in body and "better" in body and "keeps < 10% of rows" in body
        time.sleep(1)
        defense = tmp_path / "defense.png"
        assert driver.save_screenshot(str(defense)) and len(_png(defense)) > 20_000

        site = export([root], tmp_path / "site")
        driver.get(site.as_uri())
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "crossbase v1" in body and "better" in body
        static = tmp_path / "static.png"
        assert driver.save_screenshot(str(static)) and len(_png(static)) > 20_000

    for shot in (page, tmp_path / "forest.png", defense, static):
        _keep(shot)
