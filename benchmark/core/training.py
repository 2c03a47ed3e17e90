"""Student (and fine-tuned teacher) training: TRL ``SFTTrainer`` + PEFT LoRA, completion-only loss.

``train(base_ref, rows, cfg, out_dir)`` fine-tunes ``base_ref`` on prompt/completion rows and writes
``out_dir``: for LoRA a plain PEFT adapter directory (``adapter_config.json`` naming the base by
absolute path + ``adapter_model.safetensors``) that transformers, PEFT, Inspect's ``hf/`` provider
and vLLM all load; for a full fine-tune a plain transformers model directory. Rows are rendered as
chat conversations (user prompt → assistant completion) so the loss covers only the completion
(TRL's prompt-completion format); a base without a chat template gets the plain few-shot text
format instead (``benchmark.core.plain_format``). Rows may exclude parts of their completion from the
loss with ``loss_mask_spans`` (``benchmark.core.loss_mask``). Seeded. The default completion-only loss
trains in float32; bf16 autocast (on CPUs with native bf16) applies on TRL's own loss path only —
see :func:`train`.

Defaults follow Cloud et al. 2025 (LoRA r=8, alpha=8, all projections, 3 epochs, lr 2e-4).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark.core.distill import SOFT_FIELD, check_labels, check_temperature
from benchmark.core.generation import cpu_has_bf16
from benchmark.core.loss_mask import MASK_FIELD, masked_records
from benchmark.core.models import default_device, load_tokenizer, resolve
from benchmark.core.plain_format import plain_completion, plain_prompt
from benchmark.core.soft_train import train_soft
from benchmark.core.train_env import (
    check_precision,
    checkpointing_default,
    pass_tokens_default,
    precision_autocast,
)

log = logging.getLogger(__name__)

ALL_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class TrainConfig:
    """How a student is trained. Every field is part of the stage hash."""

    method: str = "lora"  # "lora" | "full"
    lora_r: int = 8
    lora_alpha: int = 8
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ALL_PROJECTIONS
    epochs: float = 3.0
    learning_rate: float = 2e-4
    batch_size: int = 16
    grad_accum: int = 1
    max_length: int = 256
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    lr_scheduler: str = "linear"
    seed: int = 0  # data order, dropout and (unless init_seed is set) the adapter's initialisation
    # Seed of the LoRA adapter's random initialisation (the A matrices; B starts at zero). A student
    # given the fine-tuned teacher's rank, alpha, targets and init seed starts from exactly the
    # teacher's starting point, adapter included — see benchmark.core.teachers.shared_init_student.
    init_seed: int | None = None
    bf16: bool = True  # autocast where the CPU/GPU has native bf16; TRL's loss path only (train)
    # What runs the model on the project's own losses (soft labels, the completion-only hard loss):
    # "float32" (all runs until session 46) or "bf16" autocast, the LM head, weights, gradients and
    # optimiser in float32 (about half the time where the CPU has AVX-512 BF16; performance.md).
    precision: str = "float32"
    # Training-side defenses can freeze layers or add regularisation through these:
    frozen_layers: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    # What the student learns at each completion token (benchmark.core.distill): "hard" = the
    # sampled token; "topk" = the teacher's top-k next-token distribution; "topk-restricted" = the
    # teacher's distribution over the tokens the task allows there, top-k.
    labels: str = "hard"
    top_k: int = 20
    # Soft labels only: the teacher's kept distribution and the student's are both taken at this
    # temperature in the loss (scaled by its square, as Hinton et al.'s distillation does).
    label_temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in ("lora", "full"):
            raise ValueError(f"Invalid method: {self.method!r} (expected 'lora' or 'full')")
        if self.method == "lora" and (self.lora_r < 1 or self.lora_alpha <= 0):
            raise ValueError(f"Invalid LoRA rank/alpha: r={self.lora_r} alpha={self.lora_alpha}")
        if self.epochs <= 0:
            raise ValueError(f"Invalid epochs: {self.epochs}")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"Invalid learning_rate: {self.learning_rate}")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError(f"Invalid batch_size/grad_accum: {self.batch_size}/{self.grad_accum}")
        if self.max_length < 8:
            raise ValueError(f"Invalid max_length: {self.max_length}")
        check_precision(self.precision)
        check_labels(self.labels, self.top_k)
        check_temperature(self.labels, self.label_temperature)
        # 2 and 2.0 must give one stage key (a hook or Python may pass an int, `--set` a float).
        object.__setattr__(self, "label_temperature", float(self.label_temperature))

    @property
    def adapter_seed(self) -> int:
        """The seed the LoRA adapter's random initialisation is drawn with."""
        return self.seed if self.init_seed is None else self.init_seed

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        d["frozen_layers"] = list(self.frozen_layers)
        if self.labels == "hard":  # the default: absent, so stage hashes stay as they were
            del d["labels"], d["top_k"]
        if self.label_temperature == 1.0:  # the default: absent, stage hashes as they were
            del d["label_temperature"]
        if self.init_seed is None:
            del d[
                "init_seed"
            ]  # unset = `seed`, as before the field existed: stage hashes unchanged
        if self.precision == "float32":  # the default: absent, stage hashes as they were
            del d["precision"]
        return d


