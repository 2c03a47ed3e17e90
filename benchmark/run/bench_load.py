"""Load-time benchmark of the leaderboard on 1 000 SYNTHETIC results artifacts; prints the figures.

    python -m benchmark.run.bench_load                      # 1 000 artifacts in a temp dir
    python -m benchmark.run.bench_load --dir /tmp/lb --browser

Artifacts come from ``benchmark.run.synthetic`` (5 defenses x 5 tasks x 4 traits x 10 seeds, real
artifact size, each score row with its candidate distribution as real rows have; never under
submissions/); ``--dir`` keeps them for a re-run. Figures (median of
``--repeat`` runs where it can be repeated):

* ``load``   ``leaderboard.loader.load``: find, parse, check integrity, dedupe; with the files
  parsed in as many processes as the app uses (``leaderboard.reading``), and in this one only.
* ``tables`` ranking and per-task heat-map tables of the default selection.
* ``app``    the app script's first run with cold caches under Streamlit's AppTest: everything the
  server does for the first visitor before the page is complete; ``app warm`` is the rerun a
  filter change triggers. Streamlit's own runtime start (once per server) is timed apart.
* ``browser`` (``--browser``) opening the page in headless Chromium until the ranking table is in
  the DOM, Streamlit's front end included: first visit (fresh profile, cold caches) and a second
  one, each also on 2 artifacts to tell the front end's own time from the data's.
* ``naive``  the same load done the straightforward way, for comparison: integrity hashes checked a
  second time and each cell's leakage recomputed with ``benchmark.core.stats.paired_leakage``
  (bootstrap included), as a validator would.

The target is < 3 s for ``app``; the exit status is 1 when it is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import leaderboard
from benchmark.core.artifact import CellResult, parse
from benchmark.core.stats import paired_leakage
from benchmark.core.store import stable_hash
from benchmark.run.synthetic import Spec, artifact, write
from leaderboard import headless, ranking, tables
from leaderboard.loader import DIRS_ENV, discover, load
from leaderboard.reading import WORKERS_ENV, processes

TARGET_S = 3.0
T = TypeVar("T")
DEFENSES = {"none": (0.3, 1.0), "judge": (0.1, 0.6), "paraphrase": (0.05, 0.95)}
DEFENSES |= {"crossbase": (0.0, 1.0), "banned_words": (0.29, 0.97)}
TASKS = ("numbers", "code", "cot", "paraphrase-unrelated", "paraphrase-contradict")
TRAITS = ("owl", "cat", "dog", "eagle")


def make(folder: Path, n: int) -> int:
    """Write ``n`` artifacts into ``folder`` unless it already holds that many."""
    if folder.is_dir() and len(list(folder.glob("*.json"))) == n:
        return 0
    per_seed = [
        (name, leak, kept, task, trait)
        for name, (leak, kept) in DEFENSES.items()
        for task in TASKS
        for trait in TRAITS
    ]
    specs = [
        Spec(
            task,
            name,
            trait,
            i // len(per_seed),
            leak_pp=leak,
            kept=kept,
            noise_pp=0.1,
            candidates=True,
        )
        for i, (name, leak, kept, task, trait) in (
            (i, per_seed[i % len(per_seed)]) for i in range(n)
        )
    ]
    write(folder, [artifact(s) for s in specs])
    return n


def timed(fn: Callable[[], T], repeat: int) -> tuple[tuple[float, float], T]:
    """Median (wall, CPU) seconds of ``repeat`` calls, and the last result. CPU time is this
    process's (not the load's workers'): what the work costs here whatever else the machine runs;
    wall time is what one waits."""
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return (statistics.median(walls), statistics.median(cpus)), out


@contextmanager
def one_process() -> Iterator[None]:
    """Every file parsed in this process (``SLB_LOAD_WORKERS=1``) while inside."""
    old = os.environ.get(WORKERS_ENV)
    os.environ[WORKERS_ENV] = "1"
    try:
        yield
    finally:
        if old is None:
            del os.environ[WORKERS_ENV]
        else:
            os.environ[WORKERS_ENV] = old


def naive_load(dirs: list[Path]) -> list[CellResult]:
    cells = []
    for path, source in discover(dirs):
        art = json.loads(path.read_text(encoding="utf-8"))
        assert stable_hash(art["scores"]) == art["integrity"]["scores"]
        assert stable_hash(art["leakage"]) == art["integrity"]["leakage"]
        arms = [
            {r["id"]: r["teacher_forced"] for r in art["scores"][a]} for a in ("trait", "control")
        ]
        paired_leakage(*arms)
        cells.append(parse(art, str(path), source))
    return cells


def build_tables(cells: list[CellResult]) -> None:
    chosen = tables.select(cells, tables.Filters())
    ranking.ranking(chosen, "teacher_forced")
    tables.per_task(chosen, "teacher_forced")


def app_run(
    dirs: list[Path],
) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    """(runtime start, first page run with cold caches, rerun) under AppTest. The first AppTest
    run in a process also starts Streamlit's runtime (it scans installed packages for components,
    ~1 s), which a server does once when it starts, before anyone opens the page; so it is run
    first on an empty folder and timed apart."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    app = str(Path(leaderboard.__file__).with_name("app.py"))

    def run(folders: list[Path]) -> tuple[AppTest, tuple[float, float]]:
        os.environ[DIRS_ENV] = os.pathsep.join(map(str, folders))
        at = AppTest.from_file(app, default_timeout=120)
        (wall, cpu), _ = timed(at.run, 1)
        if at.exception:
            raise RuntimeError(at.exception[0].message)
        return at, (wall, cpu)

    with tempfile.TemporaryDirectory() as empty:
        _, start = run([Path(empty)])
    st.cache_resource.clear()
    at, cold = run(dirs)
    warm, _ = timed(at.run, 1)
    return start, cold, warm


