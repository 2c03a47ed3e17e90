"""Blindness: a spy defense records everything it is given while a tiny cell runs — the teacher
spec, the context, the rows, the training config, its environment and argv — and the trait
(an unusual animal, so any leak is visible) appears nowhere. Runs the spy in-process (as a
built-in) and in a child process (as an untrusted plugin), on the real embedded model."""

from __future__ import annotations

import importlib.util
import json
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
    with open(os.environ["SPY_OUT"], "a") as f:
        record = {"hook": hook, "what": what, "env": dict(os.environ), "argv": sys.argv}
        f.write(json.dumps(record, default=repr) + "\\n")

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


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


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
    variant, builtin_spy, spy_file, smollm_dir, tmp_path, monkeypatch
) -> None:
    out = tmp_path / "spy.jsonl"
    monkeypatch.setenv("SPY_OUT", str(out))
    if variant == "isolated":
        # As under `slb run --trait axolotl`: the child must not inherit the parent's argv.
        monkeypatch.setattr(sys, "argv", ["slb", "run", "--trait", TRAIT])
    ref = builtin_spy if variant == "builtin" else f"{spy_file}:Spy"
    store = ArtifactStore(tmp_path / "store")
    assert run_until(_tiny(ref), store, tmp_path / "logs", "data").stopped_after == "data"
    records = _records(out)
    assert sum(r["hook"] == "apply" for r in records) == 2  # one call per arm
    # The trait was really in the cell: the trait arm's generator had the axolotl system prompt.
    metas = [json.loads(p.read_text()) for p in store.root.glob("generations/*/meta.json")]
    assert sorted(TRAIT in (m["spec"]["system"] or "") for m in metas) == [False, True]
    _assert_blind(records, {"teacher", "apply", "training"})


def test_fine_tuned_teacher_is_shown_as_its_base_model(builtin_spy, tmp_path, monkeypatch) -> None:
    """With a fine-tuned trait teacher the generator is a trait adapter dir; the defense must see
    the base model in its teacher spec and context, not that dir."""
    out = tmp_path / "spy.jsonl"
    monkeypatch.setenv("SPY_OUT", str(out))
    cell = CellHarness(
        _tiny(builtin_spy, teacher="finetuned"), ArtifactStore(tmp_path / "s"), tmp_path
    )
    rows = [{"id": "a", "prompt": "Continue: 1, 2, 3.", "completion": "4, 5"}]
    cell.defend("trait", rows, "0" * 16)
    _assert_blind(_records(out), {"teacher", "apply", "training"})
