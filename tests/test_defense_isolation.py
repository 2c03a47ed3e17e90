"""Untrusted defenses run in a child process: every failure mode of the issue becomes a clear
DefenseError, in every hook, and the parent survives it. Each plugin is a tiny module file."""

from __future__ import annotations

import textwrap
import time
import uuid
from pathlib import Path

import pytest

from benchmark.core.training import TrainConfig
from benchmark.core.types import TeacherSpec
from defenses import DefenseContext, load_defense
from defenses.isolation import IsolatedDefense, Limits
from defenses.runner import DefenseError, run_apply, run_teacher, run_training

ROWS = [{"id": f"r{i}", "prompt": "p", "completion": f"{i}, {i + 1}"} for i in range(4)]
FAST = Limits(time_s=20, memory_mb=2048)


def plugin(tmp_path: Path, apply_body: str, extra: str = "", limits: Limits = FAST):
    """A module-file defense whose apply() runs ``apply_body`` (``rows`` in scope)."""
    src = f"""
import math, os, time
from benchmark.core.training import TrainConfig
from defenses.base import Defense

class Plugin(Defense):
    '''A test plugin.'''
    def apply(self, rows, ctx):
{textwrap.indent(textwrap.dedent(apply_body), " " * 8)}
{textwrap.indent(textwrap.dedent(extra), " " * 4)}
"""
    path = tmp_path / "plugin.py"
    path.write_text(src)
    return load_defense(f"{path}:Plugin", limits=limits)


def ctx() -> DefenseContext:
    return DefenseContext(teacher_model="smollm2-135m")


CASES = [
    ("os._exit(3)", r"apply\(\) exited with code 3 without returning a result"),
    ("raise KeyError('boom')", r"apply\(\) raised KeyError: 'boom'"),
    ("return 'rows'", r"apply\(\) returned str, expected a list of rows"),
    ("return tuple(rows)", r"apply\(\) returned tuple, expected a list of rows"),
    ("return {r['id'] for r in rows}", r"apply\(\) returned something that is not JSON"),
    ("return rows + [dict(rows[0], id='new')]", "row 4 has id 'new', which was not in its input"),
    ("return [dict(rows[0], id='r9')]", "row 0 has id 'r9', which was not in its input"),
    ("return [rows[1], rows[0]]", r"row 1 \(id 'r0'\) is out of order or repeated"),
    ("return [rows[0], rows[0]]", r"row 1 \(id 'r0'\) is out of order or repeated"),
    ("return [dict(r, completion=5) for r in rows]", "field 'completion' is int, expected str"),
    ("return [dict(r, prompt=None) for r in rows]", "field 'prompt' is NoneType, expected str"),
    ("return [dict(r, score=math.nan) for r in rows]", r"row 'r0'\['score'\] is NaN"),
    ("return [dict(r, w=[1.0, math.inf]) for r in rows]", r"row 'r0'\['w'\]\[1\] is inf"),
    ("return [dict(r, id=1) for r in rows]", "row 0 has id 1, which was not in its input"),
    ("x = bytearray(3 << 30)\nreturn rows", r"ran out of memory \(limit 2048 MiB\)"),
    ("import sys\nsys.exit(0)", "raised SystemExit"),
]


@pytest.mark.parametrize(("body", "message"), CASES, ids=[c[0].split("\n")[0] for c in CASES])
def test_every_failure_of_apply_is_a_named_error(tmp_path, body, message) -> None:
    d = plugin(tmp_path, body)
    with pytest.raises(DefenseError, match=message) as exc:
        run_apply(d, ROWS, ctx())
    assert str(exc.value).startswith("defense 'Plugin': ")
    assert "apply() apply()" not in str(exc.value)
    assert exc.value.record() == {
        "stage": "defense",
        "hook": "apply",
        "defense": "Plugin",
        "arm": None,
    }


