"""Untrusted defenses (entry points, module files) run in a child process with limits.

:class:`IsolatedDefense` stands in for a defense that is not built in: each hook call (and the one
``describe`` call that loads it) starts a fresh ``spawn`` child — a new interpreter that shares no
memory with the pipeline, so the trait held there is out of reach — which

1. drops the parent's ``argv`` (it may name the trait), starts its own process group and sets an
   address-space limit (``RLIMIT_AS``, :attr:`Limits.memory_mb`) before any plugin code runs;
2. imports the plugin, builds it with its parameters and runs the one hook;
3. sends back JSON (never a pickle: unpickling would run the plugin's code in the pipeline) with
   the result, its Python type, and the helper-model cost the child's context counted.

The parent waits at most :attr:`Limits.time_s`, then kills the child's process group. A crash, a
timeout, an exception, running out of memory, or a result that is not JSON becomes a
:class:`~defenses.runner.DefenseError` naming the defense, the hook and what happened; the row
contract itself is checked by :mod:`defenses.runner` as for a built-in. Each call is a fresh
process, so a plugin keeps no state between the trait and control arms in memory.

Limits default to 2 h and 16 GiB, or ``$SLB_DEFENSE_TIMEOUT_S`` / ``$SLB_DEFENSE_MEMORY_MB``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import multiprocessing
import os
import resource
import signal
import sys
import time
import traceback
import typing
from collections.abc import Callable, Sequence
from typing import Any

from benchmark.core.training import TrainConfig
from benchmark.core.types import TeacherSpec
from defenses.base import Defense, Row
from defenses.context import DefenseContext
from defenses.loading import Source, load_class, source_info
from defenses.runner import DefenseError

log = logging.getLogger(__name__)
MAX_REPLY_BYTES = 2 << 30


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


# -- the child ---------------------------------------------------------------------------------
def _op_describe(d: Defense, source: Source, arg: Any) -> Any:
    return {**d.describe(), "hooks": type(d).hooks(), "source": source_info(source, type(d))}


def _op_teacher(d: Defense, source: Source, spec: TeacherSpec) -> Any:
    out = d.teacher(spec)
    if not isinstance(out, TeacherSpec):
        raise TypeError(f"teacher() returned {type(out).__name__}, expected a TeacherSpec")
    return dataclasses.asdict(out)


def _op_training(d: Defense, source: Source, cfg: TrainConfig) -> Any:
    out = d.training(cfg)
    if not isinstance(out, TrainConfig):
        raise TypeError(f"training() returned {type(out).__name__}, expected a TrainConfig")
    return out.to_dict()


_OPS: dict[str, Callable[[Defense, Source, Any], Any]] = {
    "describe": _op_describe,
    "teacher": _op_teacher,
    "training": _op_training,
}


def _child_main(conn: Any, request: dict[str, Any]) -> None:
    sys.argv = ["slb-defense-child"]
    os.setsid()  # its own process group, so a timeout kills anything it started too
    limit = request["memory_mb"] << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    op, ctx = request["op"], request.get("ctx")
    payload: dict[str, Any] = {}
    try:
        d = load_class(request["source"])(**request["params"])
        if op == "apply":
            out = d.apply(request["arg"], ctx)  # type: ignore[arg-type]  # set for "apply"
            payload = {"type": type(out).__name__, "value": out}
        else:
            payload = {"type": "dict", "value": _OPS[op](d, request["source"], request["arg"])}
        payload["ok"] = True
    except MemoryError:
        payload = {"ok": False, "error": f"ran out of memory (limit {request['memory_mb']} MiB)"}
    except BaseException as e:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are errors too
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        payload = {
            "ok": False,
            "error": f"raised {type(e).__name__}: {e}",
            "tb": "".join(tb)[-4000:],
        }
    if ctx is not None:
        payload["cost"], payload["notes"] = ctx.cost, ctx.notes
    try:
        data = json.dumps(payload)  # NaN passes as NaN; the parent's row check names it
    except (TypeError, ValueError) as e:
        data = json.dumps(
            {"ok": False, "error": f"{op}() returned something that is not JSON: {e}"}
        )
    conn.send_bytes(data.encode())
    conn.close()


# -- the parent --------------------------------------------------------------------------------
def _kill_group(proc: Any) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, TypeError):
        pass
    proc.join(timeout=5)


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals.__members__.values() else -code
        hint = " (out of memory?)" if code == -signal.SIGKILL else ""
        return f"was killed by signal {name}{hint}"
    return f"exited with code {code} without returning a result"


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


class IsolatedDefense(Defense):
    """A non-built-in defense; every hook runs in a fresh child process (module docstring)."""

    def __init__(self, source: Source, params: dict[str, Any], limits: Limits | None = None):
        self.source, self.given, self.limits = source, params, limits or Limits()
        self._described: dict[str, Any] = self._call("describe", None)["value"]
        d = self._described
        if not (isinstance(d.get("name"), str) and isinstance(d.get("params"), dict)):
            raise DefenseError(f"defense {source.ref!r}: describe() is malformed", hook="describe")
        self.params = d["params"]

    def display_name(self) -> str:  # type: ignore[override]
        return str(self._described.get("name") or self.source.ref)

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
        return self._rebuilt(TeacherSpec, "teacher", self._call("teacher", spec)["value"])

    def training(self, cfg: TrainConfig) -> TrainConfig:
        if "training" not in self._described["hooks"]:
            return cfg
        return self._rebuilt(TrainConfig, "training", self._call("training", cfg)["value"])

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

    def _rebuilt(self, cls: type, hook: str, value: Any) -> Any:
        try:
            return _rebuild(cls, value)
        except (TypeError, ValueError) as e:
            raise DefenseError(
                f"defense {self.display_name()!r}: {hook}() returned an invalid {cls.__name__}: {e}",
                hook=hook,
            ) from e

    def _call(self, op: str, arg: Any, ctx: DefenseContext | None = None) -> dict[str, Any]:
        who = self._described["name"] if hasattr(self, "_described") else self.source.ref
        mp = multiprocessing.get_context("spawn")
        recv, send = mp.Pipe(duplex=False)
        request = {
            "op": op,
            "source": self.source,
            "params": self.given,
            "arg": arg,
            "ctx": ctx.blind_copy() if ctx is not None else None,
            "memory_mb": self.limits.memory_mb,
        }
        proc = mp.Process(target=_child_main, args=(send, request), name=f"slb-defense-{op}")
        start = time.monotonic()
        proc.start()
        send.close()  # else the parent's copy keeps the pipe open and a crash never reads as EOF
        data, problem = None, None
        try:
            if recv.poll(self.limits.time_s):
                try:
                    data = recv.recv_bytes(MAX_REPLY_BYTES)
                except EOFError:
                    proc.join(timeout=5)
                    problem = _exit_reason(proc.exitcode)
                except OSError:
                    problem = f"sent back more than {MAX_REPLY_BYTES >> 20} MiB"
            else:
                problem = f"exceeded its time limit of {self.limits.time_s:g} s"
        finally:
            _kill_group(proc)
            recv.close()
        what = "loading it" if op == "describe" else f"{op}()"
        if problem or data is None:
            raise DefenseError(f"defense {who!r}: {what} {problem}", hook=op)
        try:
            reply = json.loads(data)
        except ValueError as e:
            raise DefenseError(f"defense {who!r}: {what} sent an unreadable reply", hook=op) from e
        if ctx is not None and isinstance(reply.get("cost"), dict):
            ctx.add_cost(reply["cost"])
            if isinstance(reply.get("notes"), dict):
                ctx.notes.update(reply["notes"])
        if not reply.get("ok"):
            if reply.get("tb"):  # the plugin author's traceback, from the child
                log.warning("defense %r %s failed in its child:\n%s", who, what, reply["tb"])
            raise DefenseError(f"defense {who!r}: {what} {reply.get('error')}", hook=op)
        reply["seconds"] = time.monotonic() - start
        return reply
