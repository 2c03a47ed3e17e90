"""Content-addressed artifact store: every stage output of the pipeline, keyed by what made it.

An output lives in ``root/<stage>/<key>/``, ``key = stable_hash(spec)``; ``spec`` holds all that
determines it (model refs, seeds, sampling, defense params, upstream keys). A re-run with the same
spec reuses the entry, so a killed run resumes where it stopped::

    store = ArtifactStore("runs/store")
    rows, meta, reused = store.cached("teacher", spec, lambda: (generate(...), {"model": ref}))
    adapter_dir, meta, reused = store.cached_dir("student", spec, lambda d: train(..., out=d))

An entry (``rows.jsonl`` or the files ``build`` wrote; ``meta.json`` with the hashed spec, file
sha256s, its cost (wall seconds, peak resident memory: :mod:`benchmark.core.memory`) and the
caller's keys; a ``.complete`` marker, last) is assembled in a hidden
``.tmp-*`` dir and renamed into place, so a crash leaves no half entry (a killed writer may leave
its ``.tmp-*`` dir: delete it when no run is active). Concurrent writers of a key race harmlessly
(first rename wins). ``atomic_write_text``/``_json`` do the same for one file.

The marker holds an HMAC-SHA256 of ``meta.json`` (bound to stage and key) under a secret kept
outside the store (``$SLB_STORE_KEY`` or a per-user key file: :mod:`benchmark.core.store_keys`), so
code that can write the store but not read the key cannot forge an entry: rewriting a file and its
checksum breaks the signature. An entry that fails its signature or its checksums is moved aside
to ``<key>.corrupt-<timestamp>`` with a warning naming it, and counts as absent. Entries written
before entries were signed (or under another key) fail their signature too: each is recomputed once.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import logging
import math
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Set
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from benchmark.core.memory import PeakRSS, peak_rss
from benchmark.core.store_keys import StoreError, marker, marker_problem, store_key

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)

Row = dict[str, Any]
Spec = Mapping[str, Any]
Meta = dict[str, Any]
Build = Callable[[Path], Mapping[str, Any] | None]  # fills a dir, returns the caller's meta
Fill = Callable[[Path], tuple[Meta, Spec | None]]  # fills a dir: (store fields, caller meta)

ROWS, META, MARKER = "rows.jsonl", "meta.json", ".complete"
# Written by the store itself; caller meta may not shadow them.
_RESERVED = frozenset(
    "store_version stage key kind spec files n_rows created wall_seconds peak_rss_gb".split()
)
# Stage names and keys become path components: no separators, no "..", no hidden names.
_STAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_KEY_RE = re.compile(r"[0-9a-f]{16}\Z")


def _canonical(obj: Any, where: str = "spec") -> Any:
    """A JSON tree that depends only on the value, not on how it was spelled; refuses the rest."""
    if isinstance(obj, float) and not math.isfinite(obj):
        # NaN is not strict JSON (the datasets loader rejects it) and not equal to itself, so it
        # cannot name a cache entry. Finite floats are written by repr (shortest round-trip).
        raise ValueError(f"{where}: non-finite float {obj!r} is not allowed")
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _canonical({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}, where)
    if isinstance(obj, Mapping):
        if bad := [k for k in obj if not isinstance(k, str)]:  # JSON would merge 1 and "1"
            raise TypeError(f"{where}: key {bad[0]!r} is {type(bad[0]).__name__}, expected str")
        return {k: _canonical(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, PurePath):
        return str(obj)
    hint = "; a set has no stable order, pass a sorted list" if isinstance(obj, Set) else ""
    raise TypeError(f"{where}: {type(obj).__name__} is not JSON-serialisable{hint}")


def stable_hash(obj: Any) -> str:
    """First 16 hex chars of the sha256 of ``obj``'s canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def json_tree_hash(obj: Any) -> str:
    """:func:`stable_hash` of a tree as ``json.loads`` returns it (string keys; no dataclasses,
    paths or sets), without the canonical walk: the same digest at a fraction of the time, for
    readers that hash what they just parsed (an artifact's integrity check). Anything dumps
    refuses (a non-finite float, another type) goes through :func:`stable_hash`, which says
    where."""
    try:
        text = json.dumps(
            obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError):
        return stable_hash(obj)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)  # a file, or a dir (whose entries record renames)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _put(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8"))  # bytes: what the store signs is what lies on disk
    _fsync(path)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` (parents created) so readers see the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A sibling (same filesystem, so os.replace is a rename), not tempfile's 0600 file.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        _put(tmp, text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(path.parent)


def atomic_write_json(path: Path | str, obj: Any) -> None:
    """Atomically write ``obj`` as indented strict JSON (no NaN: browsers parse these files)."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def _rows_fill(rows: Iterable[Row], meta: Spec | None) -> Fill:
    def fill(tmp: Path) -> tuple[Meta, Spec | None]:
        n = 0
        with open(tmp / ROWS, "x", encoding="utf-8", newline="\n") as f:
            for n, row in enumerate(rows, 1):
                if not isinstance(row, dict):
                    raise TypeError(f"row {n - 1}: expected a dict, got {type(row).__name__}")
                # _canonical refuses what JSON mangles (non-str keys, NaN...), naming row and field.
                f.write(json.dumps(_canonical(row, f"row {n - 1}"), ensure_ascii=False) + "\n")
        return {"n_rows": n}, meta

    return fill


class ArtifactStore:
    """Stage outputs under ``root/<stage>/<key>/``; see the module docstring."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        try:  # refuse now, not after an hour of generation whose output cannot then be saved
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise PermissionError("no write permission")
        except OSError as exc:
            raise StoreError(f"artifact store root {self.root} is not writable: {exc}") from exc
        # Loaded once: a store sent to another process (a Ray worker) signs with the same secret.
        self._secret = store_key(self.root)

    def key(self, stage: str, spec: Spec) -> str:
        """``stable_hash(spec)``; ``stage`` namespaces it by directory, not in the hash."""
        return stable_hash(spec)

    def path(self, stage: str, key: str) -> Path:
        if not isinstance(stage, str) or not _STAGE_RE.match(stage):
            raise ValueError(f"Invalid stage name: {stage!r} (letters, digits, '_', '.', '-')")
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise ValueError(f"Invalid key: {key!r} (expected 16 lowercase hex chars)")
        return self.root / stage / key

    def has(self, stage: str, key: str) -> bool:
        """True iff a finished rows entry with matching checksums exists (corrupt: moved aside)."""
        return self._verify(stage, key, "rows")

    def has_dir(self, stage: str, key: str) -> bool:
        """True iff a finished directory entry whose files match their checksums exists."""
        return self._verify(stage, key, "dir")

    def write_rows(
        self, stage: str, spec: Spec, rows: Iterable[Row], meta: Spec | None = None
    ) -> Path:
        """Store ``rows`` (a list or lazy iterable) under ``spec``'s key; return the entry dir.
        An existing valid entry (a concurrent writer won) is kept."""
        return self._write(stage, spec, "rows", _rows_fill(rows, meta))

    def write_dir(self, stage: str, spec: Spec, build: Build) -> Path:
        """Let ``build(tmpdir)`` fill a fresh dir and return meta; store it under ``spec``'s key."""
        return self._write(stage, spec, "dir", lambda tmp: ({}, build(tmp)))

    def read_meta(self, stage: str, key: str) -> Meta:
        """The entry's meta, its signature checked on the bytes read."""
        final = self.path(stage, key)
        if not (final / MARKER).is_file():
            raise StoreError(f"no finished artifact at {final}")
        data, problem = _signed_meta(final, stage, key, self._secret)
        if problem:
            raise StoreError(f"{final}: {problem}; has() will move it aside")
        return dict(json.loads(data))

    def read_rows(self, stage: str, key: str) -> list[Row]:
        """The stored rows; the checksum is re-checked on the bytes read (no second pass)."""
        meta, path = self.read_meta(stage, key), self.path(stage, key) / ROWS
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != meta["files"][ROWS]:
            raise StoreError(f"{path} does not match its checksum; has() will move it aside")
        # bytes.splitlines splits on \n and \r only, which json.dumps escapes inside strings.
        return [json.loads(line) for line in data.splitlines() if line]

    def read_dataset(
        self, stage: str, key: str, features: datasets.Features | None = None
    ) -> datasets.Dataset:
        """The rows as a ``datasets.Dataset`` (JSON loader, HF cache). Column types are inferred: a
        column null in every row loads as type ``null``, an int column with one float as float.
        Pass ``features`` where entries must line up (concatenation, a fixed schema)."""
        import datasets  # lazy: the leaderboard and CLI import this module without needing it

        meta, path = self.read_meta(stage, key), self.path(stage, key) / ROWS
        if _sha256_file(path) != meta["files"][ROWS]:
            raise StoreError(f"{path} does not match its checksum; has() will move it aside")
        if meta["n_rows"] == 0:  # the JSON loader fails on an empty file
            return datasets.Dataset.from_dict({k: [] for k in features or {}}, features=features)
        return datasets.Dataset.from_json(str(path), features=features)

    def cached(
        self, stage: str, spec: Spec, compute: Callable[[], tuple[list[Row], Meta]]
    ) -> tuple[list[Row], Meta, bool]:
        """``(rows, meta, reused)``: the stored entry for ``spec``, computed and stored if absent."""
        key = self.key(stage, spec)
        if not (reused := self.has(stage, key)):
            start = time.perf_counter()
            with peak_rss() as mem:
                rows, meta = compute()
            wall = time.perf_counter() - start
            self._write(stage, spec, "rows", _rows_fill(rows, meta), wall, mem)
        log.info("%s/%s %s", stage, key, "reused" if reused else "computed")
        # Return what was stored, so fresh and resumed runs see identical values (tuples -> lists).
        return self.read_rows(stage, key), self.read_meta(stage, key), reused

    def cached_dir(self, stage: str, spec: Spec, build: Build) -> tuple[Path, Meta, bool]:
        """``(entry_dir, meta, reused)`` for a directory artifact, built and stored if absent."""
        key = self.key(stage, spec)
        if not (reused := self.has_dir(stage, key)):
            self.write_dir(stage, spec, build)
        log.info("%s/%s %s", stage, key, "reused" if reused else "built")
        return self.path(stage, key), self.read_meta(stage, key), reused

    def _write(
        self,
        stage: str,
        spec: Spec,
        kind: str,
        fill: Fill,
        wall_seconds: float | None = None,
        mem: PeakRSS | None = None,
    ) -> Path:
        """Store what ``fill`` writes under ``spec``'s key. Its cost (wall seconds, peak resident
        memory) is measured around ``fill`` unless the caller measured the computation already."""
        key = self.key(stage, spec)
        final = self.path(stage, key)
        tmp = final.with_name(f".tmp-{key}-{uuid.uuid4().hex[:8]}")
        tmp.mkdir(parents=True)  # not mkdtemp: its 0700 mode would survive the rename
        try:
            start = time.perf_counter()
            if mem is None:  # the caller did not measure the computation: it happens here
                with peak_rss() as mem:
                    fields, extra = fill(tmp)
            else:
                fields, extra = fill(tmp)
            extra = _canonical(dict(extra or {}), "meta")  # strict JSON; errors name the key
            if clash := set(extra) & _RESERVED | {p.name for p in tmp.iterdir()} & {META, MARKER}:
                raise ValueError(f"{sorted(clash)} are reserved by the store (meta keys, files)")
            files = {}
            for p in sorted(tmp.rglob("*")):
                if p.is_file():  # build callbacks (save_pretrained) do not fsync: do it for them
                    _fsync(p)
                    files[p.relative_to(tmp).as_posix()] = _sha256_file(p)
            meta = {"store_version": 1, "stage": stage, "key": key, "kind": kind}
            meta |= {"spec": _canonical(spec), "files": files, **fields, **extra}
            meta["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            wall = time.perf_counter() - start if wall_seconds is None else wall_seconds
            meta["wall_seconds"] = round(wall, 3)
            meta["peak_rss_gb"] = mem.gb
            text = json.dumps(meta, indent=2, ensure_ascii=False)
            _put(tmp / META, text)
            # Last: it is what makes the entry real, and what vouches for meta.json's checksums.
            _put(tmp / MARKER, marker(self._secret, stage, key, text.encode("utf-8")))
            _fsync(tmp)
            # A sound existing entry means a concurrent writer won; a corrupt one is moved aside.
            if final.exists() and self._verify(stage, key, kind):
                shutil.rmtree(tmp)
                return final
            try:
                os.replace(tmp, final)
            except OSError as e:
                # Another writer renamed its entry in between the check and the rename (a
                # directory cannot replace a non-empty one): theirs is as good as ours if sound.
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not self._verify(
                    stage, key, kind
                ):
                    raise
                shutil.rmtree(tmp)
                return final
            _fsync(final.parent)
            return final
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _verify(self, stage: str, key: str, kind: str) -> bool:
        final = self.path(stage, key)
        if not final.is_dir():
            # Absent is not corrupt: an entry appears whole (one rename), so a check that found
            # nothing must not move aside the entry a concurrent writer renames in meanwhile.
            return False
        if (problem := _problem(final, stage, key, kind, self._secret)) is None:
            return True
        aside = final.with_name(f"{key}.corrupt-{datetime.now():%Y%m%dT%H%M%S%f}")
        try:
            os.rename(final, aside)
        except FileNotFoundError:  # absent (never written, or a concurrent has() moved it aside)
            return False
        log.warning("artifact %s is corrupt (%s); moved aside to %s", final, problem, aside.name)
        return False


def _signed_meta(final: Path, stage: str, key: str, secret: bytes) -> tuple[bytes, str | None]:
    """``meta.json``'s bytes and, if its signature in the marker does not hold, why."""
    try:
        found = (final / MARKER).read_bytes()
        data = (final / META).read_bytes()
    except OSError as exc:
        return b"", f"no .complete marker or no meta.json ({exc.strerror})"
    return data, marker_problem(secret, stage, key, data, found)


def _problem(final: Path, stage: str, key: str, kind: str, secret: bytes) -> str | None:
    """Why the entry at ``final`` cannot be trusted, or None if it can."""
    data, problem = _signed_meta(final, stage, key, secret)
    if problem:
        return problem
    try:
        meta = json.loads(data)
        files, found_kind = dict(meta["files"]), meta["kind"]
        if meta["key"] != key:
            return "meta.json names another key"
    except (ValueError, TypeError, KeyError) as exc:
        return f"unreadable meta.json ({exc!r})"
    if found_kind != kind:  # one stage name used for rows and for dirs: a caller bug, not damage
        raise StoreError(f"{final} holds a {found_kind} artifact, not {kind}")
    if kind == "rows" and ROWS not in files:
        return "meta.json has no rows.jsonl checksum"
    for rel, sha in files.items():
        if not (final / rel).is_file() or _sha256_file(final / rel) != sha:
            return f"{rel} is missing or does not match its sha256"
    return None
