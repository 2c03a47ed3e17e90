"""Several trait animals per run: the multi-animal statistic and its relabelling test."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest

from benchmark.core.stats import pair_specificity
from benchmark.core.stats.multi import (
    EXACT_MAX,
    multi_specificity,
    n_assignments,
    pooled_multi_specificity,
)

ANIMALS = tuple(sorted(f"animal{i:02d}" for i in range(24)))
IDS = tuple(f"q{i:02d}" for i in range(10))


def _student(rng: np.random.Generator, boost: dict[str, float] | None = None, drift=None):
    """One student's table: a shared base preference, run noise, and a boost on some animals."""
    base = np.linspace(-4, -1, len(ANIMALS))
    logits = (
        base + (drift if drift is not None else 0) + rng.normal(0, 0.3, (len(IDS), len(ANIMALS)))
    )
    for a, b in (boost or {}).items():
        logits[:, ANIMALS.index(a)] += b
    return IDS, ANIMALS, 1 / (1 + np.exp(-logits))


def _dists(table):
    ids, animals, arr = table
    return {q: {a: float(arr[i, j]) for j, a in enumerate(animals)} for i, q in enumerate(ids)}


def test_two_students_give_the_pair_statistic_and_its_rank() -> None:
    for seed in range(5):
        rng = np.random.default_rng(seed)
        t = _student(rng, {ANIMALS[3]: 0.2 * seed})
        c = _student(rng, {ANIMALS[7]: 0.1})
        multi = multi_specificity([t, c], [ANIMALS[3], ANIMALS[7]])
        pair = pair_specificity(_dists(t), _dists(c), ANIMALS[3], ANIMALS[7])
        assert multi["value"] == pytest.approx(pair["value"], abs=1e-12)
        assert multi["n_alternatives"] == pair["n_alternatives"] == 24 * 23 - 1
        assert (multi["rank"], multi["p_rank"]) == (pair["rank"], pair["p_rank"])
        assert multi["method"] == "exact"


def test_each_student_leaning_to_its_own_animal_is_found_and_specific() -> None:
    rng = np.random.default_rng(1)
    drift = rng.normal(0, 1.0, len(ANIMALS))  # the fine-tune's shared drift: cancels
    own = [ANIMALS[2], ANIMALS[9], ANIMALS[15], ANIMALS[20]]
    tables = [_student(rng, {a: 0.6}, drift) for a in own]
    r = multi_specificity(tables, own)
    assert r["method"] == "exact" and r["n_alternatives"] == n_assignments(24, 4) - 1
    assert r["rank"] == 1 and r["specific"] and r["p_rank"] == 1 / n_assignments(24, 4)
    assert r["value"] == pytest.approx(np.mean([p["contrast"] for p in r["per_animal"]]))
    assert all(p["rank"] == 1 for p in r["per_animal"]) and r["top"][0]["animals"] == own
    # Relabel consistently (students and their animals in another order): the same statistic.
    back = multi_specificity(tables[::-1], own[::-1])
    assert back["value"] == pytest.approx(r["value"]) and back["p_rank"] == r["p_rank"]
    # The wrong animals for the same students: not specific, and the statistic is not larger.
    wrong = multi_specificity(tables, [ANIMALS[0], ANIMALS[1], ANIMALS[4], ANIMALS[5]])
    assert not wrong["specific"] and wrong["value"] < r["value"]


def test_without_a_signal_the_relabelling_p_is_not_small_too_often() -> None:
    # Three students, no animal boosted: p_rank is (about) uniform, so p <= 0.05 in about 5 %
    # of runs; a statistic biased toward the named animals would flag far more.
    hits = 0
    for seed in range(60):
        rng = np.random.default_rng(100 + seed)
        drift = rng.normal(0, 1.0, len(ANIMALS))
        tables = [_student(rng, None, drift) for _ in range(3)]
        hits += multi_specificity(tables, [ANIMALS[1], ANIMALS[5], ANIMALS[11]])["specific"]
    assert hits <= 9  # binomial(60, 0.05): P(>= 10) < 0.01