def browser_run(dirs: list[Path]) -> tuple[float, float] | str:
    """Seconds from opening the page to the ranking table in the DOM: a first visit (fresh
    browser profile, cold server caches) and a second one in the same browser."""
    why = headless.missing()
    if why:
        return f"skipped: {why}"
    times = []
    with headless.serve(dirs) as url, headless.chromium() as driver:
        for _ in range(2):
            t = time.perf_counter()
            driver.get(url)
            headless.wait_for_ranking(driver, "none v1", timeout=120)
            times.append(time.perf_counter() - t)
    return times[0], times[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--dir", help="where to write (and reuse) the synthetic artifacts")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--browser", action="store_true", help="also time headless Chromium")
    args = p.parse_args(argv)

    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="slb-bench-"))
    t = time.perf_counter()
    made = make(root / "quick", args.n)
    print(
        f"{args.n} synthetic artifacts in {root}"
        + (f" (written in {time.perf_counter() - t:.0f} s)" if made else " (reused)")
    )
    dirs = [root]

    def report(name: str, v: tuple[float, float] | float | str) -> None:
        if isinstance(v, tuple):
            v = f"{v[0]:6.2f} s  (CPU {v[1]:.2f} s)"
        elif isinstance(v, float):
            v = f"{v:6.2f} s"
        print(f"  {name:36s} {v}", flush=True)

    # The app first, while no worker server runs in this process: its first run pays for one,
    # as a freshly started leaderboard does.
    start, cold_wc, warm = app_run(dirs)
    report("streamlit runtime start (once)", start)
    report("app first run, cold caches", cold_wc)
    report("app rerun, warm caches", warm)
    n_proc = processes(args.n)
    t_load, data = timed(lambda: load(dirs), args.repeat)
    assert len(data.cells) == args.n and not data.skipped, (len(data.cells), data.skipped[:3])
    report(f"load (parse + integrity), {n_proc} proc.*", t_load)
    with one_process():
        t_load1, _ = timed(lambda: load(dirs), args.repeat)
    report("load in this process only", t_load1)
    t_tables, _ = timed(lambda: build_tables(data.cells), args.repeat)
    report("tables (ranking + heat map)", t_tables)
    t_naive, _ = timed(lambda: build_tables(naive_load(dirs)), 1)
    report("naive load + tables", t_naive)
    print("  * its worker server already running; CPU of this process only (the workers are")
    print("    the server's children); CPU in one process is the line below it")
    if args.browser:
        # The same page on 2 artifacts separates Streamlit's front end from our data work.
        with tempfile.TemporaryDirectory() as small:
            make(Path(small) / "quick", 2)
            for label, folders in ((f"{args.n}", dirs), ("2", [Path(small)])):
                got = browser_run(folders)
                if isinstance(got, str):
                    report("browser", got)
                    break
                report(f"browser, {label} artifacts: 1st visit", got[0])
                report(f"browser, {label} artifacts: 2nd visit", got[1])
    ratio = t_naive[1] / (t_load1[1] + t_tables[1])
    print(f"  naive / ours, CPU time of load + tables, both in one process: {ratio:.1f}x")
    print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    cold = cold_wc[0]
    ok = cold < TARGET_S
    verdict = "under" if ok else "OVER"
    print(
        f"app first run {cold:.2f} s with {args.n} artifacts: {verdict} the {TARGET_S:.0f} s target"
        f" (parsed in {n_proc} processes; in one, the load above takes"
        f" {t_load1[0]:.2f} s)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
