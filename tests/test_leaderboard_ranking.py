"""The ranking on real placebo-controlled artifacts (the committed GPU replicates): which statistic
ranks, its per-seed values recomputed independently from the scores, seed matching, verdicts."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from benchmark.core.artifact import CellResult
from benchmark.core.results import integrity_block
from benchmark.run.synthetic import Spec, artifact, write
from leaderboard import ranking as rk
from leaderboard import verdicts
from leaderboard.loader import load

SUBS = Path(__file__).resolve().parent.parent / "submissions"
GPU = "quick-placebo-h200"


@pytest.fixture(scope="module")
def gpu() -> list[CellResult]:
    cells = [c for c in load([SUBS]).cells if Path(c.path).parent.name == GPU]
    assert {c.defense for c in cells} >= {"none", "canonicalize"}
    return cells


def _own_per_seed(cells: list[CellResult]) -> dict[int, float]:
    """The own-animal statistic of each run, written out: per question
    ½[(logit tT − logit tC) + (logit pC − logit pT)], scores clipped to [1e-4, 1 − 1e-4]; mean
    over questions."""

    def logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(p, 1e-4, 1 - 1e-4)
        return np.log(p / (1 - p))

    out = {}
    for c in cells:
        _, tt, tc = c.scores["teacher_forced"]
        _, pt, pc = c.placebo
        out[c.seed] = float(np.mean(((logit(tt) - logit(tc)) + (logit(pc) - logit(pt))) / 2))
    return out


def test_the_gpu_setup_ranks_by_the_paired_own_animal_reduction(gpu) -> None:
    df = rk.ranking(gpu, "teacher_forced").set_index("name")
    assert set(df["statistic"]) == {"own animal, log-odds"}
    base = _own_per_seed([c for c in gpu if c.defense == "none"])
    for name in ("canonicalize", "divergence_mask", "freeze_early_layers"):
        mine = _own_per_seed([c for c in gpu if c.defense == name])
        seeds = sorted(set(mine) & set(base))
        ref = stats.ttest_rel([base[s] for s in seeds], [mine[s] for s in seeds])
        ci = ref.confidence_interval(0.95)
        row = df.loc[name]
        assert row["n_pairs"] == len(seeds) and row["seeds"] == ", ".join(map(str, seeds))
        assert row["p_t"] == pytest.approx(ref.pvalue, rel=1e-9)
        assert [row["effect_ci_low"], row["effect_ci_high"]] == pytest.approx([ci.low, ci.high])
    # freeze_early_layers ran seeds 1-4 only: four pairs are too few to rank.
    assert df.loc["freeze_early_layers", "verdict"] == verdicts.MORE_SEEDS
    # canonicalize's paired p (0.028) is below 0.05 alone, not after Holm over the two ranked
    # entries: not shown, as the reading of the GPU setup had it.
    assert df.loc["canonicalize", "p_t"] < 0.05 < df.loc["canonicalize", "p_holm"]
    assert df.loc["canonicalize", "verdict"] == verdicts.NOT_SHOWN
    assert df.loc["none", "role"] == "baseline"
    assert list(df["rank"][:2]) == ["1", "2"]


def _variant(cells: list[CellResult], name: str, owl: float, placebo: float, seeds=None):
    """Copies of the baseline's runs in which the trait student's owl score moves ``owl`` of
    the way to the control student's, and the control student's dolphin score ``placebo`` of the
    way to the trait student's (1 cancels that contrast, 0 leaves it)."""
    out = []
    for c in cells:
        if c.defense != "none" or (seeds is not None and c.seed not in seeds):
            continue
        ids, t, ctl = c.scores["teacher_forced"]
        pids, pt, pc = c.placebo
        out.append(
            replace(
                c,
                defense=name,
                entry=f"{name} v1",
                path=f"{c.path}#{name}",
                scores={**c.scores, "teacher_forced": (ids, t + owl * (ctl - t), ctl)},
                placebo=(pids, pt, pc + placebo * (pt - pc)),
            )
        )
    return out


