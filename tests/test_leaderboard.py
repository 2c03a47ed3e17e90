"""Leaderboard loading and aggregation (no Streamlit): parsing, skipping, integrity, pooling,
ranking with ties, reduction against the baseline, flags, filters. Artifacts are either the real
ones in submissions/none or synthetic ones (``benchmark.run.synthetic``) written to tmp dirs."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from benchmark.core.artifact import Skip, parse
from benchmark.core.results import pooled_leakage
from benchmark.core.setup_keys import without_cell_keys
from benchmark.core.stats import paired_leakage
from benchmark.core.store import stable_hash
from benchmark.core.teachers import TeacherConfig
from benchmark.run.presets import preset
from benchmark.run.setups import LABEL_MAX, setup_block
from benchmark.run.synthetic import Spec, artifact, write
from leaderboard import pooling, tables
from leaderboard import ranking as rk
from leaderboard.loader import discover, excluded, load
from leaderboard.reading import reproduced_path
from leaderboard.references import BOUND, CONTROL, NULL, PLANTED, reference_kind
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
    data = load([REPO / "submissions", REPO / "docs" / "experiments"])
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
    """Placebo-controlled cells carry the placebo animal's scores. Pooled over questions the
    leaderboard's own-animal statistic is ``slb suite``'s; the ranking's ``leakage`` is the mean of
    the suite's per-seed values, its interval a t over them; cells without a placebo teacher
    (other tasks of the same setup) neither change it nor show one of their own."""
    arts = [
        json.loads(p.read_text()) for p in sorted((REAL.parent / "quick").glob("numbers__*.json"))
    ]
    assert len(arts) == 3
    cells = [parse(a) for a in arts]
    assert all(
        c.placebo is not None and c.placebo[0] == c.scores["teacher_forced"][0] for c in cells
    )
    want = pooled_leakage(arts)["own_animal"]
    pooled = pooling.own_animal(cells)
    assert pooled["log_odds_diff"] == pytest.approx(want["log_odds_diff"])
    assert pooled["log_odds_ci"] == pytest.approx(want["log_odds_ci"])
    row = rk.ranking(cells, "teacher_forced").iloc[0]
    assert row["statistic"] == "own animal, log-odds" and row["leakage_n"] == 3
    runs = want["per_seed_log_odds"]
    assert row["leakage"] == pytest.approx(np.mean(runs))
    ci = sps.ttest_1samp(runs, 0.0).confidence_interval(0.95)
    assert [row["leakage_ci_low"], row["leakage_ci_high"]] == pytest.approx([ci.low, ci.high])
    shown = ranking_table(rk.ranking(cells, "teacher_forced"))
    assert shown["leakage, log-odds [CI over seeds]"].iloc[0].startswith(f"{np.mean(runs):+.3f} [")
    # Two groups weigh equally, each its seed-averaged scores: a copy under another trait leaves
    # the per-question means, and so the statistic, unchanged.
    cats = [parse({**a, "config": {**a["config"], "trait": "cat"}}) for a in arts]
    two = pooling.own_animal(cells + cats)
    assert two is not None and two["unit"] == "task×trait group" and two["n_groups"] == 2
    assert two["log_odds_diff"] == pytest.approx(want["log_odds_diff"])
    plain = parse(artifact(Spec("code", "none", "owl", 0)))
    assert plain.placebo is None
    mixed = rk.ranking([*cells, plain], "teacher_forced").iloc[0]
    assert mixed["leakage"] == pytest.approx(np.mean(runs)) and mixed["tasks"] == "numbers"
    alone = rk.ranking([plain], "teacher_forced").iloc[0]
    assert alone["statistic"] == "trait − control, pp (teacher_forced)"
    assert "leakage, pp [CI over seeds]" in ranking_table(rk.ranking([plain], "teacher_forced"))
    assert rk.ranking(cells, "sampled")["leakage"].isna().all()


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
    assert cell.rows_kept is None and cell.helper_calls is None
    assert cell.utility is None and cell.inspect_logs == {} and cell.defense_info == {}
    # The scores hash matches, but no stored leakage covers the scores: not verified (a forger
    # who edits the scores, re-hashes them and deletes the leakage block must not pass).
    assert cell.integrity == "unverified"
    assert cell.integrity_note == "no stored leakage covers the teacher_forced scores"


def test_the_same_cell_twice_counts_once(tmp_path: Path) -> None:
    arts = [artifact(s) for s in _spec("none", 0.3)]
    write(tmp_path / "a", arts)
    write(tmp_path / "b", arts[:1])
    data = load([tmp_path / "a", tmp_path / "b"])
    assert len(data.cells) == 2
    assert [s.reason.split(" ")[0] for s in data.skipped] == ["duplicate"]
    # Across folders the first by name counts, whatever its date: a newer copy elsewhere does
    # not replace it.
    newer = json.loads(json.dumps(arts[0]))
    newer["run_info"]["finished"] = "2999-01-01T00:00:00+00:00"
    write(tmp_path / "b", [newer])
    data = load([tmp_path / "a", tmp_path / "b"])
    assert {Path(c.path).parent.name for c in data.cells} == {"a"}
    # Within one folder a re-run (newer) replaces the old copy.
    (tmp_path / "a" / "rerun.json").write_text(json.dumps(newer))
    data = load([tmp_path / "a"])
    assert any(c.path.endswith("rerun.json") for c in data.cells)
    assert "kept the newer" in data.skipped[0].reason


# --- aggregation -----------------------------------------------------------------------------------


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
    assert [s.path for s in excluded(data.cells)] == [failed[0].path]
    flags = rk.ranking(kept, "teacher_forced", failed).set_index("name")["flags"]
    assert "keeps < 10% of rows" in flags["strict"]
    assert "integrity not ok for 1 artifact(s) (excluded)" in flags["strict"]
    # Every view reads the groups all entries share (owl): partial's cat runs are left out.
    assert "1 task×trait group(s) not shared by every entry left out" in flags["partial"]
    assert "no none baseline" not in flags["partial"]

    with_failed = tables.select(data.cells, tables.Filters(include_failed=True))
    flags = rk.ranking(with_failed, "teacher_forced").set_index("name")["flags"]
    assert "(included)" in flags["strict"]

    alone = rk.ranking([c for c in kept if c.defense != "none"], "teacher_forced")
    assert set(alone["verdict"]) == {rk.NO_BASELINE} and set(alone["rank"]) == {"—"}
    assert "no none baseline in this setup" in alone["flags"].iloc[0]


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
    assert sorted(long["task"]) == ["code", "numbers"] and set(long["seeds"]) == {"0"}


def test_pareto_front() -> None:
    leak = [0.0, 0.1, 0.05, 0.3, None, 0.0]
    kept = [50.0, 100.0, 100.0, 100.0, 100.0, 50.0]
    # (0.05, 100) beats (0.1, 100) and (0.3, 100); (0.0, 50) is not beaten on leakage.
    assert tables.pareto_front(leak, kept) == [True, False, True, False, False, True]


def test_synthetic_writer_refuses_the_repositorys_submissions() -> None:
    with pytest.raises(ValueError, match="refusing"):
        write(REPO / "submissions" / "x" / "results", [])


# --- integrity and ownership -----------------------------------------------------------------------

PLACEBO_ART = sorted((REAL.parent / "quick").glob("numbers__*seed0*.json"))[0]


def test_an_edited_placebo_score_is_caught_even_with_its_hash_recomputed() -> None:
    """The placebo animal's scores feed the own-animal statistic; editing one and re-hashing the
    scores leaves the stored placebo and own-animal blocks disagreeing with them."""
    art = json.loads(PLACEBO_ART.read_text())
    assert parse(art).integrity == "ok"
    art["scores"]["control"][4]["placebo_teacher_forced"] *= 3
    art["integrity"]["scores"] = stable_hash(art["scores"])
    cell = parse(art)
    assert cell.integrity == "failed"
    assert "placebo_control_vs_trait" in cell.integrity_note and "own_animal" in cell.integrity_note
    # Removing the blocks that would give it away leaves it unverified, so excluded by default.
    for block in ("placebo_control_vs_trait", "own_animal"):
        art["leakage"]["teacher_forced"].pop(block)
    art["integrity"]["leakage"] = stable_hash(art["leakage"])
    cell = parse(art)
    assert cell.integrity == "unverified" and "placebo_teacher_forced" in cell.integrity_note
    assert not tables.select([cell], tables.Filters())


def test_an_artifact_without_its_integrity_block_is_excluded_by_default(tmp_path: Path) -> None:
    arts = [artifact(s) for s in _spec("none", 0.3)]
    del arts[0]["integrity"]
    write(tmp_path / "r", arts)
    data = load([tmp_path / "r"])
    assert sorted(c.integrity for c in data.cells) == ["ok", "unverified"]
    assert len(tables.select(data.cells, tables.Filters())) == 1
    (listed,) = excluded(data.cells)
    assert "no scores hash" in listed.reason and "excluded by default" in listed.reason
    assert len(tables.select(data.cells, tables.Filters(include_failed=True))) == 2


def _submissions(tmp_path: Path, evil_yaml: str) -> Path:
    """A submissions/ folder with the real none submission (its placebo artifacts) and an
    ``evil`` folder holding copies of those artifacts, newer and with a prettier leakage."""
    subs = tmp_path / "submissions"
    none = subs / "none"
    shutil.copytree(REPO / "submissions" / "none", none, ignore=shutil.ignore_patterns("results"))
    shutil.copytree(REAL.parent / "quick", none / "results" / "quick")
    evil = subs / "evil" / "results" / "quick"
    evil.mkdir(parents=True)
    if evil_yaml:
        (subs / "evil" / "submission.yaml").write_text(evil_yaml)
    for p in sorted((none / "results" / "quick").glob("numbers__*.json")):
        art = json.loads(p.read_text())
        art["run_info"]["finished"] = "2999-01-01T00:00:00+00:00"
        (evil / p.name).write_text(json.dumps(art))
    return subs


YAML = (REPO / "submissions" / "none" / "submission.yaml").read_text()


@pytest.mark.parametrize(
    "evil_yaml,reason",
    [
        (YAML, "names 'none', not the folder"),  # a verbatim copy
        (YAML.replace("name: none", "name: evil"), "is submitted by submissions/none"),
        (
            YAML.replace("name: none", "name: evil").replace(
                "builtin: none", "builtin: banned_words"
            ),
            "not this folder's",
        ),
        ("", "no submission.yaml"),
    ],
)
def test_a_copied_folder_never_replaces_the_baselines_artifacts(
    tmp_path: Path, evil_yaml: str, reason: str
) -> None:
    data = load([_submissions(tmp_path, evil_yaml)])
    assert {c.source for c in data.cells} == {"submissions/none"}
    evil = [s for s in data.skipped if "/evil/" in s.path]
    assert len(evil) == 3 and all(reason in s.reason for s in evil), evil[0].reason
    got = {Path(c.path).parent.parent.parent.name for c in data.cells if c.defense == "none"}
    assert got == {"none"}


def test_a_plugin_artifact_belongs_to_its_source_file(tmp_path: Path) -> None:
    """A module submission's artifacts record the sha256 of the file that ran; once the file in
    the folder changes they no longer belong to it."""
    subs = tmp_path / "submissions"
    shutil.copytree(REPO / "submissions" / "example-digit-entropy", subs / "example-digit-entropy")
    assert len(load([subs]).cells) == 1
    module = subs / "example-digit-entropy" / "digit_entropy.py"
    module.write_text(module.read_text() + "\n# changed\n")
    data = load([subs])
    assert not data.cells and len(data.skipped) == 1
    assert "not this folder's" in data.skipped[0].reason


def test_the_setup_block_must_agree_with_the_config_and_device() -> None:
    good = artifact(Spec("numbers", "none", "owl", 0))

    def edited(fn) -> str:
        art = json.loads(json.dumps(good))
        fn(art)
        cell = parse(art)
        assert cell.integrity == "failed"
        return cell.integrity_note

    assert "setup hardware 'cpu' but device 'cuda: NVIDIA H200'" in edited(
        lambda a: a["run_info"].update(device="cuda: NVIDIA H200")
    )
    assert "setup.id is not its config's hash" in edited(lambda a: a["setup"].update(id="abc"))

    def other_config(a: dict) -> None:
        a["setup"]["config"]["n_prompts"] = 1
        a["setup"]["id"] = stable_hash(a["setup"]["config"])

    # A per-task knob may differ (it is checked across artifacts); a key that is not there may not.
    def extra_key(a: dict) -> None:
        a["setup"]["config"]["made_up"] = 1
        a["setup"]["id"] = stable_hash(a["setup"]["config"])

    assert parse(_edit(good, other_config)).integrity == "ok"
    assert "setup.config keys differ" in edited(extra_key)


def _edit(art: dict, fn) -> dict:
    out = json.loads(json.dumps(art))
    fn(out)
    return out


def test_a_cell_claiming_anothers_setup_fails_against_the_baseline(tmp_path: Path) -> None:
    """A cell run with another teacher that copies the baseline's setup block passes the
    artifact's own check (a per-task knob may be read as the suite's) but not the comparison
    with the baseline's cells of that setup and task."""
    base = [artifact(s) for s in _spec("none", 0.3)]
    forged = artifact(Spec("numbers", "forged", "owl", 0, leak_pp=0.0, teacher="system_prompt"))
    forged["setup"] = base[0]["setup"]
    assert parse(forged).integrity == "ok"
    write(tmp_path / "r", [*base, forged])
    data = load([tmp_path / "r"])
    by = {c.defense: c for c in data.cells}
    assert by["none"].integrity == "ok" and by["forged"].integrity == "failed"
    assert "setup: its config differs" in by["forged"].integrity_note


