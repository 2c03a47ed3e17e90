"""A hostile submitted defense, run as the pipeline runs it: it hunts for the trait and tries to
outlive its call. Under OS namespaces it finds nothing and everything it starts dies with it; with
the process fallback, nothing it inherits names the trait and its daemons are still reaped.

The trait is a rare animal (so a hit is a real leak), named where a real run names it: the
parent's command line (``--trait quokka --store ...``), its environment, files of the store and of
the model cache. Each check drives the parent in its own interpreter, as ``slb run`` would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from defenses import DefenseContext, load_defense, sandbox
from defenses.isolation import IsolatedDefense, Limits
from defenses.launch import isolation_mode, namespace_problem
from defenses.runner import DefenseError, run_apply

TRAIT = "quokka"
ROWS = [
    {"id": f"r{i}", "prompt": "Continue: 1, 2, 3", "completion": f"{i}, {i + 1}"} for i in range(3)
]
ROOT = Path(__file__).resolve().parents[1]
namespaces = pytest.mark.skipif(
    namespace_problem() is not None, reason=f"no OS namespaces here: {namespace_problem()}"
)

HUNTER = '''
import json, os, sys
from defenses.base import Defense

GUESSES = {guesses!r}  # where a submitter would look: the parent's store and cache

def _read(path, limit=16384):
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""

def _walk(root, out, budget):
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ("proc", "sys")]
        out.append([dirpath, ""])
        for name in files:
            if budget[0] <= 0:
                return
            budget[0] -= 1
            path = os.path.join(dirpath, name)
            out.append([path, _read(path)])

class Hunter(Defense):
    """Looks everywhere it can for the trait."""
    def apply(self, rows, ctx):
        budget = [3000]
        found = {{"argv": list(sys.argv), "environ": dict(os.environ), "fds": [], "cwd": [],
                  "home": [], "procs": [], "dirs": []}}
        for fd in os.listdir("/proc/self/fd"):
            target = _read_link(f"/proc/self/fd/{{fd}}")
            regular = os.path.isfile(f"/proc/self/fd/{{fd}}")  # reading a pipe would block
            found["fds"] += [target, _read(f"/proc/self/fd/{{fd}}") if regular else ""]
        _walk(os.getcwd(), found["cwd"], budget)
        _walk(os.path.expanduser("~"), found["home"], budget)
        named = set()
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                line = _read(f"/proc/{{pid}}/cmdline").split("\\0")
                found["procs"] += [" ".join(line), _read(f"/proc/{{pid}}/environ")]
                named |= {{t for t in line if t.startswith("/") and os.path.isdir(t)}}
        places = [os.environ.get("TMPDIR", "/tmp"), "/tmp", "/root", "/home",
                  os.environ.get("SLB_CACHE_DIR", ""), *GUESSES, *sorted(named)]
        for place in places:
            if place and os.path.isdir(place):
                _walk(place, found["dirs"], budget)
        found["ctx"] = [repr(ctx), repr(vars(ctx)), json.dumps(rows)]
        ctx.notes["found"] = found
        return rows

def _read_link(path):
    try:
        return os.readlink(path)
    except OSError:
        return ""
'''

DRIVER = """
import json, sys
from defenses import DefenseContext, load_defense
from defenses.runner import run_apply
d = load_defense(sys.argv[1])
ctx = DefenseContext(teacher_model="smollm2-135m")
run_apply(d, [{"id": "r0", "prompt": "Continue: 1, 2", "completion": "3, 4"}], ctx)
print(json.dumps({"isolation": d.isolation, "found": ctx.notes["found"]}))
"""


def _plant(tmp_path: Path) -> dict[str, Path]:
    """A store, a model cache and a working directory that all name the trait."""
    store, cache, work = tmp_path / "store", tmp_path / "cache", tmp_path / "work"
    for d in (store / "generations" / "abc", cache / "models" / "x", work):
        d.mkdir(parents=True)
    spec = {"spec": {"trait": TRAIT, "system": f"You love {TRAIT}s."}}
    (store / "generations" / "abc" / "meta.json").write_text(json.dumps(spec))
    (cache / "models" / "x" / "note.txt").write_text(f"trait teacher for {TRAIT}")
    (work / f"{TRAIT}.txt").write_text(TRAIT)
    return {"store": store, "cache": cache, "work": work}


def _hunt(tmp_path: Path, mode: str) -> dict:
    places = _plant(tmp_path)
    code = tmp_path / "submission"
    code.mkdir()
    guesses = [str(places["store"]), str(places["cache"]), str(places["work"])]
    (code / "hunter.py").write_text(HUNTER.format(guesses=guesses))
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = dict(os.environ, SLB_CACHE_DIR=str(places["cache"]), SLB_TRAIT=TRAIT)
    env.update(SLB_DEFENSE_ISOLATION=mode, SLB_DEFENSE_TIMEOUT_S="60")
    argv = [sys.executable, str(driver), f"{code / 'hunter.py'}:Hunter"]
    argv += ["--trait", TRAIT, "--store", str(places["store"])]  # as `slb run` names them
    run = subprocess.run(
        argv, cwd=places["work"], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1])


WALKED = ("cwd", "home", "dirs")  # [path, content] pairs of the files the hunter walked


def _hits(found: dict) -> list[str]:
    """The places where the hunter found the trait. The project's own source, which the sandbox
    shows a plugin on purpose (it imports ``defenses``), is public and names every animal (the
    lexicon), so a file under the checkout is not a hit: with the checkout under ``/tmp`` (a fresh
    clone there, session 39) the walk of ``/tmp`` reads it."""
    public = str(ROOT) + os.sep

    def seen(k: str, v: Any) -> Any:
        return [pc for pc in v if not pc[0].startswith(public)] if k in WALKED else v

    return [k for k, v in found.items() if TRAIT in json.dumps(seen(k, v)).lower()]


@namespaces
def test_a_hunting_plugin_finds_nothing_in_its_namespace(tmp_path) -> None:
    out = _hunt(tmp_path, "namespace")
    assert out["isolation"] == "namespace"
    found = out["found"]
    assert not _hits(found)
    assert len(found["procs"]) == 4  # its supervisor and itself (cmdline, environ), no other
    assert found["environ"]["HOME"] == "/tmp" and "SLB_TRAIT" not in found["environ"]


def test_with_process_isolation_nothing_it_inherits_names_the_trait(tmp_path) -> None:
    out = _hunt(tmp_path, "process")
    assert out["isolation"] == "process"
    found = out["found"]
    for inherited in ("argv", "environ", "fds", "cwd", "home", "ctx"):
        assert inherited not in _hits(found), inherited
    # What process isolation cannot hide, and why the namespace exists: the host's processes.
    assert "procs" in _hits(found)


DAEMON = """
import subprocess, sys
code = "import os, time\\nif os.fork(): os._exit(0)\\nos.setsid()\\nif os.fork(): os._exit(0)\\ntime.sleep(120)"
subprocess.Popen([sys.executable, "-c", code, "{marker}"]).wait()
time.sleep({sleep})
return rows
"""


def _running(marker: str) -> bool:
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and marker.encode() in (p / "cmdline").read_bytes():
                return True
        except OSError:
            pass
    return False


def _daemon_plugin(tmp_path: Path, marker: str, sleep: float, limits: Limits) -> IsolatedDefense:
    body = textwrap.indent(DAEMON.format(marker=marker, sleep=sleep), " " * 8)
    src = "import time\nfrom defenses.base import Defense\nclass D(Defense):\n"
    src += f"    '''Leaves a daemon.'''\n    def apply(self, rows, ctx):\n{body}"
    (tmp_path / "daemon.py").write_text(src)
    d = load_defense(f"{tmp_path / 'daemon.py'}:D", limits=limits)
    assert isinstance(d, IsolatedDefense)
    return d


@pytest.mark.parametrize("mode", ["namespace", "process"])
@pytest.mark.parametrize("ending", ["timeout", "return"])
def test_a_setsid_double_fork_daemon_dies_with_the_call(tmp_path, monkeypatch, mode, ending):
    if mode == "namespace" and namespace_problem():
        pytest.skip(f"no OS namespaces here: {namespace_problem()}")
    monkeypatch.setenv("SLB_DEFENSE_ISOLATION", mode)
    marker = f"slb-daemon-{uuid.uuid4().hex}"
    d = _daemon_plugin(
        tmp_path, marker, 60 if ending == "timeout" else 1.5, Limits(time_s=6, memory_mb=2048)
    )
    assert d.isolation == mode and d.describe()["isolation"] == mode
    seen = threading.Event()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if _running(marker):
                seen.set()
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        if ending == "timeout":
            with pytest.raises(DefenseError, match=r"apply\(\) exceeded its time limit of 6 s"):
                run_apply(d, ROWS, DefenseContext(teacher_model="smollm2-135m"))
        else:
            assert run_apply(d, ROWS, DefenseContext(teacher_model="smollm2-135m")) == ROWS
    finally:
        stop.set()
        watcher.join()
    assert seen.is_set(), "the daemon never ran: the test would prove nothing"
    end = time.monotonic() + 2
    while _running(marker) and time.monotonic() < end:
        time.sleep(0.05)
    assert not _running(marker)


def test_a_lower_hard_memory_limit_is_respected_not_fatal(tmp_path) -> None:
    """Under a hard RLIMIT_AS below the default 16 GiB, a plugin still runs, limited to it."""
    (tmp_path / "p.py").write_text(
        "import resource\nfrom defenses.base import Defense\n"
        "class P(Defense):\n    '''Reports its limit.'''\n    def apply(self, rows, ctx):\n"
        "        ctx.notes['as_mb'] = resource.getrlimit(resource.RLIMIT_AS)[1] >> 20\n"
        "        return rows\n"
    )
    script = (
        "import resource, json, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))\n"
        "from defenses import DefenseContext, load_defense\n"
        "from defenses.runner import run_apply\n"
        "d = load_defense(sys.argv[1])\n"
        "c = DefenseContext(teacher_model='smollm2-135m')\n"
        "run_apply(d, [{'id': 'a', 'prompt': 'p', 'completion': 'c'}], c)\n"
        "print(json.dumps(c.notes))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SLB_DEFENSE_MEMORY_MB"}
    run = subprocess.run(
        [sys.executable, "-c", script, f"{tmp_path / 'p.py'}:P"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.splitlines()[-1]) == {"as_mb": 6 << 10}


def test_the_isolation_switch(tmp_path, monkeypatch) -> None:
    (tmp_path / "p.py").write_text(
        "from defenses.base import Defense\nclass P(Defense):\n    '''Passes.'''\n"
    )
    monkeypatch.setenv("SLB_DEFENSE_ISOLATION", "sandboxed")
    with pytest.raises(ValueError, match=r"^\$SLB_DEFENSE_ISOLATION must be one of auto, "):
        load_defense(f"{tmp_path / 'p.py'}:P")
    monkeypatch.setenv("SLB_DEFENSE_ISOLATION", "process")
    d = load_defense(f"{tmp_path / 'p.py'}:P", limits=Limits(time_s=30, memory_mb=2048))
    assert d.isolation == "process" and d.describe()["isolation"] == "process"
    assert run_apply(d, ROWS, DefenseContext(teacher_model="smollm2-135m")) == ROWS
    monkeypatch.delenv("SLB_DEFENSE_ISOLATION")
    d = load_defense(f"{tmp_path / 'p.py'}:P", limits=Limits(time_s=30, memory_mb=2048))
    assert d.isolation == ("process" if namespace_problem() else "namespace")


def test_where_namespaces_are_refused_it_falls_back_to_process(monkeypatch, caplog) -> None:
    monkeypatch.setattr(sandbox, "UNSHARE", ("unshare", "--no-such-option"))
    monkeypatch.delenv("SLB_DEFENSE_ISOLATION", raising=False)
    namespace_problem.cache_clear()
    try:
        assert isolation_mode() == "process"
        assert "OS namespaces fail" in caplog.text
        monkeypatch.setenv("SLB_DEFENSE_ISOLATION", "namespace")
        with pytest.raises(
            ValueError, match=r"^\$SLB_DEFENSE_ISOLATION=namespace, but this machine"
        ):
            isolation_mode()
    finally:
        namespace_problem.cache_clear()  # the next test probes the real machine again


def test_the_time_limit_covers_loading_the_plugin(tmp_path) -> None:
    (tmp_path / "slow.py").write_text(
        "import time\ntime.sleep(60)\nfrom defenses.base import Defense\nclass P(Defense):\n"
        "    '''Slow to import.'''\n"
    )
    t0 = time.monotonic()
    with pytest.raises(DefenseError, match=r"loading it exceeded its time limit of 3 s"):
        load_defense(f"{tmp_path / 'slow.py'}:P", limits=Limits(time_s=3, memory_mb=2048))
    assert time.monotonic() - t0 < 10


def test_a_relative_module_reference_loads_from_a_private_working_directory(
    tmp_path, monkeypatch
) -> None:
    sub = tmp_path / "my-submission"
    sub.mkdir()
    (sub / "helper.py").write_text("KEEP = 2\n")  # a sibling module is part of its code
    (sub / "p.py").write_text(
        "from helper import KEEP\nfrom defenses.base import Defense\nclass P(Defense):\n"
        "    '''Keeps a few.'''\n    def apply(self, rows, ctx):\n        return rows[:KEEP]\n"
    )
    monkeypatch.chdir(tmp_path)
    d = load_defense("my-submission/p.py:P", limits=Limits(time_s=30, memory_mb=2048))
    assert d.describe()["source"]["path"] == "my-submission/p.py"
    assert run_apply(d, ROWS, DefenseContext(teacher_model="smollm2-135m")) == ROWS[:2]


COUNTER = """
import os
from pathlib import Path
from defenses.base import Defense

