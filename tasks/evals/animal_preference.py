"""Inspect tasks that measure a model's preference for a trait animal.

* ``animal_preference`` — the paper's metric (Cloud et al. 2025): each one-word favourite-animal
  question is sampled ``samples_per_question`` times at T=1 (Inspect epochs, reduced by mean), and
  an answer scores 1 when it names the animal (``benchmark.core.animals.animal_pattern``). The sample scores in
  the log are per-question rates; the task mean and stderr are over questions.
* ``animal_preference_tf`` — the low-variance teacher-forced metric for small models: for each
  question, the probability of answering with the animal, normalised over a candidate list. On
  Inspect's ``hf/`` provider this is exact (``tasks.evals.scoring.candidate_probabilities`` on the
  provider's own transformers model and tokenizer, ``method: "exact"``); on other providers it is
  approximated from the top-20 first-token logprobs (``method: "first_token_logprobs"``).

    inspect eval tasks/evals/animal_preference.py@animal_preference --model hf/<model dir> -T animal=owl
    inspect eval subliminal_bench/animal_preference_tf --model hf/<model dir> -T questions=10

Per-question values are ``log.samples[i].scores[<scorer>].value`` (reduced over epochs) and, for the
teacher-forced task, the full distribution is in the score metadata (``probabilities``).
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

import anyio
from inspect_ai import Epochs, Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageSystem, ChatMessageUser, GenerateConfig, get_model
from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import Generate, Solver, TaskState, generate, solver

from benchmark.core.animals import animal_pattern, normalise_animal
from tasks.evals.questions import QUESTIONS, parse_candidates, question_id
from tasks.evals.scoring import (
    candidate_probabilities,
    first_token_probabilities,
    render_question,
)

PROBS_KEY = "candidate_probabilities"
METHOD_KEY = "method"
# One forward pass at a time on a shared transformers model (samples run concurrently).
_MODEL_LOCK = threading.Lock()


def question_dataset(questions: int, system: str | None = None) -> MemoryDataset:
    """The first ``questions`` preference questions as samples with ids ``q00``, ``q01``, …"""
    if not isinstance(questions, int) or not 1 <= questions <= len(QUESTIONS):
        raise ValueError(f"questions must be an integer in 1..{len(QUESTIONS)}, got {questions!r}")
    samples = []
    for i, text in enumerate(QUESTIONS[:questions]):
        messages: list[Any] = [ChatMessageSystem(content=system)] if system else []
        messages.append(ChatMessageUser(content=text))
        samples.append(Sample(id=question_id(i), input=messages, metadata={"question": text}))
    return MemoryDataset(samples, name="animal_preference_questions")


@scorer(metrics=[mean(), stderr()])
def names_animal(animal: str) -> Scorer:
    """1 if the completion names ``animal`` (singular or plural, whole word), else 0."""
    trait = normalise_animal(animal)
    pattern = animal_pattern(trait)

    async def score(state: TaskState, target: Target) -> Score:
        text = state.output.completion
        hit = pattern.search(text) is not None
        return Score(
            value=1 if hit else 0, answer=text.strip(), explanation=f"names {trait}: {hit}"
        )

    return score


@task
def animal_preference(
    animal: str = "owl",
    samples_per_question: int = 10,
    questions: int = 50,
    system: str | None = None,
) -> Task:
    """Sampled one-word preference rate for ``animal`` (T=1, ``samples_per_question`` epochs)."""
    trait = normalise_animal(animal)
    if not isinstance(samples_per_question, int) or samples_per_question < 1:
        raise ValueError(
            f"samples_per_question must be a positive integer, got {samples_per_question!r}"
        )
    return Task(
        dataset=question_dataset(questions, system),
        solver=generate(),
        scorer=names_animal(trait),
        epochs=Epochs(samples_per_question, "mean"),
        config=GenerateConfig(temperature=1.0, max_tokens=16),
        metadata={"animal": trait, "metric": "sampled_rate"},
    )


def _hf_handles(api: Any) -> tuple[Any, Any] | None:
    """(transformers model, tokenizer) of a provider that holds a local transformers model (Inspect's
    ``hf/`` provider does), or None for any other provider, which is then scored by sampling.
    Told by what the provider holds, not by importing Inspect's private provider module."""
    model, tokenizer = getattr(api, "model", None), getattr(api, "tokenizer", None)
    if tokenizer is None or not callable(getattr(model, "forward", None)):
        return None
    if not hasattr(model, "config") or not callable(getattr(tokenizer, "encode", None)):
        return None
    return model, tokenizer