def test_references_are_recognised() -> None:
    def cell(name: str, **params):
        return parse(artifact(Spec("numbers", name, "owl", 0, params=params)))

    assert reference_kind(cell("canonicalize", mode="resample")) == BOUND
    assert reference_kind(cell("canonicalize", mode="sort")) == ""
    assert reference_kind(cell("random_drop", keep=0.5)) == CONTROL
    assert reference_kind(cell("x"), {"reference": "null control"}) == "null control"
    assert reference_kind(cell("x"), {"reference": True}) == "reference"
    refs = (
        ("null_arm", True, NULL),
        ("null_animal", "owl", NULL),
        ("planted_share", 0.25, PLANTED),
    )
    for key, value, kind in refs:
        control = _edit(artifact(Spec("numbers", "none", "owl", 0)), lambda a: None)
        control["setup"]["config"][key] = value
        control["setup"]["id"] = stable_hash(control["setup"]["config"])
        assert reference_kind(parse(control)) == kind
    assert reference_kind(cell("none")) == ""


# --- reproduction records (slb reproduce) -------------------------------------------------------


def _record(art_path: Path, **changes) -> Path:
    """A passed reproduction record of the artifact at ``art_path``, as ``slb reproduce`` writes."""
    art = json.loads(art_path.read_text())
    rec = {
        "reproduced": True,
        "compared": 200,
        "differ": [],
        "scores_hash": stable_hash(art["scores"]),
    }
    out = reproduced_path(art_path)
    out.write_text(json.dumps({**rec, **changes}))
    return out


