"""Artifacts parsed in worker processes give exactly what parsing them here gives."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark.run.synthetic import Spec, artifact, write
from leaderboard import reading
from leaderboard.loader import _submission_folders, discover, load

ROOT = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks on Linux only")


def _same(a: object, b: object) -> bool:
    """Equal all the way down: dataclasses field by field, arrays by dtype and value (NaN = NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if dataclasses.is_dataclass(a):
        return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and a != a:
        return b != b
    return a == b


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    specs = [Spec("numbers", d, "owl", s, leak_pp=0.2) for d in ("none", "judge") for s in range(4)]
    write(tmp_path / "results" / "quick", [artifact(s) for s in specs])
    (tmp_path / "results" / "quick" / "broken.json").write_text("{not json")
    return tmp_path / "results"


@linux_only
def test_worker_processes_give_the_same_outcomes_in_the_same_order(folder: Path) -> None:
    files = discover([folder])
    here = reading.read_all(files, {}, workers=1)
    forked = reading._in_processes(files, {}, 3)  # the parallel path itself, no fallback
    assert [o[0].path if o[0] else o[2].path for o in forked] == [str(p) for p, _ in files]
    assert sum(o[2] is not None for o in here) == 1  # the broken file, skipped with its reason
    assert _same(here, forked) and not _same(here, forked[::-1])


@linux_only
def test_load_of_the_shipped_submissions_is_the_same_in_two_processes(monkeypatch) -> None:
    # ownership checks, references and reproduction records included
    dirs = [ROOT / "submissions"]
    assert _submission_folders(dirs)
    monkeypatch.setenv(reading.WORKERS_ENV, "1")
    one = load(dirs)
    monkeypatch.setenv(reading.WORKERS_ENV, "2")
    two = load(dirs)
    assert one.cells and _same(one, two)


def test_a_failed_worker_costs_nothing(folder: Path, monkeypatch) -> None:
    files = discover([folder])

    def broken(*_a: object) -> None:
        raise OSError("no processes here")

    monkeypatch.setattr(reading, "_in_processes", broken)
    assert _same(reading.read_all(files, {}, workers=2), reading.read_all(files, {}, workers=1))


@pytest.mark.parametrize("raw", ["0", "two", "-1", "1.5"])
def test_a_bad_worker_count_is_named(raw: str, monkeypatch) -> None:
    monkeypatch.setenv(reading.WORKERS_ENV, raw)
    with pytest.raises(ValueError, match=reading.WORKERS_ENV):
        reading.workers_for(1000)


def test_few_files_stay_in_this_process(monkeypatch) -> None:
    monkeypatch.delenv(reading.WORKERS_ENV, raising=False)
    assert reading.workers_for(reading.PARALLEL_MIN - 1) == 1
    assert reading.workers_for(reading.PARALLEL_MIN) >= 1
