"""Every unknown name is refused before any work starts, with close matches; the lists exist."""

from __future__ import annotations

import pytest

from benchmark.core.lexicon import ANIMALS
from benchmark.core.setup_keys import PRIMARY_SUITE
from benchmark.core.teachers import TeacherConfig
from benchmark.run.cli import main
from benchmark.run.config import CellConfig
from benchmark.run.names import check, suggest
from benchmark.run.presets import SUITES
from tasks.base import known_tasks


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["run", "--trait", "owel"], "unknown trait 'owel'; did you mean owl"),
        (["run", "--task", "numbrs"], "unknown task 'numbrs'; did you mean numbers?"),
        (["run", "--defense", "canonicalise"], "did you mean canonicalize?"),
        (["run", "--suite", "quik"], "unknown suite 'quik'; did you mean quick?"),
        (
            ["run", "--model", "smollm2-135"],
            "unknown model 'smollm2-135'; did you mean smollm2-135m",
        ),
        (["run", "--n-prompts", "0"], "expected a whole number >= 1"),
        (["run", "--seed", "-1"], "expected a whole number >= 0"),
        (["suite", "frist"], "did you mean first?"),
        (["submit", "x", "--suite", "papr"], "did you mean paper?"),
    ],
)
def test_a_typo_is_refused_with_a_suggestion(argv: list[str], expect: str, capsys) -> None:
    assert main(argv) == 2
    assert expect in capsys.readouterr().err


def test_a_typo_in_a_set_key_or_a_suite_trait_list_is_refused(capsys, tmp_path) -> None:
    argv = ["run", "--set", "teacher.plaebo=cat", "--store", str(tmp_path / "s")]
    assert main(argv) == 2
    assert "did you mean placebo?" in capsys.readouterr().err
    argv = ["suite", "first", "--traits", "owl,owel", "--store", str(tmp_path / "s")]
    assert main([*argv, "--results", str(tmp_path / "r")]) == 2
    assert "unknown trait 'owel'; did you mean owl" in capsys.readouterr().err
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()  # no work started


def test_the_config_refuses_an_animal_the_lexicon_does_not_know() -> None:
    with pytest.raises(ValueError, match="unknown trait 'unicorn'"):
        CellConfig(trait="unicorn")
    with pytest.raises(ValueError, match="unknown teacher placebo 'dolphn'; did you mean dolphin"):
        CellConfig(teacher=TeacherConfig(placebo="dolphn"))
    assert CellConfig(trait="Owls").trait == "owl"


@pytest.mark.parametrize("cmd", ["tasks", "defenses", "traits", "suites"])
def test_the_lists_name_what_exists(cmd: str, capsys) -> None:
    assert main([cmd]) == 0
    out = capsys.readouterr().out
    expected = {
        "tasks": known_tasks(),
        "defenses": ["none", "canonicalize", "cross_base_teacher"],
        "traits": ["owl", "dolphin", "zebra"],
        "suites": list(SUITES),
    }[cmd]
    for name in expected:
        assert name in out, (cmd, name)
    if cmd == "traits":
        assert f"{len(ANIMALS)} animals" in out
    if cmd == "suites":  # one line each, the default marked on its own line only
        marked = [line.split()[0] for line in out.splitlines() if "(the default" in line]
        assert marked == [PRIMARY_SUITE]


def test_help_shows_choices_and_defaults(capsys) -> None:
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "one of: " + ", ".join(known_tasks()) in " ".join(out.split())
    assert "(default: owl)" in out and "(default: numbers)" in out


def test_check_and_suggest() -> None:
    assert check("task", "numbers", ["numbers"]) == "numbers"
    assert suggest("dolpin", ["dolphin", "dog"]) == ["dolphin"]
    with pytest.raises(ValueError, match="unknown task 'zzz' \\(slb tasks lists them\\)"):
        check("task", "zzz", ["numbers"])


def test_an_unwritable_results_folder_is_refused_before_any_work(tmp_path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    argv = ["run", "--results", str(blocker / "r"), "--store", str(tmp_path / "s")]
    assert main(argv) == 2
    assert "--results" in capsys.readouterr().err and not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "setting,expect",
    [
        ("suite=../escaped", "Invalid suite: '../escaped'"),
        ("suite=/abs", "Invalid suite: '/abs'"),
        ("task_params=abc", "Invalid task_params: 'abc'"),
    ],
)
def test_config_fields_that_name_paths_or_objects_are_checked(setting, expect, capsys, tmp_path):
    argv = ["run", "--set", setting, "--store", str(tmp_path / "s")]
    assert main([*argv, "--results", str(tmp_path / "r")]) == 2
    assert expect in capsys.readouterr().err


@pytest.mark.parametrize("value", ["nan", "inf", "abc", "-1"])
def test_a_bad_defense_limit_in_the_environment_names_the_variable(monkeypatch, value) -> None:
    from defenses.isolation import Limits

    monkeypatch.setenv("SLB_DEFENSE_TIMEOUT_S", value)
    with pytest.raises(ValueError, match=r"\$SLB_DEFENSE_TIMEOUT_S"):
        Limits()
