"""One results artifact → one flat :class:`Cell`, with its integrity checked.

``leaderboard.loader`` finds the artifact files and calls :func:`parse` on each; the leaderboard
reads nothing else (no store, no plugin code).

Required of an artifact (else :class:`Skip`, with the reason): a JSON object with
``schema == "slb.results/1"``, ``config.{task, defense, trait, seed}``, and per-question scores of
the ``trait`` and ``control`` students for at least one metric, over the same question ids, each
in [0, 1]. Everything else (defense description, rows kept, helper cost, utility, examples,
integrity hashes, Inspect log paths) is optional and shows as "n/a" when absent. A cell computed
on a GPU (``run_info.device``) is a setup of its own.

Integrity: ``integrity.scores`` / ``integrity.leakage`` are :func:`content_hash` values of the
artifact's ``scores`` / ``leakage`` blocks; they are recomputed and compared. Independently of
the hashes, each stored ``leakage.<metric>.trait_vs_control.diff_pp`` must equal the mean
trait-minus-control difference recomputed from ``scores``. A cell is ``ok`` when hashes exist and
everything matches, ``unverified`` when there are no hashes but the leakage is consistent, and
``failed`` otherwise.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark.results import SCHEMA
from leaderboard.setups import setup_config_of

METRICS = ("teacher_forced", "sampled")
# The placebo animal's teacher-forced score (cells with a placebo control teacher): not a metric of
# its own, it feeds the own-animal statistic (``benchmark.stats.own_animal_leakage``).
PLACEBO = "placebo_teacher_forced"
ARMS = ("trait", "control")


def content_hash(obj: Any) -> str:
    """The hash integrity blocks store: ``benchmark.store.stable_hash``, the first 16 hex chars of
    the sha256 of ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
    in UTF-8. One definition for writer and reader.

    ``obj`` here was decoded from JSON, so it is already in the canonical form ``stable_hash``
    first converts to (str keys, lists, finite floats once NaN is refused); skipping that
    conversion gives the same digest 5x faster, which matters with 1 000 artifacts. A test holds
    the two equal."""
    text = json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Skip(Exception):
    """An artifact the leaderboard cannot use; the message is shown in the "skipped" panel."""


@dataclass
class Cell:
    """One artifact, flattened to what the leaderboard shows. ``scores[metric]`` is
    ``(question ids, trait scores, control scores)`` with the ids sorted."""

    path: str
    source: str
    suite: str
    base_model: str
    setup: str  # hash of setups.setup_config_of(config): what may be pooled
    setup_config: dict[str, Any]
    task: str
    trait: str
    seed: Any
    defense: str
    version: str
    params: dict[str, Any]
    entry: str  # the defense identity shown as one leaderboard row: name, version, params
    scores: dict[str, tuple[tuple[str, ...], np.ndarray, np.ndarray]]
    # Placebo-controlled cells: (question ids, placebo animal in trait student, in control student).
    placebo: tuple[tuple[str, ...], np.ndarray, np.ndarray] | None
    integrity: str  # ok / unverified / failed
    integrity_note: str = ""
    rows_kept: float | None = None  # share of rows the defense let through (mean of the arms)
    helper_calls: float | None = None
    helper_seconds: float | None = None
    helper_tokens: float | None = None
    utility: float | None = None
    defense_info: dict[str, Any] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    inspect_logs: dict[str, list[str]] = field(default_factory=dict)
    finished: str | None = None
    config_hash: str = ""


def parse(art: Any, path: str = "", source: str = "") -> Cell:
    """One artifact (already JSON-decoded) to a :class:`Cell`; raises :class:`Skip` with a reason."""
    if not isinstance(art, dict):
        raise Skip(f"not a results artifact: top level is a {type(art).__name__}")
    if art.get("schema") != SCHEMA:
        raise Skip(f"schema is {art.get('schema')!r}, expected {SCHEMA!r}")
    cfg = _need(art, "config", dict)
    for key in ("task", "defense", "trait"):
        _need(cfg, key, str, "config.")
    seed = cfg.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise Skip(f"config.seed is {seed!r}, expected an integer")
    scores = _scores(_need(art, "scores", dict))
    placebo = scores.pop(PLACEBO, None)
    if placebo is not None and placebo[0] != scores.get("teacher_forced", ((),))[0]:
        raise Skip(f"{PLACEBO} covers other questions than teacher_forced")
    d = _dict(art.get("defense"))
    name = str(d.get("name") or cfg["defense"])
    version = str(d.get("version", "n/a"))
    params = d.get("params") if isinstance(d.get("params"), dict) else cfg.get("defense_params")
    params = params if isinstance(params, dict) else {}
    run_info = _dict(art.get("run_info"))
    setup_config = setup_config_of(cfg)
    hardware = _hardware(run_info)
    if hardware != "cpu":  # GPU numerics differ from the CPU suite's: never pooled with it
        setup_config = {**setup_config, "hardware": hardware}
    status, note = check_integrity(art, scores)
    data = _dict(art.get("data"))
    arms = [_dict(data.get(a)) for a in ARMS if isinstance(data.get(a), dict)]
    return Cell(
        path=path,
        source=source,
        suite=str(cfg.get("suite", "n/a")),
        base_model=str(cfg.get("base_model", "n/a")),
        setup=_hash(setup_config),
        setup_config=setup_config,
        task=cfg["task"],
        trait=cfg["trait"],
        seed=seed,
        defense=name,
        version=version,
        params=params,
        entry=entry_label(name, version, params),
        scores=scores,
        placebo=placebo,
        integrity=status,
        integrity_note=note,
        rows_kept=_mean([_kept_share(a) for a in arms]),
        helper_calls=_sum_cost(arms, "helper_calls"),
        helper_seconds=_sum_cost(arms, "helper_seconds"),
        helper_tokens=_sum_cost(arms, "helper_tokens"),
        utility=_utility(art.get("utility")),
        defense_info={k: v for k, v in d.items() if k not in ("name", "version", "params")},
        examples={a: _examples(data.get(a)) for a in ARMS},
        inspect_logs=_logs(art.get("inspect_logs")),
        finished=str(run_info.get("finished")) if run_info.get("finished") else None,
        config_hash=_hash({"config": cfg, "defense": [name, version, params]}),
    )


def _hardware(run_info: dict[str, Any]) -> str:
    """``cpu`` or ``cuda`` from ``run_info.device`` (``"cuda: NVIDIA H200"``); artifacts written
    before the field existed all ran on CPU."""
    return str(run_info.get("device") or "cpu").split(":")[0].strip() or "cpu"


def entry_label(name: str, version: str, params: dict[str, Any]) -> str:
    """The row name of a defense on the leaderboard: different params are different entries."""
    if not params:
        return f"{name} v{version}"
    args = ", ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in sorted(params.items()))
    return f"{name} v{version} ({args})"


def _need(obj: dict[str, Any], key: str, typ: type, where: str = "") -> Any:
    v = obj.get(key)
    if not isinstance(v, typ):
        what = "missing" if v is None else f"a {type(v).__name__}"
        raise Skip(f"{where}{key} is {what}, expected a {typ.__name__}")
    return v


def _scores(block: dict[str, Any]) -> dict[str, tuple[tuple[str, ...], np.ndarray, np.ndarray]]:
    cols = {a: _columns(_need(block, a, list, "scores."), a) for a in ARMS}
    out = {}
    for m in (*METRICS, PLACEBO):
        tr, co = cols["trait"][m], cols["control"][m]
        if not tr and not co:
            continue
        for arm, other in (("trait", "control"), ("control", "trait")):
            if not cols[arm][m]:
                raise Skip(f"scores.{arm} has no {m} values but scores.{other} has (partial run?)")
        if tr.keys() != co.keys():
            raise Skip(f"scores.trait and scores.control cover different questions for {m}")
        if len(tr) < 2:
            raise Skip(f"fewer than 2 scored questions for {m}")
        ids = tuple(sorted(tr))
        out[m] = (ids, np.array([tr[q] for q in ids]), np.array([co[q] for q in ids]))
    if not out:
        raise Skip("no per-question scores for the trait and control students (partial run?)")
    return out


def _columns(rows: list[Any], arm: str) -> dict[str, dict[str, float]]:
    """Per metric, question id -> score of one model; one pass over its rows (the hot loop of a
    1 000-artifact load, hence exact type checks rather than isinstance)."""
    cols: dict[str, dict[str, float]] = {m: {} for m in (*METRICS, PLACEBO)}
    for r in rows:
        q = r.get("id") if type(r) is dict else None
        if type(q) is not str:
            raise Skip(f"scores.{arm} has a row without a string id")
        for m, col in cols.items():
            v = r.get(m)
            if v is None:
                continue
            # bool is excluded by the exact type check; NaN fails the range check.
            if (type(v) is not float and type(v) is not int) or not 0.0 <= v <= 1.0:
                raise Skip(f"scores.{arm} question {q!r}: {m} = {v!r}, expected a number in [0, 1]")
            col[q] = float(v)
    return cols


def check_integrity(art: dict[str, Any], scores: dict[str, Any]) -> tuple[str, str]:
    """``(status, note)``; see the module docstring for what ok / unverified / failed mean."""
    problems: list[str] = []
    integ = art.get("integrity")
    hashed = False
    if isinstance(integ, dict):
        for key in ("scores", "leakage"):
            want = integ.get(key)
            if want is None:
                continue
            hashed = True
            try:
                got = content_hash(art.get(key))
            except (TypeError, ValueError) as e:
                problems.append(f"{key}: cannot hash ({e})")
                continue
            if got != want:
                problems.append(f"{key} hash {got} != stored {want}")
    leakage = _dict(art.get("leakage"))
    for m, (_, t, c) in scores.items():
        stored = _num(_dict(_dict(leakage.get(m)).get("trait_vs_control")).get("diff_pp"))
        if stored is None:
            continue
        # Same arithmetic as benchmark.stats (mean over questions of trait - control), so only a
        # real edit of scores or leakage, not float noise, fails this.
        diff = 100.0 * float(np.mean(t - c))
        if not math.isclose(diff, stored, rel_tol=1e-9, abs_tol=1e-9):
            problems.append(f"leakage.{m} diff_pp {stored:.4f} but scores give {diff:.4f}")
    if problems:
        return "failed", "; ".join(problems)
    if hashed:
        return "ok", "hashes match; leakage consistent with scores"
    return "unverified", "no integrity hashes; leakage consistent with scores"


def _hash(obj: Any) -> str:
    try:
        return content_hash(obj)
    except (TypeError, ValueError) as e:
        raise Skip(f"config cannot be hashed: {e}") from None


def _dict(v: Any) -> dict[str, Any]:
    """``v`` if it is a JSON object, else an empty one: optional blocks may be absent or odd."""
    return v if isinstance(v, dict) else {}


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _mean(vals: list[float | None]) -> float | None:
    got = [v for v in vals if v is not None]
    return sum(got) / len(got) if got else None


def _kept_share(arm: dict[str, Any]) -> float | None:
    """What the defense let through of what it received; older artifacts lack the share, so it is
    rebuilt from the last task-filter count and the count after the defense."""
    share = _num(arm.get("defense_kept_share"))
    if share is not None:
        return share
    after = _num(arm.get("after_defense"))
    steps = _dict(arm.get("filter_report")).get("steps")
    last = _dict(steps[-1]) if isinstance(steps, list) and steps else {}
    before = _num(last.get("kept"))
    if after is None or not before:
        return None
    return after / before


def _sum_cost(arms: list[dict[str, Any]], key: str) -> float | None:
    got = [v for a in arms if (v := _num(_dict(a.get("defense_cost")).get(key))) is not None]
    return sum(got) if got else None


def _utility(u: Any) -> float | None:
    """Student quality on the task: a number, or a dict with a numeric ``score``/``value``/``mean``."""
    if isinstance(u, dict):
        for key in ("score", "value", "mean"):
            if _num(u.get(key)) is not None:
                return _num(u.get(key))
        return None
    return _num(u)


def _examples(arm: Any) -> list[dict[str, Any]]:
    ex = arm.get("examples") if isinstance(arm, dict) else None
    return [e for e in ex if isinstance(e, dict)] if isinstance(ex, list) else []


def _logs(block: Any) -> dict[str, list[str]]:
    if not isinstance(block, dict):
        return {}
    return {str(k): [str(p) for p in v] for k, v in block.items() if isinstance(v, list)}
