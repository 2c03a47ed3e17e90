"""Read and parse the artifact files the loader found, one outcome per file, in file order.

Parsing an artifact is mostly JSON: decoding the file and encoding its scores again for the
integrity digests (``benchmark.core.artifact.check_integrity``), both bound to one core by the
interpreter. With many files and more than one usable core, worker processes help: the files are
cut into small chunks, the workers take them from the front (``Pool.imap``, results in order) while
this process parses from the back, and the two meet in the middle, so a worker that starts late,
is slow or never answers only leaves more to this process: nothing waits on a worker. Each outcome
is what parsing the file here gives (the same code on the same bytes, tested); one a worker cannot
send back is parsed here again. Workers come from a fork server (``forkserver``: a single-threaded
process that imported this module), never from a fork of this process, which in the leaderboard is
a multi-threaded Streamlit server. Linux only; elsewhere, with fewer than ``PARALLEL_MIN`` files or
with one core, every file is parsed in this process. ``SLB_LOAD_WORKERS`` sets the number of
processes (1: this one only).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import pickle
import stat
import sys
import threading
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmark.core.artifact import CellResult, Skip, parse
from benchmark.core.store import json_tree_hash
from leaderboard.references import reference_kind

WORKERS_ENV = "SLB_LOAD_WORKERS"
PARALLEL_MIN = 200  # files; below this starting a worker costs about what it saves
MAX_WORKERS = 8
CHUNK = 16  # files a worker takes at a time
TEST_WAIT_S = 120.0  # how long a test that leaves every chunk to the workers waits for one
MAX_BYTES = 64 * 2**20  # a real artifact is ~150 KB
log = logging.getLogger(__name__)
REPRODUCED_SUFFIX = ".reproduced.json"  # slb reproduce's record, next to its artifact
SUBMISSIONS = "submissions/"

Folders = dict[str, tuple[Path, dict[str, Any]]]  # submission source -> (folder, its metadata)


@dataclass
class Skipped:
    path: str
    reason: str


# One file's outcome: its cell and its valid reproduction record, or why it was skipped.
Outcome = tuple[CellResult | None, dict[str, Any] | None, Skipped | None]


def reproduced_path(artifact: str | Path) -> Path:
    """Where ``slb reproduce`` writes the record of ``artifact``: ``<stem>.reproduced.json``."""
    p = Path(artifact)
    return p.with_name(p.stem + REPRODUCED_SUFFIX)


def reproduction(path: str | Path, art: Any) -> dict[str, Any] | None:
    """The record next to the artifact ``art`` (read from ``path``) when it shows a passed
    reproduction of these very scores: ``reproduced`` is true and its ``scores_hash`` equals the
    artifact's ``integrity.scores`` and the hash of its scores now. Else (none, malformed, failed,
    or the scores changed since) None."""
    rec_path = reproduced_path(path)
    try:
        if not rec_path.is_file():  # inside: a name too long for a record is no record
            return None
        rec = json.loads(rec_path.read_text(encoding="utf-8"))
        integ = art.get("integrity") if isinstance(art, dict) else None
        stored = integ.get("scores") if isinstance(integ, dict) else None
        if not (isinstance(rec, dict) and rec.get("reproduced") is True and stored):
            return None
        seen = rec.get("scores_hash")
        return (
            rec
            if isinstance(seen, str) and seen == stored == json_tree_hash(art["scores"])
            else None
        )
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError):
        return None


def read_all(
    files: list[tuple[Path, str]], folders: Folders, workers: int | None = None
) -> list[Outcome]:
    """The outcome of every ``(path, source)`` in ``files``, in that order, parsed in
    :func:`processes` processes."""
    n = processes(len(files), workers)
    if n > 1:
        try:
            return _in_processes(files, folders, n)[0]
        except Exception as e:  # noqa: BLE001 - no worker may cost a result: parse them here
            log.warning("parsing in %d processes failed (%r); parsing in one", n, e)
    return _chunk(files, folders)


def processes(n_files: int, workers: int | None = None) -> int:
    """How many processes :func:`read_all` uses for ``n_files`` (this one included): ``workers``,
    else ``SLB_LOAD_WORKERS``, else the usable cores from ``PARALLEL_MIN`` files on; at most
    ``MAX_WORKERS`` and one per chunk; 1 off Linux."""
    if not sys.platform.startswith("linux"):
        return 1
    n = workers if workers is not None else workers_for(n_files)
    return max(1, min(n, -(-n_files // CHUNK), MAX_WORKERS))


def workers_for(n_files: int) -> int:
    """``SLB_LOAD_WORKERS`` when set (a bad value is named in a warning and ignored), else the
    cores this process may use, or 1 below ``PARALLEL_MIN`` files."""
    try:
        if (n := env_workers()) is not None:
            return n
    except ValueError as e:
        warnings.warn(f"{e}; using the default", stacklevel=2)
    return 1 if n_files < PARALLEL_MIN else usable_cores()


def env_workers() -> int | None:
    """``SLB_LOAD_WORKERS`` as a number of processes (None when unset), or ValueError naming it."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
        raise ValueError(f"{WORKERS_ENV}={raw!r}: expected a whole number of processes, >= 1")
    return int(raw)


