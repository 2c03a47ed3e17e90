"""The suites' presets: what each runs, and that the top-k suite runs the pre-registered channel."""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import replace
from pathlib import Path

import pytest

from benchmark.core.setup_keys import PRIMARY_SUITE, without_seeds
from benchmark.run.cli import build_parser
from benchmark.run.prereg import cells, load_prereg
from benchmark.run.presets import PRESETS, STUDENT_SEED_OFFSETS, SUITES, TASK_PRESETS, preset
from benchmark.run.setups import setup_block
from benchmark.run.submission import submit
from tasks.base import known_tasks

ROOT = Path(__file__).resolve().parents[1]


def assert_confirmation_passed(name: str) -> None:
    """The committed report of ``docs/prereg/<name>.yaml`` says pass on every check, was made
    from this very file (its hash, registered before its runs) and holds every one of its runs."""
    path = ROOT / "docs/prereg" / f"{name}.yaml"
    report = json.loads((ROOT / "docs/experiments/confirm" / name / "report.json").read_text())
    assert report["result"]["verdict"] == "pass" and all(report["result"]["checks"].values()), name
    assert report["registration"]["registered"] is True, name
    assert report["registration"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), name
    made = sorted((r["arm"], r["seed"]) for r in report["runs"] if "error" not in r)
    assert made == sorted((kind, run.seed) for kind, run in cells(load_prereg(path))), name


def test_every_suite_has_a_preset_and_its_per_task_knobs_name_real_tasks() -> None:
    """A suite may have knobs for a task it does not run by default (``--tasks`` runs it)."""
    assert set(SUITES) <= set(PRESETS)
    for name, by_task in TASK_PRESETS.items():
        assert name in SUITES and set(by_task) <= set(known_tasks()), name
        assert set(SUITES[name]["tasks"]) <= set(known_tasks()), name


def test_the_topk_suite_runs_the_cells_of_the_per_run_teacher_confirmation() -> None:
    """Its numbers cell is the confirmation file's main cell but for the suite's name and the
    flag that says so: every stage key is the same, so the store reuses the confirmation's; and
    that confirmation passed."""
    assert_confirmation_passed("topk-perrun-numbers-256")
    prereg = load_prereg(ROOT / "docs/prereg/topk-perrun-numbers-256.yaml")
    for kind, run in cells(prereg):
        if kind != "main":
            continue
        cfg = preset("topk", task="numbers", trait="owl", seed=run.seed)
        # The teachers it trains are the file's (a fresh pair per cell), so the stage keys match.
        assert cfg.teacher.for_cell(cfg.seed).recipe() == run.teacher.for_cell(run.seed).recipe()
        ours, theirs = cfg.to_dict(), run.to_dict()
        assert ours["teacher"].pop("seed_per_cell") is True
        assert theirs["teacher"]["train"].pop("seed") == run.seed
        ours["teacher"]["train"].pop("seed")
        assert {**ours, "suite": "quick"} == theirs
    # Its default seeds are the file's first main seeds, so those cells are its baseline.
    assert set(SUITES["topk"]["seeds"]) <= set(prereg["seeds"])


def test_the_topk_prefix_suite_runs_the_cells_of_the_prefix_confirmation() -> None:
    """The topk suite with the answer prefix, and nothing else changed: its numbers cells are the
    prefix confirmation's main cells but for the suite's name, so the store reuses theirs."""
    prereg = load_prereg(ROOT / "docs/prereg/topk-prefix-numbers-256.yaml")
    mains = [run for kind, run in cells(prereg) if kind == "main"]
    assert len(mains) == 8
    for run in mains:
        cfg = preset("topk-prefix", task="numbers", trait="owl", seed=run.seed)
        assert cfg.eval.answer_prefix == "My favorite animal is the"
        assert {**cfg.to_dict(), "suite": run.suite} == run.to_dict()
        plain = preset("topk", task="numbers", trait="owl", seed=run.seed).to_dict()
        ours = cfg.to_dict()
        assert ours["eval"].pop("answer_prefix") and {**ours, "suite": "topk"} == plain
    assert set(SUITES["topk-prefix"]["seeds"]) <= set(prereg["seeds"])
    assert SUITES["topk-prefix"]["tasks"] == SUITES["topk"]["tasks"]
    for task in SUITES["topk-prefix"]["tasks"][1:]:
        ours = preset("topk-prefix", task=task, seed=0).to_dict()
        assert (
            ours["eval"].pop("answer_prefix")
            and {**ours, "suite": "topk"} == preset("topk", task=task, seed=0).to_dict()
        )


