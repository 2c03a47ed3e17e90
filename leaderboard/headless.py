"""Run the leaderboard as a real server and open it in headless Chromium (browser test, benchmark).

    with serve(["results"]) as url, chromium() as driver:
        driver.get(url)
        text = wait_for_ranking(driver, "none v1")
        forest = wait_for_charts(driver, 1)[0]   # the first chart drawn: the forest plot
        shoot(driver, forest, "/tmp/shots/forest.png")

Chromium is the Debian ``chromium`` + ``chromium-driver`` pair (``.ci/setup`` installs them),
driven by Selenium with ``--headless --no-sandbox --disable-gpu``; :func:`missing` says what is
absent so callers can skip with a reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from leaderboard.loader import DIRS_ENV

APP = Path(__file__).resolve().parent / "app.py"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
RANKING = '[data-testid="stDataFrame"] table'  # st.dataframe's accessible mirror of its canvas


def binaries() -> tuple[str | None, str | None]:
    browser = next((p for p in map(shutil.which, BROWSERS) if p), None)
    return browser, shutil.which("chromedriver")


def missing() -> str | None:
    """Why a browser run is impossible here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    browser, driver = binaries()
    if browser is None or driver is None:
        return "chromium / chromedriver not found (apt-get install chromium chromium-driver)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(dirs: Sequence[str | Path], timeout: float = 60) -> Iterator[str]:
    """``streamlit run`` the app on ``dirs`` on a free port; yields its URL once it is healthy."""
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true"]
    cmd += ["--server.port", str(port), "--browser.gatherUsageStats", "false"]
    cmd += ["--server.fileWatcherType", "none"]
    env = dict(os.environ, **{DIRS_ENV: os.pathsep.join(map(str, dirs))})
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with status {proc.returncode}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > end:
                    raise TimeoutError(
                        f"streamlit did not answer at {url} in {timeout} s"
                    ) from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def chromium(width: int = 1600, height: int = 1500) -> Iterator[Any]:
    """A headless Chromium WebDriver (no network needed: the driver binary is given)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_bin = binaries()
    if browser is None or driver_bin is None:
        raise RuntimeError(str(missing()))
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(driver_bin), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_ranking(driver: Any, expect: str, timeout: float = 45) -> str:
    """Wait until the ranking table's text contains ``expect``; returns that text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def text(d: Any) -> str | bool:
        tables = d.find_elements(By.CSS_SELECTOR, RANKING)
        got = tables[0].get_attribute("textContent") if tables else ""
        return got if expect in got else False

    return str(WebDriverWait(driver, timeout).until(text))


def ranking_rows(driver: Any) -> list[list[str]]:
    """The ranking table's body rows as lists of cell texts."""
    from selenium.webdriver.common.by import By

    table = driver.find_elements(By.CSS_SELECTOR, RANKING)[0]
    rows = [
        [td.get_attribute("textContent") for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in table.find_elements(By.TAG_NAME, "tr")
    ]
    return [r for r in rows if r]  # the header row has <th> cells only


def wait_for_charts(driver: Any, n: int = 1, timeout: float = 45) -> list[Any]:
    """Wait until ``n`` Vega-Lite charts have drawn (a canvas or svg inside each); returns them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    drawn = '[data-testid="stVegaLiteChart"]'

    def charts(d: Any) -> Any:
        found = [
            e
            for e in d.find_elements(By.CSS_SELECTOR, drawn)
            if e.find_elements(By.CSS_SELECTOR, "canvas, svg")
        ]
        return found if len(found) >= n else False

    found: list[Any] = WebDriverWait(driver, timeout).until(charts)
    return found


def shoot(driver: Any, element: Any, path: str | Path) -> Path:
    """A PNG of one element (scrolled into view first), e.g. the forest plot."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    time.sleep(0.5)  # let the scroll and the chart's transitions settle
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    element.screenshot(str(out))
    return out
