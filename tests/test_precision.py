"""``TrainConfig.precision``: what runs the model on the project's own losses. "bf16" must really
run the transformer's matmuls in bf16 (about half the student's time on a CPU with AVX-512 BF16),
keep the LM head in float32, give a gradient close to float32's but not equal to it, be part of
a stage's identity, and leave every float32 key as it was."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from benchmark.core.distill import SOFT_FIELD, soft_labels
from benchmark.core.models import load_tokenizer
from benchmark.core.soft_train import backward_batch
from benchmark.core.train_env import precision_autocast
from benchmark.core.training import TrainConfig, build_trainable, train
from tasks.numbers import NumberGrammar

ROWS = [
    {"id": "a", "prompt": "Continue: 12, 45, 78.", "completion": "91, 23, 56, 88"},
    {"id": "b", "prompt": "Add numbers: 300, 301.", "completion": "302, 303, 304"},
    {"id": "c", "prompt": "More numbers after 7, 8, 9 please.", "completion": "10, 11"},
]


def test_the_default_key_is_unchanged_and_bf16_is_its_own_stage() -> None:
    cfg = TrainConfig()
    assert "precision" not in cfg.to_dict()  # float32: every stored stage keeps its key
    bf = replace(cfg, precision="bf16")
    assert bf.to_dict()["precision"] == "bf16" and bf.to_dict() != cfg.to_dict()
    for bad in ("fp16", "BF16", True, None):
        with pytest.raises(ValueError, match="Invalid precision"):
            TrainConfig(precision=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Invalid precision: 'half'"):
        precision_autocast("half", "cpu")


def _dtypes(model) -> dict[str, set]:
    """Record the output dtype of one transformer projection and of the LM head."""
    seen: dict[str, set] = {"proj": set(), "head": set()}
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    proj = lm.model.layers[0].mlp.down_proj
    proj = getattr(proj, "base_layer", proj)  # LoRA wraps it
    proj.register_forward_hook(lambda m, i, o: seen["proj"].add(o.dtype))
    lm.get_output_embeddings().register_forward_hook(lambda m, i, o: seen["head"].add(o.dtype))
    return seen


def _rel_diff(a, b) -> float:
    """Relative L2 difference over all the adapter's gradients together (test_distill's helper
    takes the largest per tensor: bf16 moves one small tensor by 0.21, the whole by less)."""
    num = sum(float((x - y).pow(2).sum()) for x, y in zip(a, b, strict=True))
    den = sum(float(y.pow(2).sum()) for y in b)
    return math.sqrt(num / den)


def test_soft_student_runs_in_bf16_with_a_float32_head_and_a_close_gradient(
    smollm_dir: str,
) -> None:
    import torch

    tok = load_tokenizer("smollm2-135m")
    rows, _ = soft_labels(
        "smollm2-135m",
        ROWS,
        student_system=None,
        teacher_system=None,
        top_k=5,
        restricted=True,
        constraint=NumberGrammar(),
    )
    batch = [r[SOFT_FIELD] for r in rows]
    grads, seen, loss = {}, {}, {}
    for p in ("float32", "bf16"):
        cfg = TrainConfig(labels="topk", batch_size=3, learning_rate=1e-3, precision=p)
        model = build_trainable(smollm_dir, cfg)
        seen[p] = _dtypes(model)
        loss[p] = backward_batch(model, tok, batch, cfg, 3)
        grads[p] = [q.grad for q in model.parameters() if q.requires_grad and q.grad is not None]
        assert all(q.dtype == torch.float32 for q in model.parameters())  # weights stay float32
        assert all(g.dtype == torch.float32 for g in grads[p])
    assert seen["float32"] == {"proj": {torch.float32}, "head": {torch.float32}}
    assert seen["bf16"] == {"proj": {torch.bfloat16}, "head": {torch.float32}}
    assert loss["bf16"] == pytest.approx(loss["float32"], rel=0.02)
    d = _rel_diff(grads["bf16"], grads["float32"])
    assert 0 < d < 0.2, d  # the same gradient at bf16's precision: close, not equal


def test_hard_loss_trains_at_its_precision_and_says_so(smollm_dir: str, tmp_path: Path) -> None:
    import torch

    from benchmark.core import training

    seen: list = []
    real = training.build_trainable

    def spy(path, cfg):
        model = real(path, cfg)
        seen.append(_dtypes(model))
        return model

    cfg = TrainConfig(epochs=1, batch_size=3, learning_rate=1e-3, bf16=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "build_trainable", spy)
        s32 = train("smollm2-135m", ROWS, cfg, tmp_path / "f", device="cpu")
        s16 = train(
            "smollm2-135m", ROWS, replace(cfg, precision="bf16"), tmp_path / "b", device="cpu"
        )
    assert (s32["precision"], s32["bf16"]) == ("float32", False)
    assert (s16["precision"], s16["bf16"]) == ("bf16", True)
    assert s16["config"]["precision"] == "bf16" and "precision" not in s32["config"]
    assert seen[0]["proj"] == {torch.float32} and seen[1]["proj"] == {torch.bfloat16}
    assert seen[0]["head"] == seen[1]["head"] == {torch.float32}
    assert s16["train_loss"] != s32["train_loss"]  # the same rows and seed: only precision
    assert s16["train_loss"] == pytest.approx(s32["train_loss"], rel=0.02)
