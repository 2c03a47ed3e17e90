"""Writers that race on the same keys never crash and all read the same entry."""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from pathlib import Path

import pytest

from benchmark.core.store import ArtifactStore

PROCESSES, WRITES = 4, 80


@pytest.fixture(autouse=True)
def _key_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh key cache, so the four writers also race to create the store's key."""
    monkeypatch.setenv("SLB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("SLB_STORE_KEY", raising=False)


def _writer(root: str, barrier, out) -> None:
    barrier.wait()  # all four start together, so every key (and the store's secret) is contended
    try:
        store = ArtifactStore(Path(root))
    except Exception as e:  # first use creates the key: a failure there counts too
        out.put(f"{type(e).__name__}: {e}")
        out.put(("done", 1, 0))
        return
    failures, keys = 0, []
    for i in range(WRITES):
        spec = {"key": i}
        try:
            rows, _, _ = store.cached("race", spec, lambda i=i: ([{"id": "r", "v": i}], {"n": i}))
            assert rows == [{"id": "r", "v": i}]
            keys.append(store.key("race", spec))
        except Exception as e:  # what the test counts
            failures += 1
            out.put(f"{type(e).__name__}: {e}")
    out.put(("done", failures, len(keys)))


def test_four_processes_writing_the_same_keys_never_fail(tmp_path: Path) -> None:
    # Spawned, not forked: a fork copies this test process, which by now holds the models and
    # data of the tests before it, and every computed entry's gc.collect and malloc_trim then
    # walks (and copies) that heap in each child; on CI's 2 cores four such children ran past
    # the 120 s wait (2026-12-02). Fresh interpreters race on the store alone.
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(str(tmp_path), barrier, out)) for _ in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    results, errors = [], []
    deadline = time.monotonic() + 300
    while len(results) < PROCESSES:
        try:
            msg = out.get(timeout=5)
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            assert not dead, f"a writer died (exit codes {dead}) before reporting; {errors[:5]}"
            assert time.monotonic() < deadline, f"writers still running after 300 s: {errors[:5]}"
            continue
        (results if isinstance(msg, tuple) else errors).append(msg)
    for p in procs:
        p.join(timeout=60)
    assert errors == [] and all(f == 0 and n == WRITES for _, f, n in results), errors[:5]
    store = ArtifactStore(tmp_path)
    assert all(store.has("race", store.key("race", {"key": i})) for i in range(WRITES))
    leftovers = [p.name for p in (tmp_path / "race").iterdir() if p.name.startswith(".tmp")]
    assert leftovers == []
