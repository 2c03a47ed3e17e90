"""What ``slb validate``'s checks share: the report they fill, the tolerant comparison of stored
and recomputed numbers, and the capped, checked reading of an untrusted JSON file."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.core.results import ADDED_LATER
from benchmark.run.submission import read_capped, tree_problem

REL_TOL, ABS_TOL = 1e-6, 1e-9
MAX_RESULT_BYTES = 10_000_000  # a real artifact is about 60 kB; far beyond is refused unread


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        lines = [f"PROBLEM: {p}" for p in self.problems] + [f"warning: {w}" for w in self.warnings]
        lines += [f"ok: {n}" for n in self.notes]
        verdict = "valid" if self.ok else f"{len(self.problems)} problem(s)"
        return "\n".join([*lines, f"{verdict}, {len(self.warnings)} warning(s)"])


def diff_numbers(stored: Any, fresh: Any, where: str, limit: int = 5) -> list[str]:
    """Paths where two JSON trees differ (numbers within tolerance are equal)."""
    out: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k), b.get(k), f"{path}.{k}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{path}[{i}]")
        elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and a is not True:
            if not math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL):
                out.append(f"{path}: stored {a!r}, recomputed {b!r}")
        elif a != b:
            out.append(f"{path}: stored {a!r}, recomputed {b!r}")

    walk(stored, fresh, where)
    return out


def read_json(path: Path, what: str = "a result file") -> tuple[Any, str | None]:
    """``(decoded JSON, None)``, or ``(None, why it cannot be used)`` in one line."""
    data, problem = read_capped(path, MAX_RESULT_BYTES, what)
    if data is None:
        return None, problem
    try:
        obj = json.loads(data.decode("utf-8"))
    except RecursionError:
        return None, "JSON nested too deeply to decode (expected an object a few levels deep)"
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None, f"unreadable JSON ({what} expected): {e}"
    return (None, problem) if (problem := tree_problem(obj)) else (obj, None)


def kind_of(v: Any) -> str:
    name = type(v).__name__
    return "null" if v is None else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def added_later(stored: Any, fresh: Any, where: str, report: Report) -> None:
    """Drop from ``fresh`` the statistic that artifacts written before it existed lack (a warning,
    not a problem: their stored numbers are still checked)."""
    if isinstance(stored, dict) and isinstance(fresh, dict):
        for key in ADDED_LATER:
            if key in fresh and key not in stored:
                del fresh[key]
                report.warnings.append(f"{where}: no {key} statistic (artifact predates it)")