def test_timeout_kills_the_child_and_its_children(tmp_path) -> None:
    marker = f"slb-grandchild-{uuid.uuid4().hex}"  # found in the host's /proc by its command line
    d = plugin(
        tmp_path,
        f"""
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "{marker}"])
        time.sleep(60)
        """,
        limits=Limits(time_s=4, memory_mb=2048),
    )
    t0 = time.monotonic()
    with pytest.raises(DefenseError, match=r"apply\(\) exceeded its time limit of 4 s"):
        run_apply(d, ROWS, ctx())
    assert time.monotonic() - t0 < 15
    assert not _running(marker)  # the grandchild went with its parent


def _running(marker: str) -> list[int]:
    found = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and marker.encode() in (p / "cmdline").read_bytes():
                found.append(int(p.name))
        except OSError:
            pass
    return found


def test_good_plugin_runs_and_its_rows_come_back(tmp_path) -> None:
    d = plugin(tmp_path, "return [dict(r, completion=r['completion'][::-1]) for r in rows[1:]]")
    out = run_apply(d, ROWS, ctx())
    assert [r["completion"] for r in out] == ["2 ,1", "3 ,2", "4 ,3"]
    assert isinstance(d, IsolatedDefense) and d.describe()["source"]["kind"] == "module"


def test_failures_of_the_teacher_and_training_hooks(tmp_path) -> None:
    spec, cfg = TeacherSpec(model="smollm2-135m"), TrainConfig()
    d = plugin(
        tmp_path,
        "return rows",
        extra="""
        def teacher(self, spec):
            return "gemma3-270m"
        def training(self, cfg):
            raise RuntimeError("no config for you")
        """,
    )
    with pytest.raises(DefenseError, match=r"teacher\(\) returned str, expected a TeacherSpec"):
        run_teacher(d, spec)
    with pytest.raises(DefenseError, match=r"training\(\) raised RuntimeError: no config for you"):
        run_training(d, cfg)
    d = plugin(
        tmp_path,
        "return rows",
        extra="""
        def training(self, cfg):
            import dataclasses
            return dataclasses.replace(cfg, frozen_layers=(0, 1))
        def teacher(self, spec):
            object.__setattr__(spec.sampling, "top_p", 7.0)  # bypasses the dataclass's check
            return spec
        """,
    )
    assert run_training(d, cfg).frozen_layers == (0, 1)  # round trip rebuilds the tuple
    with pytest.raises(DefenseError, match=r"teacher\(\) returned a bad sampling.top_p: is 7.0"):
        run_teacher(d, spec)


def test_a_plugin_that_fails_to_load_is_a_named_error(tmp_path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("raise ImportError('missing dependency foo')\n")
    with pytest.raises(DefenseError, match="loading it raised ImportError: missing dependency foo"):
        load_defense(f"{bad}:X", limits=FAST)
    bad.write_text("X = 3\n")
    with pytest.raises(DefenseError, match="is 3, not a subclass of defenses.base.Defense"):
        load_defense(f"{bad}:X", limits=FAST)


def test_helper_model_cost_comes_back_from_the_child(tmp_path) -> None:
    """A plugin borrows the real embedded embedder in its child; the parent's context reports the
    calls, items, tokens and seconds, and what the plugin noted."""
    d = plugin(
        tmp_path,
        """
        v = ctx.embedder().encode([r["completion"] for r in rows])
        ctx.notes["dim"] = int(v.shape[1])
        return rows[: len(rows) // 2]
        """,
        limits=Limits(time_s=120, memory_mb=8192),
    )
    c = ctx()
    assert len(run_apply(d, ROWS, c)) == 2
    cost = c.cost
    assert cost["helper_calls"] == 1 and cost["helper_items"] == 4 and cost["helper_tokens"] > 4
    assert cost["helper_seconds"] > 0 and list(cost["helpers"]) == ["embedder:model=minilm-l6"]
    assert c.notes == {"dim": 384}
