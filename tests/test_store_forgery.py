"""The store against writers it does not trust: forged entries are detected and recomputed.

A hostile plugin that can write the store (issue 19) rewrote a control entry's rows *and* the
checksum in its ``meta.json``; the next run reused it. Entries are now signed with a secret kept
outside the store (``benchmark.core.store_keys``): these tests forge as that plugin did, move
signed entries where they do not belong, and check where the secret lives and how it is shared.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import pickle
import shutil
import stat
from pathlib import Path

import pytest

from benchmark.core import store_keys
from benchmark.core.store import ArtifactStore, StoreError
from benchmark.core.store_keys import KEY_ENV, entry_mac, key_file, key_id, store_key

ROWS = [{"id": "r0", "prompt": "Continue: 3, 7", "completion": "11, 15"}]
FORGED = [{"id": "r0", "prompt": "Continue: 3, 7", "completion": "owl owl owl"}]
SPEC = {"task": "numbers", "arm": "control"}
PROCESSES, ROUNDS = 4, 8


@pytest.fixture(autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keys go to a throwaway cache outside every store under test."""
    root = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("SLB_CACHE_DIR", str(root))
    monkeypatch.delenv(KEY_ENV, raising=False)
    return root


def forge_rows(entry: Path, rows: list[dict]) -> None:
    """What the attacker did: new rows, and the checksum in meta.json to match them."""
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    (entry / "rows.jsonl").write_bytes(data)
    meta = json.loads((entry / "meta.json").read_text())
    meta["files"]["rows.jsonl"] = hashlib.sha256(data).hexdigest()
    (entry / "meta.json").write_text(json.dumps(meta, indent=2))


def aside(store: ArtifactStore, stage: str, key: str) -> list[str]:
    return [p.name for p in (store.root / stage).iterdir() if p.name.startswith(f"{key}.corrupt-")]


def recompute(store: ArtifactStore, stage: str = "generations") -> tuple[list[dict], bool]:
    rows, _, reused = store.cached(stage, SPEC, lambda: (ROWS, {}))
    return rows, reused


# -- forged entries ------------------------------------------------------------------------------


@pytest.mark.parametrize("marker", ["kept", "old-format", "other-key", "garbage"])
def test_forged_rows_and_checksum_are_detected_and_recomputed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, marker: str
) -> None:
    store = ArtifactStore(tmp_path / "store")
    store.cached("generations", SPEC, lambda: (ROWS, {}))
    key = store.key("generations", SPEC)
    entry = store.path("generations", key)
    forge_rows(entry, FORGED)
    if marker == "old-format":  # the marker as stores wrote it before entries were signed
        (entry / ".complete").write_text(key)
    elif marker == "other-key":  # signed, but with a key the attacker made up
        meta = (entry / "meta.json").read_bytes()
        (entry / ".complete").write_text(entry_mac(b"k" * 32, "generations", key, meta))
    elif marker == "garbage":
        (entry / ".complete").write_bytes("\xff☃\n".encode())

    with pytest.raises(StoreError, match="not signed with this store's key"):
        store.read_rows("generations", key)  # reading never trusts it either
    with caplog.at_level(logging.WARNING, logger="benchmark.core.store"):
        assert not store.has("generations", key)
    assert f"generations/{key} is corrupt" in caplog.text and "not signed" in caplog.text
    assert len(aside(store, "generations", key)) == 1  # kept for inspection, out of the way

    assert recompute(store) == (ROWS, False)
    assert recompute(ArtifactStore(store.root)) == (ROWS, True)  # the recomputed one is trusted


