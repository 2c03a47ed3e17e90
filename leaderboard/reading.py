"""Read and parse the artifact files the loader found, one outcome per file, in file order.

Parsing an artifact is mostly JSON: decoding the file and encoding its scores again for the
integrity digests (``benchmark.core.artifact.check_integrity``), both bound to one core by the
interpreter. With many files and more than one core, the files are split into contiguous chunks:
forked worker processes parse all chunks but the first, which this process parses meanwhile, and the
outcomes come back in file order. Each outcome is exactly what parsing the file here would give
(the same code runs on the same bytes); if the workers cannot be started or fail, everything is
parsed here instead. Worker processes are forked, so only where forking is the safe default (Linux);
elsewhere, or with fewer than ``PARALLEL_MIN`` files, all are parsed in this process.
``SLB_LOAD_WORKERS`` sets the number of processes (1: this one only).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmark.core.artifact import CellResult, Skip, parse
from benchmark.core.store import json_tree_hash
from leaderboard.references import reference_kind

WORKERS_ENV = "SLB_LOAD_WORKERS"
PARALLEL_MIN = 200  # files; below this a fork costs about what it saves
MAX_WORKERS = 8
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
    if not rec_path.is_file():
        return None
    try:
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
    """The outcome of every ``(path, source)`` in ``files``, in that order; ``workers`` processes
    (None: ``SLB_LOAD_WORKERS``, else the usable cores, for ``PARALLEL_MIN`` files or more)."""
    n = min(workers_for(len(files)) if workers is None else workers, len(files), MAX_WORKERS)
    if n > 1 and sys.platform.startswith("linux"):
        try:
            return _in_processes(files, folders, n)
        except Exception:  # noqa: BLE001 - no worker may cost a result: parse them all here
            pass
    return _chunk(files, folders)


def workers_for(n_files: int) -> int:
    """How many processes parse ``n_files``: ``SLB_LOAD_WORKERS`` when set, else the cores this
    process may use, or 1 below ``PARALLEL_MIN`` files."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"{WORKERS_ENV}={raw!r}: expected a whole number of processes, >= 1")
        return int(raw)
    if n_files < PARALLEL_MIN:
        return 1
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return len(cores) if cores else os.cpu_count() or 1


def _in_processes(files: list[tuple[Path, str]], folders: Folders, n: int) -> list[Outcome]:
    size = -(-len(files) // n)
    chunks = [files[i : i + size] for i in range(0, len(files), size)]
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=len(chunks) - 1, mp_context=ctx) as pool:
        futures = [pool.submit(_chunk, c, folders) for c in chunks[1:]]
        out = _chunk(chunks[0], folders)
        for f in futures:
            out += f.result()
    return out


def _chunk(files: list[tuple[Path, str]], folders: Folders) -> list[Outcome]:
    return [read_one(path, source, folders) for path, source in files]


def read_one(path: Path, source: str, folders: Folders) -> Outcome:
    """Parse one file; never raises for a bad file (its outcome says why it was skipped)."""
    try:
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
