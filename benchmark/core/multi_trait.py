"""Several trait animals per run: a suite's cells of several traits that share one control arm.

Cells that differ only in the trait (same task, defense, setup and seed, a placebo control
teacher) can train the same control student: in ``numbers`` and ``paraphrase-unrelated`` its
teacher, prompts, data, labels and training do not depend on the trait, provided no trait arm
kept fewer rows than the control (a cell cuts both arms to the smaller count). Then the store
computes that arm once and each further trait costs one arm. Together their students form one
run of ``k + 1`` students (``k`` trait animals and the placebo), read by the multi-animal
statistic (:mod:`benchmark.core.stats.multi`). Here those cells are found among a suite's
finished artifacts, checked to share their control student (by what each cell records of it,
and its scores), and summarised per seed and over seeds. docs/methodology.md has the design.
It reads artifacts only, so it sits with ``results`` in core: the suite, ``slb validate``,
``slb confirm`` and the leaderboard (``leaderboard.several``) all read runs through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmark.core.results import CANDIDATES
from benchmark.core.setup_keys import seed_order, without_seeds
from benchmark.core.stats import CandidateTable, candidate_table, sign_flip_p, t_summary
from benchmark.core.stats.multi import multi_specificity, pooled_multi_specificity
from benchmark.core.store import stable_hash

MULTI = "multi_animal"
# The control student is scored again in each cell (its evals ask about that cell's trait): the
# same model on the same questions, so its candidate probabilities agree to float noise.
CONTROL_ATOL = 1e-6


def _run_key(cfg: dict[str, Any]) -> str:
    return stable_hash({k: v for k, v in cfg.items() if k != "trait"})


def _setup_key(cfg: dict[str, Any]) -> str:
    return stable_hash(without_seeds({k: v for k, v in cfg.items() if k != "trait"}))


def _eligible(art: Any) -> bool:
    """A plain placebo-controlled cell, read defensively (an artifact is untrusted input)."""
    cfg = art.get("config") if isinstance(art, dict) else None
    if not isinstance(cfg, dict) or not isinstance(art.get("scores"), dict):
        return False
    teacher = cfg.get("teacher")
    return (
        isinstance(teacher, dict)
        and isinstance(teacher.get("placebo"), str)
        and all(isinstance(cfg.get(k), str) for k in ("trait", "task", "defense"))
        and not cfg.get("null_arm")
        and not cfg.get("planted_share")
        and (cfg.get("null_animal") is None or isinstance(cfg["null_animal"], str))
    )


def _control_identity(art: dict[str, Any]) -> tuple[Any, Any, Any] | None:
    """What decides the control student beyond the config: the hash of its training rows, how
    many it trained on (cells cut both arms to the smaller arm's count) and its labels' entry."""
    integ, data = art.get("integrity"), art.get("data")
    rows = integ.get("training_rows") if isinstance(integ, dict) else None
    ctrl = data.get("control") if isinstance(data, dict) else None
    if not isinstance(rows, dict) or not isinstance(ctrl, dict) or rows.get("control") is None:
        return None
    out = rows["control"], ctrl.get("trained_on"), ctrl.get("labelled_key")
    # Compared as a set: a list or dict in an untrusted artifact must not raise.
    ok = all(x is None or (isinstance(x, (str, int)) and not isinstance(x, bool)) for x in out)
    return out if ok else None


def _why_not_one_run(cells: list[dict[str, Any]], tables: list[CandidateTable | None]) -> str:
    """Why the cells of one seed do not make a run ("" when they do)."""
    traits = [c["config"]["trait"] for c in cells]
    if len(set(traits)) < len(traits):
        return f"a trait appears in several cells ({sorted(traits)})"
    if any(t is None for t in tables):
        return "a student has no candidate distributions"
    ids = [_control_identity(c) for c in cells]
    if None in ids or len(set(ids)) > 1:
        return "the cells' control students differ (not one control arm: other training rows)"
    controls = tables[len(cells) :]
    first = controls[0]
    assert first is not None
    for c in controls:  # the same student, scored again per cell: equal up to float noise
        assert c is not None
        if c[:2] != first[:2] or not np.allclose(c[2], first[2], rtol=0, atol=CONTROL_ATOL):
            return "the cells' control students score differently (not one control arm)"
    return ""


def multi_runs(arts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per run of ≥ 2 traits that share a control student: ``task``, ``defense``,
    ``seed``, ``animals`` (the traits, sorted, then the placebo), ``setup`` (a key shared by the
    seeds of one design) and ``multi`` (:func:`multi_specificity`) — or ``error`` where the cells
    do not make one run (a trait twice; control students trained on other rows or scoring
    differently; no candidate distributions): then no statistic is made."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for art in arts:
        if _eligible(art):
            try:
                groups.setdefault(_run_key(art["config"]), []).append(art)
            except (TypeError, ValueError):  # a config stable_hash refuses
                continue
    out = []
    for cells in groups.values():
        cells = sorted(cells, key=lambda c: c["config"]["trait"])
        traits = [c["config"]["trait"] for c in cells]
        if len(set(traits)) < 2:
            continue
        cfg = cells[0]["config"]
        entry: dict[str, Any] = {
            "task": cfg["task"],
            "defense": cfg["defense"],
            "seed": cfg.get("seed"),
            "animals": [*traits, cfg["teacher"]["placebo"]],
            "setup": _setup_key(cfg),
        }
        if cfg.get("null_animal"):  # the run's null: every teacher carried this animal
            entry["null_animal"] = cfg["null_animal"]
        read = [
            candidate_table(c["scores"].get(arm) or [], CANDIDATES)
            for arm in ("trait", "control")
            for c in cells
        ]
        if why := _why_not_one_run(cells, read):
            entry["error"] = why
        else:
            tables = [t for t in read[: len(cells) + 1] if t is not None]
            try:  # e.g. more students than the statistic takes, the placebo among the traits
                entry |= {"tables": tables, MULTI: multi_specificity(tables, entry["animals"])}
            except ValueError as e:
                entry["error"] = str(e)
        out.append(entry)
    return sorted(out, key=lambda e: (e["task"], e["defense"], e["setup"], seed_order(e["seed"])))


def multi_pooled(runs: Sequence[dict[str, Any]], alpha: float = 0.05) -> list[dict[str, Any]]:
    """Per design (task, defense, setup, animals) over its seeds: the statistic per seed, its
    mean with the t-interval and p over runs, the exact sign-flip p, how many runs were
    specific, and the pooled relabelling test (probabilities averaged over runs first)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in runs:
        if MULTI in r:
            key = (r["task"], r["defense"], r["setup"], tuple(r["animals"]), r.get("null_animal"))
            groups.setdefault(key, []).append(r)
    out = []
    for (task, defense, setup, animals, null), rs in groups.items():
        values = [r[MULTI]["value"] for r in rs]
        mean, ci, p = t_summary(values)
        pooled = pooled_multi_specificity([r["tables"] for r in rs], list(animals), alpha=alpha)
        out.append(
            {
                "task": task,
                "defense": defense,
                "setup": setup,
                "animals": list(animals),
                **({"null_animal": null} if null else {}),
                "seeds": [r["seed"] for r in rs],
                "per_seed": values,
                "mean": mean,
                "ci": ci,
                "p_value": p if len(rs) > 1 else None,
                "sign_flip_p": sign_flip_p(values) if len(rs) > 1 else None,
                "n_specific": sum(r[MULTI]["specific"] for r in rs),
                "pooled_specificity": _public(pooled) if pooled else None,
            }
        )
    return out


def _public(multi: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in multi.items() if k != "top"}


def summary_block(arts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What ``summary.json`` records under ``multi_animal``: the runs (without their tables) and
    the pools over seeds; empty lists where no cells share a control arm."""
    runs = multi_runs(arts)
    return {
        "runs": [{k: v for k, v in r.items() if k != "tables"} for r in runs],
        "pooled": multi_pooled(runs),
    }


def describe(block: dict[str, Any]) -> list[str]:
    """One line per run and per pool, for the suite's console output."""
    lines = []
    for r in block["runs"]:
        head = f"{r['task']}/{r['defense']} seed {r['seed']} {'+'.join(r['animals'])}"
        head += f" (null: every teacher {r['null_animal']})" if r.get("null_animal") else ""
        if MULTI not in r:
            lines.append(f"{head}: multi-animal not computed: {r['error']}")
            continue
        m = r[MULTI]
        lines.append(
            f"{head}: multi-animal {m['value']:+.3f} log-odds, p_rank {m['p_rank']:.2g} "
            f"({m['method']}; {'specific' if m['specific'] else 'not specific'})"
        )
    for g in block["pooled"]:
        p = "" if g["p_value"] is None else f", t p={g['p_value']:.2g}"
        sp = g["pooled_specificity"]
        lines.append(
            f"{g['task']}/{g['defense']} {'+'.join(g['animals'])}"
            + (f" (null: every teacher {g['null_animal']})" if g.get("null_animal") else "")
            + f" over seeds {g['seeds']}: "
            f"multi-animal {g['mean']:+.3f} [{g['ci'][0]:+.3f}, {g['ci'][1]:+.3f}]{p}; "
            f"specific in {g['n_specific']} of {len(g['seeds'])} runs"
            + (f"; pooled p_rank {sp['p_rank']:.2g}" if sp else "")
        )
    return lines


def multi_record(kind: str, cells: Sequence[tuple[Any, dict[str, Any], Any]]) -> dict[str, Any]:
    """``slb confirm``'s record of one run of a ``traits`` file: its seed's cells (config,
    artifact, path), one per trait, read together. Raises ValueError where they do not make one
    run (their control students differ)."""
    arts = [art for _, art, _ in cells]
    seed, traits = cells[0][0].seed, sorted(cfg.trait for cfg, _, _ in cells)
    runs = multi_runs(arts)
    run: dict[str, Any] = runs[0] if len(runs) == 1 else {"error": "the cells do not make one run"}
    if MULTI not in run:
        raise ValueError(f"seed {seed}: {run['error']}")
    if run["animals"][:-1] != traits:
        raise ValueError(f"seed {seed}: the run reads {run['animals'][:-1]}, not {traits}")
    m, info = run[MULTI], [a["run_info"] for a in arts]
    shas = {i.get("prereg_sha256") for i in info}
    rss = [i["peak_rss_gb"] for i in info if i.get("peak_rss_gb") is not None]
    done = [str(i["finished"]) for i in info if i.get("finished")]
    return {
        "arm": kind,
        "seed": seed,
        "animals": run["animals"],
        "artifacts": [p.name for _, _, p in cells],
        "value": m["value"],
        "per_animal": m["per_animal"],
        "rank": m["rank"],
        "n_pairs": m["n_assignments"],  # here: assignments of animals to the students
        "p_students": m["p_students"],
        "p_rank": m["p_rank"],
        "method": m["method"],
        "specific": m["specific"],
        "wall_seconds": sum(float(i.get("wall_seconds") or 0) for i in info),
        "peak_rss_gb": max(rss) if rss else None,
        # The earliest cell: a run counts as made before its file if any of its cells was.
        "finished": min(done) if len(done) == len(info) else None,
        # One file version for all the run's cells, else a value no file has (flagged).
        "prereg_sha256": shas.pop() if len(shas) == 1 else "cells made under several versions",
    }
