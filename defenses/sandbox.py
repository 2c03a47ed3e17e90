"""OS namespaces for an untrusted defense: what its child may see, and how it is shut in.

:mod:`defenses.isolation` starts the child of a non-built-in defense under util-linux ``unshare``
(:data:`UNSHARE`: its own user, PID, mount, network, IPC and UTS namespaces; ``--kill-child`` ties
the namespace's first process to ``unshare``). Before it reads any plugin code, that first process
(:mod:`defenses.child`, pid 1 of the new PID namespace) calls :func:`enter` with the :class:`Plan`
the parent made with :func:`plan_for`, which builds a new root on a tmpfs and ``pivot_root``\\ s
into it, detaching the old root entirely. The plugin then sees only

* the system's ``/usr`` and ``/etc`` (``/bin``, ``/lib``... as the system's links) read-only;
* the Python environment read-only: the interpreter's prefixes and the parent's ``sys.path``
  (for this repository: its packages, never its root, where stores and results live), and the
  plugin's own code (its file, sibling ``.py`` files and sibling package folders);
* a fresh ``/proc`` (only its own processes), ``/dev`` with null/zero/full/random/urandom (and
  GPU device files, with ``/sys`` read-only, when the machine has them), and a private, empty,
  writable ``/tmp`` that is its cwd, ``$HOME`` and ``$TMPDIR`` (plugin code that lives under
  ``/tmp`` shows inside it, read-only, at its own path);
* a writable ``/cache`` (``$SLB_CACHE_DIR``) holding read-only views of the dequantised embedded
  models only, and the Hugging Face hub cache read-only at ``/hf-hub``, so helper models load as
  usual — never the store, results, the rest of the model cache or a home directory (each is
  covered by an empty tmpfs if it lies inside something shown: :func:`hidden_paths`).

The worker that runs plugin code then drops every capability (:func:`drop_privileges`), so it can
neither undo a mount nor write to what is shown. When the namespace's first process exits — after
a normal return, or killed with ``unshare`` at a timeout — the kernel kills every process left in
the namespace, daemons included. Where namespaces are refused, :mod:`defenses.isolation` falls back
to a plain child process (``isolation: "process"``) and :func:`kill_descendants` does what it can.

A plugin's own data files must therefore sit in a package folder next to it (or in an installed
package); it has no network, and only ``/tmp`` and ``/cache`` are writable.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmark.core.models import CACHE_ENV, EMBEDDED

UNSHARE: tuple[str, ...] = ("unshare", "--user", "--map-root-user", "--pid", "--fork")
UNSHARE += ("--kill-child", "--mount", "--net", "--ipc", "--uts")
CACHE_DIR, HUB_DIR = "/cache", "/hf-hub"
_SYSTEM = ("/usr", "/etc")
_SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
_DEVICES = ("null", "zero", "full", "random", "urandom")
_PROJECT = ("benchmark", "defenses", "tasks")
_ENV_KEEP: tuple[str, ...] = ("PATH", "LANG", "LANGUAGE", "TZ", "VIRTUAL_ENV", "LD_LIBRARY_PATH")
_ENV_KEEP += (
    "PYTHONHASHSEED",
    "TOKENIZERS_PARALLELISM",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "SSL_CERT_FILE",
)
_ENV_KEEP_PREFIXES = ("LC_", "OMP_", "MKL_", "OPENBLAS_", "CUDA_", "NVIDIA_", "TORCH_", "PYTORCH_")


@dataclass(frozen=True)
class Plan:
    """What the namespace shows: host paths read-only at the same place, and what to cover."""

    binds: tuple[str, ...]
    hide: tuple[str, ...]  # inside a bind: covered by an empty read-only tmpfs
    cache: tuple[tuple[str, str], ...]  # (host path, path under CACHE_DIR), read-only
    hub: str | None  # the Hugging Face hub cache, shown read-only at HUB_DIR
    devices: tuple[str, ...]  # extra device files (GPUs), bound read-write
    size_mb: int  # of the writable /tmp (/cache: at most 4 GiB, /dev/shm: 1 GiB)


# -- the parent: what to show ----------------------------------------------------------------------
def _within(p: Path, parent: Path) -> bool:
    return p == parent or parent in p.parents


def cache_dir() -> Path:
    """The model cache (and default store) as ``benchmark.core.models.cache_root`` names it."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "subliminal-bench")


def _hub_dir() -> Path:
    home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    return Path(os.environ.get("HF_HUB_CACHE") or Path(home) / "hub")


def hidden_paths() -> list[Path]:
    """What the plugin must never see, even where it lies inside something shown."""
    found = [cache_dir(), _hub_dir().parent, Path.home(), Path("/root"), Path("/home")]
    found += [Path("/tmp"), Path.cwd() / "results"]
    return [p.resolve() for p in found]


def _project_root() -> Path:
    return Path(__file__).resolve().parents[1]


