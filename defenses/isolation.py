"""Untrusted defenses (entry points, module files) run in a child process, shut in where the OS allows.

:class:`IsolatedDefense` stands in for a defense that is not built in: each hook call (and the one
``describe`` call that loads it) starts a fresh child, ``python -m defenses.child`` (the protocol
and the child's side are in :mod:`defenses.child`), which

1. runs with a fixed ``argv``, an allow-listed environment, a private empty working, home and
   temporary directory, and no file descriptor of the parent's but its three pipes;
2. under OS namespaces (:mod:`defenses.sandbox`, ``isolation: "namespace"``) sees no other
   process, no network, and of the file system only its own code and the Python environment
   (read-only) — no store, results, model cache or home — and everything it starts ends with it;
   where the OS refuses namespaces (probed once per process), it is a plain child process
   (``isolation: "process"``) whose descendants its supervisor kills as far as it can;
3. sets an address-space limit (``RLIMIT_AS``, :attr:`Limits.memory_mb`, clamped to the hard limit
   it inherits) before any plugin code runs, imports the plugin and runs the one hook;
4. sends back JSON (never a pickle: unpickling would run the plugin's code in the pipeline).

The parent gives the whole round trip — start, request, hook, reply — at most
:attr:`Limits.time_s`, then ends the child and everything it started. A crash, a timeout, an
exception, running out of memory, or a reply that is not JSON becomes a
:class:`~defenses.runner.DefenseError` naming the defense, the hook and what happened. The row
contract is checked by :mod:`defenses.runner` as for a built-in; ``teacher()`` and ``training()``
results by :mod:`defenses.hook_checks`; helper costs and ``ctx.notes`` here.

Which isolation ran is :attr:`IsolatedDefense.isolation` and ``describe()["isolation"]``.
``$SLB_DEFENSE_ISOLATION`` = ``auto`` (default: namespaces where they work), ``namespace``
(required: fail if refused) or ``process`` (force the fallback). Limits default to 2 h and 16 GiB,
or ``$SLB_DEFENSE_TIMEOUT_S`` / ``$SLB_DEFENSE_MEMORY_MB``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
import typing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmark.core.training import TrainConfig
from benchmark.core.types import TeacherSpec
from defenses import sandbox
from defenses.base import Defense, Row
from defenses.context import DefenseContext
from defenses.hook_checks import HookValueError, check_teacher, check_training
from defenses.launch import isolation_mode, round_trip, sys_path
from defenses.loading import Source, code_root, source_info
from defenses.runner import DefenseError, json_problem

log = logging.getLogger(__name__)


def _env_number(name: str, default: float, cast: type) -> float:
    """A positive, finite number from environment variable ``name`` (``default`` when unset); a bad
    value is refused naming the variable."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = cast(text)
    except ValueError:
        raise ValueError(f"${name} must be a positive number, got {text!r}") from None
    if not (0 < value < math.inf):
        raise ValueError(f"${name} must be a positive, finite number, got {text!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per hook call; the defaults are read from the environment when a Limits is made."""

    time_s: float = dataclasses.field(
        default_factory=lambda: _env_number("SLB_DEFENSE_TIMEOUT_S", 7200.0, float)
    )
    memory_mb: int = dataclasses.field(
        default_factory=lambda: int(_env_number("SLB_DEFENSE_MEMORY_MB", 16384, int))
    )

    def __post_init__(self) -> None:
        if not (0 < self.time_s < math.inf) or self.memory_mb <= 0:
            raise ValueError(f"Invalid defense limits: {self}")


# -- the parent --------------------------------------------------------------------------------
def _rebuild(cls: type, value: Any) -> Any:
    """A dataclass from the dict a child sent (nested dataclasses, lists back to tuples)."""
    if not isinstance(value, dict):
        raise TypeError(f"expected an object for {cls.__name__}, got {type(value).__name__}")
    hints, kw = typing.get_type_hints(cls), {}
    for k, v in value.items():
        t = hints.get(k)
        if dataclasses.is_dataclass(t):
            v = _rebuild(t, v)  # type: ignore[arg-type]
        elif typing.get_origin(t) is tuple and isinstance(v, list):
            v = tuple(v)
        kw[k] = v
    return cls(**kw)


def _code(source: Source) -> list[Path]:
    root = code_root(source)
    if root is None:
        return []
    return sandbox.plugin_code(root) if source.kind == "module" else [root]


class IsolatedDefense(Defense):
    """A non-built-in defense; every hook runs in a fresh child process (module docstring).

    ``isolation`` is ``"namespace"`` or ``"process"`` (also ``describe()["isolation"]``);
    ``model_paths`` are the local model directories its ``teacher()`` may name (the submission's
    declared paths; :mod:`defenses.hook_checks`)."""

    def __init__(
        self,
        source: Source,
        params: dict[str, Any],
        limits: Limits | None = None,
        model_paths: Iterable[str | Path] = (),
    ):
        self.source, self.given, self.limits = source, params, limits or Limits()
        self.model_paths = tuple(model_paths)
        self.isolation = isolation_mode()
        d = self._call("describe", None)["value"]
        if not (isinstance(d, dict) and isinstance(d.get("name"), str)):
            raise DefenseError(f"defense {source.ref!r}: describe() is malformed", hook="describe")
        if not isinstance(d.get("params"), dict) or not isinstance(d.get("hooks"), list):
            raise DefenseError(f"defense {source.ref!r}: describe() is malformed", hook="describe")
        # The parent's own account of the code and of how it ran, never the child's.
        self._described = {**d, "source": source_info(source), "isolation": self.isolation}
        self.params = d["params"]

    def display_name(self) -> str:  # type: ignore[override]
        described = getattr(self, "_described", None) or {}
        return str(described.get("name") or self.source.ref)

    def describe(self) -> dict[str, Any]:
        return dict(self._described)

    def identity(self) -> dict[str, Any]:
        d = self._described
        return {
            "name": d["name"],
            "version": str(d.get("version")),
            "params": d["params"],
            "sha256": d["source"].get("sha256"),  # the plugin's code is part of what it does
        }

    def teacher(self, spec: TeacherSpec) -> TeacherSpec:
        if "teacher" not in self._described["hooks"]:
            return spec
        value = self._call("teacher", spec)["value"]
        self._checked("teacher", lambda: check_teacher(value, spec, self.model_paths))
        return self._rebuilt(TeacherSpec, "teacher", value)

    def training(self, cfg: TrainConfig) -> TrainConfig:
        if "training" not in self._described["hooks"]:
            return cfg
        value = self._call("training", cfg)["value"]
        self._checked("training", lambda: check_training(value))
        return self._rebuilt(TrainConfig, "training", value)

    def apply(self, rows: Sequence[Row], ctx: DefenseContext) -> Any:
        if "apply" not in self._described["hooks"]:
            return list(rows)
        reply = self._call("apply", list(rows), ctx)
        if reply["type"] != "list":
            raise DefenseError(
                f"defense {self.display_name()!r}: apply() returned {reply['type']}, "
                "expected a list of rows",
                hook="apply",
            )
        return reply["value"]

    def _checked(self, hook: str, check: Callable[[], None]) -> None:
        try:
            check()
        except HookValueError as e:
            raise DefenseError(
                f"defense {self.display_name()!r}: {hook}() returned a bad {e.field}: "
                f"{str(e).removeprefix(e.field).strip()}",
                hook=hook,
            ) from None

    def _rebuilt(self, cls: type, hook: str, value: Any) -> Any:
        try:
            return _rebuild(cls, value)
        except (TypeError, ValueError) as e:
            raise DefenseError(
                f"defense {self.display_name()!r}: {hook}() returned an invalid {cls.__name__}: {e}",
                hook=hook,
            ) from e

    def _call(self, op: str, arg: Any, ctx: DefenseContext | None = None) -> dict[str, Any]:
        who = self.display_name()
        what = "loading it" if op == "describe" else f"{op}()"
        request = {
            "op": op,
            "source": self.source,
            "params": self.given,
            "arg": arg,
            "ctx": ctx.blind_copy() if ctx is not None else None,
            "memory_mb": self.limits.memory_mb,
            "sys_path": sys_path(),
            "plan": None,
        }
        if self.isolation == "namespace":  # what it sees: its code and the Python environment
            code = _code(self.source)
            request["plan"] = sandbox.plan_for(code, request["sys_path"], self.limits.memory_mb)
        start = time.monotonic()
        data, problem, tail = round_trip(self.isolation, request, self.limits.time_s)
        if tail.strip():
            log.info("defense %r %s wrote:\n%s", who, what, tail.rstrip())
        if problem or data is None:
            raise DefenseError(f"defense {who!r}: {what} {problem}", hook=op)
        try:
            reply = json.loads(data)
            assert isinstance(reply, dict)
        except (ValueError, AssertionError) as e:
            raise DefenseError(f"defense {who!r}: {what} sent an unreadable reply", hook=op) from e
        if ctx is not None and "cost" in reply:
            self._take_cost(ctx, reply, what, op)
        if not reply.get("ok"):
            if reply.get("tb"):  # the plugin author's traceback, from the child
                log.warning("defense %r %s failed in its child:\n%s", who, what, reply["tb"])
            raise DefenseError(f"defense {who!r}: {what} {reply.get('error')}", hook=op)
        reply["seconds"] = time.monotonic() - start
        return reply

    def _take_cost(self, ctx: DefenseContext, reply: dict[str, Any], what: str, op: str) -> None:
        """Fold the child's helper cost and notes into ``ctx``, refusing what is not a finite,
        non-negative count or JSON-safe note."""
        who, notes = self.display_name(), reply.get("notes")
        if not isinstance(notes, dict):
            problem: str | None = f"ctx.notes is {type(notes).__name__}, expected a dict"
        else:
            problem = json_problem(notes, "ctx.notes")
        if problem or not isinstance(notes, dict):
            raise DefenseError(f"defense {who!r}: {what} left a bad note: {problem}", hook=op)
        try:
            ctx.add_cost(reply["cost"])
        except ValueError as e:
            raise DefenseError(
                f"defense {who!r}: {what} reported an invalid helper cost: {e}", hook=op
            ) from None
        ctx.notes.update(notes)
