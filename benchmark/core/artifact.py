"""Reading one results artifact: a cell's JSON -> a flat :class:`CellResult`, integrity checked.

The writer is ``benchmark.core.results``; every reader of finished cells (the leaderboard, through
``leaderboard.loader``) calls :func:`parse` on the decoded JSON and gets a :class:`CellResult`, or a
:class:`Skip` saying why the file cannot be used: ``parse(json.loads(text), path, source)``.

Required (else :class:`Skip`): ``schema == "slb.results/1"``, ``config.{task, defense, trait,
seed}``, per-question scores in [0, 1] of both students for one metric or more, on the same
question ids. Everything else is optional ("n/a" when absent).

Setup: cells pool only within one *setup*, which the run layer writes into the artifact
(``benchmark.run.setups``); an artifact written before that gets :func:`legacy_setup`.

Integrity (:func:`check_integrity`): the ``integrity`` hashes of ``scores`` and ``leakage``
(``benchmark.core.store.stable_hash``) are recomputed; every stored leakage number a reader uses is
recomputed from the per-question scores with the writer's functions (per metric
``trait_vs_control``; with a placebo teacher ``placebo_control_vs_trait`` and ``own_animal``); the
``setup`` block must agree with the config and ``run_info.device``. ``ok``: the scores hash exists,
every score is covered by a stored block and all agrees; ``unverified``: nothing disagrees but
something is not covered; ``failed``: something disagrees.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark.core.results import CANDIDATES, SCHEMA, SPECIFICITY
from benchmark.core.setup_keys import (
    hardware_of,
    other_seeds,
    teacher_seed,
    with_hardware,
    without_cell_keys,
)
from benchmark.core.stats import own_animal_per_question, paired_summary, t_summary
from benchmark.core.stats.specificity import CandidateTable, candidate_table
from benchmark.core.store import json_tree_hash

METRICS = ("teacher_forced", "sampled")
# The placebo animal's teacher-forced score (cells with a placebo control teacher): not a metric of
# its own, it feeds the own-animal statistic (``benchmark.core.stats.own_animal_leakage``).
PLACEBO = "placebo_teacher_forced"
ARMS = ("trait", "control")
Scores = tuple[tuple[str, ...], np.ndarray, np.ndarray]  # question ids, trait, control student


def legacy_setup(cfg: dict[str, Any], device: Any) -> dict[str, Any]:
    """The setup block of an artifact written without one: its config minus the cell keys and
    seeds (and its hardware), hashed; labelled by the suite and the id, since no preset is read
    here to say what it differs in."""
    config = with_hardware(without_cell_keys(cfg), device)
    sid = _hash(config)
    diff = "written before artifacts named their setup: grouped by the config minus cell keys"
    label = f"{cfg.get('suite', 'n/a')} (legacy, {sid[:6]})"
    return {"id": sid, "label": label, "diff": diff, "config": config}


class Skip(Exception):
    """An artifact that cannot be used; the message says why (the leaderboard's "skipped" panel)."""


@dataclass
class CellResult:
    """One artifact, flattened to what readers show. ``scores[metric]`` is
    ``(question ids, trait scores, control scores)`` with the ids sorted."""

    path: str
    source: str
    suite: str
    base_model: str
    setup: str  # the setup's id: cells are pooled only within one
    setup_label: str  # short human name: the knobs that differ from its suite's preset
    setup_diff: str  # the full knob difference the label may abbreviate
    setup_config: dict[str, Any]
    task: str
    trait: str
    seed: Any
    defense: str
    version: str
    params: dict[str, Any]
    entry: str  # the defense identity shown as one leaderboard row: name, version, params
    scores: dict[str, Scores]
    placebo: Scores | None  # placebo cells: (ids, placebo animal in trait / control student)
    integrity: str  # ok / unverified / failed
    integrity_note: str = ""
    rows_kept: float | None = None  # share of rows the defense let through (mean of the arms)
    rows_kept_trait: float | None = None  # the same, per arm: a defense that drops more of one
    rows_kept_control: float | None = None  # arm's rows tells them apart (it is blind to which)
    helper_calls: float | None = None
    helper_seconds: float | None = None
    helper_tokens: float | None = None
    utility: float | None = None
    defense_info: dict[str, Any] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    inspect_logs: dict[str, list[str]] = field(default_factory=dict)
    finished: str | None = None
    config_hash: str = ""  # the cell's identity: config and defense (its source file's hash too)
    setup_source: str = ""  # hash of the config minus cell keys, with hardware, as the run set it
    reference: str = ""  # set by a reader that knows it: what kind of reference row this is
    p_rank: float | None = None  # the trait pair's specificity (teacher-forced), where recorded
    placebo_animal: str | None = None  # config teacher.placebo: the pair's second animal
    # (trait student's, control student's) per-question candidate distributions, where recorded:
    # what pooled specificity over an entry's runs is computed from (``leaderboard.pooling``)
    candidates: tuple[CandidateTable, CandidateTable] | None = None
    teacher_seed: int | None = None  # its fine-tuned teachers' training seed (setup_keys)
    seeds: dict[str, int | None] = field(default_factory=dict)  # its other seeds (setup_keys)


def parse(art: Any, path: str = "", source: str = "") -> CellResult:
    """One artifact (already JSON-decoded) to a :class:`CellResult`; raises :class:`Skip`."""
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
    run_info, sha256 = _dict(art.get("run_info")), _dict(d.get("source")).get("sha256")
    setup = _setup(art, cfg, run_info)
    status, note = check_integrity(art, scores, placebo)
    data = _dict(art.get("data"))
    arms = [data[a] for a in ARMS if isinstance(data.get(a), dict)]
    kept = {a: _kept_share(data[a]) for a in ARMS if isinstance(data.get(a), dict)}
    tf = _dict(_dict(art.get("leakage")).get("teacher_forced"))
    return CellResult(
        path=path,
        source=source,
        suite=str(cfg.get("suite", "n/a")),
        base_model=str(cfg.get("base_model", "n/a")),
        setup=setup["id"],
        setup_label=setup["label"],
        setup_diff=setup["diff"],
        setup_config=setup["config"],
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
        rows_kept=_mean(list(kept.values())),
        rows_kept_trait=kept.get("trait"),
        rows_kept_control=kept.get("control"),
        helper_calls=_sum_cost(arms, "helper_calls"),
        helper_seconds=_sum_cost(arms, "helper_seconds"),
        helper_tokens=_sum_cost(arms, "helper_tokens"),
        utility=_utility(art.get("utility")),
        defense_info={k: v for k, v in d.items() if k not in ("name", "version", "params")},
        examples={a: _examples(data.get(a)) for a in ARMS},
        inspect_logs=_logs(art.get("inspect_logs")),
        finished=str(run_info.get("finished")) if run_info.get("finished") else None,
        config_hash=_hash({"config": cfg, "defense": [name, version, params, sha256]}),
        setup_source=_hash(with_hardware(without_cell_keys(cfg), run_info.get("device"))),
        p_rank=_num(_dict(tf.get(SPECIFICITY)).get("p_rank")),
        placebo_animal=_placebo_animal(cfg),
        candidates=candidate_tables(art["scores"]),
        teacher_seed=teacher_seed(cfg),
        seeds=other_seeds(cfg),
    )


def _placebo_animal(cfg: dict[str, Any]) -> str | None:
    placebo = _dict(cfg.get("teacher")).get("placebo")
    return placebo if isinstance(placebo, str) else None


def candidate_tables(block: dict[str, Any]) -> tuple[CandidateTable, CandidateTable] | None:
    t, c = (candidate_table(block[a], CANDIDATES) for a in ARMS)
    return None if t is None or c is None or t[:2] != c[:2] else (t, c)


def _setup(art: dict[str, Any], cfg: dict[str, Any], run_info: dict[str, Any]) -> dict[str, Any]:
    """The artifact's ``setup`` block, checked; :func:`legacy_setup` when it has none."""
    block = art.get("setup")
    if block is None:
        return legacy_setup(cfg, run_info.get("device"))
    if not isinstance(block, dict):
        raise Skip(f"setup is a {type(block).__name__}, expected an object")
    for key in ("id", "label"):
        if not isinstance(block.get(key), str) or not block[key]:
            raise Skip(f"setup.{key} is {block.get(key)!r}, expected a non-empty string")
    diff, config = block.get("diff", ""), block.get("config", {})
    diff, config = diff if isinstance(diff, str) else "", config if isinstance(config, dict) else {}
    return {"id": block["id"], "label": block["label"], "diff": diff, "config": config}


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


def _scores(block: dict[str, Any]) -> dict[str, Scores]:
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


def check_integrity(
    art: dict[str, Any], scores: dict[str, Scores], placebo: Scores | None = None
) -> tuple[str, str]:
    """``(status, note)``; see the module docstring for what ok / unverified / failed mean."""
    problems: list[str] = []
    integ = _dict(art.get("integrity"))
    for key in (k for k in ("scores", "leakage") if integ.get(k) is not None):
        try:
            if (got := json_tree_hash(art.get(key))) != integ[key]:
                problems.append(f"{key} hash {got} != stored {integ[key]}")
        except (TypeError, ValueError) as e:
            problems.append(f"{key}: cannot hash ({e})")
    leakage = _dict(art.get("leakage"))
    series = {*scores, *([PLACEBO] if placebo is not None else [])}  # score series to cover
    for m, block, want in _recomputed(scores, placebo):
        stored = _dict(_dict(leakage.get(m)).get(block))
        bad = [k for k, v in want.items() if k in stored and not _same(stored[k], v)]
        problems += [f"leakage.{m}.{block}.{k} {stored[k]} but scores give {want[k]}" for k in bad]
        if any(k in stored for k in want):
            series.discard(m if block == "trait_vs_control" else PLACEBO)
    problems += _setup_problems(art)
    if problems:
        return "failed", "; ".join(problems)
    missing = [f"no stored leakage covers the {m} scores" for m in sorted(series)]
    missing += ["no scores hash"] * (integ.get("scores") is None)
    if missing:
        return "unverified", "; ".join(missing)
    return "ok", "hashes match; every stored number agrees with the scores"


def _recomputed(
    scores: dict[str, Scores], placebo: Scores | None
) -> list[tuple[str, str, dict[str, Any]]]:
    """``(metric, block, {key: value})`` for every stored leakage number a reader relies on,
    recomputed from the scores with the writer's functions (``benchmark.core.stats``)."""

    def diff(t: np.ndarray, c: np.ndarray) -> dict[str, Any]:
        res = paired_summary(t[:, None], c[:, None])
        return {k: res[k] for k in ("diff_pp", "ci_pp", "p_value")}

    out = [(m, "trait_vs_control", diff(t, c)) for m, (_, t, c) in scores.items()]
    if placebo is not None and "teacher_forced" in scores:
        (_, tt, tc), (_, pt, pc) = scores["teacher_forced"], placebo
        out.append(("teacher_forced", "placebo_control_vs_trait", diff(pc, pt)))
        mean, ci, p = t_summary(own_animal_per_question(tt, tc, pt, pc))
        own = {"log_odds_diff": mean, "log_odds_ci": ci, "log_odds_p_value": p}
        out.append(("teacher_forced", "own_animal", own))
    return out


def _same(stored: Any, want: Any) -> bool:
    """Equal up to float round-off (the writer ran the same arithmetic on the same numbers)."""
    if isinstance(want, list):
        return (
            isinstance(stored, list) and len(stored) == len(want) and all(map(_same, stored, want))
        )
    v = _num(stored)
    return v is not None and math.isclose(v, want, rel_tol=1e-9, abs_tol=1e-12)


def _setup_problems(art: dict[str, Any]) -> list[str]:
    """The ``setup`` block against the artifact's own config and device: its id hashes its config,
    which has the config's keys (minus cell keys and seeds), each equal, tagged ``{"set for this
    task": value}`` or read as the suite's value (a per-task knob: ``leaderboard.loader`` compares
    those across artifacts); its hardware is ``run_info.device``'s."""
    block = art.get("setup")
    if not isinstance(block, dict):
        return []
    config, cfg = _dict(block.get("config")), _dict(art.get("config"))
    raw, keys = without_cell_keys(cfg), set(config) - {"hardware"}
    device = _dict(art.get("run_info")).get("device")
    problems = [] if _hash(config) == block.get("id") else ["setup.id is not its config's hash"]
    if config.get("hardware", "cpu") != hardware_of(device):
        problems.append(f"setup hardware {config.get('hardware', 'cpu')!r} but device {device!r}")
    if keys != set(raw):
        problems.append(f"setup.config keys differ from the config's: {sorted(keys ^ set(raw))}")
    tag = "set for this task"
    return problems + [
        f"setup.config.{k} is tagged with another value than the config's"
        for k in keys & set(raw)
        if isinstance(config[k], dict) and tag in config[k] and config[k][tag] != raw[k]
    ]


def _hash(obj: Any) -> str:
    try:
        return json_tree_hash(obj)
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
    """What the defense let through of what it received, from the row counts (the last task
    filter's count and the count after the defense) where the artifact has them, else as stored."""
    after = _num(arm.get("after_defense"))
    steps = _dict(arm.get("filter_report")).get("steps")
    before = _num(_dict(steps[-1]).get("kept")) if isinstance(steps, list) and steps else None
    if after is not None and before:
        return after / before
    return _num(arm.get("defense_kept_share"))


def _sum_cost(arms: list[dict[str, Any]], key: str) -> float | None:
    got = [v for a in arms if (v := _num(_dict(a.get("defense_cost")).get(key))) is not None]
    return sum(got) if got else None


def _utility(u: Any) -> float | None:
    """Student quality on the task: a number, or a dict with a numeric ``score``/``value``/``mean``."""
    if not isinstance(u, dict):
        return _num(u)
    return next((v for k in ("score", "value", "mean") if (v := _num(u.get(k))) is not None), None)


def _examples(arm: Any) -> list[dict[str, Any]]:
    ex = arm.get("examples") if isinstance(arm, dict) else None
    return [e for e in ex if isinstance(e, dict)] if isinstance(ex, list) else []


def _logs(block: Any) -> dict[str, list[str]]:
    return {str(k): [str(p) for p in v] for k, v in _dict(block).items() if isinstance(v, list)}
