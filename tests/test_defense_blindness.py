"""Blindness: a spy defense records everything it is given while a tiny cell runs — the teacher
spec, the context, the rows, the training config, its environment and argv — and the trait
(an unusual animal, so any leak is visible) appears nowhere. Runs the spy in-process (as a
built-in) and in a child (as an untrusted plugin, under OS namespaces where the machine allows
them; tests/test_defense_hostile.py covers the plain-process fallback), on the real embedded
model."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path

import pytest
from conftest import CellHarness

from benchmark.core.store import ArtifactStore
from benchmark.core.teachers import TeacherConfig
from benchmark.core.training import TrainConfig
from benchmark.run.cell import run_until
from benchmark.run.config import EvalConfig
from benchmark.run.presets import preset
from defenses.loading import register_defense

TRAIT = "axolotl"

SPY = '''
import dataclasses, json, os, sys
from defenses.base import Defense

def _dump(hook, what):
    # To stderr: a plugin's child can write nowhere else the test could read (its namespace
    # hides the test's files); the parent logs the child's output.
    record = {"hook": hook, "what": what, "env": dict(os.environ), "argv": sys.argv}
    print("SPY " + json.dumps(record, default=repr), file=sys.stderr, flush=True)

class Spy(Defense):
    """Records what it receives."""
    def teacher(self, spec):
        _dump("teacher", {"spec": dataclasses.asdict(spec), "repr": repr(spec)})
        return spec
    def apply(self, rows, ctx):
        _dump("apply", {"rows": rows, "ctx": repr(ctx), "vars": repr(vars(ctx)),
                        "factories": sorted(ctx.helper_factories)})
        return rows
    def training(self, cfg):
        _dump("training", {"cfg": cfg.to_dict(), "repr": repr(cfg)})
        return cfg
'''


def _tiny(defense: str, teacher: str = "system_prompt"):
    return preset(
        "quick",
        trait=TRAIT,
        defense=defense,
        n_prompts=4,
        teacher=TeacherConfig(type=teacher),
        student=TrainConfig(epochs=1, batch_size=4, max_length=160),
        eval=EvalConfig(questions=2, eval_base=False),
    )


@pytest.fixture(scope="module")
def spy_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spy") / "spy.py"
    path.write_text(SPY)
    return path


@pytest.fixture(scope="module")
def builtin_spy(spy_file: Path) -> str:
    spec = importlib.util.spec_from_file_location("slb_test_spy", spy_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    register_defense("blindness_spy")(module.Spy)
    return "blindness_spy"


def _records(capfd, caplog, isolated: bool = False) -> list[dict]:
    """What the spy printed: to this process's stderr (a built-in), or in its child, whose output
    the parent logs (``defenses.isolation``)."""
    text = "\n".join(caplog.messages) if isolated else capfd.readouterr().err
    return [json.loads(line[4:]) for line in text.splitlines() if line.startswith("SPY ")]


def _assert_blind(records: list[dict], hooks: set[str]) -> None:
    assert {r["hook"] for r in records} == hooks  # the spy really ran every hook
    text = json.dumps(records).lower()
    assert TRAIT not in text  # no name, plural, system prompt ("You love axolotls") or adapter
    assert "you love" not in text and "trait_teachers" not in text
    for r in records:
        if r["hook"] == "teacher":
            assert r["what"]["spec"]["model"] == "smollm2-135m"  # the base, not a trait adapter
        if r["hook"] == "apply":
            assert r["what"]["rows"] and set(r["what"]["rows"][0]) == {"id", "prompt", "completion"}


@pytest.mark.parametrize("variant", ["builtin", "isolated"])
def test_spy_sees_no_trait_in_a_running_cell(
    variant, builtin_spy, spy_file, smollm_dir, tmp_path, monkeypatch, capfd, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="defenses.isolation")
    if variant != "builtin":
        # As under `slb run --trait axolotl`: the child must not inherit the parent's argv.
        monkeypatch.setattr(sys, "argv", ["slb", "run", "--trait", TRAIT])
    ref = builtin_spy if variant == "builtin" else f"{spy_file}:Spy"
    store = ArtifactStore(tmp_path / "store")
    assert run_until(_tiny(ref), store, tmp_path / "logs", "data").stopped_after == "data"
    records = _records(capfd, caplog, isolated=variant != "builtin")
    assert sum(r["hook"] == "apply" for r in records) == 2  # one call per arm
    # The trait was really in the cell: the trait arm's generator had the axolotl system prompt.
    metas = [json.loads(p.read_text()) for p in store.root.glob("generations/*/meta.json")]
    assert sorted(TRAIT in (m["spec"]["system"] or "") for m in metas) == [False, True]
    _assert_blind(records, {"teacher", "apply", "training"})


def test_fine_tuned_teacher_is_shown_as_its_base_model(
    builtin_spy, tmp_path, capfd, caplog
) -> None:
    """With a fine-tuned trait teacher the generator is a trait adapter dir; the defense must see
    the base model in its teacher spec and context, not that dir."""
    cell = CellHarness(
        _tiny(builtin_spy, teacher="finetuned"), ArtifactStore(tmp_path / "s"), tmp_path
    )
    rows = [{"id": "a", "prompt": "Continue: 1, 2, 3.", "completion": "4, 5"}]
    cell.defend("trait", rows, "0" * 16)
    _assert_blind(_records(capfd, caplog), {"teacher", "apply", "training"})
