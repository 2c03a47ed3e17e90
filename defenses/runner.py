"""Run a defense's hooks and check what they return: the pipeline calls only these.

``run_teacher``, ``run_apply`` and ``run_training`` call one hook (in-process for a built-in; an
:class:`~defenses.isolation.IsolatedDefense` runs it in a child) and check the result. ``apply``
must return a list of ``{id, prompt, completion}`` dicts whose ids are a subsequence of its input's
(rows dropped, none added, changed or reordered), with string text and JSON-safe extra fields (no
NaN or infinity), and leave ``ctx.notes`` JSON-safe too; an optional ``loss_mask_spans`` must be
``[start, end)`` integer pairs within the completion (``benchmark.core.loss_mask``). Any failure or
violation is a :class:`DefenseError` naming the defense, the hook and the problem, so the cell
records it instead of training on corrupted data. An isolated defense's ``teacher()`` and
``training()`` results are also checked field by field in the parent (``defenses.hook_checks``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from benchmark.core.loss_mask import MASK_FIELD, check_spans
from benchmark.core.training import TrainConfig
from benchmark.core.types import TeacherSpec
from defenses.base import Defense, DefenseContext, Row


class DefenseError(RuntimeError):
    """A defense failed or broke the row contract; ``record()`` is its per-cell error entry."""

    def __init__(self, message: str, hook: str | None = None, defense: str | None = None):
        super().__init__(message)
        self.hook, self.defense = hook, defense
        self.arm: str | None = None  # set by the pipeline, which knows the arm

    def record(self) -> dict[str, Any]:
        return {"stage": "defense", "hook": self.hook, "defense": self.defense, "arm": self.arm}


def json_problem(v: Any, where: str) -> str | None:
    """What makes ``v`` not plain JSON (NaN, infinity, a non-string key, another type), or None."""
    if isinstance(v, float) and not math.isfinite(v):
        return f"{where} is {'NaN' if math.isnan(v) else v}"
    if v is None or isinstance(v, (str, bool, int, float)):
        return None
    if isinstance(v, list):
        return next((p for i, x in enumerate(v) if (p := json_problem(x, f"{where}[{i}]"))), None)
    if isinstance(v, dict):
        if bad := [k for k in v if not isinstance(k, str)]:
            return f"{where} has a non-string key {bad[0]!r}"
        return next((p for k, x in v.items() if (p := json_problem(x, f"{where}[{k!r}]"))), None)
    return f"{where} is {type(v).__name__}, which is not JSON"


def check_rows(name: str, before: Sequence[Row], after: Any) -> list[Row]:
    """``after`` if it is a valid output of ``apply`` on ``before``, else a DefenseError."""

    def fail(msg: str) -> DefenseError:
        return DefenseError(f"defense {name!r}: {msg}", hook="apply", defense=name)

    if not isinstance(after, list):
        raise fail(f"apply() returned {type(after).__name__}, expected a list of rows")
    positions = {r["id"]: i for i, r in enumerate(before)}
    last = -1
    for j, r in enumerate(after):
        if not isinstance(r, dict):
            raise fail(f"row {j} is {type(r).__name__}, expected a dict")
        rid = r.get("id")
        if not isinstance(rid, str) or rid not in positions:
            raise fail(f"row {j} has id {rid!r}, which was not in its input (added or changed id)")
        if positions[rid] <= last:
            raise fail(f"row {j} (id {rid!r}) is out of order or repeated")
        last = positions[rid]
        for k in ("prompt", "completion"):
            if not isinstance(v := r.get(k), str):
                raise fail(f"row {rid!r} field {k!r} is {type(v).__name__}, expected str")
        if problem := json_problem(r, f"row {rid!r}"):
            raise fail(problem)
        if MASK_FIELD in r:  # read by training: spans must fit the (possibly rewritten) completion
            try:
                check_spans(r[MASK_FIELD], r["completion"], f"row {rid!r}")
            except ValueError as e:
                raise fail(str(e)) from None
    return after


def _guarded(defense: Defense, hook: str, call: Any) -> Any:
    name = defense.display_name()
    try:
        return call()
    except DefenseError as e:
        e.defense = e.defense or name
        raise
    except Exception as e:  # noqa: BLE001 - any failure of plugin code becomes a named cell error
        raise DefenseError(
            f"defense {name!r}: {hook}() raised {type(e).__name__}: {e}", hook=hook, defense=name
        ) from e


def _typed(defense: Defense, hook: str, fn: Callable[[], Any], expected: type) -> Any:
    out = _guarded(defense, hook, fn)
    if not isinstance(out, expected):
        raise DefenseError(
            f"defense {defense.display_name()!r}: {hook}() returned {type(out).__name__}, "
            f"expected a {expected.__name__}",
            hook=hook,
            defense=defense.display_name(),
        )
    return out


def run_teacher(defense: Defense, spec: TeacherSpec) -> TeacherSpec:
    return _typed(defense, "teacher", lambda: defense.teacher(spec), TeacherSpec)


def run_training(defense: Defense, cfg: TrainConfig) -> TrainConfig:
    return _typed(defense, "training", lambda: defense.training(cfg), TrainConfig)


def run_apply(defense: Defense, rows: Sequence[Row], ctx: DefenseContext) -> list[Row]:
    # Copies, so a built-in that mutates its input cannot change the caller's (stored) rows.
    out = _guarded(defense, "apply", lambda: defense.apply([dict(r) for r in rows], ctx))
    name = defense.display_name()
    if problem := json_problem(ctx.notes, "ctx.notes"):  # stored with the results
        raise DefenseError(
            f"defense {name!r}: apply() left a bad note: {problem}", hook="apply", defense=name
        )
    return check_rows(name, rows, out)
