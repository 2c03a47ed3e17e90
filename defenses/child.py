"""The child process of an isolated defense: ``python -m defenses.child MODE``.

Started by :mod:`defenses.isolation`, never imported by the pipeline. The protocol:

* the parent writes one pickled request to the child's stdin and closes it (only the parent's own
  objects are unpickled, and only here; nothing travels back as a pickle);
* the child answers on its stdout with one frame — an 8-byte big-endian length, then JSON — and
  writes nothing else there: the plugin's own stdout and stderr go to the child's stderr, whose
  tail the parent logs.

The first process is a trusted *supervisor*. With ``MODE`` ``namespace`` it is pid 1 of fresh
namespaces and shuts itself in first (:func:`defenses.sandbox.enter`); with ``process`` it makes
itself a subreaper. It then forks a *worker* that starts its own session, gives up its privileges
(namespace) and sets the memory limit, imports the plugin, runs the one hook and sends its reply
through a pipe. The supervisor forwards that reply, or — when the worker dies without one — says
how it died, and then ends everything the worker started: by exiting (the kernel kills what is
left in a PID namespace) or by killing the descendants it reaped (process mode).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import resource
import select
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

from benchmark.core.training import TrainConfig
from benchmark.core.types import TeacherSpec
from defenses import sandbox
from defenses.base import Defense
from defenses.loading import load_class

MAX_REPLY_BYTES = 2 << 30


class _Refused(Exception):
    """A hook result of the wrong kind; the parent prefixes the defense and hook."""


def _op_describe(d: Defense, arg: Any) -> Any:
    return {**d.describe(), "hooks": type(d).hooks()}


def _op_teacher(d: Defense, spec: TeacherSpec) -> Any:
    out = d.teacher(spec)
    if not isinstance(out, TeacherSpec):
        raise _Refused(f"returned {type(out).__name__}, expected a TeacherSpec")
    return dataclasses.asdict(out)


def _op_training(d: Defense, cfg: TrainConfig) -> Any:
    out = d.training(cfg)
    if not isinstance(out, TrainConfig):
        raise _Refused(f"returned {type(out).__name__}, expected a TrainConfig")
    return out.to_dict()


_OPS: dict[str, Callable[[Defense, Any], Any]] = {
    "describe": _op_describe,
    "teacher": _op_teacher,
    "training": _op_training,
}


def _memory_limit(mb: int) -> int:
    """Set ``RLIMIT_AS`` to ``mb`` MiB, or to the hard limit this process inherited if that is
    lower (raising a soft limit above the hard one is refused); returns the limit in MiB."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mb << 20 if hard == resource.RLIM_INFINITY else min(mb << 20, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError) as e:
        raise RuntimeError(f"could not set its memory limit of {limit >> 20} MiB: {e}") from None
    return limit >> 20


def _child_main(request: dict[str, Any], namespace: bool) -> dict[str, Any]:
    """Run the request's hook; the reply payload. Every failure, setup included, is a reply."""
    op, ctx = request["op"], request.get("ctx")
    limit_mb = request["memory_mb"]
    payload: dict[str, Any]
    try:
        if namespace:
            sandbox.drop_privileges()
        limit_mb = _memory_limit(request["memory_mb"])
        sys.argv = ["slb-defense-child"]
        sys.path[:0] = [p for p in request["sys_path"] if p not in sys.path]
        d = load_class(request["source"])(**request["params"])
        if op == "apply":
            out = d.apply(request["arg"], ctx)  # type: ignore[arg-type]  # set for "apply"
            payload = {"type": type(out).__name__, "value": out}
        else:
            payload = {"type": "dict", "value": _OPS[op](d, request["arg"])}
        payload["ok"] = True
    except _Refused as e:
        payload = {"ok": False, "error": str(e)}
    except MemoryError:
        payload = {"ok": False, "error": f"ran out of memory (limit {limit_mb} MiB)"}
    except BaseException as e:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are errors too
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        payload = {
            "ok": False,
            "error": f"raised {type(e).__name__}: {e}",
            "tb": "".join(tb)[-4000:],
        }
    if ctx is not None:
        try:
            payload["cost"], payload["notes"] = ctx.cost, ctx.notes
        except Exception as e:  # noqa: BLE001 - a plugin can break its context's helpers
            payload = {"ok": False, "error": f"left a context whose cost cannot be read: {e}"}
    return payload


def _encode(payload: dict[str, Any]) -> bytes:
    try:
        return json.dumps(payload).encode()  # NaN passes as NaN; the parent's checks name it
    except (TypeError, ValueError) as e:
        try:
            json.dumps(payload.get("notes"))
        except (TypeError, ValueError) as notes_error:
            problem = f"put something that is not JSON in ctx.notes: {notes_error}"
        else:
            problem = f"returned something that is not JSON: {e}"
        return json.dumps({"ok": False, "error": problem}).encode()


def _write_frame(fd: int, data: bytes) -> None:
    view = memoryview(len(data).to_bytes(8, "big") + data)
    while view:
        view = view[os.write(fd, view) :]


def _worker(request: dict[str, Any], out: int, namespace: bool) -> None:
    os.setsid()  # its own session and process group, which a timeout kills whole
    if not namespace:  # a namespace ends with its supervisor; a process needs telling
        sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)
    _write_frame(out, _encode(_child_main(request, namespace)))
    os._exit(0)  # no atexit handlers or threads of the plugin run on after the reply


def _collect(r: int, pid: int) -> bytes:
    """The worker's reply, or an error reply saying how it ended without one."""
    buf, need, status, eof = bytearray(), 0, None, False
    while True:
        ready = not eof and bool(select.select([r], [], [], 0.1)[0])
        if ready:
            chunk = os.read(r, 1 << 20)
            eof = not chunk
            buf += chunk
        if not need and len(buf) >= 8:
            need = 8 + int.from_bytes(buf[:8], "big")
            if need - 8 > MAX_REPLY_BYTES:
                return _error(f"sent back more than {MAX_REPLY_BYTES >> 20} MiB")
        if need and len(buf) >= need:
            return bytes(buf[8:need])
        if status is None:
            done, st = os.waitpid(pid, 0 if eof else os.WNOHANG)
            status = os.waitstatus_to_exitcode(st) if done else None
        if status is not None and not ready:  # gone, and nothing more in the pipe
            return _error(sandbox.exit_reason(status))


def _error(problem: str) -> bytes:
    return json.dumps({"ok": False, "error": problem}).encode()


def main(mode: str) -> None:
    namespace = mode == "namespace"
    request = pickle.loads(sys.stdin.buffer.read())
    reply = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)  # from here on only the reply fd carries the reply
    try:
        if namespace:
            sandbox.enter(request["plan"])
        else:
            sandbox.prctl(sandbox.PR_SET_CHILD_SUBREAPER, 1)
        sandbox.prctl(sandbox.PR_SET_DUMPABLE, 0)  # the worker cannot ptrace its supervisor
    except OSError as e:
        _write_frame(reply, _error(f"could not be shut in its {mode}: {e}"))
        return
    if request["op"] == "probe":
        _write_frame(reply, json.dumps({"ok": True}).encode())
        return
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.close(reply)
        _worker(request, w, namespace)
    os.close(w)
    if not namespace:

        def stop(*_: Any) -> None:  # the parent's timeout: end the worker and all it started
            sandbox.kill_descendants(pid)
            os._exit(1)

        signal.signal(signal.SIGTERM, stop)
    data = _collect(r, pid)
    if not namespace:
        sandbox.kill_descendants(pid)
    _write_frame(reply, data)


if __name__ == "__main__":
    main(sys.argv[1])