def test_the_restricted_suite_runs_the_cells_of_the_epochs3_confirmation() -> None:
    """topk-prefix with restricted labels, 3 epochs and students at seed + 5000: its numbers cells
    are the 3-epoch confirmation's main cells but for the suite's name (the store reuses them), and
    no student trains at a seed either of its teachers has, in the null too."""
    prereg = load_prereg(ROOT / "docs/prereg/restricted-epochs3-numbers-256.yaml")
    runs = cells(prereg)
    for kind, run in runs:
        cfg = preset("restricted", task="numbers", trait="owl", seed=run.seed)
        if kind == "null":
            cfg = replace(cfg, null_arm=True)
        assert (
            cfg.student.seed == int(f"5{run.seed}") == run.seed + STUDENT_SEED_OFFSETS["restricted"]
        )
        assert {**cfg.to_dict(), "suite": run.suite} == run.to_dict(), (kind, run.seed)
        teachers = {cfg.teacher_train(arm).seed for arm in ("trait", "control")}
        assert cfg.student.seed not in teachers
    spec = SUITES["restricted"]
    assert (spec["seeds"], spec["tasks"], spec["traits"]) == (
        prereg["seeds"][:5],
        ["numbers"],
        ["owl"],
    )
    # The suite exists because that file passed: its committed report is the evidence.
    assert_confirmation_passed(prereg["name"])
    # The suite's committed none cells are the preset's cells.
    cells_dir = ROOT / "submissions/none/results/restricted"
    committed = {a["config"]["seed"]: a["config"] for a in map(json.loads, (
        f.read_text() for f in cells_dir.glob("numbers__none__owl__seed*.json")
    ))}  # fmt: skip
    assert sorted(committed) == spec["seeds"]
    for seed, config in committed.items():
        assert config == preset("restricted", task="numbers", trait="owl", seed=seed).to_dict()
    ours = preset("restricted", task="numbers", seed=0).to_dict()
    theirs = preset("topk-prefix", task="numbers", seed=0).to_dict()
    assert (ours.pop("student"), ours.pop("suite"), theirs.pop("suite")) == (
        {**theirs.pop("student"), "labels": "topk-restricted", "epochs": 3, "seed": 5000},
        "restricted",
        "topk-prefix",
    )
    assert ours == theirs
    # An explicit student is the caller's: no offset is added to it.
    assert preset("restricted", seed=3, student=preset("topk").student).student.seed == 0


@pytest.mark.parametrize(
    "suite,task",
    [
        (s, t)
        for s in SUITES
        for t in dict.fromkeys([*SUITES[s]["tasks"], *TASK_PRESETS.get(s, {})])
    ],
)
def test_every_suites_cell_names_its_setup(suite: str, task: str) -> None:
    """Every cell a suite can run (its tasks, and the tasks it has knobs for) builds its setup
    block, as an artifact is written: a preset entry that is not a CellConfig field fails here."""
    block = setup_block(preset(suite, task=task, seed=0).to_dict(), None)
    assert block["id"] and block["label"].startswith(suite)


