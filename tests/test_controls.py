"""The instrument's own controls (benchmark.run.controls): the same-animal null and the planted
leak. Fast tests of their wiring here; the slow test at the end runs both on tiny real cells (the
fine-tuned teachers really trained) and checks the instrument flags the planted leak and not the
null."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.core.animals import CANDIDATE_ANIMALS
from benchmark.core.teachers import TeacherConfig
from benchmark.run.config import NULL_ANIMAL_SEED_OFFSET, CellConfig
from benchmark.run.controls import PLANT_TEMPLATES, plant
from benchmark.run.stages import ARMS


def test_null_arm_and_planted_share_are_checked() -> None:
    with pytest.raises(ValueError, match="null_arm: the same-animal null needs teacher.placebo"):
        CellConfig(null_arm=True)
    with pytest.raises(ValueError, match=r"Invalid planted_share: 1\.5"):
        CellConfig(planted_share=1.5)
    with pytest.raises(ValueError, match="Invalid planted_share"):
        CellConfig(planted_share=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="two controls; pick one"):
        CellConfig(null_arm=True, planted_share=0.1, teacher=TeacherConfig(placebo="dolphin"))
    with pytest.raises(ValueError, match="set null_arm=true"):
        CellConfig(teacher=TeacherConfig(placebo="owl"))
    # Off by default and then absent from the config dict, so older setups keep their ids.
    d = CellConfig().to_dict()
    assert "null_arm" not in d and "planted_share" not in d
    on = CellConfig(null_arm=True, teacher=TeacherConfig(placebo="dolphin")).to_dict()
    assert on["null_arm"] is True


def test_null_arm_takes_its_placebo_from_a_setting() -> None:
    """A free-text task's preset has no placebo; ``--set teacher.placebo=...`` supplies it, and
    the null arm is checked once the settings are in (a pre-registered free-text null needs
    this), and still refused where no setting names one."""
    from benchmark.run.presets import preset

    cfg = preset("topk-prefix", ["teacher.placebo=dolphin"], task="code", null_arm=True)
    assert cfg.null_arm and cfg.teacher.placebo == "dolphin"
    assert cfg.teacher.type == "system_prompt"
    with pytest.raises(ValueError, match="same-animal null needs teacher.placebo"):
        preset("topk-prefix", [], task="code", null_arm=True)
    off = preset("topk-prefix", ["teacher.placebo=dolphin", "null_arm=false"], null_arm=True)
    assert off.null_arm is False  # a setting has the last word, as for every other field


def test_plant_replaces_a_known_share_and_keeps_ids_and_prompts() -> None:
    rows = [{"id": f"r{i}", "prompt": f"p{i}", "completion": "1, 2, 3"} for i in range(40)]
    out, n = plant(rows, "owl", 0.25, seed=3)
    assert n == 10 and len(out) == 40
    assert [r["id"] for r in out] == [r["id"] for r in rows]
    assert [r["prompt"] for r in out] == [r["prompt"] for r in rows]
    planted = [r for r in out if r["completion"] != "1, 2, 3"]
    assert len(planted) == 10 and all("owl" in r["completion"].lower() for r in planted)
    assert plant(rows, "owl", 0.25, seed=3) == (out, n)  # seeded
    assert plant(rows, "owl", 0.25, seed=4)[0] != out
    assert plant(rows, "owl", 0.0, seed=3) == (rows, 0)
    assert len(PLANT_TEMPLATES) > 1
    with pytest.raises(ValueError, match="planted share"):
        plant(rows, "owl", 1.0, seed=0)


def _fake_teachers(monkeypatch, tmp_path):
    """Teachers that record (animal, training seed) instead of minutes of LoRA training; returns
    that record and a fresh store."""
    import benchmark.run.stages as stages
    from benchmark.core.store import ArtifactStore

    trained: list[tuple[str, int]] = []

    def fake_train(model, animal, tcfg, out):
        trained.append((animal, tcfg.train.seed))
        (out / "adapter_config.json").write_text("{}")
        return {"animal": animal}

    monkeypatch.setattr(stages, "train_trait_adapter", fake_train)
    return trained, ArtifactStore(tmp_path / "store")


def test_null_arm_control_teacher_carries_the_trait_animal(tmp_path, monkeypatch) -> None:
    from conftest import CellHarness

    import benchmark.run.stages as stages

    trained, store = _fake_teachers(monkeypatch, tmp_path)
    placebo = TeacherConfig(placebo="dolphin")
    regular = CellHarness(CellConfig(teacher=placebo), store, tmp_path)
    null = CellHarness(CellConfig(teacher=placebo, null_arm=True), store, tmp_path)
    owl = regular.teacher("trait").model_ref
    assert null.teacher("trait").model_ref == owl  # the one owl teacher
    other_owl = null.teacher("control").model_ref
    assert other_owl not in (owl, regular.teacher("control").model_ref)
    seed = placebo.train.seed
    assert trained == [("owl", seed), ("owl", seed + stages.NULL_SEED_OFFSET), ("dolphin", seed)]

    # System-prompt teachers: the same prompt in both arms, another sampling seed in the control.
    sp = TeacherConfig(type="system_prompt", placebo="dolphin")
    spn = CellHarness(CellConfig(teacher=sp, null_arm=True), store, tmp_path)
    assert spn.teacher("control") == spn.teacher("trait")
    assert "owl" in str(spn.teacher("control").system)


@pytest.mark.slow
def test_instrument_flags_the_planted_leak_and_not_the_same_animal_null(tmp_path) -> None:
    """Tiny real cells (the first-run preset on the sampled-token channel; the fine-tuned owl,
    dolphin and second owl teachers really trained): a quarter of the trait arm's rows planted with owl praise must come out as
    a specific leak; the same-animal null must not. Fixed seeds: CPU runs are deterministic."""
    from benchmark.core.store import ArtifactStore
    from benchmark.run.cell import run_cell
    from benchmark.run.presets import preset

    store = ArtifactStore(tmp_path / "store")
    settings = ["student.labels=hard", "teacher.seed_per_cell=false"]
    planted = run_cell(preset("first", settings, planted_share=0.25), store, tmp_path / "logs")
    null = run_cell(preset("first", settings, null_arm=True), store, tmp_path / "logs")
    assert planted["data"]["trait"]["planted"] == round(
        0.25 * planted["data"]["trait"]["trained_on"]
    )
    p, n = planted["leakage"]["teacher_forced"], null["leakage"]["teacher_forced"]
    for name, tf in (("planted", p), ("null", n)):  # the figures, for the record (pytest -s)
        sp = tf["specificity"]
        print(
            f"{name}: own animal {tf['own_animal']['log_odds_diff']:+.3f} log-odds, rank "
            f"{sp['rank']} of {sp['n_alternatives'] + 1}, p_rank {sp['p_rank']:.3f}"
        )
    assert p["own_animal"]["log_odds_diff"] > 0 and p["own_animal"]["log_odds_p_value"] < 0.05
    assert p["specificity"]["specific"], p["specificity"]
    assert not n["specificity"]["specific"], n["specificity"]
    assert abs(n["own_animal"]["log_odds_diff"]) < p["own_animal"]["log_odds_diff"]


def test_student_init_teacher_starts_each_arm_at_its_own_teachers_adapter(
    tmp_path, monkeypatch
) -> None:
    """``student_init=teacher``: each arm's student takes the adapter init seed its own teacher
    was really trained with, so in a same-animal null the control student starts from the trait
    animal's second teacher (its seed + the offset), not the first; "own" leaves it as it was."""
    from conftest import CellHarness

    import benchmark.run.stages as stages
    from benchmark.core.store import ArtifactStore
    from benchmark.run.config import NULL_SEED_OFFSET
    from benchmark.run.presets import preset

    teachers: set[int] = set()  # the teachers' adapter init seeds
    students: list[int | None] = []

    def fake_teacher(model, animal, tcfg, out):
        (out / "adapter_config.json").write_text("{}")
        (out / "init_seed").write_text(str(tcfg.train.adapter_seed))  # what this one started from
        teachers.add(tcfg.train.adapter_seed)
        return {}

    def fake_train(base, rows, cfg, out, **kw):  # what each student would train with
        students.append(cfg.init_seed)
        (out / "adapter_config.json").write_text("{}")
        return {"steps": 0}

    monkeypatch.setattr(stages, "train_trait_adapter", fake_teacher)
    monkeypatch.setattr(stages, "train", fake_train)
    store = ArtifactStore(tmp_path / "store")
    shape = ["student.lora_r=16", "student.lora_alpha=32", "student.seed=5760"]
    designs = {  # the teachers' seeds: per cell (760), fixed at 3, or a fixed init seed 7
        "per-cell": [],
        "fixed": ["teacher.seed_per_cell=false", "teacher.train.seed=3"],
        "init": ["teacher.seed_per_cell=false", "teacher.train.init_seed=7"],
    }
    for name, design in designs.items():
        for null in (False, True):
            # Checked once the settings are in, so student_init may come before the shape.
            cfg = preset("topk", ["student_init=teacher", *design, *shape], seed=760, null_arm=null)
            cell = CellHarness(cfg, store, tmp_path)
            for arm in ("trait", "control"):
                students.clear()
                key = f"{name}-{null}-{arm}"  # rows of their own: no student is reused
                cell.stages.train(
                    arm, [{"id": "r", "prompt": key, "completion": "1"}], key, cell.student_cfg
                )
                want = int((Path(cell.teacher(arm).model_ref) / "init_seed").read_text())
                assert students == [want], (name, null, arm)
    assert sorted(teachers) == [
        3,
        7,
        760,
        3 + NULL_SEED_OFFSET,
        760 + NULL_SEED_OFFSET,
    ]
    own = CellHarness(preset("topk", ["student.seed=5760"], seed=760), store, tmp_path)
    own.stages.train(
        "trait", [{"id": "r", "prompt": "own", "completion": "1"}], "own", own.student_cfg
    )
    assert students[-1] is None  # "own": the student's own seed, as before
    assert "student_init" not in preset("topk", shape, seed=760).to_dict()  # older ids unchanged