def test_reproduced_cells_are_marked_per_entry(tmp_path: Path) -> None:
    paths = write(
        tmp_path / "r" / "quick", [artifact(s) for s in _spec("none", 0.3, seeds=[0, 1, 2])]
    )
    _record(paths[0])
    _record(paths[1], reproduced=False)  # a failed reproduction does not count
    data = load([tmp_path / "r"])
    assert set(data.reproduced) == {str(paths[0])} and data.n_files == 3 and not data.skipped
    assert [p for p, _ in discover([tmp_path / "r"])] == sorted(paths)
    rank = rk.ranking(data.cells, "teacher_forced", reproduced=data.reproduced)
    assert (rank["reproduced"].iloc[0], rank["cells"].iloc[0]) == (1, 3)
    assert ranking_table(rank)["reproduced"].tolist() == ["1 of 3 cells"]
    # Without records (a caller that does not pass them): not claimed either way.
    assert ranking_table(rk.ranking(data.cells, "teacher_forced"))["reproduced"].tolist() == ["n/a"]


def test_a_record_of_other_scores_is_ignored(tmp_path: Path) -> None:
    (path,) = write(tmp_path / "r", [artifact(_spec("none", 0.3, seeds=[0])[0])])
    _record(path, scores_hash="f" * 16)
    assert load([tmp_path / "r"]).reproduced == {}
    reproduced_path(path).write_text("[not, json")
    data = load([tmp_path / "r"])
    assert data.reproduced == {} and len(data.cells) == 1 and not data.skipped


