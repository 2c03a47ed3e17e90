"""The secret that signs artifact-store entries, and where it lives (outside the store).

A checksum in an entry's ``meta.json`` only proves that the files match ``meta.json``: code that can
write the store (an untrusted defense plugin, say) can rewrite both, and a forged control entry is
then reused by every later run. So :class:`~benchmark.core.store.ArtifactStore` also signs each
entry's ``meta.json`` (which holds the sha256 of every file) with HMAC-SHA256 under a 32-byte key
that is kept where such code cannot read it:

* ``$SLB_STORE_KEY``, when set: 64 hex characters, e.g. from
  ``python -c "import secrets; print(secrets.token_hex(32))"``. Set the same value on every
  machine that writes one shared store, when the processes are started separately (``slb`` runs
  on several nodes). Ray workers need nothing: the store object they are sent carries its key.
* otherwise a per-user key file, ``<cache>/store-keys/<sha256 of the store's resolved path>``
  (``<cache>`` is ``$SLB_CACHE_DIR``, default ``~/.cache/subliminal-bench``), created on first use
  with mode 0600 in a 0700 directory. Concurrent first users agree on one key: each writes a
  private temporary file and hard-links it into place, which only one can do; the others read the
  winner's. The file's second line names the store, so the keys of deleted stores can be found.

Losing the key (deleting the file, changing the variable) costs time, never correctness: every entry
of that store then fails its signature and is recomputed once. A key file that would lie inside the
store itself is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
import uuid
from pathlib import Path

from benchmark.core.models import CACHE_ENV

KEY_ENV = "SLB_STORE_KEY"
_KEY_BYTES = 32
_HEX_RE = re.compile(rf"[0-9a-fA-F]{{{2 * _KEY_BYTES}}}\Z")
_DOMAIN = b"slb.store.entry/1\0"  # versions the signed message, so a new layout cannot collide


class StoreError(RuntimeError):
    """The store cannot do what was asked: unwritable root, missing or inconsistent entry, no key."""


def entry_mac(secret: bytes, stage: str, key: str, meta: bytes) -> str:
    """Hex HMAC-SHA256 of an entry's exact ``meta.json`` bytes, bound to its stage and key, so a
    signed entry copied to another place in the store does not validate there either."""
    message = _DOMAIN + stage.encode() + b"\0" + key.encode() + b"\0" + meta
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def key_id(secret: bytes) -> str:
    """A short public name for a key (a hash of it), to tell "another key" from "forged"."""
    return hashlib.sha256(b"slb.store.key-id\0" + secret).hexdigest()[:12]


def marker(secret: bytes, stage: str, key: str, meta: bytes) -> str:
    """The ``.complete`` marker's text: the signature, then the signing key's id."""
    return f"{entry_mac(secret, stage, key, meta)} {key_id(secret)}\n"


def marker_problem(secret: bytes, stage: str, key: str, meta: bytes, found: bytes) -> str | None:
    """Why the marker bytes ``found`` do not sign ``meta``, or None if they do (constant-time)."""
    mac, _, signer = found.strip().partition(b" ")
    if hmac.compare_digest(entry_mac(secret, stage, key, meta).encode(), mac):
        return None
    ours = key_id(secret)
    if re.fullmatch(rb"[0-9a-f]{12}", signer) and signer.decode() != ours:
        # Says nothing about trust (anyone can write an id), but names the likely cause.
        return (
            f"meta.json is signed under another key (id {signer.decode()}, this store's is "
            f"{ours}): forged, or a shared store written by processes with different keys "
            f"(give them all the same {KEY_ENV})"
        )
    return (
        "meta.json is not signed with this store's key: edited by another writer, or written "
        "before entries were signed"
    )


def key_file(root: Path) -> Path:
    """Where the key of the store at ``root`` lives when ``$SLB_STORE_KEY`` is unset."""
    cache = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "subliminal-bench")
    name = hashlib.sha256(str(root.resolve()).encode()).hexdigest()
    return cache / "store-keys" / name


def store_key(root: Path) -> bytes:
    """The secret for the store at ``root``: from ``$SLB_STORE_KEY``, else its key file (created
    on first use). Raises :class:`StoreError` with a one-line message naming what is wrong."""
    if text := os.environ.get(KEY_ENV):
        if not _HEX_RE.match(text.strip()):
            raise StoreError(
                f"{KEY_ENV} must be {2 * _KEY_BYTES} hex characters (a {_KEY_BYTES}-byte key, e.g. "
                f"from secrets.token_hex({_KEY_BYTES})); got {len(text.strip())} characters"
            )
        return bytes.fromhex(text.strip())
    path = key_file(root)
    if path.parent.resolve().is_relative_to(root.resolve()):
        raise StoreError(
            f"the store key directory {path.parent} lies inside the store {root}, where a writer "
            f"of the store could read it; set {CACHE_ENV} outside the store or set {KEY_ENV}"
        )
    try:
        return _read(path) if path.exists() else _create(path, root)
    except OSError as exc:
        raise StoreError(
            f"cannot read or create the store key {path} ({exc.strerror or exc}); set {CACHE_ENV} "
            f"to a writable directory or set {KEY_ENV}"
        ) from exc


def _read(path: Path) -> bytes:
    # Empty only while a writer on a filesystem without hard links (see _create) is mid-write.
    for _ in range(40):
        if text := path.read_text("ascii", errors="replace"):
            break
        time.sleep(0.025)
    first = text.split("\n", 1)[0].strip()
    if not _HEX_RE.match(first):
        raise StoreError(
            f"store key file {path} is damaged (expected {2 * _KEY_BYTES} hex characters on its "
            "first line); delete it to start a new key (every entry of the store is then "
            "recomputed once)"
        )
    return bytes.fromhex(first)


def _create(path: Path, root: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = f"{secrets.token_hex(_KEY_BYTES)}\n{root.resolve()}\n".encode("ascii")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        _write_exclusive(tmp, data)
        try:
            os.link(tmp, path)  # whole file or nothing, and never over a concurrent winner's
        except FileExistsError:
            pass
        except OSError:  # no hard links on this filesystem: create exclusively, write in place
            try:
                _write_exclusive(path, data)
            except FileExistsError:
                pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read(path)  # ours, or the winner's


def _write_exclusive(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, 0o600)  # exactly, whatever the umask
        f.write(data)
        f.flush()
        os.fsync(fd)