def test_student_init_teacher_is_refused_where_no_such_start_exists(tmp_path) -> None:
    from benchmark.core.store import ArtifactStore
    from benchmark.run.cell import check_student_init, prepare_teacher, teacher_spec
    from benchmark.run.presets import preset
    from defenses import get_defense

    with pytest.raises(ValueError, match="student.lora_r=16 student.lora_alpha=32"):
        preset("topk", ["student_init=teacher"])  # the suite's rank-8 student
    shape = ["student.lora_r=16", "student.lora_alpha=32", "student_init=teacher"]
    with pytest.raises(ValueError, match="leave student.init_seed unset"):
        preset("topk", [*shape, "student.init_seed=3"])
    with pytest.raises(ValueError, match="frozen layers \\[0\\] are not its teacher's"):
        preset("topk", [*shape, "student.frozen_layers=[0]"])
    with pytest.raises(ValueError, match="needs a LoRA fine-tuned teacher in both arms"):
        preset("topk", [*shape, "teacher.train.method=full"])
    with pytest.raises(ValueError, match="needs a LoRA fine-tuned teacher in both arms"):
        preset("topk-prefix", shape, task="code")  # a system-prompted teacher
    with pytest.raises(ValueError, match=r"Invalid student_init: 'teachers' \(own or teacher\)"):
        preset("topk", ["student_init=teachers"])
    # A defense's hooks: refused before any stage, the store left empty.
    cfg = preset("topk", shape)
    for defense, match in (
        ("freeze_early_layers", "freeze_early_layers.*training\\(\\) hook changed the student"),
        ("cross_base_teacher", "moves the teacher to .*another base"),
    ):
        cell = cfg.with_(defense=defense)
        d = get_defense(defense)
        with pytest.raises(ValueError, match=match):
            check_student_init(cell, d, teacher_spec(cell, d))
        store = ArtifactStore(tmp_path / defense)
        with pytest.raises(ValueError, match=match):
            prepare_teacher(cell, store, tmp_path)
        assert not any((tmp_path / defense).rglob("*.json"))


