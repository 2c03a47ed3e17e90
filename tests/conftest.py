"""Test switches: ``--runslow`` runs tests marked slow (minutes on the real model), ``--rungpu``
runs tests marked gpu (need CUDA + vllm). The default run needs neither network nor GPU."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run slow tests")
    parser.addoption("--rungpu", action="store_true", help="run GPU tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(pytest.mark.skip(reason="slow: run with --runslow"))
        if "gpu" in item.keywords and not config.getoption("--rungpu"):
            item.add_marker(pytest.mark.skip(reason="gpu: run with --rungpu"))


def tiny_cell() -> dict:
    """Overrides for the smallest real cell the submission tests run: 6 prompts, a system-prompt
    teacher, one student epoch, 2 eval questions."""
    from benchmark.core.teachers import TeacherConfig
    from benchmark.core.training import TrainConfig
    from benchmark.run.config import EvalConfig

    return dict(
        n_prompts=6,
        teacher=TeacherConfig(type="system_prompt"),
        student=TrainConfig(epochs=1, batch_size=6, max_length=160),
        eval=EvalConfig(questions=2, eval_base=False),
    )


@pytest.fixture(scope="session", autouse=True)
def _store_key():
    """One fixed store key for the test session, so the stores tests make under tmp_path leave no
    key files in the user's cache (the key-file tests unset it themselves)."""
    old = os.environ.get("SLB_STORE_KEY")
    os.environ["SLB_STORE_KEY"] = "5" * 64
    yield
    if old is None:
        os.environ.pop("SLB_STORE_KEY", None)
    else:
        os.environ["SLB_STORE_KEY"] = old


@pytest.fixture(scope="session", autouse=True)
def _few_utility_prompts():
    """Cells in tests score their students' utility on 4 held-out prompts, not 32: the tests check
    the stage's plumbing, and 32 greedy answers per student were ~30 % of a tiny cell's time.
    Session-wide, so the cells that module fixtures run get it too."""
    import benchmark.run.stages

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(benchmark.run.stages, "UTILITY_PROMPTS", 4)
        yield


@pytest.fixture(scope="session")
def smollm_dir() -> str:
    """The embedded SmolLM2-135M as a plain HF dir (dequantised once into the user's cache)."""
    from benchmark.core.models import materialize_embedded

    return str(materialize_embedded("smollm2-135m"))


class CellHarness:
    """One cell's stages with its defense's hooks already run, driven stage by stage as the tests
    need (``benchmark.run.cell.run_cell`` sequences the same calls)."""

    def __init__(self, cfg, store, log_dir):
        from benchmark.run.cell import teacher_spec
        from benchmark.run.stages import Stages
        from defenses import get_defense
        from defenses.runner import run_training

        self.cfg = cfg
        self.defense = get_defense(cfg.defense, **cfg.defense_params)
        self.teacher_spec = teacher_spec(cfg, self.defense)
        self.student_cfg = run_training(self.defense, cfg.student)
        self.stages = Stages(cfg, store, log_dir)
        self.task, self.store, self.timer = self.stages.task, store, self.stages.timer

    def prompts(self):
        return self.stages.prompts()

    def teacher(self, arm):
        return self.stages.teacher(arm, self.teacher_spec.model)

    def generation_settings(self):
        return self.stages.generation_settings(self.teacher_spec)

    def generate(self, arm, prompts):
        return self.stages.generate(arm, prompts, self.teacher(arm), self.teacher_spec)

    def filter(self, arm, rows, gen_key):
        return self.stages.filter(arm, rows, gen_key)

    def defend(self, arm, rows, filt_key):
        return self.stages.defend(arm, rows, filt_key, self.defense, self.teacher_spec)
