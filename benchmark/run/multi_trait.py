"""Several trait animals per run: a suite's cells of several traits that share one control arm.

Cells that differ only in the trait (same task, defense, setup and seed, a placebo control
teacher) train the same control student: its teacher, data, labels and training do not depend on
the trait, so the store computes that arm once and each further trait costs one arm. Together
their students form one run of ``k + 1`` students (``k`` trait animals and the placebo), read by
the multi-animal statistic (:mod:`benchmark.core.stats.multi`). Here those cells are found among
a suite's finished artifacts, checked to share their control student (its candidate
distributions identical, not merely its config), and summarised per seed and over seeds.
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


def _run_key(cfg: dict[str, Any]) -> str:
    return stable_hash({k: v for k, v in cfg.items() if k != "trait"})


def _setup_key(cfg: dict[str, Any]) -> str:
    return stable_hash(without_seeds({k: v for k, v in cfg.items() if k != "trait"}))


def _eligible(art: dict[str, Any]) -> bool:
    cfg = art.get("config", {})
    placebo = (cfg.get("teacher") or {}).get("placebo")
    return bool(placebo) and not cfg.get("null_arm") and not cfg.get("planted_share")


def _same(a: CandidateTable, b: CandidateTable) -> bool:
    return a[:2] == b[:2] and np.array_equal(a[2], b[2])


def multi_runs(arts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per run of ≥ 2 traits that share a control student: ``task``, ``defense``,
    ``seed``, ``animals`` (the traits, sorted, then the placebo), ``setup`` (a key shared by the
    seeds of one design) and ``multi`` (:func:`multi_specificity`) — or ``error`` where the cells'
    control students differ or lack candidate distributions (then no statistic is made)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for art in arts:
        if _eligible(art):
            groups.setdefault(_run_key(art["config"]), []).append(art)
    out = []
    for cells in groups.values():
        by_trait = {c["config"]["trait"]: c for c in cells}
        if len(by_trait) < 2:
            continue
        traits = sorted(by_trait)
        cfg = by_trait[traits[0]]["config"]
        placebo = cfg["teacher"]["placebo"]
        entry: dict[str, Any] = {
            "task": cfg["task"],
            "defense": cfg["defense"],
            "seed": cfg["seed"],
            "animals": [*traits, placebo],
            "setup": _setup_key(cfg),
        }
        read = [
            candidate_table(by_trait[t]["scores"][arm], CANDIDATES)
            for arm in ("trait", "control")
            for t in traits
        ]
        found = [t for t in read if t is not None]
        tables, controls = found[: len(traits)], found[len(traits) :]
        if len(found) < len(read):
            entry["error"] = "a student has no candidate distributions"
        elif not all(_same(c, controls[0]) for c in controls):
            entry["error"] = "the cells' control students differ (not one control arm)"
        else:
            try:  # e.g. more students than the statistic takes
                stat = multi_specificity([*tables, controls[0]], entry["animals"])
                entry |= {"tables": [*tables, controls[0]], MULTI: stat}
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
            key = (r["task"], r["defense"], r["setup"], tuple(r["animals"]))
            groups.setdefault(key, []).append(r)
    out = []
    for (task, defense, setup, animals), rs in groups.items():
        values = [r[MULTI]["value"] for r in rs]
        mean, ci, p = t_summary(values)
        pooled = pooled_multi_specificity([r["tables"] for r in rs], list(animals), alpha=alpha)
        out.append(
            {
                "task": task,
                "defense": defense,
                "setup": setup,
                "animals": list(animals),
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
            f"{g['task']}/{g['defense']} {'+'.join(g['animals'])} over seeds {g['seeds']}: "
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
    (run,) = multi_runs(arts) or [{"error": "the cells do not share a control arm"}]
    if MULTI not in run:
        raise ValueError(f"seed {cells[0][0].seed}: {run['error']}")
    m, info = run[MULTI], [a["run_info"] for a in arts]
    shas = {i.get("prereg_sha256") for i in info}
    rss = [i["peak_rss_gb"] for i in info if i.get("peak_rss_gb") is not None]
    return {
        "arm": kind,
        "seed": cells[0][0].seed,
        "animals": run["animals"],
        "artifacts": [p.name for _, _, p in cells],
        "value": m["value"],
        "per_animal": m["per_animal"],
        "rank": m["rank"],
        "n_pairs": m["n_alternatives"] + 1,  # here: assignments of animals to the students
        "p_rank": m["p_rank"],
        "method": m["method"],
        "specific": m["specific"],
        "wall_seconds": sum(float(i.get("wall_seconds") or 0) for i in info),
        "peak_rss_gb": max(rss) if rss else None,
        "finished": max(str(i.get("finished")) for i in info),
        # One file version for all the run's cells, else a value no file has (flagged).
        "prereg_sha256": shas.pop() if len(shas) == 1 else "cells made under several versions",
    }
