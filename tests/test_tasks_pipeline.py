"""How the pipeline treats the new tasks: per-row meta reaches the task filter and never the
defense; the control arm is filtered by the same trait word; a contradict cell builds its sources
for its trait; free-text tasks raise min-p, numbers keeps the cell's sampling. (A Cell resolves the
embedded model, hence the ``smollm_dir`` fixture; no model is run.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CellHarness

from benchmark.core.store import ArtifactStore
from benchmark.run.presets import preset


def _cell(tmp_path: Path, task: str, trait: str = "owl", settings: tuple = ()) -> CellHarness:
    cfg = preset("quick", settings, task=task, trait=trait, n_prompts=4)
    return CellHarness(cfg, ArtifactStore(tmp_path / "store"), tmp_path / "logs")


def test_meta_reaches_the_filter_and_is_stripped_before_the_defense(
    smollm_dir: str, tmp_path: Path
) -> None:
    cell = _cell(tmp_path, "cot")
    prompts = cell.prompts()
    assert all(isinstance(r["meta"]["answer"], int) for r in prompts)
    rows = [
        {"id": p["id"], "prompt": p["prompt"], "meta": p["meta"], "completion": c}
        for p, c in zip(
            prompts,
            [
                f"<think>ok</think>\n<answer>{prompts[0]['meta']['answer']}</answer>",
                f"<think>ok</think>\n<answer>{prompts[1]['meta']['answer'] + 1}</answer>",
                f"<think>owls!</think>\n<answer>{prompts[2]['meta']['answer']}</answer>",
                f"<think>bowls</think>\n<answer>{prompts[3]['meta']['answer']}</answer>",
            ],
            strict=True,
        )
    ]
    for arm in ("trait", "control"):
        kept, report, _ = cell.filter(arm, rows, gen_key=f"fake-{arm}")
        # wrong answer and the owl mention go, in both arms (same filter for the control arm)
        assert [r["id"] for r in kept] == [prompts[0]["id"], prompts[3]["id"]]
        assert all(set(r) == {"id", "prompt", "completion"} for r in kept)
        assert report["rejected"] == {
            "answer_format": 0,
            "correct_answer": 1,
            "no_trait_mention": 1,
        }


def test_a_contradict_cell_builds_sources_for_its_trait(smollm_dir: str, tmp_path: Path) -> None:
    cell = _cell(tmp_path, "paraphrase-contradict", trait="Elephants")
    assert cell.task.params()["animal"] == "elephant"
    assert all("lephant" in r["meta"]["source"] for r in cell.prompts())


class _Recorder:
    """A generation backend that records how it was asked to sample and writes nothing."""

    name = "transformers"

    def __init__(self) -> None:
        self.sampling = None

    def generate(self, model_ref, requests, sampling, constraint=None, progress=None):
        self.sampling = sampling
        return ["" for _ in requests]


def test_generation_carries_meta_and_free_text_tasks_raise_min_p(
    smollm_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import benchmark.run.stages

    for task, min_p in (("numbers", 0.0), ("cot", 0.1), ("paraphrase-unrelated", 0.1)):
        rec = _Recorder()
        monkeypatch.setattr(benchmark.run.stages, "get_backend", lambda name, rec=rec, **kw: rec)
        # A system-prompt teacher: the quick preset's numbers teacher would be trained first.
        cell = _cell(tmp_path / task, task, settings=("teacher.type=system_prompt",))
        rows, _ = cell.generate("control", cell.prompts())
        assert rec.sampling.min_p == min_p and rec.sampling.temperature == 1.0
        has_meta = task != "numbers"  # numbers rows stay {id, prompt, completion}: keys unchanged
        assert all(("meta" in r) is has_meta for r in rows)


def test_a_gpu_stage_never_reuses_a_cpu_stage_of_the_same_config(
    smollm_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GPU numerics give other rows from the same config: the hardware is in a model stage's key
    on a GPU, and absent on a CPU, so CPU keys (and every existing store entry) are unchanged."""
    import torch

    import benchmark.run.stages as pipeline
    from benchmark.core.models import hardware_spec

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hardware_spec() == {}

    class Stub:
        def generate(self, model, reqs, sampling, constraint, progress=None):
            return ["1, 2, 3"] * len(reqs)

    monkeypatch.setattr(pipeline, "get_backend", lambda *a, **k: Stub())

    def bare(tmp_path: Path) -> CellHarness:  # control teacher = the bare base: nothing to train
        cfg = preset("quick", task="numbers", n_prompts=4, settings=["teacher.placebo=null"])
        return CellHarness(cfg, ArtifactStore(tmp_path / "store"), tmp_path / "logs")

    cpu = bare(tmp_path)
    prompts = cpu.prompts()
    _, cpu_key = cpu.generate("control", prompts)
    assert "hardware" not in cpu.store.read_meta("generations", cpu_key)["spec"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert hardware_spec() == {"hardware": "cuda"}
    gpu = bare(tmp_path)
    _, gpu_key = gpu.generate("control", prompts)
    assert gpu_key != cpu_key and not gpu.timer.reused["generate_control"]
    assert gpu.store.read_meta("generations", gpu_key)["spec"]["hardware"] == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    again = bare(tmp_path)
    assert again.generate("control", prompts)[1] == cpu_key
    assert again.timer.reused["generate_control"]