def test_many_students_are_ranked_by_sampled_relabellings() -> None:
    rng = np.random.default_rng(2)
    own = list(ANIMALS[:5])
    assert n_assignments(24, 5) - 1 > EXACT_MAX
    r = multi_specificity([_student(rng, {a: 0.6}) for a in own], own)
    assert r["method"] == "sampled" and r["rank"] is None and r["top"] == []
    assert r["specific"] and r["n_at_least"] == 0 and r["p_rank"] == 1 / (1 + r["n_alternatives"])
    rng = np.random.default_rng(2)
    again = multi_specificity([_student(rng, {a: 0.6}) for a in own], own)
    assert again == r  # a fixed seed for the draws: the same p every time


def test_pooled_runs_average_the_probabilities_first() -> None:
    rng = np.random.default_rng(3)
    own = [ANIMALS[0], ANIMALS[1], ANIMALS[2]]
    run = [_student(rng, {a: 0.3}) for a in own]
    one = multi_specificity(run, own)
    assert pooled_multi_specificity([run, run], own) == one
    other = [_student(rng, {a: 0.3}) for a in own]
    mean = [(t[0], t[1], (t[2] + o[2]) / 2) for t, o in zip(run, other, strict=True)]
    assert pooled_multi_specificity([run, other], own) == multi_specificity(mean, own)
    assert pooled_multi_specificity([], own) is None
    assert pooled_multi_specificity([run, run[:2]], own) is None
    shifted = [(IDS[::-1], t[1], t[2]) for t in other]
    assert pooled_multi_specificity([run, shifted], own) is None


@pytest.mark.parametrize(
    ("animals", "match"),
    [
        (["animal00", "animal00", "animal01"], "must differ"),
        (["animal00", "unicorn", "animal01"], "not among"),
        (["animal00", "animal01"], "one animal per student"),
    ],
)
def test_bad_input_is_refused_naming_the_problem(animals, match) -> None:
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match=match):
        multi_specificity([_student(rng) for _ in range(3)], animals)


def test_students_over_other_questions_or_one_student_are_refused() -> None:
    rng = np.random.default_rng(5)
    a, b = _student(rng), _student(rng)
    with pytest.raises(ValueError, match="different questions"):
        multi_specificity([a, (IDS[:-1], ANIMALS, b[2][:-1])], ["animal00", "animal01"])
    with pytest.raises(ValueError, match="needs 2"):
        multi_specificity([a], ["animal00"])
    with pytest.raises(ValueError, match="alpha"):
        multi_specificity([a, b], ["animal00", "animal01"], alpha=1.5)


def _art(trait: str, seed: int, trait_table, control_table, **cfg_extra) -> dict:
    """A finished cell as the suite holds it: its config and its students' score rows."""

    def rows(table):
        ids, animals, arr = table
        return [
            {"id": q, "candidates": {a: float(arr[i, j]) for j, a in enumerate(animals)}}
            for i, q in enumerate(ids)
        ]

    cfg = {"task": "numbers", "defense": "none", "trait": trait, "seed": seed}
    cfg |= {"teacher": {"placebo": "animal23"}, "student": {"seed": seed + 5000}, **cfg_extra}
    # The control student's identity as cells record it: its training rows' hash (here: of its
    # table), how many rows it trained on, its labels' entry.
    rows_key = hashlib.sha256(np.asarray(control_table[2]).tobytes()).hexdigest()[:16]
    return {
        "config": cfg,
        "scores": {"trait": rows(trait_table), "control": rows(control_table)},
        "integrity": {"training_rows": {"trait": "t", "control": rows_key}},
        "data": {"control": {"trained_on": 256, "labelled_key": "k"}},
    }


