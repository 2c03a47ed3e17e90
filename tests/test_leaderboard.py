"""Leaderboard loading and aggregation (no Streamlit): parsing, skipping, integrity, pooling,
ranking with ties, reduction against the baseline, flags, filters. Artifacts are either the real
ones in submissions/none or synthetic ones (``benchmark.run.synthetic``) written to tmp dirs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from benchmark.core.artifact import Skip, parse, without_cell_keys
from benchmark.core.results import pooled_leakage
from benchmark.core.stats import paired_leakage
from benchmark.core.store import stable_hash
from benchmark.core.teachers import TeacherConfig
from benchmark.run.presets import preset
from benchmark.run.setups import LABEL_MAX, setup_block
from benchmark.run.synthetic import Spec, artifact, write
from leaderboard import pooling, tables
from leaderboard import ranking as rk
from leaderboard.loader import load
from leaderboard.views import ranking_table

REPO = Path(__file__).resolve().parent.parent
REAL = REPO / "submissions" / "none" / "results" / "quick-bare-control"


def _spec(defense: str, leak: float, **kw) -> list[Spec]:
    tasks = kw.pop("tasks", ["numbers"])
    traits = kw.pop("traits", ["owl"])
    seeds = kw.pop("seeds", [0, 1])
    return [
        Spec(task=t, defense=defense, trait=tr, seed=s, leak_pp=leak, **kw)
        for t in tasks
        for tr in traits
        for s in seeds
    ]


def _load(tmp_path: Path, specs: list[Spec]):
    write(tmp_path / "results" / "quick", [artifact(s) for s in specs])
    return load([tmp_path / "results"])


# --- loader --------------------------------------------------------------------------------------


def test_tasks_of_one_suite_share_a_setup() -> None:
    """The quick preset gives free-text tasks their own teacher, prompt count and token cap; those
    per-task defaults must not split one suite run into a setup per task."""

    def setup(cfg) -> str:
        return setup_block(cfg.to_dict(), None)["id"]

    numbers = setup(preset("quick", task="numbers"))
    assert (
        numbers == setup(preset("quick", task="code")) == setup(preset("quick", task="cot", seed=1))
    )
    # Changed away from the task's preset: another setup, even where it equals the suite-wide
    # value (the fine-tuned teacher is numbers' default, not code's).
    code_ft = setup(preset("quick", task="code", teacher=TeacherConfig()))
    code_n = setup(replace(preset("quick", task="code"), n_prompts=300))
    assert len({numbers, code_ft, code_n}) == 3
    block = setup_block(preset("quick", task="code").to_dict(), None)
    assert (block["label"], block["diff"]) == ("quick", "")


def test_real_baseline_pools_to_the_suite_summary() -> None:
    """The leaderboard's pooling of the committed baseline reproduces slb suite's summary.json."""
    data = load([REPO / "submissions"])
    cells = [c for c in data.cells if Path(c.path).parent == REAL]
    summary = json.loads((REAL / "summary.json").read_text())
    assert len(cells) == len(summary["cells"]) >= 3 and not data.skipped
    assert {c.integrity for c in cells} == {"ok"}
    want = summary["pooled"][0]["leakage"]["teacher_forced"]
    got = pooling.pool(cells, "teacher_forced", full=True)
    assert got["diff_pp"] == pytest.approx(want["diff_pp"], rel=1e-9)
    assert got["ci_pp"] == pytest.approx(want["ci_pp"], rel=1e-9)
    assert got["per_seed"] == pytest.approx(want["per_seed"], rel=1e-9)
    # The system-prompt-teacher and shared-adapter-init cells are other setups: never pooled here.
    # Their labels were written into the artifacts (against the preset of the day; backfilled).
    by_folder = {Path(c.path).parent.name: c.setup_label for c in data.cells}
    diffs = {Path(c.path).parent.name: c.setup_diff for c in data.cells}
    # The quick preset has a placebo control teacher; the first baseline had none.
    assert by_folder["quick-bare-control"] == "quick · teacher.placebo=unset"
    assert by_folder["quick"] == "quick" and diffs["quick"] == ""
    assert by_folder["quick-placebo-h200"] == "quick · gen_batch_size=256, hardware=cuda"
    assert "teacher.type=system_prompt" in by_folder["quick-system-prompt-teacher"]
    assert "student.lora_r=16" in by_folder["quick-shared-adapter-init"]
    assert diffs["quick-shared-adapter-init"] == (
        "student.init_seed=0, student.lora_alpha=32, student.lora_r=16, teacher.placebo=unset"
    )
    assert by_folder["quick-general-teacher-coupled"] == (
        "quick · sampling.coupled=True, teacher.general_rows=240, teacher.placebo=unset"
    )
    assert by_folder["quick-system-prompt-coupled"] == (
        "quick · sampling.coupled=True, teacher.placebo=unset, teacher.type=system_prompt"
    )
    named = (
        "quick-bare-control",
        "quick",
        "quick-placebo-h200",
        "quick-system-prompt-teacher",
        "quick-shared-adapter-init",
        "quick-general-teacher-coupled",
        "quick-system-prompt-coupled",
    )
    assert len({by_folder[f] for f in named}) == len(named)
    # The free-text tasks of the same quick suite are the numbers cells' setup (per-task knobs).
    assert by_folder["quick-free-text"] == by_folder["quick"]


def test_malformed_and_partial_artifacts_are_skipped_with_reasons(tmp_path: Path) -> None:
    good = artifact(Spec("numbers", "none", "owl", 0))
    folder = tmp_path / "results" / "quick"
    write(folder, [good])

    def put(name: str, obj) -> None:
        (folder / name).write_text(obj if isinstance(obj, str) else json.dumps(obj))

    def edit(fn):
        art = json.loads(json.dumps(good))
        fn(art)
        return art

    put("broken.json", '{"schema": "slb.results/1", ')
    put("list.json", [1, 2])
    put("old_schema.json", edit(lambda a: a.update(schema="slb.results/0")))
    put("no_seed.json", edit(lambda a: a["config"].pop("seed")))
    put("partial.json", edit(lambda a: a.pop("scores")))
    put("no_control.json", edit(lambda a: a["scores"].pop("control")))
    put("not_prob.json", edit(lambda a: a["scores"]["trait"][0].update(teacher_forced=1.5)))
    put("ids_differ.json", edit(lambda a: a["scores"]["control"].pop()))
    put("one_arm.json", edit(lambda a: _blank(a, ["trait"])))
    put("no_metric.json", edit(lambda a: _blank(a, ["trait", "control"])))
    (folder / "empty.json").write_bytes(b"")
    put("summary.json", {"suite": "quick", "pooled": []})  # a suite summary: not an artifact
    (folder / "logs").mkdir()
    put("logs/inspect.json", {"eval": {}})  # Inspect logs: not artifacts

    data = load([tmp_path / "results"])
    reasons = {Path(s.path).name: s.reason for s in data.skipped}
    assert len(data.cells) == 1 and data.cells[0].defense == "none"
    assert set(reasons) == {
        "broken.json", "list.json", "old_schema.json", "no_seed.json", "partial.json",
        "no_control.json", "not_prob.json", "ids_differ.json", "one_arm.json", "no_metric.json",
        "empty.json",
    }  # fmt: skip
    assert "not readable JSON" in reasons["broken.json"]
    assert "top level is a list" in reasons["list.json"]
    assert "slb.results/0" in reasons["old_schema.json"]
    assert "config.seed" in reasons["no_seed.json"]
    assert "scores is missing" in reasons["partial.json"]
    assert "scores.control is missing" in reasons["no_control.json"]
    assert "1.5" in reasons["not_prob.json"]
    assert "different questions" in reasons["ids_differ.json"]
    assert "scores.trait has no teacher_forced" in reasons["one_arm.json"]
    assert "no per-question scores" in reasons["no_metric.json"]


def _blank(art: dict, arms: list[str]) -> None:
    for arm in arms:
        for row in art["scores"][arm]:
            row["teacher_forced"] = None


def test_integrity_ok_unverified_and_failed() -> None:
    good = json.loads(json.dumps(artifact(Spec("numbers", "none", "owl", 0))))
    assert parse(good).integrity == "ok"

    no_hashes = dict(good)
    no_hashes.pop("integrity")
    assert parse(no_hashes).integrity == "unverified"

    # Scores edited after the fact: the scores hash and the stored leakage both disagree.
    tampered = json.loads(json.dumps(good))
    tampered["scores"]["trait"][3]["teacher_forced"] += 0.2
    cell = parse(tampered)
    assert cell.integrity == "failed"
    assert "scores hash" in cell.integrity_note and "leakage.teacher_forced" in cell.integrity_note

    # A prettier leakage number with its hash recomputed: the scores still give it away.
    forged = json.loads(json.dumps(good))
    forged["leakage"]["teacher_forced"]["trait_vs_control"]["diff_pp"] = 0.0
    forged["integrity"]["leakage"] = stable_hash(forged["leakage"])
    assert parse(forged).integrity == "failed"


def test_gpu_cells_form_their_own_setup() -> None:
    """A cell computed on a GPU has other numerics than the CPU suite: it gets its own setup, named
    by the hardware, and is never pooled with the same config run on CPU (old artifacts without
    ``run_info.device`` read as CPU)."""
    cfg = preset("quick", task="numbers").to_dict()
    cpu = setup_block(cfg, None)
    assert setup_block(cfg, "cpu: 2 threads") == cpu
    gpu = setup_block(cfg, "cuda: NVIDIA H200")
    assert gpu["id"] != cpu["id"] and gpu["config"]["hardware"] == "cuda"
    assert gpu["label"] == "quick · hardware=cuda"
    # The same rule where an artifact has no setup block (the reader's fallback).
    art = json.loads(json.dumps(artifact(Spec("numbers", "none", "owl", 0))))
    art.pop("setup")
    before = parse(art)
    art["run_info"]["device"] = "cpu: 2 threads"
    assert parse(art).setup == before.setup
    art["run_info"]["device"] = "cuda: NVIDIA H200"
    assert parse(art).setup != before.setup and parse(art).setup_config["hardware"] == "cuda"


def test_the_setup_is_read_from_the_artifact_with_a_fallback() -> None:
    """The reader takes the setup the run wrote; without one (older artifacts) it groups by the
    config minus the cell keys and seeds, labelled as legacy; a malformed block is skipped."""
    art = json.loads(json.dumps(artifact(Spec("numbers", "none", "owl", 0))))
    cell = parse(art)
    assert (cell.setup, cell.setup_label, cell.setup_diff) == (art["setup"]["id"], "quick", "")
    legacy = {k: v for k, v in art.items() if k != "setup"}
    old = parse(legacy)
    assert old.setup == stable_hash(without_cell_keys(art["config"]))
    assert old.setup_label == f"quick (legacy, {old.setup[:6]})"
    other = json.loads(json.dumps(legacy))
    other["config"].update(seed=3, trait="cat", defense="x")
    other["config"]["student"]["seed"] = 3
    assert parse(other).setup == old.setup
    for bad in ("x", {"id": "", "label": "quick"}, {"id": "abc"}):
        with pytest.raises(Skip, match="setup"):
            parse({**art, "setup": bad})


def test_long_setup_labels_are_shortened_at_knob_boundaries() -> None:
    """A setup that differs in many knobs keeps a short label of whole ``knob=value`` items (long
    values as ``knob=…``) and the count of the rest; the full difference is in ``diff``."""
    cfg = preset("quick", task="numbers", n_prompts=123, max_train_rows=77).to_dict()
    cfg["student"].update(target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], lora_r=4)
    cfg.update(constrained=False, gen_batch_size=7)
    block = setup_block(cfg, None)
    knobs = ["constrained=False", "gen_batch_size=7", "max_train_rows=77", "n_prompts=123"]
    knobs += ["student.lora_r=4", 'student.target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]']
    assert block["diff"] == ", ".join(knobs)
    label = block["label"]
    assert len(label) <= LABEL_MAX
    assert label == f"quick · {', '.join(knobs[:3])} (+3 more)"
    # One knob whose value alone is too long: its name stays, the value is in the diff.
    cfg = preset("quick", task="numbers").to_dict()
    cfg["student"]["target_modules"] = [f"model.layers.{i}.self_attn.q_proj" for i in range(4)]
    block = setup_block(cfg, None)
    assert block["label"] == "quick · student.target_modules=…"
    assert block["diff"].startswith('student.target_modules=["model.layers.0.self_attn.q_proj", ')


def test_own_animal_of_placebo_cells_matches_the_suite_pool() -> None:
    """Placebo-controlled cells carry the placebo animal's scores; the ranking's own-animal column
    is ``slb suite``'s pooled statistic over them, and cells without a placebo teacher (other
    tasks of the same setup) neither change it nor show one of their own."""
    arts = [
        json.loads(p.read_text()) for p in sorted((REAL.parent / "quick").glob("numbers__*.json"))
    ]
    assert len(arts) == 3
    cells = [parse(a) for a in arts]
    assert all(
        c.placebo is not None and c.placebo[0] == c.scores["teacher_forced"][0] for c in cells
    )
    want = pooled_leakage(arts)["own_animal"]
    row = rk.ranking(cells, "teacher_forced").iloc[0]
    assert row["own_animal_log_odds"] == pytest.approx(want["log_odds_diff"])
    assert [row["own_animal_ci_low"], row["own_animal_ci_high"]] == pytest.approx(
        want["log_odds_ci"]
    )
    assert row["own_animal_significant"] == want["significant"]
    shown = ranking_table(rk.ranking(cells, "teacher_forced"))
    assert (
        shown["own animal, log-odds [95 % CI]"]
        .iloc[0]
        .startswith(f"{want['log_odds_diff']:+.3f} [")
    )
    # Two groups weigh equally, each its seed-averaged scores: a copy under another trait leaves
    # the per-question means, and so the statistic, unchanged.
    cats = [parse({**a, "config": {**a["config"], "trait": "cat"}}) for a in arts]
    two = pooling.own_animal(cells + cats)
    assert two is not None and two["unit"] == "task×trait group" and two["n_groups"] == 2
    assert two["log_odds_diff"] == pytest.approx(want["log_odds_diff"])
    plain = parse(artifact(Spec("code", "none", "owl", 0)))
    assert plain.placebo is None
    mixed = rk.ranking([*cells, plain], "teacher_forced").iloc[0]
    assert mixed["own_animal_log_odds"] == pytest.approx(want["log_odds_diff"])
    assert rk.ranking([plain], "teacher_forced").iloc[0]["own_animal_log_odds"] is None
    assert "own animal, log-odds [95 % CI]" not in ranking_table(
        rk.ranking([plain], "teacher_forced")
    )
    assert (
        rk.ranking(cells, "sampled").empty
        or rk.ranking(cells, "sampled")["own_animal_log_odds"].isna().all()
    )


def test_optional_fields_absent_show_as_na() -> None:
    art = json.loads(json.dumps(artifact(Spec("numbers", "none", "owl", 0))))
    for key in ("defense", "data", "run_info", "inspect_logs", "integrity", "utility", "leakage"):
        art.pop(key, None)
    cell = parse(art)
    assert (cell.rows_kept, cell.helper_seconds, cell.utility, cell.examples["trait"]) == (
        None,
        None,
        None,
        [],
    )
    assert cell.version == "n/a" and cell.integrity == "unverified"
    table = ranking_table(rk.ranking([cell], "teacher_forced"))
    row = table.iloc[0]
    assert row["rows kept"] == "n/a" and row["utility"] == "n/a" and row["helper s / cell"] == "n/a"


def test_optional_blocks_of_the_wrong_type_do_not_crash() -> None:
    art = json.loads(json.dumps(artifact(Spec("numbers", "none", "owl", 0))))
    art["defense"] = "none"
    art["data"] = {"trait": "?", "control": {"defense_cost": [], "filter_report": {"steps": 3}}}
    art["leakage"] = {"teacher_forced": {"trait_vs_control": None}}
    art["integrity"] = {"scores": art["integrity"]["scores"]}
    art["inspect_logs"] = ["x"]
    art["utility"] = {"score": "high"}
    cell = parse(art)
    assert cell.integrity == "ok" and cell.rows_kept is None and cell.helper_calls is None
    assert cell.utility is None and cell.inspect_logs == {} and cell.defense_info == {}


def test_the_same_cell_twice_counts_once(tmp_path: Path) -> None:
    arts = [artifact(s) for s in _spec("none", 0.3)]
    write(tmp_path / "a", arts)
    write(tmp_path / "b", arts[:1])
    data = load([tmp_path / "a", tmp_path / "b"])
    assert len(data.cells) == 2
    assert [s.reason.split(" ")[0] for s in data.skipped] == ["duplicate"]


# --- aggregation -----------------------------------------------------------------------------------


def test_ranking_order_ties_and_reduction(tmp_path: Path) -> None:
    specs = (
        _spec("none", 0.30)
        + _spec("crossbase", 0.0)
        + _spec("paraphrase", 0.01)  # within noise of crossbase: must tie with it
    )
    arts = [artifact(s) for s in specs]
    # A defense that changes nothing: the baseline's own scores under another name.
    for s in _spec("none", 0.30):
        art = artifact(s)
        art["config"]["defense"] = art["defense"]["name"] = "banned"
        arts.append(art)
    write(tmp_path / "results" / "quick", arts)
    data = load([tmp_path / "results"])
    df = rk.ranking(data.cells, "teacher_forced")
    by = df.set_index("name")
    iv = {n: (by.loc[n, "ci_low_pp"], by.loc[n, "ci_high_pp"]) for n in by.index}
    # The premise of the tie: the two CIs overlap, and both lie wholly below the leaky ones.
    assert iv["crossbase"][1] >= iv["paraphrase"][0] and iv["paraphrase"][1] >= iv["crossbase"][0]
    assert max(iv["crossbase"][1], iv["paraphrase"][1]) < min(iv["none"][0], iv["banned"][0])
    assert list(df["name"][:2]) == ["crossbase", "paraphrase"]
    assert list(df["rank"]) == ["=1", "=1", "=3", "=3"]
    # Reduction = baseline residual - defense residual, ~0.30 pp for a defense that stops it.
    assert by.loc["crossbase", "reduction_pp"] == pytest.approx(
        by.loc["none", "residual_pp"] - by.loc["crossbase", "residual_pp"], abs=1e-9
    )
    assert 0.25 < by.loc["crossbase", "reduction_pp"] < 0.35
    assert by.loc["crossbase", "reduction_ci_low_pp"] > 0
    assert "reduction not significant" in by.loc["banned", "flags"]
    assert "reduction not significant" not in by.loc["crossbase", "flags"]
    assert np.isnan(by.loc["none", "reduction_pp"])


def test_reduction_compares_the_seeds_both_have(tmp_path: Path) -> None:
    """A defense run on seed 0 only is compared with the baseline's seed 0, not with the mean of
    its seeds: a defense that leaves the rows (and so the students) unchanged then reduces by
    exactly 0, whatever the baseline's other seeds did. Without a shared seed it falls back to
    all seeds, and says so."""
    specs = _spec("none", 0.30, seeds=[0, 1, 2], noise_pp=0.3)
    arts = [artifact(s) for s in specs]
    same = json.loads(json.dumps(arts[0]))  # none's seed 0 under another name
    same["config"]["defense"] = same["defense"]["name"] = "banned"
    other = [artifact(s) for s in _spec("late", 0.30, seeds=[7], noise_pp=0.3)]
    write(tmp_path / "results" / "quick", [*arts, same, *other])
    by = rk.ranking(load([tmp_path / "results"]).cells, "teacher_forced").set_index("name")
    assert by.loc["banned", "reduction_pp"] == pytest.approx(0.0, abs=1e-12)
    assert "seed-matched" not in by.loc["banned", "flags"]
    assert "reduction not seed-matched" in by.loc["late", "flags"]
    # Three seeds measure run-to-run noise; one does not, and the entry says so.
    assert "one run" in by.loc["late", "flags"] and "one run" not in by.loc["none", "flags"]


def test_ranks_rule() -> None:
    assert rk.ranks([(0, 1), (0.5, 2), (1.5, 3)]) == ["=1", "=1", "2"]
    assert rk.ranks([(0, 0.1), (0.2, 0.3), (0.4, 0.5)]) == ["1", "2", "3"]
    assert rk.ranks([None, (0, 1)]) == ["n/a", "1"]


def test_groups_weigh_equally_not_cells(tmp_path: Path) -> None:
    """Ten seeds of one trait must not drown one seed of another: averaged over traits, not cells."""
    specs = _spec("none", 0.5, traits=["owl"], seeds=list(range(6))) + _spec(
        "none", 0.1, traits=["cat"], seeds=[0]
    )
    data = _load(tmp_path, specs)
    res = pooling.pool(data.cells, "teacher_forced")
    per_group = [
        pooling.pool([c for c in data.cells if c.trait == t], "teacher_forced")["diff_pp"]
        for t in ("owl", "cat")
    ]
    assert res["diff_pp"] == pytest.approx(sum(per_group) / 2)
    assert res["unit"] == "task×trait group" and res["n_cells"] == 7
    # Cross-check against benchmark.core.stats directly: groups as the columns.
    t = {}
    c = {}
    for trait in ("owl", "cat"):
        cells = [x for x in data.cells if x.trait == trait]
        ids = cells[0].scores["teacher_forced"][0]
        for i, q in enumerate(ids):
            t.setdefault(q, []).append(np.mean([x.scores["teacher_forced"][1][i] for x in cells]))
            c.setdefault(q, []).append(np.mean([x.scores["teacher_forced"][2][i] for x in cells]))
    assert res["ci_pp"] == pytest.approx(paired_leakage(t, c)["ci_pp"])


def test_flags_few_rows_no_baseline_coverage_and_integrity(tmp_path: Path) -> None:
    specs = (
        _spec("none", 0.3)
        + _spec("strict", 0.0, kept=0.05)
        + _spec("partial", 0.1, traits=["owl", "cat"])
    )
    folder = tmp_path / "results" / "quick"
    write(folder, [artifact(s) for s in specs])
    # One artifact of "strict" edited after the fact.
    bad = next(folder.glob("numbers__strict__owl__seed0__*.json"))
    art = json.loads(bad.read_text())
    art["scores"]["trait"][0]["teacher_forced"] = 0.0
    bad.write_text(json.dumps(art))
    data = load([tmp_path / "results"])

    kept = tables.select(data.cells, tables.Filters())
    failed = [c for c in data.cells if c.integrity == "failed"]
    assert len(failed) == 1 and failed[0] not in kept
    flags = rk.ranking(kept, "teacher_forced", failed).set_index("name")["flags"]
    assert "keeps < 10% of rows" in flags["strict"]
    assert "integrity check failed for 1 artifact(s) (excluded)" in flags["strict"]
    assert "covers 1 of 2 task×trait groups" in flags["none"]
    # The partial defense's reduction uses only the groups the baseline has (owl), so it exists.
    assert "no baseline" not in flags["partial"]

    with_failed = tables.select(data.cells, tables.Filters(include_failed=True))
    flags = rk.ranking(with_failed, "teacher_forced").set_index("name")["flags"]
    assert "(included)" in flags["strict"]

    alone = [c for c in kept if c.defense != "none"]
    assert "no baseline in this setup" in rk.ranking(alone, "teacher_forced")["flags"].iloc[0]


def test_filters_by_suite_setup_task_and_trait(tmp_path: Path) -> None:
    specs = (
        _spec("none", 0.3, tasks=["numbers", "code"], traits=["owl", "cat"], seeds=[0])
        + _spec("none", 0.3, suite="paper", seeds=[0])
        + _spec("none", 0.3, teacher="system_prompt", seeds=[0])
    )
    data = _load(tmp_path, specs)
    quick = tables.select(data.cells, tables.Filters(suite="quick"))
    assert len(quick) == 5 and len({c.setup for c in quick}) == 2
    labels = {c.setup: c.setup_label for c in quick}
    # Labelled against the quick preset: its own teacher is the suite's name, the other is named.
    assert sorted(labels.values()) == [
        "quick",
        "quick · teacher.placebo=unset, teacher.type=system_prompt",
    ]
    finetuned = next(s for s, lab in labels.items() if lab == "quick")
    f = tables.Filters(suite="quick", setup=finetuned, tasks=["code"], traits=["cat"])
    (only,) = tables.select(data.cells, f)
    assert (only.task, only.trait, only.suite) == ("code", "cat", "quick")
    long = tables.per_task(
        tables.select(data.cells, tables.Filters(setup=finetuned)), "teacher_forced"
    )
    assert sorted(long["task"]) == ["code", "numbers"] and set(long["cells"]) == {2}


def test_pareto_front() -> None:
    leak = [0.0, 0.1, 0.05, 0.3, None, 0.0]
    kept = [50.0, 100.0, 100.0, 100.0, 100.0, 50.0]
    # (0.05, 100) beats (0.1, 100) and (0.3, 100); (0.0, 50) is not beaten on leakage.
    assert tables.pareto_front(leak, kept) == [True, False, True, False, False, True]


def test_synthetic_writer_refuses_the_repositorys_submissions() -> None:
    with pytest.raises(ValueError, match="refusing"):
        write(REPO / "submissions" / "x" / "results", [])


def test_ranks_tie_when_seeds_disagree_even_if_question_cis_do_not_overlap(tmp_path: Path) -> None:
    """Run-to-run noise: a defense whose seeds swing from +0.9 to +0.1 pp has a narrow CI over
    questions but is not clearly worse than one at 0 pp; ordering them would be a false order."""
    specs = [Spec(task="numbers", defense="swing", trait="owl", seed=s, leak_pp=v)
             for s, v in ((0, 0.9), (1, 0.1))]  # fmt: skip
    specs += _spec("steady", 0.0)
    df = rk.ranking(_load(tmp_path, specs).cells, "teacher_forced").set_index("name")
    assert df.loc["swing", "ci_low_pp"] > df.loc["steady", "ci_high_pp"]  # questions alone: apart
    assert df.loc["swing", "spread_ci_low_pp"] < df.loc["steady", "ci_high_pp"]
    assert df.loc["swing", "rank"] == df.loc["steady", "rank"] == "=1"


def test_placebo_setup_ranks_by_the_own_animal_statistic() -> None:
    """With a placebo control teacher every entry has the own-animal statistic, and the ranking
    uses it: a defense that only cancels the trait animal's contrast (the dolphin contrast stays)
    has a residual near 0 -- it would tie for first by the residual -- but still ranks behind one
    that cancels both. Its own-animal reduction is seed-matched against the baseline."""
    arts = [
        json.loads(p.read_text()) for p in sorted((REAL.parent / "quick").glob("numbers__*.json"))
    ]
    base = [parse(a) for a in arts]

    def variant(name: str, seeds: list[int], cancel_placebo: bool) -> list:
        out = []
        for c in base:
            if c.seed not in seeds:
                continue
            ids, _, control = c.scores["teacher_forced"]
            pids, p_trait, p_control = c.placebo
            out.append(
                replace(
                    c,
                    defense=name,
                    entry=f"{name} v1",
                    # The trait student's owl score becomes the control student's: no owl contrast.
                    scores={**c.scores, "teacher_forced": (ids, control.copy(), control)},
                    placebo=(pids, p_control.copy() if cancel_placebo else p_trait, p_control),
                )
            )
        return out

    cells = base + variant("owl_only", [0, 1, 2], False) + variant("both", [0, 1, 2], True)
    # Without the baseline the setup ranks by the statistic itself.
    alone = rk.ranking([c for c in cells if c.defense != "none"], "teacher_forced")
    assert set(alone["ranked_by"]) == {rk.RANKED_BY_OWN}
    assert list(alone["name"]) == ["both", "owl_only"]
    # owl_only's own-animal statistic swings between seeds (its run-level CI includes 0): a tie.
    assert list(alone["rank"]) == ["=1", "=1"]
    # With it, by the seed-matched reduction against it.
    df = rk.ranking(cells, "teacher_forced")
    by = df.set_index("name")
    assert set(df["ranked_by"]) == {rk.RANKED_BY_OWN_REDUCTION}
    assert (
        abs(by.loc["owl_only", "residual_pp"]) < 1e-9 and abs(by.loc["both", "residual_pp"]) < 1e-9
    )
    assert abs(by.loc["both", "own_animal_log_odds"]) < 1e-9
    assert by.loc["owl_only", "own_animal_log_odds"] > 0.05
    assert list(df["name"]) == ["both", "owl_only", "none"]
    # "both" removes the baseline's whole statistic in every seed: paired over the 3 seeds its
    # reduction is clear of 0, so the baseline ranks behind it; owl_only's interval reaches 0 (a
    # tie with the baseline) and overlaps both's (a tie with both).
    assert by.loc["both", "own_reduction_spread_low"] > 0
    assert by.loc["owl_only", "own_reduction_spread_low"] < 0
    assert list(df["rank"]) == ["=1", "=1", "2"]
    assert "reduction not significant" in by.loc["owl_only", "flags"]
    assert pd.isna(by.loc["none", "own_reduction_log_odds"])
    # Reduction in own-animal log-odds: baseline's minus the defense's, per question.
    assert by.loc["both", "own_reduction_log_odds"] == pytest.approx(
        by.loc["none", "own_animal_log_odds"]
    )
    assert by.loc["both", "own_reduction_ci_low"] > 0
    # Seed-matched: one seed of "both" is compared with the baseline's same seed.
    one = rk.ranking(base + variant("both", [0], True), "teacher_forced").set_index("name")
    seed0 = rk.ranking([c for c in base if c.seed == 0], "teacher_forced").iloc[0]
    assert one.loc["both", "own_reduction_log_odds"] == pytest.approx(seed0["own_animal_log_odds"])
    assert "one run" in one.loc["both", "flags"]
    # A setup without the placebo teacher keeps ranking by the residual.
    plain = parse(artifact(Spec("numbers", "none", "owl", 0)))
    assert rk.ranking([plain], "teacher_forced")["ranked_by"].iloc[0] == rk.RANKED_BY_RESIDUAL


def test_a_consistent_paired_reduction_ranks_ahead_of_the_baseline() -> None:
    """Run-to-run noise the seeds share cancels in the seed-matched reduction: a defense that
    halves the baseline's pull in every seed has an own-animal interval over seeds that overlaps
    the baseline's (unpaired, a tie), yet its paired reduction is clear of 0, so it ranks ahead.
    One that moves the scores by seed-specific noise of the same size does not."""
    arts = [
        json.loads(p.read_text()) for p in sorted((REAL.parent / "quick").glob("numbers__*.json"))
    ]
    base = [parse(a) for a in arts]

    def variant(name: str, move: list[float]) -> list:
        """The trait student's owl and the control student's dolphin scores moved toward the
        other arm's by ``move[seed]`` of the gap (0 keeps the cell, 1 closes the contrast)."""
        out = []
        for c in base:
            ids, trait, control = c.scores["teacher_forced"]
            pids, p_trait, p_control = c.placebo
            k = move[int(c.seed)]
            out.append(
                replace(
                    c,
                    defense=name,
                    entry=f"{name} v1",
                    scores={
                        **c.scores,
                        "teacher_forced": (ids, control + (1 - k) * (trait - control), control),
                    },
                    placebo=(pids, p_trait, p_trait + (1 - k) * (p_control - p_trait)),
                )
            )
        return out

    cells = base + variant("halves", [0.5, 0.5, 0.5]) + variant("noise", [0.6, -0.6, 0.0])
    by = rk.ranking(cells, "teacher_forced").set_index("name")
    # Unpaired, halves and the baseline overlap over seeds...
    assert by.loc["halves", "own_animal_spread_high"] > by.loc["none", "own_animal_spread_low"]
    # ...paired, halves's reduction is clear of 0 and noise's is not.
    assert by.loc["halves", "own_reduction_spread_low"] > 0
    assert (
        by.loc["noise", "own_reduction_spread_low"]
        < 0
        < by.loc["noise", "own_reduction_spread_high"]
    )
    assert by.loc["halves", "rank"] == "=1" and by.loc["none", "rank"] == "2"
    assert "reduction not significant" in by.loc["noise", "flags"]
    assert "reduction not significant" not in by.loc["halves", "flags"]