def plugin_code(code: Path) -> list[Path]:
    """The plugin file with its sibling ``.py`` files and sibling packages (folders with an
    ``__init__.py``): its own code, never other files of its folder (a store or results)."""
    out = [code]
    for p in sorted(code.parent.iterdir()):
        if (p.suffix == ".py" and p.is_file()) or (p / "__init__.py").is_file():
            out.append(p)
    return out


def plan_for(code: list[Path], sys_path: list[str], size_mb: int) -> Plan:
    """The :class:`Plan` for a plugin whose code is ``code``, with the parent's ``sys_path``."""
    hidden = hidden_paths()
    root = _project_root()
    gpus = sorted(str(p) for p in Path("/dev").glob("nvidia*") if not p.is_dir())
    wanted = [*map(Path, _SYSTEM), *([Path("/sys")] if gpus else [])]  # GPU drivers read /sys
    wanted += [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)]
    wanted += [Path(sys.base_exec_prefix), Path(os.path.realpath(sys.executable)).parent]
    for name in _PROJECT:
        spec = importlib.util.find_spec(name)  # a top-level lookup runs no code
        wanted += [Path(p) for p in (spec.submodule_search_locations or []) if spec] if spec else []
    for entry in sys_path:
        p = Path(entry).resolve() if entry else None
        # An ancestor of something hidden or of the repository (a home, /) is never shown whole.
        if p is None or any(_within(h, p) for h in [*hidden, root]):
            continue
        wanted.append(p)
    wanted += code
    binds: list[Path] = []
    for p in sorted({w.resolve() for w in wanted if w.exists()}, key=lambda x: len(x.parts)):
        if not any(_within(p, b) for b in binds):
            binds.append(p)
    hide = [h for h in hidden if h.exists() and any(_within(h, b) and h != b for b in binds)]
    models = cache_dir() / "models"
    cache = [(models / n, f"models/{n}") for n in EMBEDDED if (models / n / ".complete").is_file()]
    if (cache_dir() / "gguf").is_dir():
        cache.append((cache_dir() / "gguf", "gguf"))
    return Plan(
        binds=tuple(map(str, binds)),
        hide=tuple(map(str, hide)),
        cache=tuple((str(s), d) for s, d in cache),
        hub=str(_hub_dir()) if _hub_dir().is_dir() else None,
        devices=tuple(gpus),
        size_mb=size_mb,
    )


def child_env(namespace: bool, workdir: str, hub: bool) -> dict[str, str]:
    """The child's environment: an allow-list of the parent's (locale, threads, GPUs, offline
    switches), never anything else it holds, with a private home and temporary directory."""
    env = {
        k: v for k, v in os.environ.items() if k in _ENV_KEEP or k.startswith(_ENV_KEEP_PREFIXES)
    }
    env.update(HOME=workdir, TMPDIR=workdir, TMP=workdir, TEMP=workdir, PYTHONDONTWRITEBYTECODE="1")
    if namespace:
        env.update({CACHE_ENV: CACHE_DIR, "HF_HOME": f"{workdir}/.hf", "HF_HUB_OFFLINE": "1"})
        if hub:
            env["HF_HUB_CACHE"] = HUB_DIR
    else:  # a process child sees the host's files anyway; helpers load from the usual caches
        env.update({CACHE_ENV: str(cache_dir()), "HF_HUB_CACHE": str(_hub_dir())})
    return env


# -- the child: shutting itself in -------------------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
_libc.mount.argtypes += [ctypes.c_char_p]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.prctl.argtypes += [ctypes.c_ulong]
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 8, 32, 4096, 16384
MS_PRIVATE = 1 << 18
_KEEP_FLAGS = {os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC}
_KEEP_FLAGS |= {os.ST_NOATIME: 1024, os.ST_NODIRATIME: 2048, os.ST_RELATIME: 1 << 21}
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER = 1, 4, 24, 36
PR_SET_NO_NEW_PRIVS = 38


def _b(s: str | None) -> bytes | None:
    return None if s is None else s.encode()


