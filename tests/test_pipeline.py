"""One tiny cell end to end on the real embedded model, and resume from the artifact store."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from benchmark.core.store import ArtifactStore
from benchmark.core.teachers import TeacherConfig
from benchmark.core.training import TrainConfig
from benchmark.run.cell import run_cell, run_until
from benchmark.run.config import CellConfig, EvalConfig
from benchmark.run.presets import preset


def _tiny(**kw) -> CellConfig:
    return preset(
        "quick",
        **{
            "n_prompts": 6,
            "teacher": TeacherConfig(type="system_prompt"),
            "student": TrainConfig(epochs=1, batch_size=6, max_length=160),
            "eval": EvalConfig(questions=2, eval_base=True),
            **kw,
        },
    )


@pytest.fixture(scope="module")
def placebo_cell(smollm_dir: str, tmp_path_factory) -> tuple[CellConfig, ArtifactStore, Path, dict]:
    """One tiny placebo-controlled cell (the control teacher has the dolphin system prompt), with
    the base and the teacher scored too, stopped after its data and then resumed: the two tests
    below read the same cell (a tiny real cell costs more than a minute on 2 CPU cores)."""
    tmp = tmp_path_factory.mktemp("placebo_cell")
    store = ArtifactStore(tmp / "store")
    sp = TeacherConfig(type="system_prompt", placebo="dolphin")
    cfg = _tiny(teacher=sp)
    first = run_until(cfg, store, tmp / "logs", "data")
    assert first.stopped_after == "data"
    return cfg, store, tmp / "logs", run_cell(cfg, store, tmp / "logs")


def test_cell_runs_and_resumes_without_redoing_stages(placebo_cell) -> None:
    cfg, store, logs, res = placebo_cell
    # generation was not redone after the "kill": both arms reused
    assert res["run_info"]["stages_reused"]["generate_trait"] is True
    assert res["run_info"]["device"].startswith(("cpu: ", "cuda: "))
    assert res["run_info"]["stages_reused"]["generate_control"] is True
    assert res["run_info"]["stages_reused"]["train_trait"] is False
    tv = res["leakage"]["teacher_forced"]["trait_vs_control"]
    assert tv["n_questions"] == 2 and len(tv["ci_pp"]) == 2
    assert res["data"]["trait"]["generated"] == 6
    assert set(res["scores"]) == {"trait", "control", "base", "teacher"}
    # the teacher (system-prompted) prefers owls far more than the base: the trait is in the teacher
    teacher = sum(r["teacher_forced"] for r in res["scores"]["teacher"])
    base = sum(r["teacher_forced"] for r in res["scores"]["base"])
    assert teacher > 5 * base
    again = run_cell(cfg, store, logs)
    assert all(again["run_info"]["stages_reused"].values())
    # reused stages still report what they cost when computed
    assert again["run_info"]["stage_compute_seconds"] == res["run_info"]["stage_compute_seconds"]
    assert again["run_info"]["stage_compute_seconds"]["train_trait"] > 1.0
    # ... and the memory they needed (measured where Linux can reset the peak): a model's worth
    peaks = res["run_info"]["stage_peak_rss_gb"]
    assert again["run_info"]["stage_peak_rss_gb"] == peaks
    if os.access("/proc/self/clear_refs", os.W_OK):
        assert peaks["train_trait"] > 0.2 and res["run_info"]["peak_rss_gb"] == max(peaks.values())
    assert again["scores"] == res["scores"] and again["leakage"] == res["leakage"]
    assert Path(res["inspect_logs"]["trait"][0]).exists()
    u = res["utility"]
    assert u["metric"] == "task_valid_share" and u["n_prompts"] == 4  # conftest: 32 outside tests
    assert 0.0 <= u["trait"] <= 1.0 and u["score"] == (u["trait"] + u["control"]) / 2
    # A defense that changes no row (banned_words on number lists) reuses the students by content.
    noop = run_cell(cfg.with_(defense="banned_words"), store, logs)
    assert noop["data"]["trait"]["after_defense"] == res["data"]["trait"]["after_defense"]
    assert noop["run_info"]["stages_reused"]["train_trait"] is True
    assert noop["run_info"]["stages_reused"]["train_control"] is True
    assert noop["scores"] == res["scores"]


def test_bad_cell_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid trait"):
        CellConfig(trait="owl 123")
    with pytest.raises(ValueError, match="Invalid n_prompts"):
        CellConfig(n_prompts=0)
    with pytest.raises(ValueError, match="unknown suite 'fast'"):
        preset("fast")
    with pytest.raises(ValueError, match="Invalid teacher type"):
        TeacherConfig(type="prompted")


def test_quick_preset_per_task_defaults() -> None:
    numbers = preset("quick", task="numbers")
    assert numbers.teacher.type == "finetuned" and numbers.sampling.max_new_tokens == 50
    cot = preset("quick", task="cot", seed=1)
    assert cot.teacher.type == "system_prompt" and cot.sampling.max_new_tokens == 160
    assert cot.student.seed == 1
    # the caller's choice still wins over the task default
    assert preset("quick", task="cot", teacher=TeacherConfig()).teacher.type == "finetuned"


def test_quick_numbers_control_is_a_placebo_teacher_never_the_trait() -> None:
    """The quick numbers cell's control teacher is the owl recipe with a placebo animal; a cell
    whose trait is that animal gets the next one; the free-text tasks (system-prompt teacher) and
    an explicit teacher keep the bare base as control; --set can turn the placebo off."""
    assert preset("quick", task="numbers").teacher.placebo == "dolphin"
    assert preset("quick", trait="Dolphins").teacher.placebo == "owl"
    assert preset("quick", trait="cat").teacher.placebo == "dolphin"
    assert preset("quick", task="code").teacher.placebo is None
    assert preset("quick", teacher=TeacherConfig()).teacher.placebo is None
    assert preset("quick", settings=["teacher.placebo=null"]).teacher.placebo is None
    assert preset("paper").teacher.placebo is None
    with pytest.raises(ValueError, match="Invalid teacher placebo"):
        preset("quick", trait="dolphin", settings=["teacher.placebo=dolphin"])
    with pytest.raises(ValueError, match="invalid trait"):
        preset("quick", trait="owl 42")


def test_settings_set_nested_fields_on_top_of_the_preset() -> None:
    """``--set key.path=value``: any config field, typed, after the task's preset and overrides."""
    cfg = preset(
        "quick",
        task="cot",
        seed=2,
        settings=[
            "teacher.general_rows=240",
            "sampling.coupled=true",
            'student.target_modules=["q_proj", "v_proj"]',
            "student.learning_rate=5e-4",
            "max_train_rows=100",
            "task_params={}",
        ],
    )
    assert cfg.teacher.type == "system_prompt" and cfg.teacher.general_rows == 240  # cot's teacher
    assert cfg.sampling.coupled and cfg.sampling.max_new_tokens == 160
    assert cfg.student.target_modules == ("q_proj", "v_proj") and cfg.student.seed == 2
    assert cfg.student.learning_rate == 5e-4 and cfg.max_train_rows == 100
    assert preset("quick", settings=["student.learning_rate=1e-3"]).student.learning_rate == 1e-3
    assert preset("quick", settings=[]) == preset("quick")
    for bad, message in [
        ("teacher.general_rowz=1", "unknown key 'general_rowz' in TeacherConfig; known: type, "),
        ("teacher.qa_rows=many", "expected type int (the field holds 240), got 'many'"),
        ("student.lora_r=8.5", "expected type int"),
        ("sampling.coupled=1", "expected type bool"),
        ("sampling=1", "set its sub-keys"),
        ("seed.x=1", "'seed' has no sub-keys"),
        ("teacher.general_rows=-1", "--set 'teacher.general_rows=-1': Invalid general_rows: -1"),
        ("general_rows", "expected KEY=VALUE"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            preset("quick", settings=[bad])


def test_placebo_cell_scores_both_animals_in_both_students(placebo_cell) -> None:
    """A placebo-controlled cell: the control arm's teacher has the dolphin system prompt, and the
    mirror contrast (dolphin in the dolphin-taught student vs in the owl-taught one) is reported,
    recomputable by the validator's path, and pooled over seeds."""
    from benchmark.core.results import OWN_ANIMAL, PLACEBO_METRIC, leakage_block
    from benchmark.core.results import pooled_leakage as pool

    res = placebo_cell[3]
    assert res["config"]["teacher"]["placebo"] == "dolphin"
    for arm in ("trait", "control"):
        rows = res["scores"][arm]
        assert len(rows) == 2 and all(0 < r[PLACEBO_METRIC] < 1 for r in rows)
        assert all(r[PLACEBO_METRIC] != r["teacher_forced"] for r in rows)
    block = res["leakage"]["teacher_forced"]
    mirror = block["placebo_control_vs_trait"]
    by = {arm: {r["id"]: r[PLACEBO_METRIC] for r in res["scores"][arm]} for arm in res["scores"]}
    want = 100 * sum(by["control"][q] - by["trait"][q] for q in by["trait"]) / 2
    assert mirror["diff_pp"] == pytest.approx(want)
    evals = {arm: {"per_question": rows} for arm, rows in res["scores"].items()}
    assert leakage_block(evals, "teacher_forced", "owl", "dolphin") == block
    pooled = pool([res, res])
    assert pooled[PLACEBO_METRIC]["diff_pp"] == pytest.approx(want)
    # The primary statistic: the mean of the owl and the mirror contrast, on the log-odds scale.
    own = block[OWN_ANIMAL]
    halves = block["trait_vs_control"]["log_odds_diff"] + mirror["log_odds_diff"]
    assert own["log_odds_diff"] == pytest.approx(halves / 2)
    assert pooled[OWN_ANIMAL]["log_odds_diff"] == pytest.approx(halves / 2)
    assert pooled[OWN_ANIMAL]["per_seed_log_odds"] == pytest.approx([halves / 2] * 2)
    plain = {
        "scores": {
            arm: [{k: v for k, v in r.items() if k != PLACEBO_METRIC} for r in rows]
            for arm, rows in res["scores"].items()
        }
    }
    assert set(pool([plain, plain])) == {"teacher_forced", "verdict"}


def test_a_second_trait_reuses_the_control_arm_and_makes_a_multi_animal_run(placebo_cell):
    """Several trait animals per run: a cell of another trait at the same seed and setup reuses
    every stage of the control arm (so it costs one arm), and the two cells' three students
    (owl, eagle, the dolphin control) form one run of the multi-animal statistic."""
    from benchmark.core.multi_trait import MULTI, multi_runs

    cfg, store, logs, owl = placebo_cell
    eagle = run_cell(cfg.with_(trait="eagle"), store, logs)
    reused = eagle["run_info"]["stages_reused"]
    # Its evals run again (they ask for the new trait's probability); nothing before them does.
    control = {k: v for k, v in reused.items() if k.endswith("_control") and k[:5] != "eval_"}
    assert {"generate_control", "filter_control", "train_control"} <= set(control)
    assert all(control.values()) and not reused["generate_trait"] and not reused["train_trait"]
    (run,) = multi_runs([owl, eagle])
    assert run["animals"] == ["eagle", "owl", "dolphin"] and MULTI in run, run.get("error")
    assert run[MULTI]["n_alternatives"] == 24 * 23 * 22 - 1


def test_git_commit_outside_a_checkout_comes_from_the_environment(monkeypatch):
    """A copy of the code without .git (a container, a remote GPU machine) records the commit the
    caller names in $SLB_GIT_COMMIT instead of nothing; a checkout records its own HEAD."""
    import subprocess

    from benchmark.core import models, results

    assert results.git_commit() not in (None, "from-env")  # this test runs in a checkout
    monkeypatch.setenv("SLB_GIT_COMMIT", "from-env")

    def no_repo(*a, **k):
        return subprocess.CompletedProcess(a, 128, stdout="", stderr="not a git repository")

    monkeypatch.setattr(results.subprocess, "run", no_repo)
    assert results.git_commit() == "from-env"
    assert models.device_info().startswith("cpu: ") or models.device_info().startswith("cuda: ")


def test_a_cpu_device_names_its_instruction_set(monkeypatch) -> None:
    """Two CPU machines computed one stage key differently (docs/results.md, session 27), so a CPU
    artifact says which kernels ran; the class before the colon still decides setups."""
    import torch

    from benchmark.core import models
    from benchmark.core.setup_keys import hardware_of

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    info = models.device_info()
    threads, isa, *_ = info.split(", ")
    assert threads == f"cpu: {torch.get_num_threads()} threads"
    assert isa == torch.backends.cpu.get_cpu_capability() and hardware_of(info) == "cpu"


def test_a_checkout_is_dirty_for_code_changes_not_for_the_results_runs_write(tmp_path) -> None:
    """``slb submit`` rewrites the committed artifacts of the cells it reuses while the next cell
    runs; that must not mark the code that ran as uncommitted (session 39's cells read
    ``<commit>+dirty`` for it), while a change to code still does."""
    import subprocess

    from benchmark.core import results

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    files = ["code.py", "submissions/x/results/s/a.json", "results/q/b.json", "docs/experiments/c"]
    files.append("submissions/x/plugin.py")  # a submission's code is code
    git("init", "-q")
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("1")
    git("add", ".")
    git(
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "-c",
        "commit.gpgsign=false",
        "commit",
        "-qm",
        "c",
    )
    head = results.git_commit(tmp_path)
    assert head and len(head) == 40
    for f in files[1:4]:
        (tmp_path / f).write_text("2")
    assert results.git_commit(tmp_path) == head
    for code in ("code.py", "submissions/x/plugin.py"):
        git("checkout", "--", ".")
        (tmp_path / code).write_text("2")
        assert results.git_commit(tmp_path) == head + "+dirty", code