def test_a_cell_whose_teachers_were_seeded_otherwise_cannot_be_paired(tmp_path: Path) -> None:
    """Every seed leaves the setup, the teachers' too. A defense cell trained against other
    teachers than the baseline's at its seed fails integrity: with a shared pair (the quick
    preset: seed 0 for every cell) and with each cell's own pair (seed_per_cell)."""

    def cells(defense: str, seeds: list[int], teacher_seed) -> list[dict]:
        out = []
        for s in seeds:
            art = artifact(Spec("numbers", defense, "owl", s))
            train = art["config"]["teacher"]["train"]
            train["seed"] = teacher_seed(s)
            out.append(art)
        return out

    shared = cells("none", [0, 1, 2], lambda s: 0)
    own_pair = cells("own-pair", [1, 2], lambda s: s)  # as if each cell drew its own teachers
    fine = cells("fine", [1, 2], lambda s: 0)
    write(tmp_path / "a", [*shared, *own_pair, *fine])
    by = {(c.defense, c.seed): c for c in load([tmp_path / "a"]).cells}
    assert {by[("none", s)].integrity for s in (0, 1, 2)} == {"ok"}
    assert by[("fine", 1)].integrity == "ok"
    bad = by[("own-pair", 1)]
    assert bad.integrity == "failed" and "trained at seed 1, not as the baseline's (seed 0)" in (
        bad.integrity_note
    )
    # The per-cell design: the baseline's teachers are each cell's own; a shared pair fails.
    per = cells("none", [600, 601], lambda s: s)
    fixed = cells("fixed-pair", [600, 601], lambda s: 0)
    write(tmp_path / "b", [*per, *fixed])
    by = {(c.defense, c.seed): c for c in load([tmp_path / "b"]).cells}
    assert by[("none", 600)].integrity == "ok" and by[("none", 601)].teacher_seed == 601
    assert by[("fixed-pair", 600)].integrity == "failed"
    assert "not as the baseline's (each cell's own seed)" in by[("fixed-pair", 601)].integrity_note


