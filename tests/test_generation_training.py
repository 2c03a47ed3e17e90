"""The transformers backend and the trainer on the real embedded model (small and fast)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark.generation import GenerationRequest, SamplingParams, TransformersBackend, get_backend
from benchmark.models import resolve
from benchmark.training import TrainConfig, train
from tasks.numbers import NumbersTask, parse_numbers


def _requests(n: int) -> list[GenerationRequest]:
    return [
        GenerationRequest(r["id"], (("user", r["prompt"]),)) for r in NumbersTask().prompts(n, 0)
    ]


def test_constrained_generation_is_valid_and_seeded(smollm_dir: str) -> None:
    be = TransformersBackend(batch_size=4)
    task = NumbersTask()
    sp = SamplingParams(max_new_tokens=task.max_new_tokens, seed=1)
    out = be.generate("smollm2-135m", _requests(4), sp, task.constraint(True))
    assert len(out) == 4 and all(parse_numbers(o) is not None for o in out), out
    again = be.generate("smollm2-135m", _requests(4), sp, task.constraint(True))
    assert again == out
    other = be.generate(
        "smollm2-135m",
        _requests(4),
        SamplingParams(max_new_tokens=50, seed=2),
        task.constraint(True),
    )
    assert other != out


def test_unknown_backend_and_bad_sampling() -> None:
    with pytest.raises(ValueError, match="unknown generation backend 'tgi'"):
        get_backend("tgi")
    with pytest.raises(ValueError, match="Invalid top_p"):
        SamplingParams(top_p=0)


def test_one_training_step_moves_adapter_not_base(smollm_dir: str, tmp_path: Path) -> None:
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    rows = [dict(r, completion="101, 202, 303") for r in NumbersTask().prompts(2, 0)]
    base_before = load_file(str(Path(smollm_dir) / "model.safetensors"))
    stats = train(
        "smollm2-135m",
        rows,
        TrainConfig(epochs=1, batch_size=2, learning_rate=1e-2, max_length=128),
        tmp_path / "a",
    )
    assert stats["steps"] == 1
    adapter = load_file(str(tmp_path / "a" / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: it moved
    base_after = load_file(str(Path(smollm_dir) / "model.safetensors"))
    assert all(torch.equal(base_before[k], base_after[k]) for k in base_before)
    rm = resolve(str(tmp_path / "a"))
    assert rm.kind == "adapter" and rm.base_path == smollm_dir
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(smollm_dir), str(tmp_path / "a")
    )
    assert model is not None


def test_train_config_validation() -> None:
    with pytest.raises(ValueError, match="Invalid method"):
        TrainConfig(method="qlora")
    with pytest.raises(ValueError, match="Invalid learning_rate"):
        TrainConfig(learning_rate=5)


def test_full_fine_tune_writes_a_plain_model_dir(smollm_dir: str, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    rows = [dict(r, completion="7, 8, 9") for r in NumbersTask().prompts(2, 1)]
    cfg = TrainConfig(method="full", epochs=1, batch_size=2, learning_rate=1e-3, max_length=128)
    train("smollm2-135m", rows, cfg, tmp_path / "full")
    rm = resolve(str(tmp_path / "full"))
    assert rm.kind == "local"
    before = load_file(str(Path(smollm_dir) / "model.safetensors"))
    after = load_file(str(tmp_path / "full" / "model.safetensors"))
    key = "model.layers.0.mlp.down_proj.weight"
    assert not torch.equal(before[key], after[key])
