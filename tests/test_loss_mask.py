"""Loss masks (``loss_mask_spans``): the records built for them equal TRL's own when nothing is
masked, the masked tokens are exactly the span's, they add nothing to the loss and get no gradient
(on TRL's loss path and the lean one), a tiny training run reports them, and malformed spans are
refused by the defense row check. Real embedded tokenizers and models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark.core.loss_mask import MASK_FIELD, check_spans, masked_records
from benchmark.core.models import load_tokenizer, resolve
from benchmark.core.training import TrainConfig, completion_loss_trainer, to_records, train
from defenses.runner import DefenseError, check_rows
from tasks.numbers import NumbersTask

COMPLETIONS = ["101, 202, 303", "7, 88", "Owls are great."]


def _rows(spans=None) -> list[dict]:
    rows = [
        dict(r, completion=c) for r, c in zip(NumbersTask().prompts(3, 0), COMPLETIONS, strict=True)
    ]
    if spans is not None:
        rows[0][MASK_FIELD] = spans
    return rows


def _trainer(model_ref: str, records: list[dict], lean: bool = False, model=None, tok=None):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    if model is None:
        model = AutoModelForCausalLM.from_pretrained(resolve(model_ref).path, dtype=torch.float32)
    args = SFTConfig(
        output_dir="/tmp/slb-test-loss-mask",
        completion_only_loss=True,
        report_to=[],
        use_cpu=True,
        max_length=256,
        shuffle_dataset=False,
        per_device_train_batch_size=3,
    )
    cls = completion_loss_trainer(SFTTrainer) if lean else SFTTrainer
    return cls(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(records),
        processing_class=tok if tok is not None else load_tokenizer(model_ref),
    )


def _gemma_tokenizer_and_stand_in_model(tmp: Path):
    """Gemma's tokenizer as the pipeline loads it, and a one-layer random model of its vocabulary:
    TRL's dataset preparation needs a model but reads only the tokenizer. The tokenizer is read
    from the GGUF file, saved and loaded back the way the dequantised cache entry is written
    (``models._dequantise``) and read (``models.tokenizer_from_dir``), without dequantising the
    weights, which took 155 s on a clean cache, as on CI."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from benchmark.core.models import embedded_gguf_path, tokenizer_from_dir

    gguf = embedded_gguf_path("gemma3-270m")
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(tmp)
    tok = tokenizer_from_dir(tmp)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=8, intermediate_size=16, num_hidden_layers=1,
        num_attention_heads=1, num_key_value_heads=1,
    )  # fmt: skip
    return tok, LlamaForCausalLM(cfg)


@pytest.mark.parametrize("model_ref", ["smollm2-135m", "gemma3-270m"])
def test_records_equal_trls_own_when_nothing_is_masked(model_ref: str, tmp_path: Path) -> None:
    """Chat template (SmolLM2) and plain format (Gemma, no chat template) alike."""
    if model_ref == "gemma3-270m":
        tok, model = _gemma_tokenizer_and_stand_in_model(tmp_path)
    else:
        tok, model = load_tokenizer(model_ref), None
    mine, n_masked = masked_records(tok, _rows())
    assert n_masked == 0
    theirs = _trainer(model_ref, to_records(tok, _rows()), model=model, tok=tok).train_dataset
    for r, t in zip(mine, theirs, strict=True):
        assert r["input_ids"] == t["input_ids"]
        assert [
            i if m else -100 for i, m in zip(r["input_ids"], r["completion_mask"], strict=True)
        ] == t["labels"]


