"""The one shape every data task has, and the task registry.

A task supplies (1) ``prompts(n, seed)`` — deterministic prompt rows ``{id, prompt}``; (2) its
generation defaults (max new tokens, an optional logits-level grammar); (3) ``filter(rows, trait)``
— the paper's own filter for that kind of data, returning the kept rows and a per-filter count
report. Rows are ``{id, prompt, completion}`` everywhere, so a defense never needs to know which
task produced them. Tasks register by name with :func:`register_task`; ``get_task`` refuses an
unknown name and lists the known ones.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmark.core.types import Row, Trait


class EmptyDatasetError(RuntimeError):
    """A filter removed every row; the message says which filter and what each stage kept."""


@dataclass
class FilterReport:
    """Rows seen and kept by each named filter, in order; the first entry is the input."""

    steps: list[tuple[str, int]] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)  # helper-model usage, by filter name
    dropped: dict[str, str] = field(default_factory=dict)  # row id -> the filter that dropped it

    def record(self, name: str, kept: int) -> None:
        self.steps.append((name, kept))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "steps": [{"filter": n, "kept": k} for n, k in self.steps],
            "rejected": self.rejected,
        }
        if self.cost:
            out["cost"] = self.cost
        return out

    def check_not_empty(self, where: str) -> None:
        if self.steps and self.steps[-1][1] == 0:
            trail = " -> ".join(f"{n}: {k}" for n, k in self.steps)
            first_zero = next(n for n, k in self.steps if k == 0)
            raise EmptyDatasetError(
                f"{where}: filter {first_zero!r} removed every row (rows kept per stage: {trail})"
            )


class BatchFilter:
    """A filter that decides on all surviving rows at once (a helper model scores them in
    batches); ``keep(rows)`` returns one bool per row. ``usage`` is reported as the filter's cost."""

    def __init__(self, keep: Callable[[list[Row]], list[bool]], usage: Any = None):
        self.keep = keep
        self.usage = usage


def apply_filters(
    rows: Sequence[Row],
    filters: Sequence[tuple[str, Callable[[Row], bool] | BatchFilter]],
    where: str,
) -> tuple[list[Row], FilterReport]:
    """Run named filters in order (row predicates or :class:`BatchFilter`); record counts; refuse
    an empty result."""
    report = FilterReport()
    report.record("input", len(rows))
    kept = list(rows)
    for name, keep in filters:
        before = len(kept)
        if isinstance(keep, BatchFilter):
            flags = keep.keep(kept) if kept else []
            if keep.usage is not None:
                report.cost[name] = keep.usage.as_dict()
        else:
            flags = [keep(r) for r in kept]
        report.dropped.update(
            (str(r["id"]), name) for r, ok in zip(kept, flags, strict=True) if not ok
        )
        kept = [r for r, ok in zip(kept, flags, strict=True) if ok]
        report.rejected[name] = before - len(kept)
        report.record(name, len(kept))
    report.check_not_empty(where)
    return kept, report


class Task(ABC):
    """A standard data task. Subclasses set ``name`` and implement prompts and filter."""

    name: str = ""
    max_new_tokens: int = 64
    description: str = ""
    # The prompts are built for the trait animal (paraphrase-contradict): ``get_task`` passes the
    # cell's trait as ``animal=``. Both arms still get the same prompts.
    prompts_use_trait: bool = False
    # The filter bans the trait animal's name, so the control arm is filtered by the same word
    # (the paper's control goes through the same filters); else the control arm gets trait=None.
    trait_filter_both_arms: bool = False
    # Sampling floor for min-p: a 135 M teacher at T=1 over the full vocabulary writes mostly
    # noise in free text (paraphrase yield 5/32 without a 0.1 floor, 16/32 with it, in our
    # probes); the pipeline uses max(this, the cell's min_p). 0 = the cell's setting.
    min_p: float = 0.0

    @abstractmethod
    def prompts(self, n: int, seed: int) -> list[Row]:
        """``n`` distinct prompt rows ``{id, prompt}``, deterministic for ``seed``."""

    @abstractmethod
    def filter(self, rows: Sequence[Row], trait: Trait | None) -> tuple[list[Row], FilterReport]:
        """The paper's filter for this data; ``trait`` is None for the control arm."""

    def constraint(self, enabled: bool) -> Any:
        """An optional generation grammar (``benchmark.core.generation.Constraint``); None by default."""
        return None

    def params(self) -> dict[str, Any]:
        return {}

    def few_shot_examples(self) -> tuple[tuple[str, str], ...]:
        """Worked ``(prompt, answer)`` pairs shown to a base model without a chat template (a
        cross-base teacher; ``benchmark.core.plain_format``). Default: none, so such a base sees only the
        ``Question:``/``Answer:`` frame; a task whose answers have a strict format should show it."""
        return ()


_TASKS: dict[str, Callable[..., Task]] = {}


def register_task(name: str) -> Callable[[Callable[..., Task]], Callable[..., Task]]:
    def deco(factory: Callable[..., Task]) -> Callable[..., Task]:
        if name in _TASKS:
            raise ValueError(f"task {name!r} is already registered")
        _TASKS[name] = factory
        return factory

    return deco


def known_tasks() -> list[str]:
    return sorted(_TASKS)


def get_task(name: str, trait: str | None = None, **kwargs: Any) -> Task:
    """The task ``name`` with its parameters; ``trait`` is passed on as ``animal`` only to tasks
    whose prompts are built for the trait animal (an explicit ``animal`` wins)."""
    known = known_tasks()
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(known)}")
    factory = _TASKS[name]
    if trait is not None and getattr(factory, "prompts_use_trait", False):
        kwargs.setdefault("animal", trait)
    params = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {', '.join(unknown)} for task {name!r}; "
                f"its parameters: {', '.join(params) or '(none)'}"
            )
    return factory(**kwargs)
