"""Run a defense's ``apply`` hook and check what it returned.

A defense may drop rows or rewrite their text; it may not add rows, change or reorder ids, or return
anything but ``{id, prompt, completion}`` rows with string text. Any violation is a
:class:`DefenseError` naming the defense and the problem, so the cell records it instead of training
on corrupted data. (Untrusted, non-built-in defenses will additionally run in a child process.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from defenses.base import Defense, DefenseContext, Row


class DefenseError(RuntimeError):
    """A defense failed or broke the row contract."""


def check_rows(name: str, before: Sequence[Row], after: Any) -> list[Row]:
    if not isinstance(after, list):
        raise DefenseError(
            f"defense {name!r} returned {type(after).__name__}, expected a list of rows"
        )
    positions = {r["id"]: i for i, r in enumerate(before)}
    last = -1
    for j, r in enumerate(after):
        if not isinstance(r, dict):
            raise DefenseError(f"defense {name!r}: row {j} is {type(r).__name__}, expected a dict")
        rid = r.get("id")
        if rid not in positions:
            raise DefenseError(
                f"defense {name!r}: row {j} has id {rid!r}, which was not in its input (added or changed id)"
            )
        if positions[rid] <= last:
            raise DefenseError(
                f"defense {name!r}: row {j} (id {rid!r}) is out of order or repeated"
            )
        last = positions[rid]
        for k in ("prompt", "completion"):
            v = r.get(k)
            if not isinstance(v, str):
                raise DefenseError(
                    f"defense {name!r}: row {rid!r} field {k!r} is {type(v).__name__}, expected str"
                )
        for k, v in r.items():
            if isinstance(v, float) and math.isnan(v):
                raise DefenseError(f"defense {name!r}: row {rid!r} field {k!r} is NaN")
    return after


def run_apply(defense: Defense, rows: Sequence[Row], ctx: DefenseContext) -> list[Row]:
    try:
        out = defense.apply([dict(r) for r in rows], ctx)
    except Exception as e:  # noqa: BLE001 - any failure of plugin code becomes a named cell error
        raise DefenseError(f"defense {defense.name!r} raised {type(e).__name__}: {e}") from e
    return check_rows(defense.name, rows, out)
