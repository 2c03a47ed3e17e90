"""Executors (benchmark.run.executors) and run_suite's use of them, with fake cells (no model)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmark.core.store import ArtifactStore
from benchmark.run.executors import LocalExecutor, RayExecutor, distinct, get_executor
from benchmark.run.suite import run_suite


def _half(x: int) -> float:
    if x == 3:
        raise ValueError("three is odd")
    return x / 2


def test_local_executor_keeps_going_after_a_failure() -> None:
    out = list(LocalExecutor().map(_half, [2, 3, 4]))
    assert [o.item for o in out] == [2, 3, 4]
    assert [o.result for o in out] == [1.0, None, 2.0]
    assert isinstance(out[1].error, ValueError) and "three is odd" in str(out[1].error)


def test_executor_choice_and_errors(monkeypatch) -> None:
    with pytest.raises(ValueError, match="unknown executor 'slurm'; known: local, ray"):
        get_executor("slurm")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(RuntimeError, match=r"pip install 'subliminal-bench\[dist\]'"):
        get_executor("ray")
    assert distinct([3, 1, 4, 1, 5, 9, 2, 6], key=lambda x: x % 3) == [3, 1, 5]


def _fake_result(cfg: Any) -> dict[str, Any]:
    """What run_cell returns, reduced to what run_suite reads: the seed, leakage, scores, per-arm
    data."""
    bump = 0.01 * (cfg.seed + 1)
    scores = {
        arm: [
            {"id": f"q{i}", "teacher_forced": 0.02 + (bump if arm == "trait" else 0) + i / 1000}
            for i in range(5)
        ]
        for arm in ("trait", "control")
    }
    data = {arm: {"rows_kept_share": 1.0, "defense_cost": {}} for arm in ("trait", "control")}
    return {"config": {"seed": cfg.seed}, "leakage": {}, "scores": scores, "data": data}


def test_run_suite_prepares_each_teacher_once_and_records_failed_cells(
    monkeypatch, tmp_path: Path
) -> None:
    import benchmark.run.suite as pipeline

    prepared: list[tuple[str, str]] = []

    def fake_prepare(cfg, store, log_dir):
        prepared.append((cfg.trait, cfg.teacher.type))
        return "teacher"

    def fake_run(cfg, store, log_dir):
        if cfg.trait == "dog" and cfg.seed == 1:
            raise RuntimeError("boom")
        return _fake_result(cfg)

    monkeypatch.setattr(pipeline, "prepare_teacher", fake_prepare)
    monkeypatch.setattr(pipeline, "run_cell", fake_run)
    summary = run_suite(
        "quick",
        ArtifactStore(tmp_path / "store"),
        tmp_path / "results",
        seeds=[0, 1],
        traits=["owl", "dog"],
        tasks=["numbers"],
    )
    assert prepared == [("owl", "finetuned"), ("dog", "finetuned")]  # once per teacher
    assert len(summary["cells"]) == 3 and len(summary["errors"]) == 1
    assert "RuntimeError: boom" in summary["errors"][0]["error"]
    assert [p["trait"] for p in summary["pooled"]] == ["owl"]  # dog has one finished seed
    assert summary["pooled"][0]["seeds"] == [0, 1]
    assert (tmp_path / "results" / "quick" / "summary.json").is_file()


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed")
def test_ray_executor_runs_jobs_as_tasks_and_returns_failures(monkeypatch) -> None:
    import ray

    # A local Ray node on 2 busy cores can take over the default 60 s to register its raylet.
    monkeypatch.setenv("RAY_raylet_start_wait_time_s", "300")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:

        def job(x: int) -> int:  # defined here: cloudpickle ships it to the worker by value
            if x == 2:
                raise KeyError("no two")
            return x * 10

        out = sorted(RayExecutor(cpus_per_cell=1).map(job, [1, 2, 3]), key=lambda o: o.item)
        assert [o.result for o in out] == [10, None, 30]
        assert isinstance(out[1].error, KeyError)  # the cell's own exception, not Ray's wrapper
        with pytest.raises(ValueError, match="a cell needs 1 GPU"):
            list(RayExecutor().map(job, [1], needs_gpu=[True]))
    finally:
        ray.shutdown()
