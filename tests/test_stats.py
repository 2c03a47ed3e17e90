"""Tests for benchmark.core.stats: expected values are recomputed independently with numpy/scipy."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from benchmark.core.stats import (
    bootstrap_ci,
    leakage_vs_base,
    own_animal_leakage,
    paired_leakage,
    paired_summary,
    rate_ci,
    run_spread,
    t_summary,
)
from benchmark.core.stats.paired import min_sign_flip_p, sign_flip_p
from benchmark.run.suite import _fmt


def _arms(trait: np.ndarray, control: np.ndarray) -> tuple[dict, dict]:
    """(questions, seeds) arrays -> the mapping form the API takes."""
    ids = [f"q{i:02d}" for i in range(len(trait))]
    return (
        {q: row.tolist() for q, row in zip(ids, trait, strict=True)},
        {q: row.tolist() for q, row in zip(ids, control, strict=True)},
    )


def _plain(x: object) -> bool:
    """True if x is built only from JSON-native Python types (no numpy scalars)."""
    if isinstance(x, dict):
        return all(type(k) is str and _plain(v) for k, v in x.items())
    if isinstance(x, list):
        return all(_plain(v) for v in x)
    return x is None or type(x) in (float, int, bool, str)


def test_hand_computed_single_seed() -> None:
    trait = {"a": 0.30, "b": 0.25, "c": 0.40, "d": 0.10, "e": 0.22}
    control = {"a": 0.20, "b": 0.26, "c": 0.30, "d": 0.05, "e": 0.20}
    d = np.array([trait[k] - control[k] for k in "abcde"])
    n, mean, sd = d.size, d.mean(), d.std(ddof=1)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    t_stat = mean / (sd / math.sqrt(n))
    p = 2 * stats.t.sf(abs(t_stat), n - 1)

    res = paired_leakage(trait, control)
    assert res["n_questions"] == 5 and res["n_seeds"] == 1
    assert res["diff_pp"] == pytest.approx(5.2)
    assert res["ci_pp"] == pytest.approx([100 * (mean - half), 100 * (mean + half)])
    assert res["p_value"] == pytest.approx(p)
    assert res["p_value"] == pytest.approx(
        stats.ttest_rel([trait[k] for k in "abcde"], [control[k] for k in "abcde"]).pvalue
    )
    assert res["wilcoxon_p"] == pytest.approx(stats.wilcoxon(d, zero_method="zsplit").pvalue)
    assert res["trait_mean_pp"] == pytest.approx(25.4)
    assert res["control_mean_pp"] == pytest.approx(20.2)
    assert res["relative_change"] == pytest.approx(25.4 / 20.2 - 1)
    assert res["per_seed"] == pytest.approx([5.2])
    assert res["seed_level"] is None
    assert p > 0.05 and res["significant"] is False  # p = 0.075 by hand


def test_seeds_are_averaged_per_question_and_reported_per_seed() -> None:
    trait = {"a": [0.4, 0.2], "b": [0.5, 0.3], "c": [0.1, 0.3]}
    control = {"a": [0.1, 0.2], "b": [0.2, 0.2], "c": [0.1, 0.1]}
    # Seed-averaged diffs are .15, .20, .10 (mean .15, sd .05); seed 0 gives .20, seed 1 gives .10.
    res = paired_leakage(trait, control)
    assert res["n_seeds"] == 2
    assert res["diff_pp"] == pytest.approx(15.0)
    assert res["per_seed"] == pytest.approx([20.0, 10.0])
    t_stat = 0.15 / (0.05 / math.sqrt(3))
    assert res["p_value"] == pytest.approx(2 * stats.t.sf(t_stat, 2))
    seed = res["seed_level"]
    assert seed["mean_pp"] == pytest.approx(15.0)
    assert seed["n_positive"] == 2
    assert seed["p_value"] == pytest.approx(stats.ttest_1samp([20.0, 10.0], 0.0).pvalue)
    assert res["p_value"] < 0.05 and res["significant"] is True


def test_identical_arms_mean_no_effect() -> None:
    rng = np.random.default_rng(1)
    scores = rng.uniform(0.05, 0.5, size=(50, 3))
    trait, control = _arms(scores, scores.copy())
    res = paired_leakage(trait, control)
    assert res["diff_pp"] == 0.0
    assert res["ci_pp"] == [0.0, 0.0]
    assert res["p_value"] == 1.0
    assert res["log_odds_p_value"] == 1.0
    assert res["wilcoxon_p"] is None
    assert res["odds_ratio"] == 1.0
    assert res["relative_change"] == 0.0
    assert res["seed_level"]["p_value"] == 1.0
    assert res["significant"] is False


def test_clear_effect_is_significant() -> None:
    rng = np.random.default_rng(0)
    control = rng.uniform(0.1, 0.5, size=(50, 3))
    trait = control + 0.05 + rng.normal(0.0, 0.005, size=control.shape)
    res = paired_leakage(*_arms(trait, control))
    assert res["diff_pp"] == pytest.approx(5.0, abs=0.3)
    assert res["ci_pp"][0] > 0 and res["ci_pp"][1] > res["ci_pp"][0]
    assert res["bootstrap_ci_pp"][0] > 0
    assert res["p_value"] < 1e-10 and res["wilcoxon_p"] < 1e-6
    assert res["log_odds_diff"] > 0 and res["odds_ratio"] > 1 and res["log_odds_ci"][0] > 0
    assert res["seed_level"]["n_positive"] == 3
    assert res["significant"] is True


def test_seed_sign_disagreement_is_not_significant() -> None:
    rng = np.random.default_rng(2)
    control = rng.uniform(0.2, 0.6, size=(50, 2))
    # Run 0 leaks +10 pp, run 1 goes -2 pp: the question-level test alone would call it significant.
    trait = control + np.array([0.10, -0.02]) + rng.normal(0.0, 0.01, size=control.shape)
    res = paired_leakage(*_arms(trait, control))
    assert res["p_value"] < 0.05 and res["diff_pp"] > 0
    assert res["per_seed"][0] > 0 > res["per_seed"][1]
    assert res["seed_level"]["n_positive"] == 1
    assert res["significant"] is False


def test_log_odds_against_hand_computation() -> None:
    eps = 1e-4
    trait = {"a": 0.5, "b": 0.2, "c": 0.0}
    control = {"a": 0.25, "b": 0.1, "c": 0.01}
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    diffs = [math.log(3), math.log(9 / 4), logit(eps) - logit(0.01)]
    res = paired_leakage(trait, control, eps=eps)
    assert res["log_odds_diff"] == pytest.approx(np.mean(diffs))
    assert res["odds_ratio"] == pytest.approx(math.exp(np.mean(diffs)))
    assert res["log_odds_p_value"] == pytest.approx(stats.ttest_1samp(diffs, 0.0).pvalue)
    lo, hi = res["log_odds_ci"]
    assert lo < np.mean(diffs) < hi
    assert res["odds_ratio_ci"] == pytest.approx([math.exp(lo), math.exp(hi)])


def test_log_odds_use_the_seed_averaged_score() -> None:
    res = paired_leakage({"a": [0.0, 0.4], "b": [0.3, 0.3]}, {"a": [0.1, 0.1], "b": [0.1, 0.1]})
    # Question a averages to 0.2 before the logit, so eps plays no part.
    expected = [math.log(0.25 / (1 / 9)), math.log((0.3 / 0.7) / (1 / 9))]
    assert res["log_odds_diff"] == pytest.approx(np.mean(expected))


def test_leakage_vs_base_broadcasts_base_over_seeds() -> None:
    student = {"a": [0.3, 0.35], "b": [0.2, 0.1], "c": [0.5, 0.45]}
    base = {"a": 0.2, "b": [0.15], "c": 0.4}
    res = leakage_vs_base(student, base)
    repeated = {"a": [0.2, 0.2], "b": [0.15, 0.15], "c": [0.4, 0.4]}
    expected = paired_leakage(student, repeated)
    assert res["reference"] == "base" and expected["reference"] == "control"
    res.pop("reference"), expected.pop("reference")
    assert res == expected
    assert res["per_seed"] == pytest.approx([100 * 0.25 / 3, 100 * (0.15 - 0.05 + 0.05) / 3])


def test_leakage_vs_base_refuses_seeded_base() -> None:
    with pytest.raises(ValueError, match="one score per question"):
        leakage_vs_base({"a": [0.1, 0.2], "b": [0.1, 0.2]}, {"a": [0.1, 0.2], "b": [0.1, 0.2]})


@pytest.mark.parametrize(
    ("trait", "control", "pattern"),
    [
        (
            {"q1": 0.1, "q2": 0.2, "q3": 0.3},
            {"q1": 0.1, "q3": 0.3, "q9": 0.2},
            r"missing from control: \['q2'\]; missing from trait: \['q9'\]",
        ),
        ({"a": [0.1, 0.2], "b": [0.1, 0.2]}, {"a": [0.1], "b": [0.1]}, "seed counts differ"),
        ({"a": [0.1, 0.2], "b": [0.1]}, {"a": [0.1, 0.2], "b": [0.1]}, r"seeds.*'b'"),
        (
            {"a": float("nan"), "b": 0.1},
            {"a": 0.1, "b": 0.1},
            r"trait score for question 'a' is nan",
        ),
        ({"a": 0.1, "b": 0.1}, {"a": 0.1, "b": 1.5}, r"control score for question 'b' is 1.5"),
        ({"a": 0.1, "b": 0.1}, {"a": 0.1, "b": -0.1}, r"in \[0, 1\]"),
        ({"a": 0.1}, {"a": 0.2}, "at least 2 questions"),
        ({"a": "0.1", "b": 0.1}, {"a": 0.1, "b": 0.1}, "string"),
        ({"a": [], "b": 0.1}, {"a": 0.1, "b": 0.1}, "non-empty"),
    ],
)
def test_bad_input_is_refused(trait: dict, control: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        paired_leakage(trait, control)


def test_bad_confidence_is_refused() -> None:
    with pytest.raises(ValueError, match="confidence"):
        paired_leakage({"a": 0.1, "b": 0.2}, {"a": 0.1, "b": 0.1}, confidence=95)


def test_output_is_plain_json() -> None:
    rng = np.random.default_rng(3)
    control = rng.uniform(0.0, 0.3, size=(10, 2))
    control[0] = 0.0  # a zero rate exercises the eps clip
    for res in (
        paired_leakage(*_arms(control + 0.02, control)),
        paired_leakage(*_arms(control[:, :1], control[:, :1])),
        leakage_vs_base(*_arms(control + 0.02, control[:, :1])),
    ):
        assert _plain(res)
        assert json.loads(json.dumps(res, allow_nan=False)) == res


def test_relative_change_none_when_control_is_zero() -> None:
    res = paired_leakage({"a": 0.1, "b": 0.2}, {"a": 0.0, "b": 0.0})
    assert res["relative_change"] is None
    assert res["diff_pp"] == pytest.approx(15.0)


def test_bootstrap_ci_matches_t_interval_and_is_deterministic() -> None:
    x = np.random.default_rng(4).normal(1.0, 2.0, size=400)
    lo, hi = bootstrap_ci(x)
    t_lo, t_hi = stats.ttest_1samp(x, 0.0).confidence_interval(0.95)
    assert lo == pytest.approx(t_lo, abs=0.03) and hi == pytest.approx(t_hi, abs=0.03)
    assert bootstrap_ci(x) == (lo, hi)
    assert bootstrap_ci(x, seed=1) != (lo, hi)
    assert bootstrap_ci([0.3, 0.3, 0.3]) == pytest.approx((0.3, 0.3))
    narrow = bootstrap_ci(x, confidence=0.5)
    assert lo < narrow[0] < narrow[1] < hi
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_rate_ci_wilson() -> None:
    assert rate_ci(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    for k, n, conf in [(0, 20, 0.95), (3, 40, 0.9), (40, 40, 0.99), (17, 23, 0.95)]:
        ci = stats.binomtest(k, n).proportion_ci(conf, method="wilson")
        assert rate_ci(k, n, conf) == pytest.approx((ci.low, ci.high))
    assert rate_ci(0, 20)[0] == 0.0 and rate_ci(20, 20)[1] == 1.0
    with pytest.raises(ValueError, match="k=11"):
        rate_ci(11, 10)
    with pytest.raises(ValueError):
        rate_ci(0, 0)


def test_float_round_off_is_not_an_effect() -> None:
    control = np.random.default_rng(5).uniform(0.1, 0.5, size=(20, 2))
    trait = (control + 0.3) - 0.3  # equal up to ~1e-17, not bit-identical
    assert not np.array_equal(trait, control)
    res = paired_leakage(*_arms(trait, control))
    assert res["p_value"] == 1.0 and res["wilcoxon_p"] is None
    assert res["significant"] is False


def _own_arms(rng: np.random.Generator, n_q: int = 12, n_s: int = 2) -> list[dict]:
    """Four (questions, seeds) score sets: trait animal in trait / control student, placebo animal
    in trait / control student; the trait student leans to the trait animal and vice versa."""
    base = rng.uniform(0.005, 0.03, size=(n_q, 1))
    tt = base * rng.uniform(1.1, 1.6, size=(n_q, n_s))
    tc = base * rng.uniform(0.8, 1.2, size=(n_q, n_s))
    pt = base * rng.uniform(0.8, 1.2, size=(n_q, n_s))
    pc = base * rng.uniform(1.0, 1.5, size=(n_q, n_s))
    ids = [f"q{i:02d}" for i in range(n_q)]
    return [{q: row.tolist() for q, row in zip(ids, a, strict=True)} for a in (tt, tc, pt, pc)]


def test_own_animal_matches_an_independent_computation() -> None:
    arms = _own_arms(np.random.default_rng(3))
    tt, tc, pt, pc = (np.array(list(a.values())) for a in arms)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731 - no clipping needed: all in (0.004, 0.05)
    per_q = (logit(tt.mean(1)) - logit(tc.mean(1)) + logit(pc.mean(1)) - logit(pt.mean(1))) / 2
    ref = stats.ttest_1samp(per_q, 0.0)
    ci = ref.confidence_interval(0.95)
    per_seed = ((logit(tt) - logit(tc) + logit(pc) - logit(pt)) / 2).mean(axis=0)
    res = own_animal_leakage(*arms)
    assert res["log_odds_diff"] == pytest.approx(per_q.mean())
    assert res["log_odds_ci"] == pytest.approx([ci.low, ci.high])
    assert res["log_odds_p_value"] == pytest.approx(ref.pvalue)
    assert res["per_seed_log_odds"] == pytest.approx(per_seed.tolist())
    pp = ((tt.mean(1) - tc.mean(1)) + (pc.mean(1) - pt.mean(1))) / 2
    assert res["diff_pp"] == pytest.approx(100 * pp.mean())
    comp = res["components"]
    assert comp["trait_animal_log_odds"] == pytest.approx(
        paired_leakage(arms[0], arms[1])["log_odds_diff"]
    )
    assert comp["placebo_animal_log_odds"] == pytest.approx(
        paired_leakage(arms[3], arms[2])["log_odds_diff"]
    )
    assert res["log_odds_diff"] == pytest.approx(sum(comp.values()) / 2)
    assert res["seed_level"]["n_positive"] == int(np.sum(per_seed > 0))
    assert res["significant"] == (ref.pvalue < 0.05 and bool(np.all(per_seed > 0)))
    assert _plain(res) and json.loads(json.dumps(res)) == res


def test_own_animal_cancels_a_shift_shared_by_every_animal() -> None:
    """What a student's number data does to all animals' log-odds alike drops out; a contrast on
    one animal alone moves with it."""
    # One seed: with several, seeds are averaged before the logit, so a shift is not exact.
    tt, tc, pt, pc = _own_arms(np.random.default_rng(4), n_s=1)

    def shift(arm: dict, delta: float) -> dict:
        return {q: [1 / (1 + math.exp(-(math.log(p / (1 - p)) + delta))) for p in v]
                for q, v in arm.items()}  # fmt: skip

    before = own_animal_leakage(tt, tc, pt, pc)
    after = own_animal_leakage(tt, shift(tc, -0.7), pt, shift(pc, -0.7))
    assert after["log_odds_diff"] == pytest.approx(before["log_odds_diff"], abs=1e-9)
    single = paired_leakage(tt, shift(tc, -0.7))["log_odds_diff"]
    assert single == pytest.approx(paired_leakage(tt, tc)["log_odds_diff"] + 0.7, abs=1e-6)
    # The mirror cell (the placebo animal as trait, students swapped) measures the same thing.
    assert own_animal_leakage(pc, pt, tc, tt)["log_odds_diff"] == pytest.approx(
        before["log_odds_diff"]
    )


def test_own_animal_rejects_mismatched_inputs() -> None:
    tt, tc, pt, pc = _own_arms(np.random.default_rng(5))
    short = {q: v for q, v in pt.items() if q != "q00"}
    with pytest.raises(ValueError, match="question ids differ"):
        own_animal_leakage(tt, tc, short, pc)
    with pytest.raises(ValueError, match="cover different questions"):
        own_animal_leakage(tt, tc, short, {q: v for q, v in pc.items() if q != "q00"})
    one_seed = {q: v[:1] for q, v in pt.items()}
    with pytest.raises(ValueError, match="seed counts differ: trait animal 2, placebo animal 1"):
        own_animal_leakage(tt, tc, one_seed, {q: v[:1] for q, v in pc.items()})


def test_printed_verdict_says_when_one_run_cannot_see_run_noise() -> None:
    """One run's question-level test is no test of run-to-run noise; the suite's line says so."""
    rng = np.random.default_rng(0)
    control = rng.uniform(0.1, 0.5, size=(50, 3))
    trait = control + 0.05 + rng.normal(0.0, 0.005, size=control.shape)
    one = paired_leakage(*_arms(trait[:, :1], control[:, :1]))
    three = paired_leakage(*_arms(trait, control))
    assert one["significant"] and three["significant"]
    assert _fmt(one).endswith(
        "significant over questions (one run: run-to-run noise not in this test)"
    )
    assert _fmt(three).endswith(" — significant")
    flat = paired_leakage(*_arms(control[:, :1], control[:, :1]))
    assert _fmt(flat).endswith(" — not significant")


@pytest.mark.parametrize("seeds", [1, 3])
@pytest.mark.parametrize("shift", [0.0, 0.002, -0.01])
def test_paired_summary_is_the_cheap_part_of_paired_leakage(seeds: int, shift: float) -> None:
    rng = np.random.default_rng(seeds)
    c = rng.uniform(0.01, 0.05, (50, seeds))
    t = np.clip(c + shift + rng.normal(0, 0.003, (50, seeds)), 0, 1)
    want = paired_leakage(*_arms(t, c))
    got = paired_summary(t, c)
    assert got == {k: want[k] for k in got}
    assert set(got) == {"diff_pp", "ci_pp", "p_value", "per_seed", "seed_level", "significant"}
    # No spread at all: the limits, as paired_leakage reports them.
    assert paired_summary(c, c)["p_value"] == 1.0


def test_t_summary_is_the_one_sample_t_test() -> None:
    x = np.random.default_rng(6).normal(0.2, 1.0, size=30)
    ref = stats.ttest_1samp(x, 0.0)
    ci = ref.confidence_interval(0.9)
    mean, (lo, hi), p = t_summary(x, 0.9)
    # The same arithmetic written out, so equal up to float round-off.
    want = (float(x.mean()), float(ci.low), float(ci.high), float(ref.pvalue))
    assert np.allclose((mean, lo, hi, p), want, rtol=1e-12, atol=0)
    # One value, or no spread: the limits rather than nan.
    assert t_summary([0.3]) == (0.3, [0.3, 0.3], 0.0)
    assert t_summary([0.0, 0.0]) == (0.0, [0.0, 0.0], 1.0)


def test_run_spread_is_a_t_half_width_of_one_run() -> None:
    runs = [0.1, 0.5, 0.3]
    assert run_spread(runs) == pytest.approx(stats.t.ppf(0.975, 2) * np.std(runs, ddof=1))
    assert run_spread(runs, 0.5) < run_spread(runs)
    with pytest.raises(ValueError, match=">= 2 runs"):
        run_spread([0.1])


@pytest.mark.parametrize("n", [3, 6, 8, 10])
def test_min_sign_flip_p_is_the_exact_tests_floor(n: int) -> None:
    # All of one sign is the most extreme pattern: its p is the smallest the test can give.
    assert sign_flip_p(np.linspace(1.0, 2.0, n)) == pytest.approx(min_sign_flip_p(n))
