"""Per-stage wall times of one cell run, and what each stage cost when it was computed; the pace
of a series of runs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageTimer:
    """Wall seconds per stage in this run, whether each was reused, and what each cost when it was
    computed (wall seconds and peak resident memory, from the store's metadata), so a resumed run
    reports the real cost of its artifacts."""

    seconds: dict[str, float] = field(default_factory=dict)
    reused: dict[str, bool] = field(default_factory=dict)
    compute: dict[str, float] = field(default_factory=dict)
    peak_gb: dict[str, float] = field(default_factory=dict)

    def record(self, name: str, t0: float, meta: dict[str, Any], reused: bool) -> None:
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - t0, 3)
        self.reused[name] = reused
        if isinstance(meta.get("wall_seconds"), (int, float)):
            self.compute[name] = round(float(meta["wall_seconds"]), 3)
        if isinstance(meta.get("peak_rss_gb"), (int, float)):
            self.peak_gb[name] = float(meta["peak_rss_gb"])

    def as_run_info(self) -> dict[str, Any]:
        """The timing block of ``run_info``. ``peak_rss_gb`` is the most memory any stage of the
        cell needed when it was computed (None where no stage's peak was measured): the figure
        to hold against a machine's memory, whether or not this run reused the stages."""
        return {
            "stage_seconds": self.seconds,
            "stages_reused": self.reused,
            "stage_compute_seconds": self.compute,
            "stage_peak_rss_gb": self.peak_gb,
            "peak_rss_gb": max(self.peak_gb.values()) if self.peak_gb else None,
        }


@dataclass
class Pace:
    """How long the rest of ``total`` runs takes at the pace of the ones this process made (runs
    read back from disk cost nothing and are not counted)."""

    total: int
    made: int = 0
    started: float = field(default_factory=time.monotonic)

    def left(self, done: int, now: float | None = None) -> str:
        """ "; about N min left at this pace (k runs)" once a run was made here and some are left."""
        left = self.total - done
        if not self.made or left <= 0:
            return ""
        per_run = ((time.monotonic() if now is None else now) - self.started) / self.made
        return f"; about {left * per_run / 60:.0f} min left at this pace ({left} runs)"
