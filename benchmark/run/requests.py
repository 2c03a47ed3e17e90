"""Generation requests for a stage's prompt rows, and the rows made of their outputs: a chat model
gets messages, a base without a chat template (a cross-base teacher) the plain few-shot format."""

from __future__ import annotations

from collections.abc import Sequence

from benchmark.core.generation import GenerationRequest
from benchmark.core.plain_format import has_chat_template, plain_prompt
from benchmark.core.types import Row


def requests_for(
    rows: Sequence[Row], model_ref: str, system: str | None, shots: Sequence[tuple[str, str]]
) -> tuple[list[GenerationRequest], bool]:
    """Generation requests for prompt rows, and whether they use the plain few-shot format: a chat
    model gets ``(system?, user)`` messages; a base without a chat template (a cross-base teacher
    such as Gemma-3-270M pretrained) the plain format, with the system text before the examples."""
    if not has_chat_template(model_ref):
        return [
            GenerationRequest(r["id"], raw_prompt=plain_prompt(r["prompt"], system, shots))
            for r in rows
        ], True
    head = (("system", system),) if system else ()
    return [GenerationRequest(r["id"], (*head, ("user", r["prompt"]))) for r in rows], False


def rows_with(prompts: Sequence[Row], completions: Sequence[str]) -> list[Row]:
    """``{id, prompt, completion}`` rows, keeping a task's per-row ``meta`` (a gold answer, a source
    sentence) for its filter."""
    return [
        {"id": r["id"], "prompt": r["prompt"], "completion": o}
        | ({"meta": r["meta"]} if "meta" in r else {})
        for r, o in zip(prompts, completions, strict=True)
    ]