def test_cells_of_several_traits_that_share_their_control_make_one_run() -> None:
    from benchmark.core.multi_trait import MULTI, describe, multi_runs, summary_block

    traits = ["animal02", "animal09", "animal15"]
    arts, expected = [], []
    for seed in (1, 2, 3):
        rng = np.random.default_rng(seed)
        control = _student(rng, {"animal23": 0.5})
        students = {t: _student(rng, {t: 0.5}) for t in traits}
        arts += [_art(t, seed, students[t], control) for t in traits]
        expected.append(multi_specificity([*students.values(), control], [*traits, "animal23"]))
    rng = np.random.default_rng(9)  # another design (another lr): a run of its own, not pooled
    arts += [_art(t, 1, _student(rng), _student(rng), lr=1) for t in traits[:1]]
    arts.append(_art(traits[0], 4, _student(rng), _student(rng)))  # one trait at seed 4: no run
    runs = multi_runs(arts)
    assert [r["seed"] for r in runs] == [1, 2, 3]
    for r, e in zip(runs, expected, strict=True):
        assert r["animals"] == [*traits, "animal23"] and r[MULTI] == e and r[MULTI]["specific"]
    block = summary_block(arts)
    (pool,) = block["pooled"]
    assert pool["per_seed"] == [e["value"] for e in expected] and pool["n_specific"] == 3
    assert pool["mean"] > 0 and pool["p_value"] < 0.05 and pool["sign_flip_p"] == 0.25
    assert pool["pooled_specificity"]["specific"] and "tables" not in block["runs"][0]
    assert len(describe(block)) == 4 and "specific in 3 of 3" in describe(block)[-1]


def test_cells_whose_control_students_differ_are_not_pooled_into_one_run() -> None:
    from benchmark.core.multi_trait import MULTI, multi_runs

    rng = np.random.default_rng(7)
    a = _art("animal01", 1, _student(rng), _student(rng))
    b = _art("animal02", 1, _student(rng), _student(rng))  # same config, another control table
    (run,) = multi_runs([a, b])
    assert MULTI not in run and "control students differ" in run["error"]
    del b["scores"]["trait"][0]["candidates"]
    assert "no candidate distributions" in multi_runs([a, b])[0]["error"]
    # Nulls, planted leaks and cells without a placebo are not multi-animal runs.
    t, c = a_tables(a)
    assert multi_runs([a, _art("animal02", 1, t, c)])[0][MULTI]["value"] is not None  # shared
    for extra in ({"null_arm": True}, {"planted_share": 0.05}):
        pair = [_art("animal01", 1, t, c, **extra), _art("animal02", 1, t, c, **extra)]
        assert multi_runs(pair) == []
    no_placebo = _art("animal01", 1, *a_tables(a))
    no_placebo["config"]["teacher"] = {"placebo": None}
    assert (
        multi_runs([no_placebo, dict(no_placebo, config=no_placebo["config"] | {"trait": "x"})])
        == []
    )


def a_tables(art: dict):
    """The (trait, control) candidate tables of a test artifact, back from its rows."""
    from benchmark.core.stats import candidate_table

    return tuple(candidate_table(art["scores"][arm], "candidates") for arm in ("trait", "control"))


MULTI_PREREG = """\
schema: slb.prereg/1
name: m
purpose: screen
suite: quick
task: numbers
traits: [owl, eagle, wolf]
settings: [n_prompts=16]
seeds: [10, 11, 12]
null_seeds: []
statistic: multi_animal
test: t
alpha: 0.1
specific_share: 0.66
null_alpha: 0.05
"""


def _real_student(rng, boost: str | None):
    from benchmark.core.animals import CANDIDATE_ANIMALS

    names = tuple(sorted(CANDIDATE_ANIMALS))
    logits = np.linspace(-4, -1, len(names)) + rng.normal(0, 0.3, (len(IDS), len(names)))
    if boost:
        logits[:, names.index(boost)] += 0.5
    return IDS, names, 1 / (1 + np.exp(-logits))


