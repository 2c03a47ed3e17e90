"""The leaderboard's rule (``leaderboard.verdicts``) and its numbers (``benchmark.core.stats.paired``).

* Every interval and p against an independent reference: ``scipy.stats.ttest_rel`` for the paired
  reduction, a brute-force enumeration for the sign-flip test, a hand-written Holm, test inversion
  for Fieller's ratio interval, and the per-seed values recomputed from the artifacts' scores.
* Properties of the rule, over seeded random setups (hypothesis is not a dependency): the order
  does not depend on the order entries come in; a larger effect never moves an entry down; a
  wider interval never moves it up.
* Synthetic setups whose right verdict is known: a real reduction over 8 paired seeds (better), a
  null defense (not shown), a harmful one (worse), one seed (needs more seeds), a wide interval,
  a bound and a random drop (references, never ranked).
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from benchmark.core.stats.paired import (
    MIN_EXACT,
    exact_from,
    holm,
    paired_test,
    ratio_ci,
    sign_flip_p,
)
from benchmark.run.synthetic import Spec, artifact, write
from leaderboard import ranking as rk
from leaderboard import tables, verdicts
from leaderboard.loader import load
from leaderboard.pairing import Paired

# --- the numbers against independent references ----------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 5, 6, 8, 12])
def test_paired_test_is_scipys_paired_t_test(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(20):
        base = rng.normal(0.3, 0.2, n)
        mine = base - rng.normal(0.05, 0.1, n)
        res = paired_test(base - mine)
        ref = stats.ttest_rel(base, mine)
        ci = ref.confidence_interval(0.95)
        assert res["p_t"] == pytest.approx(ref.pvalue, rel=1e-9)
        assert res["ci"] == pytest.approx([ci.low, ci.high], rel=1e-9)
        assert res["mean"] == pytest.approx(float(np.mean(base - mine)))
        assert (res["p_sign_flip"] is None) == (n < MIN_EXACT)
        assert res["p"] == max(res["p_t"], res["p_sign_flip"] or 0.0)


def test_sign_flip_p_is_the_enumeration() -> None:
    rng = np.random.default_rng(7)
    for n in range(1, 11):
        d = rng.normal(0.1, 1.0, n)
        sums = [
            abs(sum(s * x for s, x in zip(signs, d, strict=True)))
            for signs in itertools.product((1, -1), repeat=n)
        ]
        want = sum(v >= abs(d.sum()) - 1e-12 for v in sums) / 2**n
        assert sign_flip_p(d) == pytest.approx(want)
    # Six consistent pairs reach 2/64 < 0.05; five cannot (2/32), hence the threshold.
    assert sign_flip_p([0.1] * 6) == pytest.approx(2 / 64)
    assert sign_flip_p([0.1] * 5) == pytest.approx(2 / 32) and MIN_EXACT == 6


def _holm(p: list[float], alpha: float = 0.05) -> list[float]:
    """Holm's step-down adjustment written out: the k-th smallest p times (m - k), running max."""
    m, out, running = len(p), [0.0] * len(p), 0.0
    for k, i in enumerate(np.argsort(p)):
        running = max(running, min(1.0, (m - k) * p[i]))
        out[i] = running
    return out


def test_holm_is_holms_step_down() -> None:
    rng = np.random.default_rng(3)
    for m in range(1, 9):
        p = list(rng.uniform(0, 0.2, m))
        assert holm(p) == pytest.approx(_holm(p))
    assert holm([]) == []


@pytest.fixture
def quick_holm(monkeypatch: pytest.MonkeyPatch) -> None:
    """statsmodels' Holm runs ``gc.collect()`` on every call (~30 ms here); the property loops
    call it thousands of times, so they use the written-out Holm, shown equal above."""
    monkeypatch.setattr(verdicts, "holm", _holm)


def test_ratio_ci_inverts_the_paired_t_test() -> None:
    rng = np.random.default_rng(11)
    for _ in range(30):
        den = rng.normal(0.3, 0.05, 8)
        num = 0.4 * den + rng.normal(0, 0.03, 8)
        r, lo, hi = ratio_ci(num, den)
        assert r == pytest.approx(num.mean() / den.mean())
        for bound in (lo, hi):  # at each end the paired test of num - r * den sits at p = 0.05
            assert stats.ttest_1samp(num - bound * den, 0.0).pvalue == pytest.approx(0.05, rel=1e-6)
        assert lo < r < hi
    # A denominator not significantly different from 0: the share is undefined.
    den = np.array([0.2, -0.1, 0.15, -0.2, 0.05])
    assert stats.ttest_1samp(den, 0).pvalue > 0.05 and ratio_ci(den * 0.5, den) is None