def usable_cores() -> int:
    """The cores this process may run on, within a cgroup v2 CPU quota (containers) if any."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return max(1, min(cores or 1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores or 1


def _in_processes(
    files: list[tuple[Path, str]], folders: Folders, n: int, here: bool = True
) -> tuple[list[Outcome], int]:
    """``(outcomes, files the workers parsed)`` with ``n - 1`` workers; ``here=False`` leaves
    every chunk to them (tests)."""
    chunks = [files[i : i + CHUNK] for i in range(0, len(files), CHUNK)]
    done: list[list[Outcome] | None] = [None] * len(chunks)
    starting = _Start(n - 1, chunks, folders)
    front, back, by_workers = 0, len(chunks), 0
    try:
        while front < back:
            results = starting.results(wait=not here)
            if results is None and not here:
                raise RuntimeError("no worker processes came up")
            while results is not None and front < back:
                try:  # the next chunk the workers finished, in order; none ready: go on here
                    packed = results.next(timeout=0 if here else TEST_WAIT_S)
                except multiprocessing.TimeoutError:
                    if not here:
                        raise
                    break
                except Exception as e:
                    if not here:
                        raise
                    log.warning("a worker process failed (%r); parsing the rest in one", e)
                    starting.close()
                    results = None
                    break
                done[front] = _unpack(packed, chunks[front], folders)
                front, by_workers = front + 1, by_workers + len(chunks[front])
            if here and front < back:
                back -= 1
                done[back] = _chunk(chunks[back], folders)
    finally:
        starting.close()
    return [o for chunk in done for o in chunk or ()], by_workers


class _Start:
    """The worker pool, started in a thread so that this process parses while the fork server
    imports; closed (workers terminated) whether or not it ever came up."""

    def __init__(self, workers: int, chunks: list[list[tuple[Path, str]]], folders: Folders):
        self._lock = threading.Lock()
        self._pool: Any = None
        self._results: Any = None
        self._closed = False
        self._up = threading.Event()
        threading.Thread(target=self._run, args=(workers, chunks, folders), daemon=True).start()

    def _run(self, workers: int, chunks: list[list[tuple[Path, str]]], folders: Folders) -> None:
        try:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload([__name__])
            pool = ctx.Pool(workers)
            with self._lock:
                if self._closed:  # nobody waits any more
                    pool.terminate()
                    return
                self._pool = pool
                self._results = pool.imap(_packed, [(c, folders) for c in chunks])
        except Exception as e:  # noqa: BLE001 - then this process parses everything
            log.warning("no worker processes (%r); parsing in one", e)
        finally:
            self._up.set()

    def results(self, wait: bool) -> Any:
        """The workers' ordered results, or None while (or if never) they are up, or once closed."""
        if wait:
            self._up.wait(TEST_WAIT_S)
        with self._lock:
            return None if self._closed else self._results

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._pool is not None:
                self._pool.terminate()