def test_a_screen_of_several_traits_reads_each_seeds_cells_as_one_run(tmp_path, monkeypatch):
    from test_confirm import _repo

    import benchmark.run.confirm as cf
    from benchmark.core.store import ArtifactStore

    controls: dict[int, tuple] = {}
    made: list[tuple[int, str]] = []

    def fake_run(cfg, store, log_dir):  # each trait's student leans to its animal; one control
        made.append((cfg.seed, cfg.trait))
        if cfg.seed == 11 and cfg.trait == "eagle":
            raise RuntimeError("out of memory")
        rng = np.random.default_rng([cfg.seed, len(cfg.trait)])  # fixed, unlike hash()
        control = controls.setdefault(cfg.seed, _real_student(rng, "dolphin"))
        art = _art(cfg.trait, cfg.seed, _real_student(rng, cfg.trait), control)
        finished = f"2099-01-01T00:00:{cfg.seed:02d}+00:00"
        return art | {"config": cfg.to_dict(), "run_info": {"finished": finished}}

    monkeypatch.setattr(cf, "prepare_teacher", lambda cfg, store, log_dir: "t")
    monkeypatch.setattr(cf, "run_cell", fake_run)
    f = _repo(tmp_path, MULTI_PREREG)
    rep = cf.confirm(f, ArtifactStore(tmp_path / "s"), tmp_path / "r")
    # Seed 11's eagle cell failed: its run is recorded once, failed; wolf at 11 is not made.
    assert made == [(10, "owl"), (10, "eagle"), (10, "wolf"), (11, "owl"), (11, "eagle")] + [
        (12, t) for t in ("owl", "eagle", "wolf")
    ]
    assert [r["seed"] for r in rep["runs"]] == [10, 11, 12] and "error" in rep["runs"][1]
    good = [rep["runs"][0], rep["runs"][2]]
    for r in good:
        assert r["animals"] == ["eagle", "owl", "wolf", "dolphin"] and len(r["artifacts"]) == 3
        assert r["method"] == "exact" and r["n_pairs"] == 24 * 23 * 22 * 21 and r["specific"]
        assert r["value"] > 0.3
    assert rep["result"]["verdict"] == "incomplete" and rep["result"]["n_main"] == 2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("statistic: own_animal", "'traits' goes with statistic multi_animal"),
        ("traits: [owl]", "at least 2 distinct"),
        ("traits: [owl, owl]", "at least 2 distinct"),
        ("traits: [owl, dolphin]", "one placebo control teacher"),
        ("purpose: confirm", "must be t_and_sign_flip"),
        ("settings: [n_prompts=16, null_animal=owl]", "a setting sets null_animal"),
        ("traits: [owl, owls, eagle]", "name 2 distinct animals"),
        ("traits: [owl, 3]", "at least 2 distinct"),
        ("traits: [owl, alpaca]", r"\['alpaca'\] not among the 24 candidate animals"),
        ("settings: [n_prompts=16, null_arm=true]", "null or planted"),
        ("settings: [n_prompts=16, planted_share=0.1]", "null or planted"),
    ],
)
def test_a_several_traits_file_is_checked(tmp_path, edit: str, message: str) -> None:
    from benchmark.run.prereg import load_prereg

    key = edit.split(":")[0]
    text = "\n".join(
        edit if line.startswith(f"{key}:") else line for line in MULTI_PREREG.splitlines()
    )
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ValueError, match=message):
        load_prereg(tmp_path / "p.yaml")
    code = MULTI_PREREG.replace("task: numbers", "task: code").replace(
        "n_prompts=16", "n_prompts=16, teacher.placebo=dolphin"
    )
    (tmp_path / "c.yaml").write_text(code)
    with pytest.raises(ValueError, match="each trait's control arm is its own"):
        load_prereg(tmp_path / "c.yaml")
    (tmp_path / "q.yaml").write_text(MULTI_PREREG + "trait: owl\n")
    with pytest.raises(ValueError, match="either 'trait' or 'traits'"):
        load_prereg(tmp_path / "q.yaml")


