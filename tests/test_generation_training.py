"""The transformers backend and the trainer on the real embedded model (small and fast)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmark.core.backends import get_backend
from benchmark.core.generation import (
    GenerationRequest,
    SamplingParams,
    TransformersBackend,
    cut_at_stop,
)
from benchmark.core.loss_mask import masked_records
from benchmark.core.models import load_tokenizer, resolve
from benchmark.core.training import TrainConfig, bounded_pass_rows, pass_rows, train
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


def test_bf16_weights_give_the_same_generations(smollm_dir: str) -> None:
    """Storing the linear weights in bf16 (the speed path under CPU bf16 autocast) changes no
    output: autocast casts them to bf16 at every step anyway. The tied LM head gets its own copy;
    the embedding stays float32."""
    from benchmark.core.generation import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("no native bf16 on this CPU: autocast (and this path) is off")
    task = NumbersTask()
    sp = SamplingParams(max_new_tokens=20, seed=3, coupled=True)
    outs = {}
    for bf16 in (False, True):
        be = TransformersBackend(batch_size=4, bf16_weights=bf16)
        outs[bf16] = be.generate("smollm2-135m", _requests(4), sp, task.constraint(True))
        model, _ = be._load("smollm2-135m")
        emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
        assert emb.dtype == torch.float32
        assert head.dtype == (torch.bfloat16 if bf16 else torch.float32)
        q = model.model.layers[0].self_attn.q_proj.weight
        assert q.dtype == (torch.bfloat16 if bf16 else torch.float32)
    assert outs[True] == outs[False]


def test_unknown_backend_and_bad_sampling() -> None:
    with pytest.raises(ValueError, match="unknown generation backend 'tgi'"):
        get_backend("tgi")
    with pytest.raises(ValueError, match="Invalid top_p"):
        SamplingParams(top_p=0)
    with pytest.raises(ValueError, match="Invalid stop"):
        SamplingParams(stop="\n")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Invalid stop"):
        SamplingParams(stop=("",))
    # Off by default and then absent from the dict, so generation keys made before it still match.
    assert "stop" not in SamplingParams().to_dict()
    assert SamplingParams(stop=(",",)).to_dict()["stop"] == [","]


def test_stop_strings_cut_rows_and_change_nothing_before_them(smollm_dir: str) -> None:
    """A stop string ends each row where it first appears (left out of the text, as in vLLM); the
    text before it is what the same seeded sampling writes without the stop."""
    be = TransformersBackend(batch_size=4)
    reqs = _requests(4)
    sp = SamplingParams(max_new_tokens=30, seed=5)
    free = be.generate("smollm2-135m", reqs, sp)
    stopped = be.generate("smollm2-135m", reqs, replace(sp, stop=(",", "\n")))
    assert stopped == [cut_at_stop(t, (",", "\n")) for t in free]
    assert any(s != t for s, t in zip(stopped, free, strict=True)), "no row wrote a stop string"


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
    assert stats["bf16"] is False  # the completion-only loss runs outside Trainer's autocast
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


def test_checkpointing_changes_no_weight_of_a_hard_label_student(
    smollm_dir: str, tmp_path: Path
) -> None:
    """TRL's trainer recomputes activations or keeps them (SLB_GRADIENT_CHECKPOINTING, off unless
    set); the adapters must be the same either way, since it is not part of a stage's key."""
    from safetensors.torch import load_file

    rows = [dict(r, completion="101, 202, 303") for r in NumbersTask().prompts(4, 0)]
    cfg = TrainConfig(epochs=1, batch_size=2, learning_rate=1e-2, max_length=128)
    on = train("smollm2-135m", rows, cfg, tmp_path / "on", checkpointing=True)
    off = train("smollm2-135m", rows, cfg, tmp_path / "off", checkpointing=False)
    assert on["gradient_checkpointing"] is True and off["gradient_checkpointing"] is False
    a = load_file(str(tmp_path / "on" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "off" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(v.abs().sum() > 0 for k, v in a.items() if "lora_B" in k)  # it trained


def test_hard_label_passes_give_the_batchs_step(
    smollm_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Students of TRL's path in passes (gradient accumulation, SLB_MICRO_BATCH) take the step the
    whole batch takes: each pass's summed loss over the cycle's count of completion tokens. The
    rows' completions differ in length, so dividing each pass by its own count would not. Adam's
    first step is about the sign of each gradient element, so float noise in the sums flips a
    few near-zero elements (22 of 2.4 M here, measured); a wrong weighting flips ~6 %."""
    from safetensors.torch import load_file

    import benchmark.core.training as training_mod

    comps = ["101", "101, 202, 303, 404, 505, 606, 707", "7", "303, 404"]
    rows = [dict(r, completion=comps[i]) for i, r in enumerate(NumbersTask().prompts(4, 0))]
    cfg = TrainConfig(epochs=1, batch_size=4, learning_rate=1e-2, max_length=128)

    def moved(name: str, **kw: Any) -> tuple[dict[str, Any], float]:
        """The run's stats and the share of adapter elements > 1e-4 away from one pass's."""
        stats = train("smollm2-135m", rows, cfg, tmp_path / name, **kw)
        w = load_file(str(tmp_path / name / "adapter_model.safetensors"))
        n = sum(int(((w[k] - one[k]).abs() > 1e-4).sum()) for k in one)
        return stats, n / sum(v.numel() for v in one.values())

    whole = train("smollm2-135m", rows, cfg, tmp_path / "one")
    one = load_file(str(tmp_path / "one" / "adapter_model.safetensors"))
    assert any(v.abs().sum() > 0 for k, v in one.items() if "lora_B" in k)  # it trained
    stats, share = moved("two", micro_batch=2)
    assert (whole["micro_batch"], stats["micro_batch"]) == (4, 2)
    assert whole["steps"] == stats["steps"] == 1
    assert share < 1e-4
    # A token bound (SLB_PASS_TOKENS) cuts the passes to the rows that fit at the longest row's
    # length, as TRL tokenises the rows; teachers (micro_batch None) keep one pass.
    records, _ = masked_records(load_tokenizer("smollm2-135m"), rows)
    lengths = [len(r["input_ids"]) for r in records]
    assert sum(min(n, cfg.max_length) for n in lengths) == whole["train_tokens_per_epoch"]
    assert "pass_tokens" not in whole and stats["pass_tokens"] == 512
    longest = min(max(lengths), cfg.max_length)  # TRL cuts rows at max_length
    bounded, share = moved("bounded", micro_batch=4, pass_tokens=2 * longest)
    assert (bounded["micro_batch"], bounded["pass_tokens"]) == (2, 2 * longest)
    assert share < 1e-4
    assert moved("tight", micro_batch=4, pass_tokens=2 * longest - 1)[0]["micro_batch"] == 1
    with pytest.raises(ValueError, match="Invalid pass_tokens: -1"):
        train("smollm2-135m", rows, cfg, tmp_path / "bad", micro_batch=2, pass_tokens=-1)
    # The check can fail: each pass over its own token count (what a trainer without the
    # cycle's count does) is another step.
    lean = training_mod.completion_loss_trainer

    def per_pass(base: type, precision: str = "float32") -> type:
        class PerPass(lean(base, precision)):  # type: ignore[misc]
            def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
                return super().compute_loss(model, inputs, return_outputs, None)

        return PerPass

    monkeypatch.setattr(training_mod, "completion_loss_trainer", per_pass)
    assert moved("wrong", micro_batch=2)[1] > 1e-2


def test_bounded_pass_rows() -> None:
    assert bounded_pass_rows(8, 512, 60) == 8  # 8 rows of 60 tokens fit
    assert bounded_pass_rows(8, 512, 100) == 5
    assert bounded_pass_rows(8, 512, 900) == 1  # a row longer than the bound: one a pass
    assert bounded_pass_rows(8, 0, 900) == 8  # no bound
    assert bounded_pass_rows(None, 0, 900) is None  # one pass of the batch
    assert pass_rows(16, bounded_pass_rows(8, 512, 100)) == 4  # then it divides the batch


def test_pass_rows_divides_the_batch() -> None:
    assert [pass_rows(16, m) for m in (None, 8, 5, 16, 32, 1)] == [16, 8, 4, 16, 16, 1]
    assert pass_rows(22, 8) == 2  # gradient accumulation needs equal passes
    with pytest.raises(ValueError, match="Invalid micro_batch"):
        pass_rows(16, 0)


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


def test_lean_completion_loss_matches_trl_loss(smollm_dir: str, tmp_path: Path) -> None:
    """The gathered-positions loss is TRL's completion-only loss, not an approximation: on the same
    batch, same loss and same gradients (compared directly: after an Adam step, near-zero
    gradients make adapter weights an ill-conditioned comparison)."""
    import tempfile

    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from benchmark.core.models import load_tokenizer
    from benchmark.core.training import completion_loss_trainer, to_conversations

    rows = [dict(r, completion="101, 202, 303, 404") for r in NumbersTask().prompts(4, 0)]
    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(smollm_dir, dtype=torch.float32),
        LoraConfig(
            r=4, lora_alpha=4, target_modules=["q_proj", "down_proj"], task_type="CAUSAL_LM"
        ),
    )
    for n, p in model.named_parameters():
        if "lora_B" in n:  # non-zero B so that A gets gradients too
            torch.nn.init.normal_(p, std=0.02)
    args = SFTConfig(
        output_dir=tempfile.mkdtemp(dir=tmp_path),
        per_device_train_batch_size=4,
        use_cpu=True,
        completion_only_loss=True,
        report_to=[],
        max_length=128,
    )
    ds = Dataset.from_list(to_conversations(rows))
    got = {}
    for name, cls in (("trl", SFTTrainer), ("lean", completion_loss_trainer(SFTTrainer))):
        tr = cls(
            model=model, args=args, train_dataset=ds, processing_class=load_tokenizer(smollm_dir)
        )
        batch = next(iter(tr.get_train_dataloader()))
        assert int((batch["labels"] != -100).sum()) < int(batch["attention_mask"].sum()) / 2
        model.zero_grad()
        loss = tr.compute_loss(model, dict(batch))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        got[name] = (float(loss), grads)
    (la, ga), (lb, gb) = got["trl"], got["lean"]
    assert la == pytest.approx(lb, rel=1e-4)
    assert set(ga) == set(gb) and len(ga) == 4 * 30
    scale = max(float(g.abs().max()) for g in ga.values())
    assert max(float((ga[k] - gb[k]).abs().max()) for k in ga) < 1e-3 * scale


def test_adapter_init_seed_is_separate_from_the_data_seed(smollm_dir: str) -> None:
    """A student given the teacher's init seed starts from the teacher's adapter, whatever its own
    seed; without one, the adapter follows the student's seed as before."""
    from benchmark.core.store import stable_hash
    from benchmark.core.teachers import TeacherConfig, shared_init_student
    from benchmark.core.training import build_trainable

    def lora_a(cfg: TrainConfig) -> torch.Tensor:
        model = build_trainable(smollm_dir, cfg)
        return next(p for n, p in model.named_parameters() if "lora_A" in n).detach().clone()

    teacher = TeacherConfig()
    shared = [shared_init_student(teacher, seed=s, epochs=1) for s in (1, 2)]
    assert shared[0].lora_r == teacher.train.lora_r and shared[0].init_seed == teacher.train.seed
    assert torch.equal(lora_a(shared[0]), lora_a(shared[1]))
    assert torch.equal(lora_a(shared[0]), lora_a(teacher.train))  # the teacher's own start
    own = [TrainConfig(lora_r=16, lora_alpha=32, seed=s) for s in (1, 2)]
    assert not torch.equal(lora_a(own[0]), lora_a(own[1]))
    # Leaving init_seed unset keeps the stage hashes of configs written before the field existed.
    assert "init_seed" not in TrainConfig().to_dict()
    assert stable_hash(TrainConfig().to_dict()) == "fd2d94f06acdfcce"  # the hash before it
    assert shared[0].to_dict()["init_seed"] == 0