def test_known_effects_on_real_runs(gpu) -> None:
    """On the baseline's own runs: cancelling both contrasts in every seed removes the whole
    statistic (better); an unchanged copy reduces by exactly 0 (not shown); run on one seed only,
    needs more seeds."""
    base = [c for c in gpu if c.defense == "none"]
    cells = (
        base
        + _variant(base, "both", 1.0, 1.0)
        + _variant(base, "copy", 0.0, 0.0)
        + _variant(base, "owl_only", 1.0, 0.0)
        + _variant(base, "one_seed", 1.0, 1.0, seeds={0})
    )
    df = rk.ranking(cells, "teacher_forced").set_index("name")
    assert df.loc["both", "verdict"] == verdicts.BETTER
    assert df.loc["both", "effect"] == pytest.approx(df.loc["none", "leakage"], abs=0.02)
    assert df.loc["copy", "effect"] == pytest.approx(0.0, abs=1e-12)
    assert df.loc["copy", "verdict"] == verdicts.NOT_SHOWN
    assert df.loc["one_seed", "verdict"] == verdicts.MORE_SEEDS
    # Seed-matched: the one-seed entry is compared with the baseline's seed 0, not its mean.
    seed0 = _own_per_seed([c for c in base if c.seed == 0])[0]
    one = _own_per_seed([c for c in cells if c.defense == "one_seed"])[0]
    assert df.loc["one_seed", "effect"] == pytest.approx(seed0 - one)
    assert 0 < df.loc["owl_only", "effect"] < df.loc["both", "effect"]
    ranked = df[df["rank"] != "—"].sort_values("rank").index
    assert list(ranked)[0] == "both" and list(ranked)[-1] in ("copy", "owl_only")
    # The share of the baseline removed: ~100 % for both, with an interval around it.
    assert df.loc["both", "share"] == pytest.approx(1.0, abs=0.1)


def test_seeds_without_a_baseline_run_are_flagged(gpu) -> None:
    base = [c for c in gpu if c.defense == "none"]
    extra = _variant(base, "more", 0.5, 0.5)
    extra += [replace(c, seed=9, path=c.path + "#9") for c in extra[:1]]
    df = rk.ranking(base + extra, "teacher_forced").set_index("name")
    assert df.loc["more", "n_pairs"] == 5 and df.loc["more", "leakage_n"] == 6
    assert "1 seed(s) without a baseline run" in df.loc["more", "flags"]


def test_the_cpu_setup_puts_the_bound_apart(tmp_path: Path) -> None:
    """On the committed CPU placebo setup the resample bound is a reference row, never first."""
    cells = [c for c in load([SUBS]).cells if c.setup_label == "quick" and c.integrity == "ok"]
    df = rk.ranking(cells, "teacher_forced")
    bound = df[df["name"] == "canonicalize"].set_index("params")
    row = bound.loc['{"mode": "resample", "text": true}']
    assert row["role"] == "bound" and row["rank"] == "—" and row["verdict"] == "reference (bound)"
    assert df["role"].iloc[0] == "defense"
    assert list(df["role"]).index("bound") > list(df["role"]).index("baseline")


def test_specific_runs_are_counted_and_a_mostly_unspecific_baseline_is_flagged(gpu) -> None:
    # The committed GPU artifacts predate the specificity check: nothing is counted for them.
    df = rk.ranking(gpu, "teacher_forced").set_index("name")
    assert (df["specificity_n"] == 0).all() and (df["specific_runs"] == 0).all()
    ranks = [0.01, 0.5, 0.3, 0.02, 0.9]  # the baseline's runs: specific in 2 of 5
    base = sorted((c for c in gpu if c.defense == "none"), key=lambda c: c.seed)
    marked = [replace(c, p_rank=p) for c, p in zip(base, ranks, strict=True)]
    others = [c for c in gpu if c.defense != "none"]
    df = rk.ranking(marked + others, "teacher_forced").set_index("name")
    row = df.loc["none"]
    assert (row["specific_runs"], row["specificity_n"]) == (2, 5)
    assert "specific in only 2 of 5 runs" in row["flags"]
    marked = [replace(c, p_rank=0.01) for c in base]
    row = rk.ranking(marked + others, "teacher_forced").set_index("name").loc["none"]
    assert (row["specific_runs"], row["specificity_n"]) == (5, 5)
    assert "specific in only" not in row["flags"]


def test_entries_run_with_process_isolation_only_are_flagged(gpu) -> None:
    marked = [
        replace(c, defense_info={**c.defense_info, "isolation": "process"})
        if c.defense == "canonicalize"
        else c
        for c in gpu
    ]
    df = rk.ranking(marked, "teacher_forced").set_index("name")
    assert "process isolation only" in df.loc["canonicalize", "flags"]
    assert "process isolation only" not in df.loc["divergence_mask", "flags"]


@pytest.fixture(scope="module")
def restricted() -> list[CellResult]:
    cells = [c for c in load([SUBS]).cells if Path(c.path).parent.name == "restricted"]
    assert {c.defense for c in cells} >= {"none", "canonicalize", "cross_base_teacher"}
    return cells


def _summary_leakage(name: str) -> dict:
    summary = json.loads((SUBS / name / "results" / "restricted" / "summary.json").read_text())
    (pool,) = summary["pooled"]
    return pool["leakage"]