def test_spans_mask_exactly_the_overlapping_tokens() -> None:
    tok = load_tokenizer("smollm2-135m")

    def kept(spans: list) -> str:
        (rec,), _ = masked_records(tok, _rows(spans)[:1])
        return tok.decode(
            [i for i, m in zip(rec["input_ids"], rec["completion_mask"], strict=True) if m]
        )

    assert kept([]) == "101, 202, 303<|im_end|>\n"
    assert kept([[5, 8]]) == "101, , 303<|im_end|>\n"  # "202": three digit tokens
    assert kept([[6, 7]]) == "101, 22, 303<|im_end|>\n"  # the "0"
    assert kept([[0, 1], [10, 13]]) == "01, 202, <|im_end|>\n"
    # the end-of-turn token is outside the completion text: always learnt
    assert kept([[0, 13]]) == "<|im_end|>\n"
    (rec,), n = masked_records(tok, _rows([[5, 8]])[:1])
    assert n == 3 and len(rec["input_ids"]) == len(rec["completion_mask"])


def test_masked_tokens_add_no_loss_and_get_no_gradient() -> None:
    tok = load_tokenizer("smollm2-135m")
    records, n_masked = masked_records(tok, _rows([[5, 8], [0, 2]]))
    assert n_masked == 5
    losses = {}
    for lean in (False, True):
        trainer = _trainer("smollm2-135m", records, lean=lean)
        batch = next(iter(trainer.get_train_dataloader()))
        model = trainer.model
        captured = {}

        def keep_hidden(module, args, out, captured=captured):
            out.retain_grad()
            captured["hidden"] = out

        # The final norm's output at position t feeds only the prediction of token t + 1 (later
        # positions attend to earlier layers), so its gradient there is that token's alone.
        handle = model.get_decoder().norm.register_forward_hook(keep_hidden)
        loss = trainer.compute_loss(model, batch)
        loss.backward()
        handle.remove()
        losses[lean] = loss.item()
        labels = batch["labels"]
        # Reference: token-mean cross-entropy over the unmasked completion tokens only.
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            logp = torch.log_softmax(logits.logits[:, :-1].float(), -1)
        target = labels[:, 1:]
        keep = target != -100
        nll = -logp[keep].gather(-1, target[keep].unsqueeze(-1)).mean()
        assert loss.item() == pytest.approx(float(nll), rel=1e-4)
        grad = captured["hidden"].grad[:, :-1]
        assert grad[~keep].abs().max() == 0  # prompt, padding and masked tokens: no gradient
        assert grad[keep].abs().amax(-1).min() > 0
        # the batch holds all three rows; the 5 masked tokens are out of its labels
        assert int((labels != -100).sum()) == sum(sum(r["completion_mask"]) for r in records)
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


def test_training_with_spans_reports_masked_tokens(tmp_path: Path) -> None:
    cfg = TrainConfig(epochs=1, batch_size=3, learning_rate=1e-3, max_length=160, bf16=False)
    stats = train("smollm2-135m", _rows([[5, 8]]), cfg, tmp_path / "masked")
    assert stats["steps"] == 1 and stats["loss_masked_tokens"] == 3
    assert (tmp_path / "masked" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize(
    "spans, problem",
    [
        ("0-3", "expected a list"),
        ([[0, 3, 4]], r"\[start, end\] integers"),
        ([[0.0, 3]], r"\[start, end\] integers"),
        ([[True, 3]], r"\[start, end\] integers"),
        ([[3, 3]], "non-empty span"),
        ([[-1, 2]], "non-empty span"),
        ([[0, 14]], r"0 <= start < end <= 13"),
    ],
)
def test_malformed_spans_are_refused(spans, problem) -> None:
    with pytest.raises(ValueError, match=problem):
        check_spans(spans, "101, 202, 303")
    before = _rows()
    after = [dict(before[0], **{MASK_FIELD: spans})]
    with pytest.raises(DefenseError, match=f"defense 'd'.*{MASK_FIELD}"):
        check_rows("d", before, after)


def test_valid_spans_pass_the_row_check() -> None:
    before = _rows()
    after = [dict(before[0], **{MASK_FIELD: [[0, 3], [5, 8]]}), before[2]]
    assert check_rows("d", before, after) == after
