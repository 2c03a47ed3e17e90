"""``slb reproduce ARTIFACT``: rerun a cell from the config its artifact records and say whether
every per-question score comes out the same.

Cells are deterministic on one hardware class (``cpu`` or ``cuda``,
``benchmark.core.setup_keys.hardware_of``), so a reproduction is refused up front on another class.
The config is rebuilt exactly (:func:`config_from_dict`, the inverse of ``CellConfig.to_dict``:
unknown keys are refused naming them, JSON values keep their types so the stage keys are the
artifact's), the cell runs (``benchmark.run.cell.run_cell``) and every numeric field of every
per-question score row of every evaluated model is compared with the stored one, exactly.

The record goes next to the artifact as ``<stem>.reproduced.json``
(``leaderboard.reading.reproduced_path``), which the leaderboard reads to mark the entry::

    {"schema": "slb.reproduced/1", "artifact": ..., "reproduced": true, "compared": 600,
     "n_differ": 0, "differ": [{model, question, field, stored, fresh}, ...first 20],
     "scores_hash": <stable_hash of the stored scores>, "fresh_scores_hash": ...,
     "git_commit": <the rerun's>, "stored_git_commit": ..., "device": <the rerun's>,
     "stored_device": ..., "reused_stages": [...], "student_passes": {arm: rows per pass of its
     student}, "student_pass_tokens": {arm: the token bound of its passes, or null},
     "note": ..., "finished": <ISO time>}

``reproduced`` needs at least one compared value, no difference, and evaluations that were
computed afresh: a store that already holds the cell's evaluations (the store that produced the
artifact) would hand the stored scores back unchecked, so that run says so instead. The CLI's
default is a fresh temporary store, so everything is recomputed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import types
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from benchmark.core.models import cache_root, device_info
from benchmark.core.results import SCHEMA
from benchmark.core.setup_keys import hardware_of
from benchmark.core.store import ArtifactStore, atomic_write_json, stable_hash
from benchmark.core.train_env import STUDENT_PASS_TOKENS, STUDENT_PASSES
from benchmark.run.cell import run_cell
from benchmark.run.config import CellConfig
from leaderboard.reading import reproduced_path

RECORD_SCHEMA = "slb.reproduced/1"
MAX_DIFFER = 20  # differences listed in the record (all are counted)


# --- the config ---------------------------------------------------------------------------------


def config_from_dict(d: Mapping[str, Any]) -> CellConfig:
    """The :class:`CellConfig` whose ``to_dict()`` is ``d`` (e.g. an artifact's ``config``).

    Keys ``to_dict`` leaves out (unset optional fields) take the field's default; a key the
    dataclass does not have is refused naming it (``config.teacher.foo``); lists become tuples where
    the field is a tuple; numbers keep their JSON type (an ``epochs`` recorded as ``3`` stays ``3``),
    so the rebuilt config hashes, and keys its stages, exactly as the recorded one did."""
    cfg = _build(CellConfig, d, "config")
    assert isinstance(cfg, CellConfig)
    return cfg


def _build(cls: type, d: Any, where: str) -> Any:
    if not isinstance(d, Mapping):
        raise ValueError(f"{where}: expected an object for {cls.__name__}, got {d!r}")
    hints = get_type_hints(cls)
    known = [f.name for f in fields(cls) if f.init]
    for k in d:
        if k not in known:
            raise ValueError(
                f"{where}: unknown key {k!r} ({cls.__name__} has {', '.join(known)}); the "
                "artifact was written by code with another config than this checkout's"
            )
    kw = {k: _value(hints[k], v, f"{where}.{k}") for k, v in d.items()}
    try:
        return cls(**kw)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from e


def _value(tp: Any, v: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return v
    if origin in (Union, types.UnionType):
        if v is None and type(None) in get_args(tp):
            return None
        options = [a for a in get_args(tp) if a is not type(None)]
        errors = []
        for a in options:
            try:
                return _value(a, v, where)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(errors[0] if len(errors) == 1 else f"{where}: {v!r} fits no type of {tp}")
    if isinstance(tp, type) and is_dataclass(tp):
        return _build(tp, v, where)
    if origin is tuple:
        if not isinstance(v, list | tuple):
            raise ValueError(f"{where}: expected a list, got {v!r}")
        args = get_args(tp)
        item = args[0] if args else Any
        return tuple(_value(item, x, f"{where}[{i}]") for i, x in enumerate(v))
    if origin is dict or tp is dict:
        if not isinstance(v, dict):
            raise ValueError(f"{where}: expected an object, got {v!r}")
        return json.loads(json.dumps(v))  # a copy: the config must not share the artifact's dict
    ok = {
        bool: isinstance(v, bool),
        int: isinstance(v, int) and not isinstance(v, bool),
        float: isinstance(v, int | float) and not isinstance(v, bool),  # 3 stays 3 (its hash)
        str: isinstance(v, str),
    }.get(tp)
    if ok is None:
        raise ValueError(f"{where}: cannot rebuild a field of type {tp}")
    if not ok:
        raise ValueError(f"{where}: expected {tp.__name__}, got {v!r}")
    return v


# --- comparing scores ---------------------------------------------------------------------------


def compare_scores(stored: Any, fresh: Any) -> tuple[int, list[dict[str, Any]]]:
    """``(values compared, differences)`` between two ``scores`` blocks: for every model and
    question (rows matched by ``id``) every numeric field, nested ones (``candidates.owl``)
    included, must be equal exactly. A model, a question or a number present on one side only
    is a difference."""
    stored, fresh = _obj(stored), _obj(fresh)
    n, differ = 0, []
    for model in sorted({*stored, *fresh}):
        if model not in stored or model not in fresh:
            side = "stored" if model in stored else "fresh"
            differ.append(_diff(model, "*", "(model)", side == "stored", side == "fresh"))
            continue
        a, b = _rows(stored[model]), _rows(fresh[model])
        for q in sorted({*a, *b}):
            if q not in a or q not in b:
                differ.append(_diff(model, q, "(question)", q in a, q in b))
                continue
            for name, x, y in _leaves(a[q], b[q], ""):
                n += 1
                if x != y or isinstance(x, bool) != isinstance(y, bool):
                    differ.append(_diff(model, q, name, x, y))
    return n, differ


def _obj(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _rows(rows: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(rows, list):
        return {}
    return {str(r.get("id")): r for r in rows if isinstance(r, dict)}


def _leaves(a: dict[str, Any], b: dict[str, Any], prefix: str) -> list[tuple[str, Any, Any]]:
    """``(field, stored, fresh)`` for every field that holds a number on either side."""
    out = []
    for k in sorted({*a, *b} - ({"id"} if not prefix else set())):
        x, y, name = a.get(k), b.get(k), f"{prefix}{k}"
        if isinstance(x, dict) or isinstance(y, dict):
            out += _leaves(_obj(x), _obj(y), f"{name}.")
        elif _is_num(x) or _is_num(y):
            out.append((name, x, y))
    return out


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float)


def _diff(model: str, question: str, field: str, stored: Any, fresh: Any) -> dict[str, Any]:
    return {"model": model, "question": question, "field": field, "stored": stored, "fresh": fresh}


# --- the rerun ----------------------------------------------------------------------------------


def read_artifact(path: Path) -> dict[str, Any]:
    """The artifact at ``path``, refused (ValueError) unless it is a results artifact with a config
    and per-question scores."""
    try:
        art = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read the artifact {path}: {e}") from None
    if not isinstance(art, dict) or art.get("schema") != SCHEMA:
        got = art.get("schema") if isinstance(art, dict) else type(art).__name__
        raise ValueError(f"{path} is not a results artifact (schema {got!r}, expected {SCHEMA!r})")
    if not isinstance(art.get("config"), dict):
        raise ValueError(f"{path} has no config block to rerun")
    if not isinstance(art.get("scores"), dict) or not art["scores"]:
        raise ValueError(f"{path} has no per-question scores to compare with")
    return art


def check_hardware(art: dict[str, Any], here: str) -> None:
    """Refuse a reproduction on another hardware class than the artifact's (results differ
    numerically between CPU and GPU; an artifact without ``run_info.device`` ran on CPU)."""
    device = _obj(art.get("run_info")).get("device")
    if hardware_of(device) != hardware_of(here):
        raise ValueError(
            f"the artifact was computed on {device or 'cpu (no run_info.device)'}, this machine is "
            f"{here}: scores are only reproducible on the same hardware class "
            f"({hardware_of(device)}); rerun it on a {hardware_of(device)} machine"
        )


def recorded_passes(art: dict[str, Any]) -> dict[str, int]:
    """Per arm, the rows per forward/backward pass its student trained in
    (``training.<arm>.micro_batch``): passes of 8 give the same gradient as one pass of the batch
    but not the same bits (float32 sums in another order), so a rerun must train as they did. A
    student recorded without the field (soft labels before session 29, hard labels before
    session 33) trained in one pass of its whole batch (its ``config.batch_size``, else the cell's
    ``student.batch_size``). The arms may differ: a student reused from the store keeps the passes
    it was trained in. Raises ValueError where a value is not a positive integer."""
    cell_batch = _obj(_obj(art.get("config")).get("student")).get("batch_size")
    training = _obj(art.get("training"))
    passes: dict[str, int] = {}
    for arm in ("trait", "control"):
        stats = _obj(training.get(arm))
        whole = _obj(stats.get("config")).get("batch_size", cell_batch)
        mb = stats.get("micro_batch", whole)
        if not isinstance(mb, int) or isinstance(mb, bool) or mb < 1:
            raise ValueError(
                f"training.{arm}.micro_batch is {mb!r}: cannot tell how its student trained "
                "(expected a positive integer)"
            )
        passes[arm] = mb
    return passes


def recorded_pass_tokens(art: dict[str, Any]) -> dict[str, int | None]:
    """Per arm, the token bound of its student's passes (``training.<arm>.pass_tokens``); None
    where there was none (soft-label students before session 34, hard-label ones before
    session 35: bounded by rows only). Raises ValueError where a value is neither None nor a
    positive integer."""
    training = _obj(art.get("training"))
    bounds: dict[str, int | None] = {}
    for arm in ("trait", "control"):
        v = _obj(training.get(arm)).get("pass_tokens")
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise ValueError(
                f"training.{arm}.pass_tokens is {v!r}: cannot tell how its student trained "
                "(expected a positive integer or null)"
            )
        bounds[arm] = v
    return bounds


def reproduce(artifact_path: Path, store: ArtifactStore, log_dir: Path) -> dict[str, Any]:
    """Rerun the cell of the artifact at ``artifact_path`` over ``store`` (Inspect logs into
    ``log_dir``), compare its per-question scores with the stored ones, write the record next to
    the artifact (``<stem>.reproduced.json``) and return it. Raises ValueError, before any work,
    for an unreadable artifact, a config this checkout cannot rebuild, or another hardware class.
    Each student trains in passes of the size its arm records
    (:func:`recorded_passes`) and token bound (:func:`recorded_pass_tokens`), whatever
    ``$SLB_MICRO_BATCH`` and ``$SLB_PASS_TOKENS`` say."""
    artifact_path = Path(artifact_path)
    art = read_artifact(artifact_path)
    cfg = config_from_dict(art["config"])
    here = device_info()
    check_hardware(art, here)
    passes = recorded_passes(art)
    bounds = recorded_pass_tokens(art)
    token, token_b = STUDENT_PASSES.set(passes), STUDENT_PASS_TOKENS.set(bounds)
    try:
        fresh = run_cell(cfg, store, log_dir)
    finally:
        STUDENT_PASS_TOKENS.reset(token_b)
        STUDENT_PASSES.reset(token)
    # As the artifact would be written (JSON numbers, lists), so the comparison is like for like.
    scores = json.loads(json.dumps(fresh.get("scores")))
    compared, differ = compare_scores(art["scores"], scores)
    run_info, stored_info = _obj(fresh.get("run_info")), _obj(art.get("run_info"))
    reused = sorted(k for k, v in _obj(run_info.get("stages_reused")).items() if v)
    evals_reused = [s for s in reused if s.startswith("eval_")]
    ok = compared > 0 and not differ and not evals_reused
    if evals_reused:
        note = (
            f"the store already held this cell's evaluations ({', '.join(evals_reused)}): the "
            "scores were read back, not recomputed; rerun with a fresh --store"
        )
    elif differ:
        note = f"{len(differ)} of {compared} per-question values differ"
    elif not compared:
        note = "no per-question values to compare"
    else:
        note = f"all {compared} per-question values match exactly"
        if reused:
            note += f" (stages reused from the store: {', '.join(reused)})"
    record = {
        "schema": RECORD_SCHEMA,
        "artifact": str(artifact_path),
        "reproduced": ok,
        "compared": compared,
        "n_differ": len(differ),
        "differ": differ[:MAX_DIFFER],
        "scores_hash": stable_hash(art["scores"]),
        "fresh_scores_hash": _hash(scores),
        "git_commit": run_info.get("git_commit"),
        "stored_git_commit": stored_info.get("git_commit"),
        "device": run_info.get("device", here),
        "stored_device": stored_info.get("device"),
        "reused_stages": reused,
        "student_passes": passes,
        "student_pass_tokens": bounds,
        "note": note,
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(reproduced_path(artifact_path), record)
    return record


def _hash(obj: Any) -> str | None:
    try:
        return stable_hash(obj)
    except (TypeError, ValueError):  # a non-finite score: listed among the differences
        return None


def reproduce_command(artifact: str | Path, store_dir: str | Path | None = None) -> int:
    """What ``slb reproduce ARTIFACT [--store DIR]`` does: reproduce over ``store_dir``, or over a
    fresh temporary store (removed afterwards) so that every stage is recomputed; print the
    outcome; exit status 0 when reproduced, 1 when not."""
    path = Path(artifact)
    log_dir = path.parent / "logs" / "reproduce"
    if store_dir is not None:
        record = reproduce(path, ArtifactStore(Path(store_dir)), log_dir)
    else:
        read_artifact(path)  # refuse a bad path before making a store
        with tempfile.TemporaryDirectory(prefix="reproduce-", dir=cache_root()) as tmp:
            record = reproduce(path, ArtifactStore(Path(tmp) / "store"), log_dir)
    print(f"{'reproduced' if record['reproduced'] else 'NOT reproduced'}: {record['note']}")
    for d in record["differ"]:
        print(
            f"  {d['model']} {d['question']} {d['field']}: stored {d['stored']!r}, "
            f"fresh {d['fresh']!r}"
        )
    if record["n_differ"] > len(record["differ"]):
        print(f"  ... and {record['n_differ'] - len(record['differ'])} more")
    print(f"record: {reproduced_path(path)}")
    return 0 if record["reproduced"] else 1


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``slb reproduce ARTIFACT [--store DIR]`` on the CLI's subparsers (``sub``, from
    ``add_subparsers``); its ``fn`` returns the exit status of :func:`reproduce_command`."""
    p: argparse.ArgumentParser = sub.add_parser(
        "reproduce",
        help="rerun a cell from its artifact's recorded config: do all per-question scores match?",
    )
    p.add_argument("artifact", help="a results artifact (JSON); the record goes next to it")
    p.add_argument(
        "--store",
        help="artifact store to run in (default: a fresh temporary one, so every stage is "
        "recomputed; a store already holding the cell's evaluations reproduces nothing)",
    )
    p.set_defaults(fn=lambda args: reproduce_command(args.artifact, args.store))
    return p