def _packed(job: tuple[list[tuple[Path, str]], Folders]) -> list[bytes | None]:
    """A worker's chunk: each outcome pickled, or None for one that cannot be (a tree too deep
    for pickle): this process parses that file again."""
    out: list[bytes | None] = []
    for path, source in job[0]:
        try:
            out.append(pickle.dumps(read_one(path, source, job[1]), pickle.HIGHEST_PROTOCOL))
        except Exception:  # noqa: BLE001
            out.append(None)
    return out


def _unpack(
    packed: list[bytes | None], files: list[tuple[Path, str]], folders: Folders
) -> list[Outcome]:
    out: list[Outcome] = []
    for b, (path, source) in zip(packed, files, strict=True):
        try:
            out.append(pickle.loads(b) if b is not None else read_one(path, source, folders))
        except Exception:  # noqa: BLE001 - unpickling too deep here: parse it here
            out.append(read_one(path, source, folders))
    return out


def _chunk(files: list[tuple[Path, str]], folders: Folders) -> list[Outcome]:
    return [read_one(path, source, folders) for path, source in files]


def read_one(path: Path, source: str, folders: Folders) -> Outcome:
    """Parse one file; never raises for a bad file (its outcome says why it was skipped)."""
    try:
        st = path.stat()  # before opening: opening a FIFO would block
        if not stat.S_ISREG(st.st_mode):
            raise Skip("not a regular file")
        if st.st_size > MAX_BYTES:
            raise Skip(f"{st.st_size} bytes: over the {MAX_BYTES} an artifact may have")
        art = read_json(path)
        cell = parse(art, str(path), source)
        folder, meta = folders.get(source, (None, None))
        if source.startswith(SUBMISSIONS):
            check_owner(cell, folder, meta)
        cell = replace(cell, reference=reference_kind(cell, meta))
        return cell, reproduction(path, art), None
    except Skip as e:
        return None, None, Skipped(str(path), str(e))
    except Exception as e:  # noqa: BLE001 - one odd file must never take the app down
        return None, None, Skipped(str(path), f"unexpected {type(e).__name__}: {e}")


def read_json(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Skip(f"not readable JSON: {e}") from None


def check_owner(cell: CellResult, folder: Path | None, meta: dict[str, Any] | None) -> None:
    """Raise :class:`Skip` unless ``cell`` is of the defense its submission folder declares."""
    if folder is None or not meta or "error" in meta:
        why = (meta or {}).get("error", "no submission.yaml")
        raise Skip(f"{cell.source}: {why}, so whose artifact this is cannot be checked")
    if meta.get("name") != folder.name:
        raise Skip(f"{cell.source}/submission.yaml names {meta.get('name')!r}, not the folder")
    declared: dict[str, Any] = meta["defense"] if isinstance(meta.get("defense"), dict) else {}
    src: dict[str, Any] = cell.defense_info.get("source") or {}
    src = src if isinstance(src, dict) else {}
    kind = next((k for k in ("builtin", "entry_point", "module") if k in declared), None)
    if kind == "builtin":
        ok = cell.defense == declared["builtin"] and src.get("kind", "builtin") == "builtin"
    elif kind == "entry_point":
        ok = src.get("kind") == "entry_point" and src.get("ref") == declared["entry_point"]
    elif kind == "module":
        ok = (
            src.get("kind") == "module"
            and src.get("class") == declared.get("class")
            and src.get("sha256") == _sha256(folder / str(declared["module"]))
        )
    else:
        ok = False
    params: dict[str, Any] = meta["params"] if isinstance(meta.get("params"), dict) else {}
    if not ok or any(cell.params.get(k) != v for k, v in params.items()):
        raise Skip(
            f"{cell.source} submits {declared or 'no defense'} with {params or 'default params'}, "
            f"but this artifact is of {cell.entry} ({src.get('kind', 'n/a')} "
            f"{src.get('sha256', src.get('ref', src.get('module', '')))}): not this folder's"
        )


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