@pytest.mark.parametrize("name", ["none", "canonicalize", "cross_base_teacher"])
def test_the_leakage_call_is_slbs_pooled_verdict_on_the_same_runs(restricted, name) -> None:
    # `slb submit` wrote each entry's summary (its pooled specificity and verdict) from the same
    # five artifacts the leaderboard reads: the two must agree to the last digit.
    row = rk.ranking(restricted, "teacher_forced").set_index("name").loc[name]
    slb = _summary_leakage(name)
    assert row["p_rank_pooled"] == pytest.approx(slb["specificity"]["p_rank"], rel=1e-12)
    assert (row["leakage_call"] == "present") is slb["verdict"]["present"]


def test_the_leakage_call_needs_runs_specificity_and_a_positive_statistic(restricted) -> None:
    df = rk.ranking(restricted, "teacher_forced").set_index("name")
    assert df.loc["none", "leakage_call"] == "present"
    # Another base wrote the rows: what is left is neither positive over runs nor specific.
    cross = df.loc["cross_base_teacher", "leakage_call"]
    assert cross.startswith("not shown (not positive over 5 runs") and "not specific" in cross
    base = [c for c in restricted if c.defense == "none"]
    one = rk.ranking(base[:1], "teacher_forced").iloc[0]
    assert one["leakage_call"].startswith("not shown (one run cannot show")
    blind = [replace(c, candidates=None) for c in base]
    row = rk.ranking(blind, "teacher_forced").iloc[0]
    assert row["leakage_call"] == "not shown (specificity not computed)"
    assert row["p_rank_pooled"] is None or np.isnan(row["p_rank_pooled"])

    # Relabel the control student's animals: the shifts are then not about owl and dolphin.
    def scramble(c: CellResult) -> CellResult:
        (ids, animals, t), (_, _, ctl) = c.candidates
        rng = np.random.default_rng(c.seed)
        return replace(
            c, candidates=((ids, animals, t), (ids, animals, ctl[:, rng.permutation(len(animals))]))
        )

    row = rk.ranking([scramble(c) for c in base], "teacher_forced").iloc[0]
    assert row["leakage_call"].startswith("not shown") and row["p_rank_pooled"] > 0.05


def test_the_leakage_call_on_synthetic_cells_without_a_placebo(tmp_path: Path) -> None:
    # No placebo teacher: the trait contrast against every other animal's shift. The synthetic
    # rows share the other animals across students up to 2 % noise: a real leak stands out.
    def cells(leak: float) -> list[Spec]:
        return [Spec("numbers", "none", "owl", s, leak_pp=leak, candidates=True) for s in range(5)]

    write(tmp_path / "leak", [artifact(s) for s in cells(0.3)])
    write(tmp_path / "none", [artifact(s) for s in cells(0.0)])
    for name, call in (("leak", "present"), ("none", "not shown (not positive over 5 runs")):
        row = rk.ranking(load([tmp_path / name]).cells, "teacher_forced").iloc[0]
        assert row["leakage_call"].startswith(call), row["leakage_call"]


def test_the_leakage_call_is_made_on_one_group_of_the_teacher_forced_metric(tmp_path: Path) -> None:
    specs = [
        Spec(task, "none", "owl", s, leak_pp=0.3, candidates=True)
        for task in ("numbers", "code")
        for s in range(3)
    ]
    write(tmp_path, [artifact(s) for s in specs])
    cells = load([tmp_path]).cells
    row = rk.ranking(cells, "teacher_forced").iloc[0]
    assert (
        row["leakage_call"] == "not made (2 task×trait groups pooled: filter to one for the call)"
    )
    one = [c for c in cells if c.task == "numbers"]
    assert rk.ranking(one, "teacher_forced").iloc[0]["leakage_call"] == "present"


def test_hostile_candidate_tables_are_ignored_not_fatal(tmp_path: Path) -> None:
    # A candidates block the size of a denial of service, or ragged: the cell still loads and
    # ranks; its specificity is simply not computed.
    arts = [artifact(Spec("numbers", "none", "owl", s, candidates=True)) for s in range(2)]
    many = {f"beast{i}": 0.001 for i in range(5000)} | {"owl": 0.01, "dolphin": 0.01}
    for row in arts[0]["scores"]["trait"]:
        row["candidates"] = many
    arts[1]["scores"]["control"][0]["candidates"]["cat"] = [0.1, 0.2]
    for art in arts:
        art["integrity"] = integrity_block(
            {"trait": "k", "control": "k"}, art["scores"], art["leakage"]
        )
    write(tmp_path, arts)
    cells = load([tmp_path]).cells
    assert len(cells) == 2 and all(c.candidates is None for c in cells)
    assert "specificity not computed" in rk.ranking(cells, "teacher_forced").iloc[0]["leakage_call"]
