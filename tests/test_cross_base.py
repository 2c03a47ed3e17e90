"""A tiny cell with ``cross_base_teacher``: both arms are written by Gemma-3-270M (no chat template,
so prompted in the plain few-shot format, the trait arm with the trait text in front), the rows are
exactly what Gemma writes for those prompts, and the defense context names Gemma as the teacher.
The student stays SmolLM2. Real embedded models; Gemma generation makes this a slow test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CellHarness

from benchmark.core.generation import GenerationRequest, TransformersBackend
from benchmark.core.plain_format import plain_prompt
from benchmark.core.store import ArtifactStore
from benchmark.core.teachers import TeacherConfig
from benchmark.core.training import TrainConfig
from benchmark.run.cell import run_until
from benchmark.run.config import EvalConfig
from benchmark.run.presets import preset
from tasks.numbers import parse_numbers


@pytest.mark.slow
def test_cross_base_cell_generates_with_gemma(tmp_path: Path) -> None:
    cfg = preset(
        "quick",
        defense="cross_base_teacher",
        n_prompts=4,
        teacher=TeacherConfig(type="system_prompt"),
        student=TrainConfig(epochs=1, batch_size=4, max_length=160),
        eval=EvalConfig(questions=2, eval_base=False),
    )
    store = ArtifactStore(tmp_path / "store")
    assert run_until(cfg, store, tmp_path / "logs", "data").stopped_after == "data"
    cell = CellHarness(cfg, store, tmp_path / "logs")
    assert cell.teacher_spec.model == "gemma3-270m" and cfg.base_model == "smollm2-135m"
    metas = {
        m["spec"]["system"] is not None: m
        for m in (json.loads(p.read_text()) for p in store.root.glob("generations/*/meta.json"))
    }
    assert set(metas) == {True, False}
    for m in metas.values():
        assert m["spec"]["teacher"] == "gemma3-270m" and "plain_format" in m["spec"]
    assert "owl" in metas[True]["spec"]["system"]  # the trait arm carries the trait on Gemma

    prompts = cell.prompts()
    control, _ = cell.generate("control", prompts)
    assert all(parse_numbers(r["completion"]) is not None for r in control)
    # The control rows are what Gemma itself writes for the plain few-shot prompts.
    shots = cell.task.few_shot_examples()
    reqs = [
        GenerationRequest(r["id"], raw_prompt=plain_prompt(r["prompt"], None, shots))
        for r in prompts
    ]
    direct = TransformersBackend(batch_size=cfg.gen_batch_size).generate(
        "gemma3-270m", reqs, cell.generation_settings().sampling, cell.task.constraint(True)
    )
    assert [r["completion"] for r in control] == [d.strip() for d in direct]


def test_plain_teacher_requests_carry_the_trait_before_the_examples(tmp_path, monkeypatch) -> None:
    """Fast wiring check with a recording backend: raw few-shot prompts for a base without a chat
    template, the trait text first in the trait arm only, output cut at the next question."""
    seen: dict[str, list] = {}

    class Recorder:
        def generate(self, model_ref, requests, sampling, constraint=None, progress=None):
            seen[model_ref] = list(requests)
            return [" 1, 2, 3\n\nQuestion: more\nAnswer: 4"] * len(requests)

    monkeypatch.setattr("benchmark.run.stages.get_backend", lambda name, **kw: Recorder())
    cfg = preset(
        "quick",
        defense="cross_base_teacher",
        n_prompts=2,
        teacher=TeacherConfig(type="system_prompt"),
    )
    cell = CellHarness(cfg, ArtifactStore(tmp_path / "store"), tmp_path / "logs")
    prompts = cell.prompts()
    for arm in ("trait", "control"):
        rows, _ = cell.generate(arm, prompts)
        assert [r["completion"] for r in rows] == ["1, 2, 3", "1, 2, 3"]
        (reqs,) = seen.values()
        seen.clear()
        assert all(r.raw_prompt and not r.messages for r in reqs)
        first = reqs[0].raw_prompt
        assert first.endswith(f"Question: {prompts[0]['prompt']}\nAnswer:")
        assert first.count("\nAnswer: ") == 2  # the task's two worked examples
        assert first.startswith("You love owls.") == (arm == "trait")
