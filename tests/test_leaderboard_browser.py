"""The leaderboard in a real browser: ``streamlit run`` the app on synthetic artifacts, open it in
headless Chromium (``leaderboard.headless``), wait for the ranking table to render, check what it
shows, take a screenshot.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``.ci/setup`` installs them) and
``selenium`` (dev extra); skips, naming what is missing, without them. The screenshot is copied
to ``/tmp/leaderboard.png`` for a person to look at.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from benchmark.run.synthetic import Spec, artifact, write
from leaderboard import headless

SCREENSHOT_COPY = Path("/tmp/leaderboard.png")

pytestmark = pytest.mark.skipif(headless.missing() is not None, reason=str(headless.missing()))


def test_table_renders_in_headless_chromium(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    root = tmp_path / "results"
    arts = [
        artifact(Spec("numbers", name, "owl", seed, leak_pp=leak, kept=kept))
        for name, leak, kept in (("none", 0.3, 1.0), ("crossbase", 0.0, 1.0), ("strict", 0.1, 0.05))
        for seed in (0, 1)
    ]
    write(root / "quick", arts)
    (root / "quick" / "broken.json").write_text("{")
    shot = tmp_path / "leaderboard.png"

    with headless.serve([root]) as url, headless.chromium() as driver:
        driver.get(url)
        text = headless.wait_for_ranking(driver, "crossbase v1")
        rows = headless.ranking_rows(driver)
        assert [r[:2] for r in rows] == [
            ["1", "crossbase v1"],
            ["2", "strict v1"],
            ["3", "none v1"],
        ]
        assert "keeps < 10% of rows" in text
        # The heat map and the Pareto plot drew, and the bad file is listed, not fatal.
        charts = '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg'
        WebDriverWait(driver, 30).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, charts)) >= 2
        )
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "Skipped artifacts (1)" in body
        assert "Traceback" not in body
        time.sleep(1)  # let the charts finish their transitions before the picture
        assert driver.save_screenshot(str(shot))

    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a blank page is a few kB
    try:
        shutil.copy(shot, SCREENSHOT_COPY)
    except OSError:
        pass  # the copy is a convenience for a person, not part of the check