# --- properties of the rule ------------------------------------------------------------------


def _paired(diff: np.ndarray, base: float = 0.3) -> Paired:
    ref = np.full(len(diff), base)
    return Paired(tuple(range(len(diff))), np.asarray(diff, float), ref, ref - diff)


def _setup(rng: random.Random, k: int) -> dict[str, Paired]:
    out = {}
    for i in range(k):
        n = rng.choice([1, 3, 5, 6, 8, 10])
        mu, sd = rng.uniform(-0.3, 0.5), rng.uniform(0.01, 0.3)
        out[f"d{i}"] = _paired(np.array([rng.gauss(mu, sd) for _ in range(n)]))
    return out


def _position(pairs: dict[str, Paired], entry: str) -> int:
    return verdicts.order(verdicts.assess(pairs)).index(entry)


def _with(pairs: dict[str, Paired], entry: str, diff: np.ndarray) -> dict[str, Paired]:
    return {**pairs, entry: _paired(diff)}


def test_the_order_does_not_depend_on_the_input_order(quick_holm: None) -> None:
    rng = random.Random(0)
    for _ in range(200):
        pairs = _setup(rng, rng.randint(2, 7))
        names = list(pairs)
        want = verdicts.order(verdicts.assess(pairs))
        rng.shuffle(names)
        assert verdicts.order(verdicts.assess({e: pairs[e] for e in names})) == want


def test_a_larger_effect_never_moves_an_entry_down(quick_holm: None) -> None:
    rng = random.Random(1)
    for _ in range(300):
        pairs = _setup(rng, rng.randint(2, 7))
        e = rng.choice(list(pairs))
        before = _position(pairs, e)
        shifted = _with(pairs, e, pairs[e].diff + rng.uniform(0.001, 0.4))
        assert _position(shifted, e) <= before


def test_a_wider_interval_never_moves_an_entry_up(quick_holm: None) -> None:
    """Widen one entry's interval (its seeds spread further about the same mean): its position
    never improves, whatever the others are."""
    rng = random.Random(2)
    for _ in range(400):
        pairs = _setup(rng, rng.randint(2, 7))
        e = rng.choice(list(pairs))
        d = pairs[e].diff
        before = _position(pairs, e)
        wider = d.mean() + rng.uniform(1.2, 6.0) * (d - d.mean())
        assert _position(_with(pairs, e, wider), e) >= before


def test_overshoot_is_capped_and_marked() -> None:
    """A reduction beyond the baseline's own statistic earns nothing more than removing all of it."""
    exact = _paired(np.full(8, 0.3) + np.linspace(-0.01, 0.01, 8))
    beyond = _paired(np.full(8, 0.9) + np.linspace(-0.01, 0.01, 8))
    a = verdicts.assess({"exact": exact, "beyond": beyond})
    assert a["beyond"].overshoot and not a["exact"].overshoot
    assert a["beyond"].score == pytest.approx(0.3) and a["exact"].score == pytest.approx(0.3)
    assert a["beyond"].verdict == a["exact"].verdict == verdicts.BETTER
    # Same capped effect: the tie goes to the narrower interval, then the name, never the overshoot.
    assert verdicts.order(a)[0] == "exact"


def test_holm_runs_over_the_ranked_entries_of_the_setup() -> None:
    d = np.array([0.05, 0.02, 0.08, 0.03, 0.06, 0.04])
    alone = verdicts.assess({"a": _paired(d)})["a"]
    assert alone.p_holm == pytest.approx(alone.p)
    crowd = verdicts.assess(
        {"a": _paired(d), **{f"n{i}": _paired(d * 0 + [0.1, -0.1] * 3) for i in range(4)}}
    )
    # Six pairs in a family of five: the sign-flip floor (3 %) cannot pass 5 × p, so the t-test
    # decides alone (``exact_from``), where alone it joins from six pairs.
    assert alone.p_sign_flip is not None and crowd["a"].p_sign_flip is None
    assert crowd["a"].p_holm == pytest.approx(min(1.0, 5 * alone.p_t))
    # An entry with too few seeds is not in the family.
    few = verdicts.assess({"a": _paired(d), "few": _paired(d[:3])})
    assert few["few"].verdict == verdicts.MORE_SEEDS and few["few"].p_holm is None
    assert few["a"].p_holm == pytest.approx(alone.p)


