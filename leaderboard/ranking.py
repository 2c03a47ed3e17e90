"""The leaderboard's ranking: one row per defense entry, its rank with ties, and its flags.

``ranking(cells, metric)`` takes the cells of one setup (``leaderboard.tables.select``) and
returns a DataFrame, best first, with one row per defense *entry* (name, version, params): the
pooled statistics of ``leaderboard.pooling`` (residual, own animal, reductions, their CIs), cost
columns, flags, and the ``rank`` column.

Which statistic ranks (``ranked_by``): a placebo-controlled setup (every entry has the own-animal
statistic) ranks by it, since it is the primary test that trait transfer happened there; when the
baseline is there too and every other entry has the own-animal reduction, by that reduction (the
baseline at 0): a paired comparison with the baseline is what "this defense lowers leakage"
means, and it sees differences that overlapping unpaired intervals of the statistic itself hide.
Other setups rank by the residual.

*Ties*: an entry's rank is 1 + the number of entries whose whole CI lies below its own CI (they
leak less, clearly), on the ranking statistic; the CI used is the wider of the question-level CI
and the run-level CI over seeds (or groups), because run-to-run noise dominates on small models.
An entry with one run has no run-level CI of its own; when the baseline has >= 3 seeds of one
group it borrows the baseline's: its value ± ``benchmark.core.stats.run_spread`` of the
baseline's per-seed values (``rank_noise_borrowed``). Entries whose CIs overlap are never ordered
against each other this way; a rank shared by several entries is shown as "=k".
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any

import pandas as pd

from benchmark.core.artifact import CellResult
from benchmark.core.stats import run_spread
from leaderboard.pooling import (
    BASELINE,
    Group,
    by_entry,
    by_group,
    mean_of,
    own_animal,
    own_reduction,
    pool,
    reduction,
)
from leaderboard.tables import task_order

FEW_ROWS = 0.10
RANKED_BY_OWN = "own animal, log-odds"
RANKED_BY_OWN_REDUCTION = "own-animal reduction vs none, log-odds"
RANKED_BY_RESIDUAL = "residual, pp"


def ranks(intervals: list[tuple[float, float] | None]) -> list[str]:
    """Tie-aware rank labels: 1 + the number of CIs lying wholly below this one; "=k" if shared."""
    nums: list[int | None] = [
        None if iv is None else 1 + sum(1 for o in intervals if o is not None and o[1] < iv[0])
        for iv in intervals
    ]
    return ["n/a" if n is None else (f"={n}" if nums.count(n) > 1 else str(n)) for n in nums]


def ranking(
    cells: list[CellResult], metric: str, failed: list[CellResult] | None = None
) -> pd.DataFrame:
    """One row per defense entry, best first; ``failed`` are the integrity-failed cells that the
    filter excluded (they still earn their entry a flag)."""
    entries = by_entry(cells)
    baseline = [c for c in cells if c.defense == BASELINE]
    all_groups = set(by_group(cells))
    failed_by_entry = by_entry(failed or [])
    owns = {e: own_animal(ec) if metric == "teacher_forced" else None for e, ec in entries.items()}
    # A placebo-controlled setup (every entry has the own-animal statistic) ranks by it: it is the
    # primary test there, and the trait-animal contrast alone swings between runs with which
    # animal moved (README, Results).
    by_own = bool(owns) and all(o is not None for o in owns.values())
    pools = {e: pool(ec, metric) for e, ec in entries.items()}
    noise = _baseline_noise(
        [owns[e] if by_own else pools[e] for e, ec in entries.items() if ec[0].defense == BASELINE],
        "per_seed_log_odds" if by_own else "per_seed",
    )
    rows = []
    for entry, ec in entries.items():
        res = pools[entry]
        own = owns[entry]
        red = None if ec[0].defense == BASELINE else reduction(ec, baseline, metric)
        own_red = None if own is None or red is None else own_reduction(ec, baseline)
        groups = set(by_group(ec))
        kept = mean_of(ec, "rows_kept")
        row: dict[str, Any] = {
            "defense": entry,
            "name": ec[0].defense,
            "version": ec[0].version,
            "params": json.dumps(ec[0].params, sort_keys=True) if ec[0].params else "",
            "residual_pp": res["diff_pp"] if res else None,
            "ci_low_pp": res["ci_pp"][0] if res else None,
            "ci_high_pp": res["ci_pp"][1] if res else None,
            "p_value": res["p_value"] if res else None,
            "significant": res["significant"] if res else None,
            # The spread over the pooled columns (seeds of one group, or groups): run-to-run
            # noise the question-level CI does not see.
            "spread_unit": res["unit"] if res else None,
            "spread_ci_low_pp": _spread(res, 0),
            "spread_ci_high_pp": _spread(res, 1),
            # Placebo-controlled cells: each student's pull to its own teacher's animal (log-odds).
            "own_animal_log_odds": own["log_odds_diff"] if own else None,
            "own_animal_ci_low": own["log_odds_ci"][0] if own else None,
            "own_animal_ci_high": own["log_odds_ci"][1] if own else None,
            "own_animal_significant": own["significant"] if own else None,
            "own_animal_spread_low": _own_spread(own, 0),
            "own_animal_spread_high": _own_spread(own, 1),
            "own_reduction_log_odds": own_red["reduction_log_odds"] if own_red else None,
            "own_reduction_ci_low": own_red["ci"][0] if own_red else None,
            "own_reduction_ci_high": own_red["ci"][1] if own_red else None,
            "own_reduction_spread_low": _own_spread(own_red, 0),
            "own_reduction_spread_high": _own_spread(own_red, 1),
            "own_reduction_significant": own_red["significant"] if own_red else None,
            "ranked_by": RANKED_BY_OWN if by_own else RANKED_BY_RESIDUAL,
            "rank_noise_borrowed": False,
            "reduction_pp": red["reduction_pp"] if red else None,
            "reduction_ci_low_pp": red["ci_pp"][0] if red else None,
            "reduction_ci_high_pp": red["ci_pp"][1] if red else None,
            "reduction_share": red["share"] if red else None,
            "rows_kept": kept,
            "utility": mean_of(ec, "utility"),
            "helper_calls_per_cell": mean_of(ec, "helper_calls"),
            "helper_seconds_per_cell": mean_of(ec, "helper_seconds"),
            "cells": res["n_cells"] if res else 0,  # those with scores for this metric
            "tasks": ", ".join(task_order({c.task for c in ec})),
            "traits": ", ".join(sorted({c.trait for c in ec})),
            "integrity": _integrity_summary(ec, failed_by_entry.get(entry, [])),
            "sources": ", ".join(sorted({c.source for c in ec})),
        }
        row["flags"] = "; ".join(
            _flags(
                ec,
                res,
                own_red if by_own else red,
                kept,
                groups,
                all_groups,
                failed_by_entry.get(entry, []),
                own if by_own else None,
                noise,
            )
        )
        rows.append(row)
    df = pd.DataFrame(rows, columns=COLUMNS)
    if df.empty:
        return df
    is_base = df["name"] == BASELINE
    by_reduction = (
        by_own and bool(is_base.any()) and bool((~is_base).any())
        and bool(df.loc[~is_base, "own_reduction_log_odds"].notna().all())
    )  # fmt: skip
    if by_reduction:
        df["ranked_by"] = RANKED_BY_OWN_REDUCTION
    # Ranks use the wider of the question-level CI and the run-level CI over seeds (or groups):
    # on the quick preset the baseline's seeds range from -0.26 to +0.46 pp while each seed's
    # question-level CI is ~0.2 pp wide, so ordering on the question-level CI alone would be a
    # false order.
    lo_c, hi_c, slo_c, shi_c, value = (
        ("own_reduction_ci_low", "own_reduction_ci_high", "own_reduction_spread_low")
        + ("own_reduction_spread_high", "own_reduction_log_odds")
        if by_reduction
        else ("own_animal_ci_low", "own_animal_ci_high", "own_animal_spread_low")
        + ("own_animal_spread_high", "own_animal_log_odds")
        if by_own
        else ("ci_low_pp", "ci_high_pp", "spread_ci_low_pp", "spread_ci_high_pp", "residual_pp")
    )
    # ranks() puts the lowest first: leakage is better low, a reduction high, so it is negated
    # (and the baseline is its reference point, exactly 0).
    sign = -1.0 if by_reduction else 1.0
    df["_value"] = sign * pd.to_numeric(df[value]).where(~(is_base & by_reduction), 0.0)
    intervals: list[tuple[float, float] | None] = []
    for i in range(len(df)):
        lo, hi, slo, shi, v = (df[c].iloc[i] for c in (lo_c, hi_c, slo_c, shi_c, "_value"))
        if by_reduction and is_base.iloc[i]:
            intervals.append((0.0, 0.0))
            continue
        if pd.isna(lo):
            intervals.append(None)
            continue
        lo, hi = (lo, hi) if sign > 0 else (-hi, -lo)
        if slo is not None and not pd.isna(slo):
            slo, shi = (slo, shi) if sign > 0 else (-shi, -slo)
        elif noise is not None:
            # One run: its run-to-run noise is not measured, so borrow the baseline's (the spread
            # of one run of the baseline around its seed mean), rather than rank on the
            # question-level CI alone.
            slo, shi = v - noise, v + noise
            df.loc[df.index[i], "rank_noise_borrowed"] = True
        intervals.append(_widest((lo, hi), (slo, shi)))
    df.insert(0, "rank", ranks(intervals))
    df["_order"] = [int(r.lstrip("=")) if r != "n/a" else math.inf for r in df["rank"]]
    df = df.sort_values(["_order", "_value"], na_position="last", kind="stable")
    return df[["rank", *COLUMNS]].reset_index(drop=True)


COLUMNS = [
    "defense", "name", "version", "params", "residual_pp", "ci_low_pp", "ci_high_pp", "p_value",
    "significant", "spread_unit", "spread_ci_low_pp", "spread_ci_high_pp",
    "own_animal_log_odds", "own_animal_ci_low", "own_animal_ci_high", "own_animal_significant",
    "own_animal_spread_low", "own_animal_spread_high", "own_reduction_log_odds",
    "own_reduction_ci_low", "own_reduction_ci_high", "own_reduction_spread_low",
    "own_reduction_spread_high", "own_reduction_significant", "ranked_by", "rank_noise_borrowed",
    "reduction_pp", "reduction_ci_low_pp", "reduction_ci_high_pp",
    "reduction_share", "rows_kept", "utility", "helper_calls_per_cell",
    "helper_seconds_per_cell", "cells", "tasks", "traits", "integrity", "sources", "flags",
]  # fmt: skip


def _widest(ci: tuple[float, float], spread: tuple[Any, Any]) -> tuple[float, float]:
    lo, hi = spread
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return ci
    return (min(ci[0], float(lo)), max(ci[1], float(hi)))


def _spread(res: dict[str, Any] | None, i: int) -> float | None:
    level = res.get("seed_level") if res else None
    return level["ci_pp"][i] if level else None


def _baseline_noise(pooled: list[dict[str, Any] | None], key: str) -> float | None:
    """Half-width of a 95 % interval for one run of the baseline about its expected value
    (``run_spread`` of its per-seed values: one group, >= 3 seeds); None when the baseline gives
    no such estimate."""
    res = pooled[0] if len(pooled) == 1 else None
    vals = res.get(key) if res and res.get("unit") == "seed" else None
    if not vals or len(vals) < 3:
        return None
    return run_spread(vals)


def _own_spread(own: dict[str, Any] | None, i: int) -> float | None:
    level = own.get("seed_level") if own else None
    return level["ci"][i] if level else None


def _integrity_summary(cells: list[CellResult], failed: list[CellResult]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for c in cells + failed:
        counts[c.integrity] += 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def _flags(
    ec: list[CellResult],
    res: dict[str, Any] | None,
    red: dict[str, Any] | None,
    kept: float | None,
    groups: set[Group],
    all_groups: set[Group],
    failed: list[CellResult],
    own: dict[str, Any] | None = None,
    noise: float | None = None,
) -> list[str]:
    """``red`` and ``res``'s verdicts are those of the ranking statistic: with ``own`` (a setup
    ranked by the own-animal statistic) the baseline's verdict is the own-animal one and ``red``
    is the own-animal reduction."""
    flags = []
    is_base = ec[0].defense == BASELINE
    if kept is not None and kept < FEW_ROWS:
        flags.append(f"keeps < {FEW_ROWS:.0%} of rows")
    if res is None:
        flags.append("no poolable scores")
    elif is_base and not (own or res)["significant"]:
        flags.append("baseline leakage not significant")
    elif own is None and res["significant"] and res["diff_pp"] < 0:
        flags.append("residual significantly below 0 (trait moved away: still a signal)")
    elif own is not None and own["significant"] and own["log_odds_diff"] < 0:
        flags.append("own animal significantly below 0 (students moved away: still a signal)")
    if res is not None and not (own or res).get("seed_level"):
        # One run per group and one group: nothing measures run-to-run noise, which on the quick
        # preset exceeds the question-level CI (a null cell differs "significantly" over questions).
        flags.append(
            "one run: ranked with the baseline's run-to-run spread"
            if noise is not None
            else "one run: rank from the question-level CI only"
        )
    if not is_base:
        if red is None:
            flags.append("no baseline in this setup")
        elif not red["significant"]:
            flags.append("reduction not significant")
        if red is not None and not red.get("seed_matched", True):
            flags.append("reduction not seed-matched (no seed shared with the baseline)")
    bad = [c for c in ec if c.integrity == "failed"]
    if bad:
        flags.append(f"integrity check failed for {len(bad)} artifact(s) (included)")
    if failed:
        flags.append(f"integrity check failed for {len(failed)} artifact(s) (excluded)")
    if groups != all_groups:
        flags.append(f"covers {len(groups)} of {len(all_groups)} task×trait groups")
    return flags
