"""Artifacts parsed in worker processes give exactly what parsing them here gives."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark.run.cli import main
from benchmark.run.synthetic import Spec, artifact, write
from leaderboard import reading
from leaderboard.loader import _submission_folders, discover, load

ROOT = Path(__file__).resolve().parents[1]


def _no_workers() -> str:
    """Why worker processes cannot start here ("" where they can): Linux, and the semaphores a
    pool needs (``/dev/shm``); elsewhere the loader parses in one process, which other tests hold."""
    if not sys.platform.startswith("linux"):
        return "workers on Linux only"
    try:
        multiprocessing.get_context("forkserver").Lock()
    except (OSError, ImportError) as e:
        return f"no semaphores for a worker pool: {e}"
    return ""


workers_here = pytest.mark.skipif(bool(_no_workers()), reason=_no_workers() or "-")


def _same(a: object, b: object) -> bool:
    """Equal all the way down: dataclasses field by field, arrays by dtype and value (NaN = NaN);
    deep enough for the deep cell's note (three frames a level)."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 5000))
    try:
        return _equal(a, b)
    finally:
        sys.setrecursionlimit(old)


def _equal(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if dataclasses.is_dataclass(a):
        return all(_equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, float) and a != a:
        return b != b
    return a == b


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A results folder (synthetic cells, a broken file, a folder and a FIFO named like
    artifacts, a cell nested too deep for pickle) and a submission folder (its own cells, one
    reproduced, one with a stale record, one of another defense, a reference flag)."""
    quick = tmp_path / "results" / "quick"
    specs = [
        Spec("numbers", d, "owl", s, leak_pp=0.2) for d in ("none", "judge") for s in range(20)
    ]
    write(quick, [artifact(s) for s in specs])
    (quick / "broken.json").write_text("{not json")
    (quick / "folder.json").mkdir()
    os.mkfifo(quick / "fifo.json")  # read, it would block for ever
    deep = artifact(Spec("numbers", "judge", "cat", 0, leak_pp=0.2))
    deep["defense"]["note"] = json.loads("[" * 700 + "]" * 700)  # parses; pickle gives up
    write(quick, [deep])

    sub = tmp_path / "submissions" / "canonicalize"
    shipped = ROOT / "submissions" / "canonicalize"
    sub.mkdir(parents=True)
    shutil.copy(shipped / "submission.yaml", sub)
    with (sub / "submission.yaml").open("a") as f:
        f.write("reference: bound\n")
    arts = sorted(p for p in shipped.rglob("*.json") if p.name != "summary.json")[:3]
    arts.append(next(p for p in (ROOT / "submissions" / "none").rglob("*__seed*.json")))
    for i, p in enumerate(arts):
        shutil.copy(p, sub / p.name)
        if i < 2:  # a valid record, then a stale one
            got = json.loads(p.read_text())["integrity"]["scores"]
            rec = {"reproduced": True, "scores_hash": got if i == 0 else "0" * 16}
            reading.reproduced_path(sub / p.name).write_text(json.dumps(rec))
    return tmp_path


def _inputs(tree: Path) -> tuple[list[tuple[Path, str]], reading.Folders]:
    dirs = [tree / "results", tree / "submissions"]
    return discover(dirs), _submission_folders(dirs)


@workers_here
def test_workers_give_what_parsing_here_gives_in_the_same_order(tree: Path) -> None:
    files, folders = _inputs(tree)
    here = reading.read_all(files, folders, workers=1)
    there, by_workers = reading._in_processes(files, folders, 3, here=False)
    assert by_workers == len(files)  # every chunk went through a worker
    assert _same(here, there) and not _same(here, there[::-1])
    assert [o[0].path if o[0] else o[2].path for o in there] == [str(p) for p, _ in files]

    cells = {Path(o[0].path).name: o for o in here if o[0]}
    why = {Path(o[2].path).name: o[2].reason for o in here if o[2]}
    assert len(why) == 4 and {"broken.json", "folder.json", "fifo.json"} <= set(why)
    assert "not a regular file" in why["fifo.json"] and "not readable JSON" in why["broken.json"]
    assert "not this folder's" in next(r for n, r in why.items() if "__none__" in n)
    ours = [o for n, o in sorted(cells.items()) if "__canonicalize__" in n]
    assert len(ours) == 3 and all(o[0].reference == "bound" for o in ours)
    assert sum(o[1] is not None for o in ours) == 1  # the valid record; the stale one is ignored
    assert any("judge__cat" in n for n in cells)  # the deep cell: parsed here again, kept


@workers_here
def test_both_sides_share_the_work_and_load_agrees(tree: Path, monkeypatch) -> None:
    files, folders = _inputs(tree)
    outcomes, by_workers = reading._in_processes(files, folders, 2)
    assert 0 <= by_workers <= len(files) and _same(outcomes, reading._chunk(files, folders))
    dirs = [tree / "results", tree / "submissions"]
    monkeypatch.setenv(reading.WORKERS_ENV, "1")
    one = load(dirs)
    monkeypatch.setenv(reading.WORKERS_ENV, "2")
    assert reading.processes(len(files)) == 2 and _same(one, load(dirs))


def test_a_failed_pool_costs_nothing(tree: Path, monkeypatch) -> None:
    files, folders = _inputs(tree)
    called = []

    def broken(*_a: object) -> None:
        called.append(True)
        raise OSError("no processes here")

    monkeypatch.setattr(reading, "_in_processes", broken)
    monkeypatch.setattr(reading.sys, "platform", "linux")
    assert _same(reading.read_all(files, folders, workers=2), reading._chunk(files, folders))
    assert called


def test_workers_that_never_come_up_leave_it_all_here(tree: Path, monkeypatch) -> None:
    files, folders = _inputs(tree)
    monkeypatch.setattr(reading._Start, "_run", lambda self, *a: self._up.set())
    outcomes, by_workers = reading._in_processes(files, folders, 2)
    assert by_workers == 0 and _same(outcomes, reading._chunk(files, folders))
    with pytest.raises(RuntimeError, match="no worker"):
        reading._in_processes(files, folders, 2, here=False)


@pytest.mark.parametrize("raw", ["0", "two", "-1", "1.5", "²", "٣"])
def test_a_bad_worker_count_is_named_and_ignored(raw: str, monkeypatch) -> None:
    monkeypatch.setenv(reading.WORKERS_ENV, raw)
    with pytest.raises(ValueError, match=reading.WORKERS_ENV):
        reading.env_workers()
    with pytest.warns(UserWarning, match=reading.WORKERS_ENV):
        assert reading.workers_for(10) == 1


def test_few_files_stay_in_this_process(tree: Path, monkeypatch) -> None:
    monkeypatch.delenv(reading.WORKERS_ENV, raising=False)
    monkeypatch.setattr(reading, "usable_cores", lambda: 4)
    assert reading.workers_for(reading.PARALLEL_MIN - 1) == 1
    assert reading.workers_for(reading.PARALLEL_MIN) == 4
    monkeypatch.setattr(reading, "_in_processes", lambda *a: pytest.fail("forked for few files"))
    files, folders = _inputs(tree)
    assert len(files) < reading.PARALLEL_MIN and len(reading.read_all(files, folders)) == len(files)


def test_slb_leaderboard_names_a_bad_worker_count_before_it_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(reading.WORKERS_ENV, "many")
    assert main(["leaderboard", "--export", str(tmp_path / "site"), str(tmp_path)]) == 2
    assert reading.WORKERS_ENV in capsys.readouterr().err and not (tmp_path / "site").exists()