def test_exact_from_is_where_the_sign_flip_floor_passes_holm() -> None:
    assert [exact_from(m) for m in (1, 2, 3, 4, 6, 7, 12)] == [6, 7, 7, 8, 8, 9, 9]
    for m in range(1, 30):
        k = exact_from(m)
        assert 2 / 2**k < 0.05 / m and (k == MIN_EXACT or 2 / 2 ** (k - 1) >= 0.05 / m)


@pytest.mark.parametrize("family", [1, 2, 3, 4, 6, 12])
def test_one_more_seed_never_makes_better_unreachable(family: int) -> None:
    """A steady reduction is *better* at every number of pairs from five on, in a family of any
    size. With the sign-flip test joining at six pairs whatever the family (the rule until
    2026-12-05), an entry among three was *better* at five pairs and could not be at six."""
    for n in range(verdicts.MIN_SEEDS, 13):
        d = 0.2 + 0.01 * np.arange(n)
        nulls = {f"o{i}": _paired(np.resize([0.1, -0.1], n)) for i in range(family - 1)}
        a = verdicts.assess({"a": _paired(d), **nulls})["a"]
        assert a.verdict == verdicts.BETTER, (family, n, a)


# --- synthetic setups with known verdicts ---------------------------------------------------------

SEEDS = list(range(8))
RUN_NOISE = [0.12, -0.08, 0.05, -0.15, 0.10, 0.02, -0.04, 0.07]  # per seed, shared by entries


def _entry(
    name: str, effect: float, seeds: list[int] = SEEDS, wobble: float = 0.0, **kw
) -> list[Spec]:
    """Runs of ``name``: per seed the baseline's leakage (0.30 pp + that seed's run noise) minus
    ``effect`` (plus ``wobble`` of alternating sign: seed-specific noise of this entry)."""
    return [
        Spec(
            "numbers",
            name,
            "owl",
            s,
            leak_pp=0.30 + RUN_NOISE[s] - effect + wobble * (-1) ** s,
            **kw,
        )
        for s in seeds
    ]


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory):
    specs = (
        _entry("none", 0.0)
        + _entry("works", 0.25, kept=0.6)
        + _entry("null", 0.0)
        + _entry("harmful", -0.2)
        + _entry("single", 0.25, seeds=[0])
        + _entry("noisy", 0.10, wobble=0.4)
        + _entry("canonicalize", 0.45, params={"mode": "resample"})
        + _entry("random_drop", 0.05, kept=0.6, params={"keep": 0.6})
    )
    root = tmp_path_factory.mktemp("known") / "results"
    write(root / "quick", [artifact(s) for s in specs])
    cells = load([root]).cells
    return cells, rk.ranking(cells, "teacher_forced").set_index("name")


def test_known_verdicts(known) -> None:
    _, df = known
    assert df.loc["works", "verdict"] == verdicts.BETTER
    assert df.loc["null", "verdict"] == verdicts.NOT_SHOWN
    assert df.loc["harmful", "verdict"] == verdicts.WORSE
    assert df.loc["single", "verdict"] == verdicts.MORE_SEEDS and df.loc["single", "rank"] == "—"
    assert df.loc["noisy", "verdict"] == verdicts.NOT_SHOWN  # a real mean, a wide interval
    assert df.loc["noisy", "effect_ci_high"] - df.loc["noisy", "effect_ci_low"] > 0.5
    # The bound and the random drop are references: shown with their numbers, never ranked.
    for ref in ("canonicalize", "random_drop"):
        assert df.loc[ref, "rank"] == "—" and df.loc[ref, "verdict"].startswith("reference")
        assert df.loc[ref, "p_holm"] is None or np.isnan(df.loc[ref, "p_holm"])
    assert df.loc["canonicalize", "overshoot"]  # 0.45 pp removed of a 0.30 pp baseline
    assert df.loc["none", "role"] == "baseline" and df.loc["none", "rank"] == "—"
    ranked = df[df["rank"] != "—"].sort_values("rank")
    assert list(ranked.index) == ["works", "noisy", "null", "harmful"]
    # Holm over the four ranked entries only: works and harmful share the smallest p (the
    # sign-flip floor at 8 pairs, 2/256), so both are adjusted by 4.
    assert df.loc["works", "p"] == pytest.approx(2 / 256)
    assert df.loc["works", "p_holm"] == pytest.approx(4 * 2 / 256)


