"""Start an isolated defense's child, hand it one request and read its reply, within a time limit.

:func:`round_trip` is the parent's side of the protocol in :mod:`defenses.child`: it starts
``python -m defenses.child MODE`` (under ``unshare`` for ``MODE`` ``namespace``,
:mod:`defenses.sandbox`), writes the pickled request to its stdin from a thread, reads the reply
frame from its stdout and keeps the tail of its stderr, all within one deadline, and then ends the
child and everything it started. :func:`isolation_mode` picks the mode: ``$SLB_DEFENSE_ISOLATION``
(``auto`` by default, ``namespace`` or ``process``) and one probe per process of whether this
machine allows namespaces (:func:`namespace_problem`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import pickle
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any

from defenses import sandbox

log = logging.getLogger(__name__)
MAX_REPLY_BYTES = 2 << 30
LOG_TAIL_BYTES = 256 << 10
ENV_MODE = "SLB_DEFENSE_ISOLATION"
MODES = ("auto", "namespace", "process")


# -- which isolation -------------------------------------------------------------------------
def sys_path() -> list[str]:
    """The parent's import path for the child (as ``multiprocessing`` spawn passed it), less the
    entries that mean the parent's working directory."""
    cwd = os.getcwd()
    # Relative entries made absolute (the child runs elsewhere); a path hook's name kept as is.
    entries = [os.path.abspath(p) if os.path.exists(p) else p for p in sys.path if p]
    return [p for p in entries if p != cwd]


@functools.lru_cache(maxsize=1)
def namespace_problem() -> str | None:
    """Why OS namespaces cannot shut a child in on this machine, or None when they can; probed
    once per process by starting a real child under them."""
    if shutil.which(sandbox.UNSHARE[0]) is None:
        problem: str | None = "util-linux `unshare` is not installed"
    else:
        try:
            request = {"op": "probe", "plan": sandbox.plan_for([], sys_path(), 64)}
            data, problem, _ = round_trip("namespace", request, 60)
            if data is not None and not json.loads(data).get("ok"):
                problem = str(json.loads(data).get("error"))
        except (OSError, ValueError) as e:
            problem = f"{type(e).__name__}: {e}"
    if problem is not None:
        log.warning("untrusted defenses run as plain processes: OS namespaces fail (%s)", problem)
    return problem


def isolation_mode() -> str:
    """``"namespace"`` or ``"process"``, as ``$SLB_DEFENSE_ISOLATION`` asks and the OS allows."""
    want = os.environ.get(ENV_MODE, "").strip() or "auto"
    if want not in MODES:
        raise ValueError(f"${ENV_MODE} must be one of {', '.join(MODES)}, got {want!r}")
    if want == "process":
        return "process"
    problem = namespace_problem()
    if problem is not None and want == "namespace":
        raise ValueError(f"${ENV_MODE}=namespace, but this machine refuses namespaces: {problem}")
    return "process" if problem else "namespace"


# -- one round trip ------------------------------------------------------------------------------
def _feed(pipe: IO[bytes], data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except (BrokenPipeError, OSError, ValueError):
        pass  # the child died or was killed; the reader says how


def _read(
    proc: subprocess.Popen[bytes], deadline: float, time_s: float
) -> tuple[bytes | None, str | None, bytes]:
    """(reply, None, log) or (None, problem, log), reading the child's reply frame from its stdout
    and the tail of its stderr until the frame is complete, the reply pipe closes, or time is up."""
    assert proc.stdout is not None and proc.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "reply")
    sel.register(proc.stderr, selectors.EVENT_READ, "log")
    buf, tail, need = bytearray(), b"", 0
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, f"exceeded its time limit of {time_s:g} s", tail
            for key, _ in sel.select(min(left, 1.0)):
                chunk = os.read(key.fd, 1 << 20)
                if key.data == "log":
                    tail = (tail + chunk)[-LOG_TAIL_BYTES:]
                    if not chunk:
                        sel.unregister(key.fileobj)
                    continue
                if not chunk:  # the child ended without a whole reply
                    try:
                        code = proc.wait(timeout=max(0.1, min(5.0, left)))
                    except subprocess.TimeoutExpired:
                        code = None
                    return None, sandbox.exit_reason(code), tail
                buf += chunk
                if not need and len(buf) >= 8:
                    need = 8 + int.from_bytes(buf[:8], "big")
                    if need - 8 > MAX_REPLY_BYTES:
                        return None, f"sent back more than {MAX_REPLY_BYTES >> 20} MiB", tail
                if need and len(buf) >= need:
                    return bytes(buf[8:need]), None, tail
    finally:
        sel.close()


def _end(proc: subprocess.Popen[bytes], namespace: bool, replied: bool) -> None:
    """End the child and everything it started. After its reply the child ends by itself: a
    namespace's first process by exiting (the kernel kills what is left in the namespace), a
    process supervisor after killing what it reaped (:func:`defenses.sandbox.kill_descendants`).
    Otherwise a supervisor gets SIGTERM to do the same, and a namespace is killed through
    ``unshare`` (``--kill-child``); the child's process group is killed last in every case."""
    if replied and proc.poll() is None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    if not namespace and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    first = sandbox.children(proc.pid) if namespace and proc.poll() is None else []
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    sandbox.wait_gone(first)  # killing unshare only starts the namespace's end


def round_trip(
    mode: str, request: dict[str, Any], time_s: float
) -> tuple[bytes | None, str | None, str]:
    """Start a child in ``mode``, hand it ``request``, and wait at most ``time_s`` in all for its
    reply: ``(reply JSON, None, log tail)`` or ``(None, problem, log tail)``."""
    deadline = time.monotonic() + time_s
    namespace = mode == "namespace"
    workdir = "/tmp" if namespace else tempfile.mkdtemp(prefix="slb-defense-")
    hub = namespace and bool(request.get("plan") and request["plan"].hub)
    argv = [sys.executable, "-I", "-B", "-m", "defenses.child", mode]
    try:
        proc = subprocess.Popen(
            [*sandbox.UNSHARE, *argv] if namespace else argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd="/" if namespace else workdir,
            env=sandbox.child_env(namespace, workdir, hub),
            close_fds=True,
            start_new_session=True,
        )
    except OSError as e:
        if not namespace:
            shutil.rmtree(workdir, ignore_errors=True)
        return None, f"could not be started: {e}", ""
    assert proc.stdin is not None
    feeder = threading.Thread(
        target=_feed, args=(proc.stdin, pickle.dumps(request, protocol=5)), daemon=True
    )
    feeder.start()
    data: bytes | None = None
    problem: str | None = "was interrupted"
    tail = b""
    try:
        data, problem, tail = _read(proc, deadline, time_s)
    finally:
        _end(proc, namespace, replied=data is not None)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        if not namespace:
            shutil.rmtree(workdir, ignore_errors=True)
    return data, problem, tail.decode(errors="replace")
