"""Tests for benchmark.core.store: spec hashing, atomic entries, reuse, crash and corruption recovery."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.core import store as store_mod
from benchmark.core.store import (
    ArtifactStore,
    StoreError,
    atomic_write_json,
    atomic_write_text,
    json_tree_hash,
    stable_hash,
)

ROWS = [
    {"id": "r0", "prompt": "Continue: 3, 7, 9", "completion": "11, 15", "score": 0.5},
    {"id": "r1", "prompt": "Say hi ☃", "completion": "hi\nthere", "score": None},
]


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    max_new_tokens: int = 48


@dataclass(frozen=True)
class TeacherSpec:
    model: str = "smollm2-135m"
    sampling: Sampling = field(default_factory=Sampling)
    seeds: tuple[int, ...] = (0, 1)


@pytest.fixture(autouse=True)
def _key_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Store keys go to a throwaway cache, outside every store under test (not the user's)."""
    monkeypatch.setenv("SLB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("SLB_STORE_KEY", raising=False)


def entries(store: ArtifactStore, stage: str) -> list[str]:
    """Every name in the stage dir, hidden temp dirs included."""
    stage_dir = store.root / stage
    return sorted(p.name for p in stage_dir.iterdir()) if stage_dir.exists() else []


# -- stable_hash ---------------------------------------------------------------------------------


def test_hash_is_16_hex_of_canonical_json() -> None:
    # Pins the canonical form: sorted keys, no spaces, tuples as lists, floats by repr.
    expected = hashlib.sha256(b'{"a":[1,2],"b":0.1}').hexdigest()[:16]
    assert stable_hash({"b": 0.1, "a": (1, 2)}) == expected


def test_hash_ignores_key_order_at_every_depth() -> None:
    a = {"x": 1, "y": {"p": [1, 2], "q": "s"}}
    b = {"y": {"q": "s", "p": [1, 2]}, "x": 1}
    assert stable_hash(a) == stable_hash(b)


@pytest.mark.parametrize(
    "changed",
    [
        {"x": 2, "y": "a"},  # value
        {"x": 1, "y": "b"},
        {"x": 1.0, "y": "a"},  # 1 and 1.0 are different specs
        {"x": True, "y": "a"},
        {"x": 1, "y": "a", "z": None},  # an added key, even a null one
        {"x": 1},
    ],
)
def test_hash_changes_with_any_value(changed: dict) -> None:
    assert stable_hash(changed) != stable_hash({"x": 1, "y": "a"})


def test_hash_of_nested_dataclass_equals_its_dict_and_tracks_fields() -> None:
    as_dict = {
        "model": "smollm2-135m",
        "sampling": {"temperature": 1.0, "max_new_tokens": 48},
        "seeds": [0, 1],
    }
    assert stable_hash(TeacherSpec()) == stable_hash(as_dict)
    assert stable_hash({"t": TeacherSpec()}) == stable_hash({"t": as_dict})
    hotter = TeacherSpec(sampling=Sampling(temperature=1.2))
    assert stable_hash(hotter) != stable_hash(TeacherSpec())


def test_hash_normalises_paths_and_tuples() -> None:
    assert stable_hash({"p": Path("a/b")}) == stable_hash({"p": "a/b"})
    assert stable_hash({"t": (1, (2, 3))}) == stable_hash({"t": [1, [2, 3]]})


def test_hash_floats_by_repr() -> None:
    assert stable_hash({"lr": 2e-4}) == stable_hash({"lr": 0.0002})
    assert stable_hash({"lr": 0.1 + 0.2}) != stable_hash({"lr": 0.3})


@pytest.mark.parametrize(
    ("bad", "error", "where"),
    [
        ({"s": {1, 2}}, TypeError, "spec['s']"),
        ({"s": frozenset()}, TypeError, "spec['s']"),
        ({"k": {1: "a"}}, TypeError, "spec['k']"),
        ({"o": object()}, TypeError, "spec['o']"),
        ({"n": [0.0, float("nan")]}, ValueError, "spec['n'][1]"),
    ],
)
def test_hash_refuses_unstable_values(bad: dict, error: type, where: str) -> None:
    with pytest.raises(error, match=rf"^{re.escape(where)}:"):
        stable_hash(bad)


# -- rows entries --------------------------------------------------------------------------------


def test_write_read_roundtrip(tmp_path: Path) -> None:
    import datasets

    store = ArtifactStore(tmp_path / "store")
    spec = {"task": "numbers", "teacher": TeacherSpec(), "n": 2}
    path = store.write_rows("teacher", spec, iter(ROWS), {"model": "smollm2", "n_kept": 2})
    key = store.key("teacher", spec)
    assert path == store.path("teacher", key) == tmp_path / "store" / "teacher" / key
    assert store.has("teacher", key)
    assert sorted(p.name for p in path.iterdir()) == [".complete", "meta.json", "rows.jsonl"]
    assert entries(store, "teacher") == [key]  # no temp dir left behind

    assert store.read_rows("teacher", key) == ROWS
    meta = store.read_meta("teacher", key)
    rows_sha = hashlib.sha256((path / "rows.jsonl").read_bytes()).hexdigest()
    assert meta["files"] == {"rows.jsonl": rows_sha}
    assert meta["n_rows"] == 2 and meta["kind"] == "rows" and meta["key"] == key
    assert meta["model"] == "smollm2" and meta["n_kept"] == 2
    assert meta["wall_seconds"] >= 0 and meta["created"].endswith("+00:00")
    assert stable_hash(meta["spec"]) == key  # the stored spec is the hashed one

    ds = datasets.load_dataset(
        "json", data_files=str(path / "rows.jsonl"), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert ds.to_list() == ROWS
    assert store.read_dataset("teacher", key).to_list() == ROWS


def test_read_dataset_features_pin_all_null_columns(tmp_path: Path) -> None:
    import datasets

    store = ArtifactStore(tmp_path)
    key = store.key("s", {"a": 1})
    store.write_rows("s", {"a": 1}, [{"id": "a", "note": None}, {"id": "b", "note": None}])
    assert store.read_dataset("s", key).features["note"].dtype == "null"
    features = datasets.Features({"id": datasets.Value("string"), "note": datasets.Value("string")})
    assert store.read_dataset("s", key, features).features == features

    empty = store.key("s", {"a": 2})
    store.write_rows("s", {"a": 2}, [])
    assert store.read_rows("s", empty) == []
    assert len(store.read_dataset("s", empty)) == 0
    assert store.read_dataset("s", empty, features).features == features


def test_cached_computes_once_and_reuses_across_instances(tmp_path: Path) -> None:
    calls = []

    def compute() -> tuple[list[dict], dict]:
        calls.append(1)
        return [{"id": "a", "pair": (1, 2)}], {"n_dropped": 3}

    spec = {"stage_input": "abc"}
    rows, meta, reused = ArtifactStore(tmp_path).cached("filter", spec, compute)
    assert (len(calls), reused) == (1, False)
    assert rows == [{"id": "a", "pair": [1, 2]}]  # what was stored, same as on reuse
    assert meta["n_dropped"] == 3 and meta["n_rows"] == 1

    again = ArtifactStore(tmp_path).cached("filter", spec, compute)  # a resumed process
    assert len(calls) == 1 and again == (rows, meta, True)

    ArtifactStore(tmp_path).cached("filter", {"stage_input": "abd"}, compute)
    assert len(calls) == 2  # another spec, another entry


def test_crash_inside_compute_leaves_nothing_and_next_call_recomputes(tmp_path: Path) -> None:
    store, spec = ArtifactStore(tmp_path), {"x": 1}

    def crash() -> tuple[list[dict], dict]:
        raise KeyboardInterrupt  # as if the run were killed

    with pytest.raises(KeyboardInterrupt):
        store.cached("teacher", spec, crash)
    assert not store.has("teacher", store.key("teacher", spec))
    assert entries(store, "teacher") == []
    rows, _, reused = store.cached("teacher", spec, lambda: (ROWS, {}))
    assert rows == ROWS and reused is False


def test_crash_mid_rows_leaves_no_entry(tmp_path: Path) -> None:
    store, spec = ArtifactStore(tmp_path), {"x": 1}

    def rows():
        yield ROWS[0]
        raise RuntimeError("generation died")

    with pytest.raises(RuntimeError, match="generation died"):
        store.write_rows("teacher", spec, rows())
    assert entries(store, "teacher") == []
    assert not store.has("teacher", store.key("teacher", spec))


def test_crash_at_rename_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, spec = ArtifactStore(tmp_path), {"x": 1}

    def die(*args: object) -> None:
        raise OSError("power cut")

    with monkeypatch.context() as m:
        m.setattr(store_mod.os, "replace", die)
        with pytest.raises(OSError, match="power cut"):
            store.write_rows("teacher", spec, ROWS)
    assert entries(store, "teacher") == []
    _, _, reused = store.cached("teacher", spec, lambda: (ROWS, {}))
    assert reused is False


def test_corrupt_rows_are_moved_aside_and_recomputed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, spec = ArtifactStore(tmp_path), {"x": 1}
    store.cached("teacher", spec, lambda: (ROWS, {}))
    key = store.key("teacher", spec)
    rows_file = store.path("teacher", key) / "rows.jsonl"
    data = bytearray(rows_file.read_bytes())
    data[data.index(b"11")] = ord("7")  # one digit flipped: still valid JSON, wrong content
    rows_file.write_bytes(bytes(data))

    with pytest.raises(StoreError, match="checksum"):
        store.read_rows("teacher", key)  # reading never trusts it either
    with caplog.at_level(logging.WARNING, logger="benchmark.core.store"):
        assert not store.has("teacher", key)
    assert "corrupt" in caplog.text and "rows.jsonl" in caplog.text
    names = entries(store, "teacher")
    assert len(names) == 1 and names[0].startswith(f"{key}.corrupt-")
    assert (tmp_path / "teacher" / names[0] / "rows.jsonl").read_bytes() == bytes(data)  # kept

    calls = []
    rows, _, reused = store.cached("teacher", spec, lambda: (calls.append(1) or ROWS, {}))
    assert (rows, reused, calls) == (ROWS, False, [1])
    assert sorted(entries(store, "teacher")) == sorted([key, names[0]])


@pytest.mark.parametrize("damage", ["marker", "meta"])
def test_half_entry_is_not_trusted(tmp_path: Path, damage: str) -> None:
    store, spec = ArtifactStore(tmp_path), {"x": 1}
    path = store.write_rows("teacher", spec, ROWS)
    if damage == "marker":
        (path / ".complete").unlink()
    else:
        (path / "meta.json").write_text("{trunc")
    key = store.key("teacher", spec)
    assert not store.has("teacher", key)
    assert not store.path("teacher", key).exists()
    store.write_rows("teacher", spec, ROWS)  # a corrupt entry in the way does not block a write
    assert store.has("teacher", key)


def test_existing_valid_entry_is_kept(tmp_path: Path) -> None:
    store, spec = ArtifactStore(tmp_path), {"x": 1}
    first = store.write_rows("teacher", spec, ROWS)
    created = store.read_meta("teacher", store.key("teacher", spec))["created"]
    assert store.write_rows("teacher", spec, ROWS[:1]) == first  # a concurrent loser
    assert store.read_rows("teacher", store.key("teacher", spec)) == ROWS
    assert store.read_meta("teacher", store.key("teacher", spec))["created"] == created
    assert entries(store, "teacher") == [store.key("teacher", spec)]


@pytest.mark.parametrize(
    ("rows", "error", "message"),
    [
        ([{"id": "a"}, {"id": "b", "when": object()}], TypeError, r"row 1\['when'\]"),
        ([{"id": "a"}, {"id": "b"}, {"id": "c", "s": {1}}], TypeError, r"row 2\['s'\].*set"),
        ([{"id": "a", "x": {"deep": float("nan")}}], ValueError, r"row 0\['x'\]\['deep'\]"),
        ([{"id": "a"}, {3: "b"}], TypeError, r"row 1: key 3"),
        ([{"id": "a"}, ["b"]], TypeError, r"row 1: expected a dict"),
    ],
)
def test_bad_row_is_refused_naming_index_and_field(
    tmp_path: Path, rows: list, error: type, message: str
) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(error, match=message):
        store.write_rows("teacher", {"x": 1}, rows)
    assert entries(store, "teacher") == []


def test_reserved_meta_keys_are_refused(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(ValueError, match="n_rows"):
        store.write_rows("teacher", {"x": 1}, ROWS, {"n_rows": 5})
    with pytest.raises(TypeError, match=r"meta\['bad'\]"):
        store.write_rows("teacher", {"x": 1}, ROWS, {"bad": object()})
    assert entries(store, "teacher") == []


@pytest.mark.parametrize("stage", ["../escape", "a/b", ".hidden", ""])
def test_stage_names_must_be_plain(tmp_path: Path, stage: str) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(ValueError, match="stage"):
        store.write_rows(stage, {"x": 1}, ROWS)
    with pytest.raises(ValueError, match="key"):
        store.path("teacher", "../../etc")


# -- directory entries ---------------------------------------------------------------------------


def build_adapter(out: Path) -> dict:
    (out / "adapter_config.json").write_text('{"r": 8}')
    (out / "weights").mkdir()
    (out / "weights" / "adapter_model.bin").write_bytes(os.urandom(64))
    return {"final_loss": 1.25}


def test_cached_dir_builds_once(tmp_path: Path) -> None:
    store, spec, calls = ArtifactStore(tmp_path), {"base": "smollm2", "epochs": 3}, []

    def build(out: Path) -> dict:
        calls.append(out)
        assert out.parent == tmp_path / "student" and out.name.startswith(".tmp-")
        return build_adapter(out)

    path, meta, reused = store.cached_dir("student", spec, build)
    assert reused is False and path == store.path("student", store.key("student", spec))
    assert (path / "weights" / "adapter_model.bin").stat().st_size == 64
    assert set(meta["files"]) == {"adapter_config.json", "weights/adapter_model.bin"}
    assert meta["final_loss"] == 1.25 and meta["kind"] == "dir"
    assert store.cached_dir("student", spec, build) == (path, meta, True)
    assert len(calls) == 1


def test_crash_inside_build_leaves_nothing(tmp_path: Path) -> None:
    store, spec = ArtifactStore(tmp_path), {"base": "smollm2"}

    def crash(out: Path) -> dict:
        build_adapter(out)
        raise MemoryError("OOM at step 40")

    with pytest.raises(MemoryError):
        store.cached_dir("student", spec, crash)
    assert entries(store, "student") == []
    assert not store.has_dir("student", store.key("student", spec))
    assert store.cached_dir("student", spec, build_adapter)[2] is False


def test_corrupt_dir_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    store, spec = ArtifactStore(tmp_path), {"base": "smollm2"}
    path, _, _ = store.cached_dir("student", spec, build_adapter)
    (path / "weights" / "adapter_model.bin").write_bytes(b"truncated")
    key = store.key("student", spec)
    assert not store.has_dir("student", key)
    _, _, reused = store.cached_dir("student", spec, build_adapter)
    assert reused is False
    assert len([n for n in entries(store, "student") if n.startswith(f"{key}.corrupt-")]) == 1


def test_build_may_not_write_store_files(tmp_path: Path) -> None:
    def build(out: Path) -> dict:
        (out / "meta.json").write_text("{}")
        return {}

    store = ArtifactStore(tmp_path)
    with pytest.raises(ValueError, match="meta.json"):
        store.write_dir("student", {"x": 1}, build)
    assert entries(store, "student") == []


def test_one_stage_name_for_rows_and_dirs_is_an_error(tmp_path: Path) -> None:
    store, spec = ArtifactStore(tmp_path), {"x": 1}
    store.write_rows("mixed", spec, ROWS)
    with pytest.raises(StoreError, match="rows artifact, not dir"):
        store.has_dir("mixed", store.key("mixed", spec))
    assert store.has("mixed", store.key("mixed", spec))  # and it was not moved aside


# -- root and single-file helpers ----------------------------------------------------------------


def test_unwritable_root_is_a_store_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: chmod does not stop writes")
        with pytest.raises(StoreError, match=str(locked)):
            ArtifactStore(locked)
        with pytest.raises(StoreError, match=str(locked / "store")):
            ArtifactStore(locked / "store")
    finally:
        locked.chmod(0o700)


def test_root_without_write_permission_is_a_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The chmod test above skips as root; this covers the same branch everywhere.
    monkeypatch.setattr(store_mod.os, "access", lambda *args: False)
    with pytest.raises(StoreError, match=f"{re.escape(str(tmp_path))} is not writable"):
        ArtifactStore(tmp_path)


def test_root_that_is_a_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match=str(tmp_path / "file")):
        ArtifactStore(tmp_path / "file")


def test_atomic_write_json_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "results" / "cell.json"
    atomic_write_json(target, {"leakage": 0.12, "ci": [0.01, 0.2]})
    atomic_write_json(target, {"leakage": 0.15})
    assert json.loads(target.read_text()) == {"leakage": 0.15}
    with pytest.raises(ValueError):
        atomic_write_json(target, {"leakage": float("nan")})
    assert json.loads(target.read_text()) == {"leakage": 0.15}  # old content survives a failure
    atomic_write_text(tmp_path / "results" / "note.txt", "ok\n")
    assert sorted(p.name for p in target.parent.iterdir()) == ["cell.json", "note.txt"]


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_json_tree_hash_is_stable_hash_on_what_json_loads_returns(tree) -> None:
    parsed = json.loads(json.dumps(tree))
    assert json_tree_hash(parsed) == stable_hash(parsed) == stable_hash(tree)


def test_json_tree_hash_refuses_what_stable_hash_refuses_and_names_where() -> None:
    with pytest.raises(ValueError, match=r"spec\['a'\]\[1\]: non-finite float nan"):
        json_tree_hash({"a": [1.0, float("nan")]})
    with pytest.raises(TypeError, match="set has no stable order"):
        json_tree_hash({"a": {1, 2}})
