"""What a hostile defense hands back is checked in the parent: ``teacher()`` and ``training()``
results against allowed fields, types and bounds (``defenses.hook_checks``), helper costs and
``ctx.notes``, and where its code comes from. Each refusal is one line naming the defense, the hook
and the field."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from benchmark.core.generation import SamplingParams
from benchmark.core.training import TrainConfig
from benchmark.core.types import TeacherSpec
from defenses import DefenseContext, load_defense
from defenses.base import Defense
from defenses.hook_checks import SAMPLING, TRAINING, HookValueError, check_teacher, check_training
from defenses.isolation import Limits
from defenses.loading import DefenseRegistryError, resolve, source_info
from defenses.runner import DefenseError, run_apply, run_teacher, run_training

SPEC, CFG = TeacherSpec(model="smollm2-135m"), TrainConfig()
FAST = Limits(time_s=30, memory_mb=2048)
ROWS = [{"id": "a", "prompt": "p", "completion": "1, 2"}]

PLUGIN = '''
import dataclasses
from dataclasses import dataclass
from defenses.base import Defense

class Bad(Defense):
    """Returns what it is told to."""
    @dataclass(frozen=True)
    class Params:
        teacher: dict = dataclasses.field(default_factory=dict)
        training: dict = dataclasses.field(default_factory=dict)
    def teacher(self, spec):
        return dataclasses.replace(spec, **self.params.teacher)
    def training(self, cfg):
        return dataclasses.replace(cfg, **self.params.training)
    def apply(self, rows, ctx):
        if "note" in self.params.teacher:
            ctx.notes["x"] = float(self.params.teacher["note"])
        if "cost" in self.params.teacher:
            n = float(self.params.teacher["cost"])  # forged: what the parent receives
            ctx._carried["judge:model=x"] = {"calls": n, "items": 0, "tokens": 0, "seconds": 0}
        return rows
'''


@pytest.fixture
def bad(tmp_path: Path):
    (tmp_path / "bad.py").write_text(PLUGIN)

    def make(**params):
        return load_defense(f"{tmp_path / 'bad.py'}:Bad", params, limits=FAST)

    return make


def test_the_three_values_of_the_issue_are_refused_naming_defense_hook_and_field(bad) -> None:
    with pytest.raises(DefenseError, match=r"^defense 'Bad': training\(\) returned a bad epochs: "):
        run_training(bad(training={"epochs": 1e9}), CFG)
    d = bad(teacher={"model": "/etc/passwd"})
    with pytest.raises(DefenseError, match=r"^defense 'Bad': teacher\(\) returned a bad model: "):
        run_teacher(d, SPEC)
    d = bad(teacher={"backend": "nonsense"})
    with pytest.raises(DefenseError, match=r"teacher\(\) returned a bad backend: is 'nonsense'"):
        run_teacher(d, SPEC)


def test_allowed_changes_pass(bad) -> None:
    d = bad(teacher={"model": "gemma3-270m"}, training={"epochs": 2.0, "lora_r": 16})
    assert run_teacher(d, SPEC).model == "gemma3-270m"
    assert (run_training(d, CFG).epochs, run_training(d, CFG).lora_r) == (2.0, 16)


@pytest.mark.parametrize(
    "model",
    ["/etc/passwd", "../../etc", "org/../x", "~/models/x", "a/b/c", "", "org/na me", "/tmp"],
)
def test_models_that_are_not_allowed(model) -> None:
    with pytest.raises(HookValueError, match="^model "):
        check_teacher({"model": model}, SPEC)


@pytest.mark.parametrize("model", ["smollm2-135m", "gemma3-270m", "Qwen/Qwen2.5-7B-Instruct"])
def test_models_that_are_allowed(model) -> None:
    check_teacher({"model": model}, SPEC)


def test_a_declared_local_path_and_the_given_model_are_allowed(tmp_path) -> None:
    check_teacher({"model": str(tmp_path)}, SPEC, local_paths=[tmp_path])
    check_teacher({"model": "/data/base"}, TeacherSpec(model="/data/base"))  # unchanged
    with pytest.raises(HookValueError, match="^model "):
        check_teacher({"model": str(tmp_path)}, SPEC)


BAD_TRAINING = [
    ("epochs", 1e9),
    ("epochs", 0),
    ("epochs", math.nan),
    ("epochs", "3"),
    ("learning_rate", 5.0),
    ("batch_size", 10**7),
    ("batch_size", 2.5),
    ("lora_r", True),
    ("max_length", 4),
    ("lr_scheduler", "os.system"),
    ("method", "qlora"),
    ("target_modules", ["q_proj; rm -rf /"]),
    ("target_modules", []),
    ("frozen_layers", [-1]),
    ("seed", -1),
    ("init_seed", 2**40),
    ("bf16", "yes"),
    ("precision", "fp16"),
    ("precision", True),
    ("extra", {"x": "y" * 20000}),
    ("extra", {"x": math.inf}),
    ("callbacks", ["evil"]),
    ("label_temperature", 0),
    ("label_temperature", 11.0),
    ("label_temperature", math.nan),
]


@pytest.mark.parametrize(
    ("field", "value"), BAD_TRAINING, ids=[f"{f}={v!r:.20}" for f, v in BAD_TRAINING]
)
def test_training_values_out_of_bounds(field, value) -> None:
    with pytest.raises(HookValueError, match=f"^{field} ") as exc:
        check_training({**CFG.to_dict(), field: value})
    assert exc.value.field == field and "\n" not in str(exc.value)


BAD_SAMPLING = [
    ("temperature", -1),
    ("temperature", 1e6),
    ("top_p", 0),
    ("min_p", 1),
    ("max_new_tokens", 10**9),
    ("seed", 2**64),
    ("stop", ["x" * 100]),
    ("stop", "\n"),
    ("coupled", 1),
]


@pytest.mark.parametrize(
    ("field", "value"), BAD_SAMPLING, ids=[f"{f}={v!r:.20}" for f, v in BAD_SAMPLING]
)
def test_sampling_values_out_of_bounds(field, value) -> None:
    sampling = {**dataclasses.asdict(SamplingParams()), field: value}
    with pytest.raises(HookValueError, match=f"^sampling.{field} "):
        check_teacher({"model": "smollm2-135m", "sampling": sampling}, SPEC)


def test_the_defaults_pass_and_every_field_has_a_bound() -> None:
    check_training(CFG.to_dict())
    for p in ("float32", "bf16"):  # both precisions pass (the default omits it from to_dict)
        check_training({**CFG.to_dict(), "precision": p})
    check_teacher(dataclasses.asdict(SPEC), SPEC)
    assert set(TRAINING) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(SAMPLING) == {f.name for f in dataclasses.fields(SamplingParams)}


@pytest.mark.parametrize("note", ["nan", "inf"])
def test_a_non_finite_note_fails_naming_the_defense(bad, note) -> None:
    with pytest.raises(DefenseError, match=r"^defense 'Bad': apply\(\) left a bad note: ctx.notes"):
        run_apply(bad(teacher={"note": note}), ROWS, DefenseContext(teacher_model="smollm2-135m"))


@pytest.mark.parametrize("cost", ["-5", "inf", "nan"])
def test_a_bad_helper_cost_is_refused_naming_the_defense(bad, cost) -> None:
    ctx = DefenseContext(teacher_model="smollm2-135m")
    with pytest.raises(
        DefenseError, match=r"^defense 'Bad': apply\(\) reported an invalid helper cost: "
    ):
        run_apply(bad(teacher={"cost": cost}), ROWS, ctx)
    assert ctx.cost["helper_calls"] == 0  # nothing of it was counted


def test_a_built_in_leaving_a_nan_note_is_named() -> None:
    class Noter(Defense):
        """Notes NaN."""

        def apply(self, rows, ctx):
            ctx.notes["threshold"] = math.nan
            return list(rows)

    with pytest.raises(DefenseError, match=r"^defense 'Noter': apply\(\) left a bad note: "):
        run_apply(Noter(), ROWS, DefenseContext(teacher_model="smollm2-135m"))


def test_built_ins_get_a_code_hash_and_a_file_is_not_a_built_in(tmp_path) -> None:
    info = source_info(resolve("none"))
    assert info["kind"] == "builtin" and len(info["sha256"]) == 64
    assert info["path"] == "defenses/none.py"
    (tmp_path / "x.py").write_text("")
    with pytest.raises(DefenseRegistryError, match="is a module file, not a built-in"):
        resolve(f"{tmp_path / 'x.py'}:P", expect="builtin")
    with pytest.raises(DefenseRegistryError, match="is a module file, not an entry point"):
        resolve(f"{tmp_path / 'x.py'}:P", expect="entry_point")
    assert resolve("none", expect="builtin").kind == "builtin"


def test_the_code_hash_is_the_parents_not_the_childs(tmp_path) -> None:
    """A plugin cannot claim another file's hash: the parent hashes the file it names."""
    (tmp_path / "liar.py").write_text(
        "from defenses.base import Defense\nclass L(Defense):\n    '''Lies.'''\n"
        "    def describe(self):\n"
        "        return {**super().describe(), 'source': {'sha256': '0' * 64}}\n"
    )
    d = load_defense(f"{tmp_path / 'liar.py'}:L", limits=FAST)
    assert d.identity()["sha256"] == source_info(resolve(f"{tmp_path / 'liar.py'}:L"))["sha256"]
    assert d.identity()["sha256"] != "0" * 64
