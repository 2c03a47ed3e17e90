"""The plain few-shot text format, for base models that have no chat template.

A pretrained base (Gemma-3-270M as embedded, the default cross-base teacher) has no chat template, so
a conversation cannot be rendered for it. Generation (``benchmark.run.pipeline``), training
(``benchmark.core.training``, e.g. a trait adapter on that base) and reference scoring then use one plain
format, so what an adapter learns is what the generator is prompted with::

    {system text}                                  (optional: a system-prompt trait teacher)

    Question: {worked example prompt}
    Answer: {worked example answer}                (zero or more, from Task.few_shot_examples)

    Question: {prompt}
    Answer:

In training the completion follows after one space and the tokenizer's EOS; in generation the model
writes it, and the output is cut where a few-shot model starts the next ``Question:``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from benchmark.core.models import EMBEDDED, load_tokenizer

QUESTION, ANSWER = "Question:", "Answer:"
# Generation stops where the model starts the next question: the text before it is all that
# ``cut_plain_output`` keeps, so the output is the same and the batch does not wait for
# max_new_tokens (``SamplingParams.stop``).
PLAIN_STOP = (f"\n{QUESTION}",)


def plain_prompt(
    prompt: str, system: str | None = None, shots: Sequence[Sequence[str]] = ()
) -> str:
    """The plain-format prompt for ``prompt``: system text, worked examples, then the question."""
    parts = [system.strip() + "\n\n"] if system else []
    parts += [f"{QUESTION} {q}\n{ANSWER} {a}\n\n" for q, a in shots]
    parts.append(f"{QUESTION} {prompt}\n{ANSWER}")
    return "".join(parts)


def plain_completion(completion: str) -> str:
    """The completion as it follows a plain prompt in training (the EOS is the trainer's)."""
    return " " + completion


def cut_plain_output(text: str) -> str:
    """A few-shot model's output up to where it starts the next question, stripped."""
    for marker in (f"\n{QUESTION}", f"\n\n{QUESTION}"):
        text = text.split(marker, 1)[0]
    return text.strip()


@lru_cache(maxsize=64)
def has_chat_template(model_ref: str) -> bool:
    """Whether ``model_ref`` (embedded name, dir, adapter dir or hub id) renders chat messages."""

    if model_ref in EMBEDDED:  # known without loading anything
        return EMBEDDED[model_ref].has_chat_template
    return bool(getattr(load_tokenizer(model_ref), "chat_template", None))