def test_slb_pool_writes_the_multi_animal_block_and_validate_recomputes_it(tmp_path) -> None:
    import json

    from benchmark.core.multi_trait import MULTI
    from benchmark.run.checking import Report
    from benchmark.run.suite import pool_results
    from benchmark.run.synthetic import Spec, artifact, name
    from benchmark.run.validate_summary import check_summary

    arts: dict[str, dict] = {}
    for seed in (1, 2, 3):
        cells = [
            artifact(Spec("numbers", "none", t, seed, leak_pp=2.0, candidates=True))
            for t in ("owl", "eagle")
        ]
        for block, key in (
            ("scores", "control"),
            ("data", "control"),
            ("integrity", "training_rows"),
        ):
            cells[1][block][key] = cells[0][block][key]  # one control arm (the trait's hash too)
        arts |= {name(a): a for a in cells}
    assert {a["config"]["teacher"]["placebo"] for a in arts.values()} == {"dolphin"}
    out = tmp_path / "quick"
    out.mkdir()
    for n, a in arts.items():
        (out / f"{n}.json").write_text(json.dumps(a))
    summary = pool_results(out)
    (pool,) = summary[MULTI]["pooled"]
    assert pool["animals"] == ["eagle", "owl", "dolphin"] and pool["seeds"] == [1, 2, 3]
    report = Report()
    check_summary(out / "summary.json", arts, set(), report)
    assert report.ok, report.problems
    summary[MULTI]["pooled"][0]["mean"] += 0.5  # a summary that claims more than its cells show
    (out / "summary.json").write_text(json.dumps(summary))
    check_summary(out / "summary.json", arts, set(), report)
    assert any(f"{MULTI}.pooled[0].mean" in p for p in report.problems), report.problems


def test_a_group_that_is_not_one_run_says_why_and_hostile_cells_are_skipped() -> None:
    from benchmark.core.multi_trait import MULTI, multi_runs, summary_block

    rng = np.random.default_rng(8)
    control = _student(rng)
    a, b = _art("animal01", 1, _student(rng), control), _art("animal02", 1, _student(rng), control)
    assert MULTI in multi_runs([a, b])[0]
    # The same trait twice at one seed (a rerun's file beside the first): no silent pick.
    (run,) = multi_runs([a, b, _art("animal01", 1, _student(rng), control)])
    assert "appears in several cells" in run["error"]
    # One control student by its record, but scored differently: not one run either.
    noisy = (control[0], control[1], np.clip(control[2] + 1e-3, 0, 1))
    c = _art("animal02", 1, _student(rng), noisy)
    c["integrity"] = a["integrity"]
    assert "score differently" in multi_runs([a, c])[0]["error"]
    # Another count of rows trained on (cells cut both arms to the smaller one): another student.
    d = _art("animal02", 1, _student(rng), control)
    d["data"] = {"control": {"trained_on": 250, "labelled_key": "k"}}
    assert "other training rows" in multi_runs([a, d])[0]["error"]
    # Hostile cells: skipped, never a crash.
    bad: list[Any] = [
        {"config": {**a["config"], "teacher": "dolphin"}, "scores": a["scores"]},
        {"config": {**a["config"], "teacher": {"placebo": 3}}, "scores": a["scores"]},
        {"config": {**a["config"], "trait": ["x"]}, "scores": a["scores"]},
        {"config": a["config"], "scores": None},
        {"config": None},
        [],
    ]
    assert summary_block(bad) == {"runs": [], "pooled": []}
    assert MULTI in multi_runs([a, b, *bad])[0]