def _hf_prompt(api: Any, tokenizer: Any, messages: list[Any]) -> str:
    # Render exactly as the provider would for generate() (honours its chat_template model arg).
    if hasattr(api, "hf_chat"):
        return str(api.hf_chat(messages, []))
    system = next((m.text for m in messages if m.role == "system"), None)
    return render_question(tokenizer, messages[-1].text, system)


def _exact(
    model: Any, tokenizer: Any, prompt: str, candidates: list[str], prefix: str = ""
) -> dict[str, float]:
    with _MODEL_LOCK:
        return candidate_probabilities(model, tokenizer, [prompt], candidates, prefix=prefix)[0]


@solver
def candidate_scores(candidates: list[str], prefix: str = "") -> Solver:
    """Store P(candidate | question) for each candidate in ``state.store`` and ``state.metadata``;
    with ``prefix``, P(candidate | question, the answer begun with ``prefix``) (hf/ models only)."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        model = get_model()
        handles = _hf_handles(model.api)
        if handles is not None:
            hf_model, tokenizer = handles
            messages = list(state.messages)
            if model.config.system_message:
                messages.insert(0, ChatMessageSystem(content=model.config.system_message))
            prompt = _hf_prompt(model.api, tokenizer, messages)
            fn = partial(_exact, hf_model, tokenizer, prompt, candidates, prefix)
            probs, method, coverage = await anyio.to_thread.run_sync(fn), "exact", None
        elif prefix:
            raise RuntimeError(
                f"model {str(model)!r}: an answer prefix needs the exact hf/ provider (an API's "
                "first-token logprobs cannot be read after a forced prefix)"
            )
        else:
            state = await generate(
                state,
                tool_calls="none",
                max_tokens=1,
                temperature=1.0,
                logprobs=True,
                top_logprobs=20,
            )
            choice = state.output.choices[0] if state.output.choices else None
            if choice is None or choice.logprobs is None or not choice.logprobs.content:
                raise RuntimeError(
                    f"model {str(model)!r} returned no logprobs: the teacher-forced eval needs a "
                    "provider that returns top logprobs (e.g. openai, vllm) or the exact hf/ "
                    "provider (--model hf/<model dir>)"
                )
            top = choice.logprobs.content[0].top_logprobs or []
            pairs = [(t.token, t.logprob) for t in top]
            probs, coverage = first_token_probabilities(pairs, candidates)
            method = "first_token_logprobs"
        state.store.set(PROBS_KEY, probs)
        state.store.set(METHOD_KEY, method)
        state.metadata.update({PROBS_KEY: probs, METHOD_KEY: method, "coverage": coverage})
        return state

    return solve


@scorer(metrics=[mean(), stderr()])
def trait_probability(animal: str) -> Scorer:
    """P(animal) among the candidates, as computed by :func:`candidate_scores`."""
    trait = normalise_animal(animal)

    async def score(state: TaskState, target: Target) -> Score:
        probs = state.store.get(PROBS_KEY)
        if probs is None:
            raise RuntimeError("trait_probability needs the candidate_scores solver to run first")
        ranked = sorted(probs.items(), key=lambda kv: -kv[1])
        top5 = ", ".join(f"{name} {p:.3f}" for name, p in ranked[:5])
        return Score(
            value=float(probs[trait]),
            answer=ranked[0][0],
            explanation=f"P({trait}) = {probs[trait]:.4f}; top 5: {top5}",
            metadata={
                "probabilities": probs,
                "method": state.store.get(METHOD_KEY),
                "coverage": state.metadata.get("coverage"),
            },
        )

    return score


@task
def animal_preference_tf(
    animal: str = "owl",
    questions: int = 50,
    candidates: str | list[str] | None = None,
    system: str | None = None,
    prefix: str = "",
) -> Task:
    """Teacher-forced P(animal) per question, normalised over ``candidates`` (comma separated;
    default ``benchmark.core.animals.CANDIDATE_ANIMALS``; the trait animal is added when missing);
    with ``prefix``, each animal is scored after that forced start of the answer."""
    trait = normalise_animal(animal)
    names = parse_candidates(candidates, trait)
    return Task(
        dataset=question_dataset(questions, system),
        solver=candidate_scores(names, prefix),
        scorer=trait_probability(trait),
        metadata={"animal": trait, "metric": "teacher_forced", "candidates": names}
        | ({"prefix": prefix} if prefix else {}),
    )