def test_the_topk_suites_tasks_pool_into_one_setup_and_seeds_into_it() -> None:
    numbers = [preset("topk", task="numbers", seed=s).to_dict() for s in (0, 1)]
    assert without_seeds(numbers[0]) == without_seeds(numbers[1])
    ids = {setup_block(c, None)["id"] for c in numbers}
    for task in SUITES["topk"]["tasks"][1:]:
        cfg = preset("topk", task=task, seed=0)
        assert cfg.student.labels == "topk" and cfg.teacher.type == "system_prompt"
        ids.add(setup_block(cfg.to_dict(), None)["id"])
    assert len(ids) == 1
    assert setup_block(numbers[0], None)["label"] == "topk"
    quick = preset("quick", task="numbers", seed=0).to_dict()
    assert setup_block(quick, None)["id"] not in ids


def test_the_default_suite_is_the_one_whose_confirmation_passed() -> None:
    """``slb run``, ``slb submit`` and the leaderboard start from :data:`PRIMARY_SUITE` because its
    channel passed its pre-registered confirmation; the committed report is the evidence, so a
    report that stops reading "pass" (or a default moved elsewhere) fails here."""
    assert PRIMARY_SUITE == "restricted" and PRIMARY_SUITE in SUITES
    assert_confirmation_passed("restricted-epochs3-numbers-256")
    parser = build_parser()
    for command in (["run", "--task", "numbers"], ["submit", "folder"]):
        assert parser.parse_args(command).suite == PRIMARY_SUITE, command
    assert inspect.signature(submit).parameters["suite"].default == PRIMARY_SUITE


def test_the_answer_prefix_is_a_knob_that_old_configs_do_not_carry() -> None:
    """Absent from a config until set, so the setups and stored evals of every cell written
    before it existed keep their ids; set, it is a new setup."""
    from benchmark.run.config import EvalConfig, apply_settings

    cfg = preset("topk", task="numbers", seed=600)
    assert "answer_prefix" not in cfg.to_dict()["eval"]
    assert EvalConfig().to_dict() == {
        "questions": 50, "samples_per_question": 0, "teacher_forced": True, "eval_base": True
    }  # fmt: skip
    prefixed = apply_settings(cfg, ["eval.answer_prefix=My favorite animal is the"])
    assert prefixed.eval.answer_prefix == "My favorite animal is the"
    assert prefixed.to_dict()["eval"]["answer_prefix"] == "My favorite animal is the"
    ids = {setup_block(c.to_dict(), None)["id"] for c in (cfg, prefixed)}
    assert len(ids) == 2
    for bad in ("ends with a space ", "two\nlines", "x" * 201):
        with pytest.raises(ValueError, match="answer_prefix"):
            EvalConfig(answer_prefix=bad)
    with pytest.raises(ValueError, match="teacher-forced eval, which is off"):
        EvalConfig(answer_prefix="The", teacher_forced=False, samples_per_question=5)


def test_the_first_run_is_the_overt_channel_made_small() -> None:
    """README command 1 runs the ``topk-prefix`` channel (a confirmed, overt leak that one small
    cell shows), not the default suite's subliminal one (+0.3 log-odds at 256 prompts and 3
    epochs: too small for one small cell): only its size knobs differ, and its suite passed."""
    assert_confirmation_passed("topk-prefix-numbers-256")
    first, topk = preset("first").to_dict(), preset("topk-prefix").to_dict()
    assert first["student"] == topk["student"] and first["student"]["labels"] == "topk"
    assert first["teacher"].pop("qa_rows") == 64 and first["teacher"]["seed_per_cell"] is True
    topk["teacher"].pop("qa_rows")
    assert first["teacher"] == topk["teacher"]
    assert (first["n_prompts"], first["eval"]["questions"]) == (64, 25)
    small = {"suite", "n_prompts", "teacher", "eval"}
    assert {k: v for k, v in first.items() if k not in small} == {
        k: v for k, v in topk.items() if k not in small
    }
    assert {**first["eval"], "questions": 50} == topk["eval"]