def _ok(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _mount(src: str | None, dst: str, fs: str | None, flags: int, data: str | None = None) -> None:
    _ok(_libc.mount(_b(src), _b(dst), _b(fs), flags, _b(data)), f"mount {fs or src} on {dst}")


def prctl(option: int, arg: int = 0) -> None:
    _ok(_libc.prctl(option, arg, 0, 0, 0), f"prctl({option})")


def _mounts_under(dst: str) -> list[str]:
    """Mount points at or below ``dst`` (``/proc/self/mountinfo`` escapes spaces as octal)."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == dst or point.startswith(dst.rstrip("/") + "/"):
            out.append(point)
    return out


def _bind(src: str, dst: str, read_only: bool = True) -> None:
    """Show ``src`` at ``dst``, read-only down to every mount below it."""
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        Path(dst).touch()
    _mount(src, dst, None, MS_BIND | MS_REC)
    for point in _mounts_under(dst) if read_only else []:
        # Flags the mount had (nosuid, nodev, ...) are locked in a user namespace: keep them.
        f = os.statvfs(point).f_flag
        keep = sum(ms for st, ms in _KEEP_FLAGS.items() if f & st)
        _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep)


def _tmpfs(dst: str, size_mb: int, mode: str = "0755") -> None:
    os.makedirs(dst, exist_ok=True)
    _mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode},size={size_mb}m")


def enter(plan: Plan, new: str = "/tmp") -> None:
    """Build the new root on a tmpfs mounted at ``new`` and pivot into it (module docstring).
    Needs a fresh user + mount namespace, and to be pid 1 of a fresh PID namespace."""
    # Bind sources are opened first: the tmpfs at ``new`` may cover some of them (a plugin in /tmp).
    fds = {
        p: os.open(p, os.O_PATH) for p in {*plan.binds, *plan.devices, *(s for s, _ in plan.cache)}
    }
    fds |= {f"/dev/{d}": os.open(f"/dev/{d}", os.O_PATH) for d in _DEVICES}
    if plan.hub:
        fds[plan.hub] = os.open(plan.hub, os.O_PATH)

    def src(p: str) -> str:
        return f"/proc/self/fd/{fds[p]}"

    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # no mount event propagates back to the host
    _tmpfs(new, 16)
    _tmpfs(new + "/tmp", plan.size_mb, "1777")  # first: code under /tmp is shown inside it
    for p in plan.binds:
        _bind(src(p), new + p)
    for link in _SYSTEM_LINKS:
        if os.path.islink(link) and not os.path.lexists(new + link):
            os.symlink(os.readlink(link), new + link)
    for h in plan.hide:
        _tmpfs(new + h, 1)
        _mount(None, new + h, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=1m")
    os.makedirs(new + "/proc")
    _mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _tmpfs(new + "/dev", 1)
    for d in _DEVICES:
        _bind(src(f"/dev/{d}"), f"{new}/dev/{d}", read_only=False)
    for d in plan.devices:
        _bind(src(d), new + d, read_only=False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0")):
        os.symlink(target, f"{new}/dev/{name}")
    os.symlink("/proc/self/fd/1", f"{new}/dev/stdout")
    os.symlink("/proc/self/fd/2", f"{new}/dev/stderr")
    # Written files live in memory: /tmp may take the memory limit, the others less.
    _tmpfs(new + "/dev/shm", min(plan.size_mb, 1024), "1777")
    _tmpfs(new + CACHE_DIR, min(plan.size_mb, 4096))
    for host, rel in plan.cache:
        _bind(src(host), f"{new}{CACHE_DIR}/{rel}")
    if plan.hub:
        _bind(src(plan.hub), new + HUB_DIR)
    for fd in fds.values():
        os.close(fd)
    os.makedirs(new + "/.old")
    os.chdir(new)
    call = _PIVOT_ROOT.get(platform.machine())
    if call is None:
        raise OSError(f"pivot_root: unknown syscall number on {platform.machine()}")
    _ok(_libc.syscall(call, b".", b".old"), "pivot_root")
    os.chdir("/")
    _ok(_libc.umount2(b"/.old", 2), "detach the old root")  # MNT_DETACH
    os.rmdir("/.old")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir("/tmp")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]


def drop_privileges() -> None:
    """Give up every capability for good (bounding set, then the sets) and forbid regaining any
    through exec: root of the user namespace becomes an ordinary user of what it is shown."""
    cap = 0
    while _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    data = (_CapData * 2)()
    _ok(_libc.capset(ctypes.byref(_CapHeader(0x20080522, 0)), data), "capset")
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def exit_reason(code: int | None) -> str:
    """How a process that sent no reply ended, from its exit code (negative: a signal)."""
    if code is not None and code < 0:
        known = -code in signal.Signals.__members__.values()
        name = signal.Signals(-code).name if known else str(-code)
        hint = " (out of memory?)" if code == -signal.SIGKILL else ""
        return f"was killed by signal {name}{hint}"
    return f"exited with code {code} without returning a result"


# -- process mode: the supervisor cleans up after its worker -----------------------------------------
def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    out = []
    for d in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except (OSError, ValueError):
            continue
        if d.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(d))
    return out


def wait_gone(pids: list[int], seconds: float = 5.0) -> None:
    """Wait until each of ``pids`` has exited (gone or a zombie). A PID namespace's first process
    exits only once every process of its namespace is gone, so this waits for all of them."""
    end = time.monotonic() + seconds
    for pid in pids:
        while time.monotonic() < end:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                break
            if state in ("Z", "X"):
                break
            time.sleep(0.01)


def kill_descendants(worker: int, seconds: float = 3.0) -> None:
    """Kill the worker's process group and everything re-parented to this process (a subreaper:
    :data:`PR_SET_CHILD_SUBREAPER`), daemons that left the group with ``setsid`` included."""
    try:
        os.killpg(worker, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        kids = children(os.getpid())
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            if not kids:
                return
        time.sleep(0.02)
