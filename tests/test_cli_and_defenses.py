"""CLI input errors, and the defense row contract."""

from __future__ import annotations

import pytest

from benchmark.run.cli import main
from defenses import get_defense, known_defenses
from defenses.base import DefenseContext
from defenses.runner import DefenseError, check_rows, run_apply

ROWS = [{"id": f"r{i}", "prompt": "p", "completion": "1, 2"} for i in range(3)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--task", "nums"], "unknown task 'nums'"),
        (["run", "--defense", "magic"], "unknown defense 'magic'"),
        (["run", "--trait", "owl!"], "invalid trait"),
        (["run", "--model", "./no/such/dir"], "unknown model './no/such/dir'"),
        (["run", "--task-params", "[1]"], "--task-params must be a JSON object"),
        (["run", "--defense-params", "{bad"], "--defense-params is not valid JSON"),
        (
            ["run", "--task", "cot", "--task-params", '{"sorce": "gsm8k"}'],
            "unknown parameter(s) sorce for task 'cot'; its parameters: ",
        ),
        (
            ["suite", "quick", "--tasks", "numbers,nums"],
            "unknown task 'nums'; did you mean numbers?",
        ),
        (
            ["run", "--set", "teacher.general_rowz=240"],
            "--set 'teacher.general_rowz=240': unknown key 'general_rowz' in TeacherConfig; known: ",
        ),
        (["run", "--set", "sampling.coupled=yes"], "expected type bool"),
        (["run", "--suite", "restricted", "--set", "seed=761"], "the cell's seed is --seed 761"),
        (["suite", "quick", "--set", "student.lora_r=0"], "--set 'student.lora_r=0': Invalid LoRA"),
    ],
)
def test_cli_input_errors_name_the_problem(argv, message, capsys, tmp_path) -> None:
    assert main([*argv, "--store", str(tmp_path / "s"), "--results", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err


def test_none_defense_passes_rows_through() -> None:
    assert "none" in known_defenses()
    out = run_apply(get_defense("none"), ROWS, DefenseContext(teacher_model="smollm2-135m"))
    assert out == ROWS


@pytest.mark.parametrize(
    ("after", "message"),
    [
        ("rows", "returned str"),
        ([*ROWS, {"id": "new", "prompt": "p", "completion": "c"}], "not in its input"),
        ([ROWS[1], ROWS[0]], "out of order"),
        ([{**ROWS[0], "completion": 5}], "expected str"),
        ([{**ROWS[0], "score": float("nan")}], "NaN"),
        ([{**ROWS[0], "id": "changed"}], "not in its input"),
    ],
)
def test_row_contract_violations(after, message) -> None:
    with pytest.raises(DefenseError, match=message):
        check_rows("bad", ROWS, after)


def test_defense_exception_becomes_named_error() -> None:
    class Boom(type(get_defense("none"))):
        name = "boom"

        def apply(self, rows, ctx):
            raise KeyError("x")

    with pytest.raises(DefenseError, match=r"defense 'boom': apply\(\) raised KeyError"):
        run_apply(Boom(), ROWS, DefenseContext(teacher_model="m"))


def test_defense_takes_no_unknown_params() -> None:
    with pytest.raises(ValueError, match="takes no parameters"):
        get_defense("none", strength=2)