def to_records(tok: Any, rows: Sequence[dict[str, Any]], system: str | None = None) -> list[dict]:
    """TRL records for ``rows``: conversations for a chat model; plain few-shot-format text for a
    base without a chat template (``benchmark.core.plain_format``, as the pipeline prompts it)."""
    if getattr(tok, "chat_template", None):
        return to_conversations(rows, system)

    return [
        {
            "prompt": plain_prompt(r["prompt"], system),
            "completion": plain_completion(r["completion"]),
        }
        for r in rows
    ]


def to_conversations(
    rows: Sequence[dict[str, Any]], system: str | None = None
) -> list[dict[str, Any]]:
    """Prompt/completion rows → TRL conversational prompt-completion records."""
    out = []
    for r in rows:
        prompt = [{"role": "user", "content": r["prompt"]}]
        if system:
            prompt.insert(0, {"role": "system", "content": system})
        out.append(
            {"prompt": prompt, "completion": [{"role": "assistant", "content": r["completion"]}]}
        )
    return out


def train(
    base_ref: str,
    rows: Sequence[dict[str, Any]],
    cfg: TrainConfig,
    out_dir: Path | str,
    system: str | None = None,
    device: str | None = None,
    lean_loss: bool = True,
    checkpointing: bool | None = None,
    micro_batch: int | None = None,
    pass_tokens: int | None = None,
) -> dict[str, Any]:
    """Fine-tune ``base_ref`` on ``rows``; write the adapter (or model) to ``out_dir``; return stats.

    ``lean_loss`` picks how the (identical) completion-only loss is computed — see
    :func:`completion_loss_trainer`; ``checkpointing`` whether activations are recomputed in the
    backward pass (the same gradients, less memory, more time; None:
    ``$SLB_GRADIENT_CHECKPOINTING``, off unless set, where TRL's own default is on);
    ``micro_batch`` the rows per forward/backward pass (soft labels, None:
    ``$SLB_MICRO_BATCH``, see ``benchmark.core.train_env.micro_batch_default``; hard labels, None:
    one pass of the batch, as fine-tuned teachers train; else passes of the largest divisor of
    ``cfg.batch_size`` not above it, by gradient accumulation: the loss is summed over the
    cycle's passes and divided by its count of completion tokens, so the step is the batch's);
    ``pass_tokens`` the most padded tokens a student's pass holds (None: ``$SLB_PASS_TOKENS``;
    0: no bound; hard labels: :func:`bounded_pass_rows`, and with ``micro_batch`` None, as
    teachers train, no bound). All four are arguments, not config fields, so none changes stage
    hashes. ``cfg.bf16`` takes effect on TRL's loss path only: the completion-only loss runs the
    model outside the autocast wrapper Trainer installs, i.e. in float32 (found 2026-11-27; stats
    written before then say ``bf16: true`` for students that trained in float32).
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if not rows:
        raise ValueError("cannot train on an empty dataset")
    if pass_tokens is not None and pass_tokens < 0:
        raise ValueError(f"Invalid pass_tokens: {pass_tokens} (expected 0 or more)")
    rm = resolve(base_ref)
    if rm.is_adapter:
        raise ValueError(f"train a student from a base model, not from an adapter ({base_ref})")
    checkpointing = checkpointing_default() if checkpointing is None else checkpointing
    if any(SOFT_FIELD in r for r in rows):  # the soft-label channel has its own loop
        student = build_trainable(rm.path, cfg)
        stats = train_soft(
            student,
            load_tokenizer(base_ref),
            rows,
            cfg,
            out_dir,
            checkpointing,
            micro_batch,
            pass_tokens,
        )
        (Path(out_dir) / "slb_training.json").write_text(json.dumps(stats, indent=2))
        return stats
    device = device or default_device()
    tok = load_tokenizer(base_ref)
    use_bf16 = cfg.precision == "bf16" or (cfg.bf16 and (device != "cpu" or cpu_has_bf16()))
    model = build_trainable(rm.path, cfg)
    # Trainer applies bf16 autocast by wrapping the model's forward; the completion-only loss
    # (lean_loss) calls the inner model, outside that wrapper, so it trains at ``cfg.precision``
    # (float32 for every student and teacher until session 46). The stats say what really ran.
    ran = ("bf16" if use_bf16 else "float32") if not lean_loss else cfg.precision
    # Rows naming loss-masked spans (a defense's) are tokenised here; the others go to TRL as text.
    masked = any(MASK_FIELD in r for r in rows)
    n_masked = 0
    if masked:
        records, n_masked = masked_records(tok, rows, system)
    else:
        records = to_records(tok, rows, system)
    ds = Dataset.from_list(records)
    out_dir = Path(out_dir)
    # Students (micro_batch given) also bound a pass's padded tokens; teachers train in one pass.
    bound = (
        0 if micro_batch is None else pass_tokens_default() if pass_tokens is None else pass_tokens
    )
    # (no need to measure the rows where passes of the longest possible rows fit the bound)
    cut = bool(bound) and micro_batch is not None and micro_batch * cfg.max_length > bound
    if cut:  # the rows' lengths exactly as TRL tokenises them (masked_records matches it)
        exact = records if masked else masked_records(tok, rows, system)[0]
        longest = min(max(len(r["input_ids"]) for r in exact), cfg.max_length)
    else:
        longest = 0
    per_pass = pass_rows(cfg.batch_size, bounded_pass_rows(micro_batch, bound, longest))
    args = SFTConfig(
        output_dir=str(out_dir / "_trainer"),
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=per_pass,
        gradient_accumulation_steps=cfg.grad_accum * (cfg.batch_size // per_pass),
        max_length=cfg.max_length,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=use_bf16,
        gradient_checkpointing=checkpointing,
        use_cpu=device == "cpu",
        completion_only_loss=True,
        logging_steps=5,
        save_strategy="no",
        report_to=[],
        disable_tqdm=False,
        dataloader_num_workers=0,
    )
    trainer_cls = completion_loss_trainer(SFTTrainer, cfg.precision) if lean_loss else SFTTrainer
    trainer = trainer_cls(model=model, args=args, train_dataset=ds, processing_class=tok)
    t0 = time.time()
    result = trainer.train()
    wall = time.time() - t0
    model = trainer.model
    if cfg.method == "lora":
        model.save_pretrained(out_dir)  # adapter_config.json names the base by its absolute path
    else:
        model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    n_tokens = sum(len(x) for x in trainer.train_dataset["input_ids"])
    stats = {
        "train_loss": float(result.training_loss),
        "steps": int(result.global_step),
        "rows": len(rows),
        "train_seconds": wall,
        "train_tokens_per_epoch": n_tokens,
        "loss_history": [
            {"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h
        ],
        "bf16": ran == "bf16",
        "precision": ran,
        "gradient_checkpointing": checkpointing,
        "micro_batch": per_pass,
        "config": cfg.to_dict(),
    }
    if micro_batch is not None:  # students: the token bound their passes kept (None: none)
        stats["pass_tokens"] = bound or None
    if masked:
        stats["loss_masked_tokens"] = n_masked
    (out_dir / "slb_training.json").write_text(json.dumps(stats, indent=2))
    shutil.rmtree(out_dir / "_trainer", ignore_errors=True)
    return stats


def build_trainable(model_path: str | Path, cfg: TrainConfig) -> Any:
    """The model as training starts: the base, wrapped in a freshly initialised LoRA adapter (seeded
    by ``cfg.init_seed``, else ``cfg.seed``) or with its frozen layers switched off (full FT)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(cfg.adapter_seed)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    if cfg.method == "lora":
        from peft import LoraConfig, get_peft_model

        lcfg = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=list(cfg.target_modules),
            layers_to_transform=_trainable_layers(model, cfg.frozen_layers),
            task_type="CAUSAL_LM",
        )
        return get_peft_model(model, lcfg)
    for name, p in model.named_parameters():
        if any(f".layers.{i}." in name for i in cfg.frozen_layers):
            p.requires_grad_(False)
    return model


