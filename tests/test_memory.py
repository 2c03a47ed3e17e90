"""Peak-memory measurement of a stage (benchmark.core.memory) and where it is recorded: the store's
entry metadata and the cell's run_info (benchmark.run.timer)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from benchmark.core import memory
from benchmark.core.memory import high_water_gb, peak_rss
from benchmark.core.store import ArtifactStore
from benchmark.run.timer import StageTimer

MB = 2**20
BIG = 300 * MB  # large enough to stand out from the test process's own resident memory

linux = pytest.mark.skipif(
    not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's peak-RSS reset"
)


def _touch(n: int) -> bytearray:
    buf = bytearray(n)
    buf[::4096] = b"\1" * len(range(0, n, 4096))  # resident, not only reserved
    return buf


@linux
def test_a_block_reports_its_own_peak_not_the_process_lifetime_one() -> None:
    with peak_rss() as big:
        buf = _touch(BIG)
        del buf
    with peak_rss() as small:
        pass
    assert big.gb is not None and small.gb is not None
    assert big.gb - small.gb > 0.8 * BIG / 2**30  # the second block did not inherit the first's
    assert high_water_gb() is not None


@linux
def test_nested_measurements_keep_what_the_outer_one_saw() -> None:
    with peak_rss() as outer:
        buf = _touch(BIG)
        del buf
        with peak_rss() as inner:  # resets the kernel's mark
            pass
    assert outer.gb is not None and inner.gb is not None
    assert outer.gb - inner.gb > 0.8 * BIG / 2**30


def test_unmeasurable_is_none_not_a_lifetime_figure(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(memory, "_CLEAR_REFS", tmp_path / "missing" / "clear_refs")
    with peak_rss() as m:
        pass
    assert m.gb is None


@linux
def test_store_entries_record_their_peak(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")

    def compute():
        buf = _touch(BIG)
        return [{"n": len(buf)}], {}

    _, meta, _ = store.cached("rows_stage", {"a": 1}, compute)
    assert meta["peak_rss_gb"] > 0.8 * BIG / 2**30
    _, meta2, reused = store.cached("rows_stage", {"a": 1}, compute)
    assert reused and meta2["peak_rss_gb"] == meta["peak_rss_gb"]  # the figure from computing

    def build(d: Path):
        (d / "f").write_text("x")
        return {}

    _, dmeta, _ = store.cached_dir("dir_stage", {"b": 1}, build)
    assert isinstance(dmeta["peak_rss_gb"], float) and dmeta["peak_rss_gb"] < meta["peak_rss_gb"]
    with pytest.raises(ValueError, match="reserved"):
        store.cached("rows_stage", {"a": 2}, lambda: ([], {"peak_rss_gb": 1.0}))


def test_run_info_peak_is_the_largest_stage_peak_measured() -> None:
    t = StageTimer()
    t0 = time.perf_counter()
    t.record("generate", t0, {"wall_seconds": 1.0, "peak_rss_gb": 2.5}, reused=True)
    t.record("train", t0, {"wall_seconds": 2.0, "peak_rss_gb": 4.25}, reused=False)
    t.record("old_entry", t0, {"wall_seconds": 3.0}, reused=True)  # written before peaks were
    info = t.as_run_info()
    assert info["stage_peak_rss_gb"] == {"generate": 2.5, "train": 4.25}
    assert info["peak_rss_gb"] == 4.25
    assert StageTimer().as_run_info()["peak_rss_gb"] is None


def test_three_nested_measurements_each_keep_their_own_peak(monkeypatch) -> None:
    """With a stand-in for the kernel's mark: the two outer measurements see the same figures
    when the innermost starts, and each must still end with its own peak (and an error inside
    must come out as itself)."""
    state = {"rss": 1.0, "mark": 1.0}

    def hold(gb: float) -> None:
        state["rss"] = gb
        state["mark"] = max(state["mark"], gb)

    def reset() -> bool:
        state["mark"] = state["rss"]
        return True

    monkeypatch.setattr(memory, "high_water_gb", lambda: state["mark"])
    monkeypatch.setattr(memory, "_reset", reset)
    monkeypatch.setattr(memory, "release", lambda: None)
    with peak_rss() as a:
        hold(5.0)
        hold(1.0)
        with peak_rss() as b:
            hold(6.0)
            hold(1.0)
            with pytest.raises(KeyError):
                with peak_rss() as c:
                    hold(2.0)
                    raise KeyError("inside")
        hold(1.5)
    assert (a.gb, b.gb, c.gb) == (6.0, 6.0, 2.0)
    assert not memory._open