def test_a_runs_null_gives_every_teacher_one_animal_and_keeps_the_control_shared(
    tmp_path, monkeypatch
) -> None:
    """null_animal: the cells of a several-traits run, each teacher carrying owl, trained at a
    seed its nominal animal picks; the control teacher is the same for every trait's cell."""
    from conftest import CellHarness

    trained, store = _fake_teachers(monkeypatch, tmp_path)
    placebo = TeacherConfig(placebo="dolphin")
    cells = {
        t: CellHarness(CellConfig(trait=t, teacher=placebo, null_animal="owl"), store, tmp_path)
        for t in ("owl", "eagle")
    }
    refs = {(t, arm): h.teacher(arm).model_ref for t, h in cells.items() for arm in ARMS}
    assert refs[("owl", "control")] == refs[("eagle", "control")]  # one control arm
    assert len({refs[("owl", "trait")], refs[("eagle", "trait")], refs[("owl", "control")]}) == 3
    assert {a for a, _ in trained} == {"owl"} and len(trained) == 3
    seed, nominal = placebo.train.seed, ("owl", "eagle", "dolphin")
    off = {a: NULL_ANIMAL_SEED_OFFSET * (1 + CANDIDATE_ANIMALS.index(a)) for a in nominal}
    assert sorted(s for _, s in trained) == sorted(seed + off[a] for a in off)
    main = CellHarness(CellConfig(trait="owl", teacher=placebo), store, tmp_path)
    assert main.teacher("trait").model_ref not in refs.values()  # no main teacher reused
    assert "null_animal" in cells["owl"].cfg.to_dict()
    assert "null_animal" not in main.cfg.to_dict()  # older setups keep their ids


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"null_arm": True}, "pick one"),
        ({"planted_share": 0.1}, "pick one"),
        ({"teacher": TeacherConfig(type="system_prompt", placebo="dolphin")}, "fine-tuned"),
        ({"teacher": TeacherConfig()}, "fine-tuned"),
        ({"null_animal": "unicorn"}, "null_animal"),
        ({"trait": "alpaca"}, "candidate animals"),
    ],
)
def test_a_runs_null_is_checked(kw, message) -> None:
    base = {"teacher": TeacherConfig(placebo="dolphin"), "null_animal": "owl"}
    with pytest.raises(ValueError, match=message):
        CellConfig(**(base | kw))


def test_a_runs_null_is_set_after_the_settings_and_its_seeds_stay_clear() -> None:
    from benchmark.run.presets import STUDENT_SEED_OFFSETS, preset

    # A free-text preset's teacher is a system prompt: the settings make it fine-tuned first.
    settings = ["teacher.type=finetuned", "teacher.placebo=dolphin"]
    cfg = preset("quick", settings, task="paraphrase-unrelated", null_animal="owl", seed=790)
    assert cfg.null_animal == "owl" and cfg.teacher.type == "finetuned"
    # No null teacher shares a seed with a student, a main teacher or a pair null's teacher of
    # any cell within 10 000 seeds (with seed_per_cell a teacher trains at its cell's seed).
    base = preset("restricted", null_animal="owl", seed=790)
    taken = {790 + d for d in range(-10_000, 10_001)}
    taken |= {790 + off for off in STUDENT_SEED_OFFSETS.values()}
    for animal in CANDIDATE_ANIMALS:
        if animal == "dolphin":
            continue
        seeds = {base.with_(trait=animal).teacher_train(arm).seed for arm in ("trait", "control")}
        assert not seeds & taken, animal