def test_the_students_own_animals_permuted_among_them_give_an_exact_p() -> None:
    rng = np.random.default_rng(12)
    own = [ANIMALS[2], ANIMALS[9], ANIMALS[15], ANIMALS[20]]
    r = multi_specificity([_student(rng, {a: 0.8}) for a in own], own)
    assert r["p_students"] == pytest.approx(1 / 24)  # the true order alone is as large: 1 / 4!
    assert r["n_assignments"] == n_assignments(24, 4)
    none = multi_specificity([_student(rng) for _ in own], own)
    assert none["p_students"] > 1 / 24
    many = [*own, ANIMALS[0], ANIMALS[1], ANIMALS[3], ANIMALS[4], ANIMALS[5]]
    assert multi_specificity([_student(rng) for _ in many], many)["p_students"] is None


def test_a_sampled_run_is_recorded_with_its_true_number_of_assignments(tmp_path) -> None:
    from types import SimpleNamespace

    from benchmark.core.multi_trait import multi_record

    rng = np.random.default_rng(13)
    traits = ["animal01", "animal02", "animal03", "animal04"]
    control = _student(rng)
    cells = []
    for i, t in enumerate(traits):
        art = _art(t, 5, _student(rng, {t: 0.6}), control)
        art["run_info"] = {"finished": f"2099-01-01T00:00:0{i}+00:00", "wall_seconds": 10}
        cells.append((SimpleNamespace(seed=5, trait=t), art, tmp_path / f"{t}.json"))
    rec = multi_record("main", cells)
    assert rec["method"] == "sampled" and rec["rank"] is None
    assert rec["n_pairs"] == n_assignments(24, 5) and rec["wall_seconds"] == 40
    assert rec["finished"] == "2099-01-01T00:00:00+00:00"  # the earliest cell
    del cells[2][1]["run_info"]["finished"]
    assert multi_record("main", cells)["finished"] is None
    with pytest.raises(ValueError, match="reads"):
        multi_record("main", [(SimpleNamespace(seed=5, trait="zebra"), *cells[0][1:]), *cells[1:]])


def _multi_confirmation(null_seeds: str, share: str = "0.66") -> str:
    """MULTI_PREREG as a confirmation: six seeds, ``null_seeds``, the sign-flip test."""
    return (
        MULTI_PREREG.replace("purpose: screen", "purpose: confirm")
        .replace("seeds: [10, 11, 12]", "seeds: [10, 11, 12, 13, 14, 15]")
        .replace("null_seeds: []", f"null_seeds: {null_seeds}")
        .replace("test: t\n", "test: t_and_sign_flip\n")
        .replace("specific_share: 0.66", f"specific_share: {share}")
    )


def test_a_confirmation_of_several_traits_runs_its_null_with_one_animal_in_every_teacher(
    tmp_path, monkeypatch
) -> None:
    from test_confirm import _repo

    import benchmark.run.confirm as cf
    from benchmark.core.store import ArtifactStore
    from benchmark.run.prereg import cells, load_prereg

    f = _repo(tmp_path, _multi_confirmation("[10, 11]"))
    pre = load_prereg(f)
    plan = [(k, c.seed, c.trait, c.null_animal) for k, c in cells(pre)]
    assert plan[:6] == [("main", 10, t, None) for t in ("owl", "eagle", "wolf")] + [
        ("null", 10, t, "owl") for t in ("owl", "eagle", "wolf")
    ]
    assert len(plan) == 3 * 8 and plan[-1] == ("main", 15, "wolf", None)
    # Main students lean to their own animal; the null's do not.
    _multi_fake(monkeypatch, set(), specific_seeds=set(range(10, 16)))
    rep = cf.confirm(f, ArtifactStore(tmp_path / "s"), tmp_path / "r")
    arms = [(r["arm"], r["seed"]) for r in rep["runs"]]
    assert arms == [("main", 10), ("null", 10), ("main", 11), ("null", 11)] + [
        ("main", s) for s in (12, 13, 14, 15)
    ]
    null = [r for r in rep["runs"] if r["arm"] == "null"]
    assert all(r["animals"] == ["eagle", "owl", "wolf", "dolphin"] for r in null)
    res = rep["result"]
    assert res["checks"]["positive_over_runs"] and res["checks"]["null_not_significant"]
    assert res["n_null"] == 2 and res["verdict"] == "pass"