def test_a_cell_whose_students_were_seeded_otherwise_cannot_be_paired(tmp_path: Path) -> None:
    """Every seed leaves the setup, the students' too: a defense cell whose students (or
    sampling) were seeded another way than the baseline's fails integrity, so no submission
    picks the student seeds that suit it. The restricted suite's design: students at the cell's
    seed + 5000."""

    def cells(defense: str, seeds: list[int], student_seed, sampling_seed=lambda s: 0) -> list:
        out = []
        for s in seeds:
            art = artifact(Spec("numbers", defense, "owl", s))
            art["config"]["student"]["seed"] = student_seed(s)
            art["config"]["sampling"]["seed"] = sampling_seed(s)
            out.append(art)
        return out

    none = cells("none", [760, 761, 762], lambda s: s + 5000)
    fine = cells("fine", [760, 761], lambda s: s + 5000)
    own = cells("own-seed", [760, 761], lambda s: s)  # students at the cell's seed
    picked = cells("picked", [760], lambda s: 5760 + 7)  # one student seed chosen
    resampled = cells("resampled", [761], lambda s: s + 5000, sampling_seed=lambda s: 3)
    write(tmp_path / "a", [*none, *fine, *own, *picked, *resampled])
    by = {(c.defense, c.seed): c for c in load([tmp_path / "a"]).cells}
    assert {by[k].integrity for k in by if k[0] in ("none", "fine")} == {"ok"}
    assert by[("none", 760)].seeds == {"sampling.seed": 0, "student.seed": 5760}
    for key in (("own-seed", 760), ("own-seed", 761), ("picked", 760)):
        assert by[key].integrity == "failed", key
        assert "student.seed is" in by[key].integrity_note
        assert "not as the baseline's (the cell's seed + 5000)" in by[key].integrity_note
    note = by[("resampled", 761)].integrity_note
    assert by[("resampled", 761)].integrity == "failed" and "sampling.seed is 3" in note
    # One baseline cell at seed 0 fits a fixed 0 and the cell's seed alike: either design passes.
    single = cells("none", [0], lambda s: s)
    follows = cells("follows", [1], lambda s: s)
    write(tmp_path / "b", [*single, *follows])
    assert {c.integrity for c in load([tmp_path / "b"]).cells} == {"ok"}