def test_one_run_is_ranked_with_the_baselines_run_to_run_spread(tmp_path: Path) -> None:
    """A one-seed entry's question-level CI says nothing of run-to-run noise. With a baseline of
    >= 3 seeds, the entry's interval is widened by the baseline's spread of one run about its
    mean (t(0.975, n-1) x sd of its per-seed values): two single runs that differ by less than
    that tie instead of being ordered by their narrow question-level CIs."""
    none = [
        Spec("numbers", "none", "owl", s, leak_pp=lk) for s, lk in ((0, 0.1), (1, 0.5), (2, 0.3))
    ]
    single = [
        Spec("numbers", "quiet", "owl", 0, leak_pp=0.0),
        Spec("numbers", "loud", "owl", 0, leak_pp=0.5),
    ]
    cells = _load(tmp_path, none + single).cells
    df = rk.ranking(cells, "teacher_forced")
    by = df.set_index("name")
    per_seed = pooling.pool([c for c in cells if c.defense == "none"], "teacher_forced")["per_seed"]
    half = sps.t.ppf(0.975, 2) * np.std(per_seed, ddof=1)
    assert 0.5 < half < 1.2  # the premise: seeds 0.1 / 0.5 / 0.3 pp apart
    assert by.loc["quiet", "rank_noise_borrowed"] and by.loc["loud", "rank_noise_borrowed"]
    assert not by.loc["none", "rank_noise_borrowed"]
    # Their question-level CIs are far apart: on those alone "quiet" would rank above "loud".
    assert by.loc["quiet", "ci_high_pp"] < by.loc["loud", "ci_low_pp"]
    assert set(df["rank"]) == {"=1"}
    assert "ranked with the baseline's run-to-run spread" in by.loc["quiet", "flags"]
    # Without a baseline spread to borrow (one seed of none), the flag says what the rank rests on.
    alone = rk.ranking([c for c in cells if c.seed == 0], "teacher_forced").set_index("name")
    assert alone.loc["quiet", "rank"] == "1" and alone.loc["loud", "rank"] != "1"
    assert "rank from the question-level CI only" in alone.loc["quiet", "flags"]