def test_share_and_matched_random_drop(known) -> None:
    _, df = known
    w = df.loc["works"]
    assert 0.7 < w["share"] < 0.95 and w["share_ci_low"] < w["share"] < w["share_ci_high"]
    # "works" kept 60 % of rows; the random drop at keep=0.6 is its matched control.
    assert w["vs_drop_entry"] == "random_drop v1 (keep=0.6)"
    assert w["vs_drop"] == pytest.approx(0.20, abs=0.02)  # 0.25 − the drop's own 0.05
    assert np.isnan(df.loc["null", "vs_drop"])  # kept every row: nothing to match


def _per_seed(cells, name: str) -> dict[int, float]:
    """Per seed, 100 × mean(trait − control) of ``name``'s run, from the scores alone."""
    out = {}
    for c in cells:
        if c.defense == name:
            _, t, ctl = c.scores["teacher_forced"]
            out[c.seed] = 100 * float(np.mean(t - ctl))
    return out


def test_intervals_against_the_scores(known) -> None:
    """The paired reduction and the leakage over seeds, recomputed from the per-question scores
    without the leaderboard's code; the reduction beyond the matched random drop likewise."""
    cells, df = known

    def per_seed(name: str) -> dict[int, float]:
        return _per_seed(cells, name)

    drop, works = per_seed("random_drop"), per_seed("works")
    ref = stats.ttest_rel([drop[s] for s in SEEDS], [works[s] for s in SEEDS])
    ci = ref.confidence_interval(0.95)
    row = df.loc["works"]
    assert [row["vs_drop_ci_low"], row["vs_drop_ci_high"]] == pytest.approx([ci.low, ci.high])

    base = per_seed("none")
    for name in ("works", "null", "harmful", "noisy", "canonicalize"):
        mine = per_seed(name)
        seeds = sorted(set(mine) & set(base))
        ref = stats.ttest_rel([base[s] for s in seeds], [mine[s] for s in seeds])
        ci = ref.confidence_interval(0.95)
        row = df.loc[name]
        assert row["p_t"] == pytest.approx(ref.pvalue, rel=1e-6)
        assert [row["effect_ci_low"], row["effect_ci_high"]] == pytest.approx(
            [ci.low, ci.high], rel=1e-6
        )
        one = stats.ttest_1samp([mine[s] for s in sorted(mine)], 0.0).confidence_interval(0.95)
        assert [row["leakage_ci_low"], row["leakage_ci_high"]] == pytest.approx(
            [one.low, one.high], rel=1e-6
        )


def test_every_view_uses_the_ranking_statistic(known) -> None:
    cells, df = known
    long = tables.per_task(cells, "teacher_forced")
    heat = long.set_index("defense")["effect"]
    for e in ("works v1", "null v1", "harmful v1"):
        assert heat[e] == pytest.approx(df.set_index("defense").loc[e, "effect"])
    group = tables.per_group(cells, "works v1", "teacher_forced").iloc[0]
    assert group["effect"] == pytest.approx(df.loc["works", "effect"])


def test_widening_the_runs_of_a_real_setup_never_helps(tmp_path: Path) -> None:
    """The property on artifacts: the same mean reduction with more seed-specific noise does not
    rank higher."""
    positions = []
    for wobble in (0.0, 0.05, 0.3):
        specs = _entry("none", 0.0) + _entry("a", 0.1, wobble=wobble) + _entry("b", 0.08)
        root = tmp_path / f"w{wobble}"
        write(root, [artifact(s) for s in specs])
        df = rk.ranking(load([root]).cells, "teacher_forced")
        positions.append(list(df["name"]).index("a"))
    assert positions == sorted(positions)
