"""The leaderboard in a real browser: start ``streamlit run``, open it in headless Chromium through
Selenium, wait for the ranking table to render, check what it shows, take a screenshot.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``.ci/setup`` installs them) and
``selenium`` (dev extra); skips, saying which is missing, when they are absent. The screenshot is
kept at ``/tmp/leaderboard.png`` for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from leaderboard.app import DIRS_ENV
from leaderboard.synthetic import Spec, artifact, write

APP = Path(__file__).resolve().parent.parent / "leaderboard" / "app.py"
SCREENSHOT_COPY = Path("/tmp/leaderboard.png")
CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
DRIVER = shutil.which("chromedriver")


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if CHROMIUM is None or DRIVER is None:
        return "chromium / chromedriver not found (apt-get install chromium chromium-driver)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout} s")


@pytest.fixture
def server(tmp_path: Path):
    root = tmp_path / "results"
    arts = [
        artifact(Spec("numbers", name, "owl", seed, leak_pp=leak, kept=kept))
        for name, leak, kept in (("none", 0.3, 1.0), ("crossbase", 0.0, 1.0), ("strict", 0.1, 0.05))
        for seed in (0, 1)
    ]
    write(root / "quick", arts)
    (root / "quick" / "broken.json").write_text("{")
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true"]
    cmd += ["--server.port", str(port), "--browser.gatherUsageStats", "false"]
    cmd += ["--server.fileWatcherType", "none"]
    env = dict(os.environ, **{DIRS_ENV: str(root)})
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_table_renders_in_headless_chromium(server: str, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.add_argument("--window-size=1600,1500")
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.get(server)

        def table_text(d) -> str | bool:
            # st.dataframe draws on a canvas and mirrors its cells in an accessible <table>; the
            # first one on the page is the ranking.
            tables = d.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"] table')
            text = tables[0].get_attribute("textContent") if tables else ""
            return text if "crossbase v1" in text else False

        text = WebDriverWait(driver, 45).until(table_text)
        ranking = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"] table')[0]
        rows = [
            [td.get_attribute("textContent") for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in ranking.find_elements(By.TAG_NAME, "tr")
        ]
        rows = [r for r in rows if r]  # the header row has <th> only
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
        assert "Traceback" not in body and "Error" not in body.split("Skipped")[0]
        time.sleep(1)  # let the charts finish their transitions before the picture
        shot = tmp_path / "leaderboard.png"
        assert driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a blank page is a few kB
    try:
        shutil.copy(shot, SCREENSHOT_COPY)
    except OSError:
        pass  # the copy is a convenience for a person, not part of the check
