"""Reference helpers lent through the defense context: the generator writes as the teacher did
(grammar, sampling) with its own seed, and the token scorer's surprisals equal a direct forward
pass, token for token, with and without the task grammar. Real embedded SmolLM2 (fast)."""

from __future__ import annotations

import pytest
import torch

from benchmark.core.generation import SamplingParams
from benchmark.core.models import load_causal_lm
from benchmark.core.plain_format import cut_plain_output, plain_prompt
from benchmark.core.reference_models import GenerationSettings, TokenScorer
from defenses import DefenseContext
from defenses.context import reference_seed
from tasks.numbers import NumbersTask, parse_numbers


def _settings(grammar: bool = True) -> GenerationSettings:
    task = NumbersTask()
    return GenerationSettings(
        SamplingParams(max_new_tokens=task.max_new_tokens, seed=3),
        task.constraint(grammar),
        task.few_shot_examples(),
    )


def test_generator_writes_like_the_teacher_with_its_own_seed() -> None:
    ctx = DefenseContext("smollm2-135m", seed=3, generation=_settings())
    gen = ctx.generator()
    assert gen.model == "smollm2-135m" and gen.seed == reference_seed(3) != 3
    prompts = [r["prompt"] for r in NumbersTask().prompts(3, 0)]
    outs = gen.generate(prompts, ids=["a", "b", "c"])
    assert len(outs) == 3 and all(parse_numbers(o) is not None for o in outs), outs
    cost = ctx.cost
    key = next(iter(cost["helpers"]))
    assert key.startswith("generator:model=smollm2-135m:seed=") and "grammar=NumberGrammar" in key
    assert cost["helper_items"] == 3 and cost["helper_tokens"] > 0 and cost["helper_seconds"] > 0
    # the same helper object for the same arguments; another model is another helper
    assert ctx.generator() is gen and ctx.generator(model="gemma3-270m") is not gen
    # a child process gets the settings too
    assert ctx.blind_copy().generation == ctx.generation


def _direct(model, tok, prompt: str, completion: str) -> list[float]:
    text = tok.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    p = tok(text, add_special_tokens=False)["input_ids"]
    c = tok(completion, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logp = torch.log_softmax(model(torch.tensor([p + c])).logits[0].float(), -1)
    return [-float(logp[len(p) + i - 1, t]) for i, t in enumerate(c)]


def test_scorer_matches_a_direct_forward_pass_despite_padding() -> None:
    model, tok = load_causal_lm("smollm2-135m")
    rows = NumbersTask().prompts(3, 1)
    completions = ["12, 7", "401, 402, 403, 404, 405, 406", "Owls hoot at night."]
    scorer = TokenScorer("smollm2-135m", _settings(), batch_size=3)
    got = scorer.surprisal([r["prompt"] for r in rows], completions, under_grammar=False)
    for r, c, toks in zip(rows, completions, got, strict=True):
        want = _direct(model, tok, r["prompt"], c)
        assert [round(s, 3) for _, _, s in toks] == pytest.approx(
            [round(w, 3) for w in want], abs=2e-3
        )
        assert "".join(c[a:b] for a, b, _ in toks) == c  # spans tile the completion
    assert scorer.usage.items == 3


def test_grammar_renormalisation_lowers_surprisal_but_keeps_it_positive() -> None:
    prompts = [r["prompt"] for r in NumbersTask().prompts(2, 2)]
    completions = ["512, 77, 3", "9, 10, 11"]
    scorer = TokenScorer("smollm2-135m", _settings(grammar=True))
    raw = scorer.surprisal(prompts, completions, under_grammar=False)
    under = scorer.surprisal(prompts, completions, under_grammar=True)
    pairs = [
        (u[2], r[2]) for ur, rr in zip(under, raw, strict=True) for u, r in zip(ur, rr, strict=True)
    ]
    assert all(-1e-6 <= u <= r + 1e-6 for u, r in pairs)
    assert any(u < r - 0.01 for u, r in pairs)  # the grammar excluded real probability mass


def test_plain_format_round_trip() -> None:
    shots = NumbersTask().few_shot_examples()
    assert len(shots) == 2 and all(parse_numbers(a) for _, a in shots)
    p = plain_prompt("Go on: 1, 2.", "You like things.", shots)
    assert p.startswith("You like things.\n\nQuestion: ") and p.endswith(
        "Question: Go on: 1, 2.\nAnswer:"
    )
    assert p.count("Answer:") == 3
    assert cut_plain_output(" 3, 4\n\nQuestion: next one\nAnswer: 9") == "3, 4"
    assert cut_plain_output(" line one\nline two\nQuestion: x") == "line one\nline two"
