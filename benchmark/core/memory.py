"""Peak resident memory of one stretch of work in this process: the memory figure a stage records
next to its wall time (``benchmark.core.store``), so a cell's artifact says how much memory each
stage needed, not only how much the whole process ever held::

    with peak_rss() as mem:
        train(...)
    mem.gb   # the most the process held while training, in GB; None where not measurable

Each measurement first gives what the process has freed back to the operating system (a garbage
collection, then glibc's ``malloc_trim``), so a stage starts from what is live rather than from
what the stage before it freed and the allocator kept: that lowers the real peak, not only the
figure. Linux only: the kernel's high-water mark (``VmHWM`` in ``/proc/self/status``) is reset
at the start (writing ``5`` to ``/proc/self/clear_refs``) and read at the end. Elsewhere, or
where the reset is refused, ``gb`` stays None rather than report the whole process's peak as
the stage's. Measurements nest: before an inner one resets the mark, every open one keeps the
peak it had seen so far. The reset also lowers ``getrusage``'s ``ru_maxrss`` (it keeps only what
exited threads reached), so that is no longer a lifetime figure in a process that measures
stages. Memory of child processes (an isolated defense) is not counted.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_RESET_PEAK = "5"  # clear_refs: reset the peak RSS (Linux >= 4.0)


@dataclass(eq=False)  # told apart by identity: two open ones may hold equal figures
class PeakRSS:
    """One measurement: ``gb`` once the block has ended (None if it could not be measured)."""

    gb: float | None = None
    _seen: float = 0.0  # the peak seen before inner measurements reset the mark
    _ok: bool = False


_open: list[PeakRSS] = []  # the measurements in progress, outermost first


def high_water_gb() -> float | None:
    """The process's peak resident memory since start or the last reset, in GB (None: unknown)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_TRIM = _malloc_trim()  # looked up once: every computed stage calls it


def release() -> None:
    """Collect garbage and return freed heap memory to the operating system (glibc only)."""
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)


def _reset() -> bool:
    try:
        _CLEAR_REFS.write_text(_RESET_PEAK)
    except OSError:
        return False
    return True


@contextmanager
def peak_rss() -> Iterator[PeakRSS]:
    """Measure the peak resident memory of the block (see the module docstring)."""
    m = PeakRSS()
    before = high_water_gb()  # before the release: the open measurements saw this much
    release()
    if before is not None:
        for outer in _open:  # the mark is about to go: keep what it says for the open ones
            outer._seen = max(outer._seen, before)
        m._ok = _reset()
    _open.append(m)
    try:
        yield m
    finally:
        _open.remove(m)
        now = high_water_gb()
        if m._ok and now is not None:
            m.gb = round(max(m._seen, now), 3)
