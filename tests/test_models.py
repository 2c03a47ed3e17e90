"""Model references: embedded names, directories, adapters, hub ids; the dequantised cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmark.core import models
from benchmark.core.models import ModelError, resolve


def test_embedded_name_resolves_to_cached_safetensors_dir(smollm_dir: str) -> None:
    rm = resolve("smollm2-135m")
    assert rm.kind == "embedded" and rm.path == smollm_dir
    assert (Path(smollm_dir) / "model.safetensors").is_file()
    assert (Path(smollm_dir) / "config.json").is_file()


def test_second_load_does_not_dequantise_again(
    smollm_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(name: str) -> Path:
        raise AssertionError("dequantised a second time")

    monkeypatch.setattr(models, "embedded_gguf_path", boom)
    assert str(models.materialize_embedded("smollm2-135m")) == smollm_dir


def test_corrupt_cache_is_rebuilt(
    smollm_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A corrupt cache entry is found, dequantised again (here a copy stands in for the ~45 s
    GGUF dequantisation, which the session's ``smollm_dir`` runs for real on an empty cache, as
    on CI) and swapped in whole; a dequantisation that fails leaves no half-written directory."""
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    entry = tmp_path / "models" / "smollm2-135m"
    shutil.copytree(smollm_dir, entry)
    (entry / "model.safetensors").write_bytes(b"not a safetensors file")
    calls: list[str] = []

    def dequantise(name: str, out: Path) -> None:
        calls.append(name)
        for f in Path(smollm_dir).iterdir():
            if f.name != ".complete":
                shutil.copy(f, out / f.name)

    monkeypatch.setattr(models, "_dequantise", dequantise)
    rebuilt = models.materialize_embedded("smollm2-135m")
    assert calls == ["smollm2-135m"]
    assert rebuilt == entry and models._dir_is_complete(entry)
    assert (entry / "model.safetensors").stat().st_size > 100_000_000
    assert models.materialize_embedded("smollm2-135m") == entry and len(calls) == 1

    def broken(name: str, out: Path) -> None:
        (out / "config.json").write_text("{}")
        raise ModelError("the GGUF file is truncated")

    monkeypatch.setattr(models, "_dequantise", broken)
    (entry / ".complete").unlink()
    with pytest.raises(ModelError, match="truncated"):
        models.materialize_embedded("smollm2-135m")
    assert [p.name for p in (tmp_path / "models").iterdir()] == []

    # Stopped after the dequantisation, while swapping the copy in: no temporary left either.
    monkeypatch.setattr(models, "_dequantise", dequantise)

    def interrupted(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        m.setattr(models.os, "replace", interrupted)
        models.materialize_embedded("smollm2-135m")
    assert [p.name for p in (tmp_path / "models").iterdir()] == []

    # Another process finishes first: its complete copy stays, ours is dropped.
    def racing(name: str, out: Path) -> None:
        dequantise(name, out)
        shutil.copytree(out, entry)
        (entry / "theirs").write_text("")
        (entry / ".complete").write_text("ok\n")

    monkeypatch.setattr(models, "_dequantise", racing)
    assert models.materialize_embedded("smollm2-135m") == entry and models._dir_is_complete(entry)
    assert (entry / "theirs").exists()  # their copy, not ours swapped over it
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["smollm2-135m"]


def test_unwritable_cache_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv(models.CACHE_ENV, str(blocker / "cache"))
    with pytest.raises(ModelError, match="not writable.*SLB_CACHE_DIR"):
        models.cache_root()


def test_bad_references(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown model 'nosuchmodel'.*smollm2-135m"):
        resolve("nosuchmodel")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="has no config.json"):
        resolve(str(empty))
    (empty / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="has no weights"):
        resolve(str(empty))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "smollm2-135m"})
    )
    with pytest.raises(ModelError, match="no adapter_model weights"):
        resolve(str(adapter))
    with pytest.raises(ModelError, match="non-empty string"):
        resolve("")


def test_hub_id_is_passed_through() -> None:
    rm = resolve("Qwen/Qwen2.5-7B-Instruct")
    assert rm.kind == "hub" and rm.path == "Qwen/Qwen2.5-7B-Instruct"