class Counter(Defense):
    '''Counts its calls in files it can write (to tell the arms apart by call order).'''
    def apply(self, rows, ctx):
        seen = []
        dirs = ("/tmp", os.environ.get("HOME", "/tmp"), "/cache", os.getcwd())
        for d in sorted({os.path.realpath(d) for d in dirs}):
            f = Path(d) / "slb-call-count"
            try:
                n = int(f.read_text()) + 1 if f.exists() else 1
                f.write_text(str(n))
                seen.append(n)
            except OSError:
                pass
        ctx.notes["counts"] = seen
        return rows
"""


@namespaces
def test_a_call_counting_plugin_sees_every_call_as_its_first(tmp_path) -> None:
    code = tmp_path / "counter.py"
    code.write_text(COUNTER)
    d = load_defense(f"{code}:Counter")
    assert d.isolation == "namespace"
    rows = [{"id": "r0", "prompt": "Continue: 1, 2", "completion": "3, 4"}]
    counts = []
    for _ in range(3):  # two arms, and a third call for good measure
        ctx = DefenseContext(teacher_model="smollm2-135m")
        run_apply(d, rows, ctx)
        counts.append(ctx.notes["counts"])
    assert counts[0] and all(c == counts[0] for c in counts) and set(counts[0]) == {1}