def test_entries_from_before_signing_are_recomputed_once(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    for i in range(3):
        path = store.write_rows("generations", {"i": i}, ROWS)
        (path / ".complete").write_text(path.name)  # what the store wrote before signing
    calls = []
    for _ in range(2):
        for i in range(3):
            store.cached("generations", {"i": i}, lambda: (calls.append(1) or ROWS, {}))
    assert len(calls) == 3  # once each, then trusted


def test_forged_meta_only_is_detected(tmp_path: Path) -> None:
    # Not the rows: a caller key (e.g. n_kept) or the spec rewritten in meta.json alone.
    store = ArtifactStore(tmp_path)
    store.cached("filtered", SPEC, lambda: (ROWS, {"n_kept": 1}))
    key = store.key("filtered", SPEC)
    meta_file = store.path("filtered", key) / "meta.json"
    meta_file.write_text(meta_file.read_text().replace('"n_kept": 1', '"n_kept": 9'))
    assert not store.has("filtered", key)
    assert recompute(store, "filtered") == (ROWS, False)


def test_forged_dir_entry_is_detected_and_rebuilt(tmp_path: Path) -> None:
    store, spec = ArtifactStore(tmp_path), {"base": "smollm2", "arm": "control"}

    def build(out: Path) -> dict:
        (out / "adapter_model.bin").write_bytes(b"real weights")
        return {}

    path, _, _ = store.cached_dir("students", spec, build)
    meta = json.loads((path / "meta.json").read_text())
    (path / "adapter_model.bin").write_bytes(b"poisoned weights")
    meta["files"]["adapter_model.bin"] = hashlib.sha256(b"poisoned weights").hexdigest()
    (path / "meta.json").write_text(json.dumps(meta))
    path, _, reused = store.cached_dir("students", spec, build)
    assert reused is False and (path / "adapter_model.bin").read_bytes() == b"real weights"


def test_signed_entry_moved_to_another_key_or_stage_does_not_validate(tmp_path: Path) -> None:
    # The trait arm's genuine, signed entry copied over the control arm's (or another stage's).
    store = ArtifactStore(tmp_path)
    trait_spec = {**SPEC, "arm": "trait"}
    store.cached("generations", trait_spec, lambda: (FORGED, {}))
    store.cached("generations", SPEC, lambda: (ROWS, {}))
    src = store.path("generations", store.key("generations", trait_spec))
    dst = store.path("generations", store.key("generations", SPEC))
    shutil.rmtree(dst)
    shutil.copytree(src, dst)
    meta = json.loads((dst / "meta.json").read_text())
    assert meta["key"] != dst.name  # a naive copy; rewriting "key" breaks the signature as well
    assert not store.has("generations", dst.name)
    shutil.copytree(src, store.path("filtered", src.name))
    assert not store.has("filtered", src.name)


def test_key_of_another_store_does_not_validate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = ArtifactStore(tmp_path / "a"), ArtifactStore(tmp_path / "b")
    assert store_key(a.root) != store_key(b.root)
    a.cached("generations", SPEC, lambda: (ROWS, {}))
    key = a.key("generations", SPEC)
    shutil.copytree(a.path("generations", key), b.path("generations", key))
    with caplog.at_level(logging.WARNING, logger="benchmark.core.store"):
        assert not b.has("generations", key)  # signed, but with a's key
    assert f"signed under another key (id {key_id(store_key(a.root))}" in caplog.text
    assert KEY_ENV in caplog.text  # the hint for a shared store written with different keys
    assert recompute(b) == (ROWS, False) and recompute(a) == (ROWS, True)


def test_read_dataset_rechecks_rows_against_signed_meta(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    store.cached("generations", SPEC, lambda: (ROWS, {}))
    key = store.key("generations", SPEC)
    (store.path("generations", key) / "rows.jsonl").write_text(json.dumps(FORGED[0]) + "\n")
    with pytest.raises(StoreError, match="checksum"):
        store.read_dataset("generations", key)


# -- where the key lives -------------------------------------------------------------------------


def test_key_file_is_private_outside_the_store_and_names_it(tmp_path: Path, cache: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    path = key_file(store.root)
    assert path.parent == cache / "store-keys" and not path.is_relative_to(store.root)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    first, second = path.read_text().splitlines()
    assert len(bytes.fromhex(first)) == 32 and second == str(store.root.resolve())
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    store.cached("generations", SPEC, lambda: (ROWS, {}))
    # Another spelling of the same directory is the same store, with the same key.
    again = ArtifactStore(tmp_path / "x" / ".." / "store")
    assert recompute(again) == (ROWS, True)


def test_key_file_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(*args: object) -> None:
        raise PermissionError("operation not permitted")

    monkeypatch.setattr(store_keys.os, "link", no_links)
    secret = store_key(tmp_path)
    assert stat.S_IMODE(key_file(tmp_path).stat().st_mode) == 0o600
    assert store_key(tmp_path) == secret and len(list(key_file(tmp_path).parent.iterdir())) == 1


def test_key_dir_inside_the_store_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLB_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(StoreError, match="inside the store"):
        ArtifactStore(tmp_path)


def test_damaged_key_file_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    ArtifactStore(tmp_path)
    key_file(tmp_path).write_text("not a key\n")
    with pytest.raises(StoreError, match="store key file .* is damaged") as err:
        ArtifactStore(tmp_path)
    assert str(key_file(tmp_path)) in str(err.value) and "\n" not in str(err.value)


def test_unwritable_key_cache_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("SLB_CACHE_DIR", str(tmp_path / "file"))  # a file: no dir can go there
    with pytest.raises(StoreError, match=f"cannot read or create the store key.*{KEY_ENV}") as err:
        ArtifactStore(tmp_path / "store")
    assert "\n" not in str(err.value)


def _first_user(root: str, barrier, out) -> None:
    try:
        barrier.wait()
        for r in range(ROUNDS):
            store = ArtifactStore(Path(root) / f"s{r}")
            out.put((r, store_key(store.root).hex()))
            barrier.wait()  # the next store's first use is contended again
    except Exception as e:  # what the test counts
        out.put(f"{type(e).__name__}: {e}")


def test_four_processes_using_a_store_first_agree_on_one_key(tmp_path: Path, cache: Path) -> None:
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [
        ctx.Process(target=_first_user, args=(str(tmp_path), barrier, out))
        for _ in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    keys: dict[int, set[str]] = {}
    errors = []
    for _ in range(PROCESSES * ROUNDS):
        msg = out.get(timeout=60)
        if isinstance(msg, str):
            errors.append(msg)
            break
        keys.setdefault(msg[0], set()).add(msg[1])
    for p in procs:
        p.join(timeout=60)
    assert errors == [] and all(p.exitcode == 0 for p in procs), errors
    assert {r: len(k) for r, k in keys.items()} == {r: 1 for r in range(ROUNDS)}
    assert sorted(p.name for p in (cache / "store-keys").iterdir()) == sorted(
        key_file(tmp_path / f"s{r}").name for r in range(ROUNDS)
    )  # one file per store, no temporary ones left


# -- sharing the key -----------------------------------------------------------------------------


def test_env_key_is_used_and_shared_across_store_paths(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "ab" * 32)
    store = ArtifactStore(tmp_path / "node1")
    store.cached("generations", SPEC, lambda: (ROWS, {}))
    assert not (cache / "store-keys").exists()  # no key file when the variable is set
    # The same shared store mounted elsewhere on another node: its entries are trusted there.
    shutil.copytree(tmp_path / "node1", tmp_path / "node2")
    assert recompute(ArtifactStore(tmp_path / "node2")) == (ROWS, True)
    monkeypatch.setenv(KEY_ENV, "cd" * 32)  # another key: the entries are not trusted
    assert recompute(ArtifactStore(tmp_path / "node2")) == (ROWS, False)


@pytest.mark.parametrize("value", ["abc", "zz" * 32, "a" * 63, "a" * 66, "ab" * 31 + "é1"])
def test_malformed_env_key_is_a_one_line_error_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(KEY_ENV, value)
    with pytest.raises(StoreError, match=f"^{KEY_ENV} must be 64 hex characters") as err:
        ArtifactStore(tmp_path)
    assert "\n" not in str(err.value) and value not in str(err.value)  # a secret is not echoed


def test_pickled_store_keeps_its_key(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Ray worker receives the store pickled; its own home (another cache) must not matter.
    store = ArtifactStore(tmp_path)
    store.cached("generations", SPEC, lambda: (ROWS, {}))
    monkeypatch.setenv("SLB_CACHE_DIR", str(tmp_path_factory.mktemp("worker-cache")))
    worker = pickle.loads(pickle.dumps(store))
    assert recompute(worker) == (ROWS, True)