def _multi_fake(monkeypatch, fails, specific_seeds):
    """Fake cells for a traits file: main students lean to their animal at ``specific_seeds``
    (null students never); a main cell whose (seed, trait) is in ``fails`` raises."""
    import benchmark.run.confirm as cf

    def fake_run(cfg, store, log_dir):
        if (cfg.seed, cfg.trait) in fails and cfg.null_animal is None:  # main cells only
            raise RuntimeError("killed")
        rng = np.random.default_rng([cfg.seed, len(cfg.trait), cfg.null_animal is not None])
        lean = cfg.seed in specific_seeds and cfg.null_animal is None
        crng = np.random.default_rng([cfg.seed, 99, cfg.null_animal is not None])
        control = _real_student(crng, "dolphin")  # the same whichever cell comes first
        student = _real_student(rng, cfg.trait if lean else None)
        art = _art(cfg.trait, cfg.seed, student, control)
        return art | {
            "config": cfg.to_dict(),
            "run_info": {"finished": "2099-01-01T00:00:00+00:00"},
        }

    monkeypatch.setattr(cf, "prepare_teacher", lambda cfg, store, log_dir: "t")
    monkeypatch.setattr(cf, "run_cell", fake_run)


def test_a_failed_main_run_keeps_its_seeds_null_run_and_stopped_runs_never_mix(
    tmp_path, monkeypatch
) -> None:
    from test_confirm import _repo

    import benchmark.run.confirm as cf
    from benchmark.core.store import ArtifactStore

    text = _multi_confirmation("[10]", share="0.9")
    f, store = _repo(tmp_path, text), ArtifactStore(tmp_path / "s")
    # Main 10 fails (its null run at 10 is still made); 11 is not specific; at 12-14 only the owl
    # cells are made (eagle fails), every run made anyway (--all-runs).
    fails = {(10, "eagle")} | {(s, "eagle") for s in (12, 13, 14)}
    _multi_fake(monkeypatch, fails, specific_seeds={10, 13, 14, 15})
    rep = cf.confirm(f, store, tmp_path / "r", all_runs=True)
    arms = [(r["arm"], r["seed"], "error" in r) for r in rep["runs"]]
    assert arms[:3] == [("main", 10, True), ("null", 10, False), ("main", 11, False)]
    assert [a for a in arms if a[1] in (12, 13, 14)] == [("main", s, True) for s in (12, 13, 14)]
    # Again, without --all-runs: decided early (11 is not specific, 0.9 needs every run), so the
    # runs missing a cell are not made, and their stored owl cells are never read as one run.
    _multi_fake(monkeypatch, set(), specific_seeds={10, 13, 14, 15})
    rep = cf.confirm(f, store, tmp_path / "r")
    assert rep["result"]["decided_early"]
    made = {(r["arm"], r["seed"]) for r in rep["runs"]}
    assert not any(s in (12, 13, 14) for _, s in made)
    assert rep["not_run"] == [{"arm": "main", "seed": s} for s in (12, 13, 14)] + (
        [] if ("main", 15) in made else [{"arm": "main", "seed": 15}]
    )


def test_a_pair_file_refuses_the_several_traits_null(tmp_path) -> None:
    from test_confirm import PREREG

    from benchmark.run.prereg import load_prereg

    screen = (  # no null runs: its main cells would quietly all be nulls
        PREREG.replace("null_seeds: [20, 21]", "null_seeds: []\npurpose: screen")
        .replace("test: t_and_sign_flip", "test: t")
        .replace("settings: [n_prompts=16]", "settings: [n_prompts=16, null_animal=owl]")
    )
    (tmp_path / "p.yaml").write_text(screen)
    with pytest.raises(ValueError, match="null of a 'traits' file"):
        load_prereg(tmp_path / "p.yaml")