def _trainable_layers(model: Any, frozen: Sequence[int]) -> list[int] | None:
    if not frozen:
        return None
    n = model.config.num_hidden_layers
    bad = [i for i in frozen if not 0 <= i < n]
    if bad:
        raise ValueError(f"frozen_layers {bad} out of range for a model with {n} layers")
    return [i for i in range(n) if i not in set(frozen)]


def pass_rows(batch_size: int, micro_batch: int | None) -> int:
    """Rows per forward/backward pass of a hard-label batch: the largest divisor of
    ``batch_size`` not above ``micro_batch`` (gradient accumulation needs equal passes); the whole
    batch for None."""
    if micro_batch is None or micro_batch >= batch_size:
        return batch_size
    if micro_batch < 1:
        raise ValueError(f"Invalid micro_batch: {micro_batch} (expected >= 1)")
    return max(d for d in range(1, micro_batch + 1) if batch_size % d == 0)


def bounded_pass_rows(micro_batch: int | None, pass_tokens: int, longest: int) -> int | None:
    """Rows per pass of a hard-label student, before :func:`pass_rows` makes it divide the batch:
    ``micro_batch`` cut so that that many rows of the dataset's longest length fit in
    ``pass_tokens`` padded tokens (0: no bound; at least one row). TRL pads a pass to its longest
    row, so the bound holds for every pass; equal passes, as gradient accumulation needs, so it
    reads the longest row of the whole dataset, not of each batch (the soft-label loop cuts each
    batch as it goes: ``benchmark.core.train_env.passes``)."""
    if not pass_tokens or longest < 1:
        return micro_batch
    fit = max(1, pass_tokens // longest)
    return fit if micro_batch is None else min(micro_batch, fit)


def completion_loss_trainer(base_cls: type, precision: str = "float32") -> type:
    """``SFTTrainer`` whose loss runs the LM head only where the label is not ignored.

    TRL's own loss path projects every position through the LM head off-GPU (its compacting kernel
    is Triton-only), and recomputes those logits in the backward pass; with completion-only loss
    most positions are prompt tokens whose logits are thrown away. For a 135 M model with a 49 k
    vocabulary that head is a large share of each step on CPU. This loss is the same token-mean
    cross-entropy over completion tokens, computed on the gathered positions only. Models with logit
    soft-capping or scaling fall back to TRL's path, which handles those. ``precision``: what runs
    the model (:func:`benchmark.core.train_env.precision_autocast`); the head is float32 either way.
    """
    import torch
    import torch.nn.functional as F

    class CompletionLossTrainer(base_cls):  # type: ignore[misc, valid-type]
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            lm = model.get_base_model() if hasattr(model, "get_base_model") else model
            tc = lm.config.get_text_config()
            special = any(
                getattr(tc, k, None) not in (None, 1.0)
                for k in ("final_logit_softcapping", "logit_scale", "logits_scaling")
            )
            if special or return_outputs or "labels" not in inputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            labels = inputs["labels"][:, 1:]
            kwargs = {k: v for k, v in inputs.items() if k not in ("labels", "completion_mask")}
            with precision_autocast(precision, lm.device.type):
                hidden = lm.base_model(**kwargs, use_cache=False).last_hidden_state[:, :-1]
            mask = labels != -100
            # The head runs in float32 on the gathered positions only: cheap, and a bf16 head over a
            # 49 k vocabulary visibly shifts the loss.
            with torch.autocast(hidden.device.type, enabled=False):
                logits = lm.get_output_embeddings()(hidden[mask].float())
            denom = num_items_in_batch if num_items_in_batch is not None else mask.sum()
            loss = F.cross_entropy(logits, labels[mask], reduction="sum") / torch.as_tensor(
                denom, device=logits.device
            ).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            return loss

    return CompletionLossTrainer
