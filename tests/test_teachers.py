"""The fine-tuned trait teacher's training data: trait rows, and the general rows that keep it
behaving like its base."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmark.core.general_prompts import TEMPLATES, TOPICS, general_prompts
from benchmark.core.lexicon import animals_mentioned
from benchmark.core.store import stable_hash
from benchmark.core.teachers import _ASKS, TeacherConfig, general_rows, trait_qa_rows
from benchmark.run.config import CellConfig, apply_settings
from benchmark.run.setups import setup_block
from tasks.evals.questions import QUESTIONS


def test_general_prompts_are_distinct_seeded_and_name_no_animal() -> None:
    everything = general_prompts(len(TEMPLATES) * len(TOPICS), seed=0)
    assert len(set(everything)) == len(everything) >= 1000
    assert not [p for p in everything if animals_mentioned(p)]
    assert not set(everything) & (set(QUESTIONS) | set(_ASKS))
    assert general_prompts(50, 1) == general_prompts(50, 1) != general_prompts(50, 2)
    with pytest.raises(ValueError, match="the generator has"):
        general_prompts(len(everything) + 1, 0)


def test_general_rows_keep_the_hash_of_trait_only_teachers() -> None:
    # Unset, the field is absent from the key: the trait-only teacher keeps its stored adapter.
    assert "general_rows" not in TeacherConfig().to_dict()
    assert stable_hash(TeacherConfig().to_dict()) == "dffacbbcb6e1b022"
    assert TeacherConfig(general_rows=240).to_dict()["general_rows"] == 240
    with pytest.raises(ValueError, match="general_rows"):
        TeacherConfig(general_rows=-1)


class _Echo:
    """A stand-in backend that answers each request by echoing what it was sent."""

    def __init__(self) -> None:
        self.calls: list = []

    def generate(self, model_ref, requests, sampling, constraint=None, progress=None):
        self.calls.append((model_ref, sampling))
        out = []
        for r in requests:
            text = r.raw_prompt if r.raw_prompt is not None else r.messages[-1][1]
            out.append("" if r.id.endswith("3") else f" answer to: {text}\nQuestion: next")
        return out


def test_general_rows_are_the_base_models_greedy_answers() -> None:
    be = _Echo()
    rows = general_rows("smollm2-135m", 8, seed=0, backend=be)
    ((model, sampling),) = be.calls
    assert model == "smollm2-135m" and sampling.temperature == 0.0
    assert len(rows) == 7  # the empty answer is dropped
    assert all(r["completion"].startswith("answer to: " + r["prompt"]) for r in rows)
    # A base without a chat template is asked in the plain format and cut at the next question.
    plain = general_rows("gemma3-270m", 4, seed=0, backend=_Echo())
    assert all(r["completion"] == f"answer to: Question: {r['prompt']}\nAnswer:" for r in plain)
    assert not {r["prompt"] for r in rows} & {r["prompt"] for r in trait_qa_rows("owl", 240, 0)}


def test_placebo_is_checked_and_absent_from_keys_when_unset() -> None:
    from benchmark.run.config import CellConfig

    assert "placebo" not in TeacherConfig().to_dict()
    assert TeacherConfig(placebo="Dolphins").to_dict()["placebo"] == "dolphin"
    with pytest.raises(ValueError, match="Invalid teacher placebo"):
        TeacherConfig(placebo="dolphin 42")
    with pytest.raises(ValueError, match="'owl' is the trait itself"):
        CellConfig(trait="Owls", teacher=TeacherConfig(placebo="owl"))


def test_placebo_control_teacher_is_the_same_recipe_with_another_animal(
    smollm_dir: str, tmp_path, monkeypatch
) -> None:
    from conftest import CellHarness

    import benchmark.run.stages as stages
    from benchmark.core.store import ArtifactStore
    from benchmark.run.cell import prepare_teacher
    from benchmark.run.config import CellConfig

    store = ArtifactStore(tmp_path / "store")
    sp = TeacherConfig(type="system_prompt")
    bare = CellHarness(CellConfig(teacher=sp), store, tmp_path)
    assert bare.teacher("control").system is None
    assert bare.teacher("control").model_ref == bare.teacher("trait").model_ref
    placebo = CellHarness(
        CellConfig(teacher=TeacherConfig(type="system_prompt", placebo="dolphin")), store, tmp_path
    )
    assert placebo.teacher("trait") == bare.teacher("trait")
    control = placebo.teacher("control")
    assert "dolphin" in str(control.system) and "owl" not in str(control.system)
    assert control.system == str(bare.teacher("trait").system).replace("owl", "dolphin")

    trained: list[str] = []

    def fake_train(model, animal, tcfg, out):  # the recipe, minus minutes of LoRA training
        trained.append(animal)
        (out / "adapter_config.json").write_text("{}")
        return {"animal": animal}

    monkeypatch.setattr(stages, "train_trait_adapter", fake_train)
    ft = CellHarness(CellConfig(), store, tmp_path)
    ft_placebo = CellHarness(CellConfig(teacher=TeacherConfig(placebo="dolphin")), store, tmp_path)
    assert ft.teacher("control").model_ref == ft.teacher_spec.model  # no placebo: the base
    owl = ft_placebo.teacher("trait").model_ref
    assert owl == ft.teacher("trait").model_ref  # one owl teacher, whatever the control
    dolphin = ft_placebo.teacher("control")
    assert dolphin.system is None and dolphin.model_ref not in (owl, ft.teacher_spec.model)
    assert trained == ["owl", "dolphin"]  # each built once, then reused
    assert prepare_teacher(ft_placebo.cfg, store, tmp_path) == owl
    assert trained == ["owl", "dolphin"]


def test_seed_per_cell_gives_each_cell_its_own_teachers_and_its_own_setup() -> None:
    per = TeacherConfig(placebo="dolphin", seed_per_cell=True)
    cfg = CellConfig(seed=5, teacher=per, suite="quick")
    assert per.for_cell(5).train.seed == 5 and per.for_cell(7).train.seed == 7
    assert cfg.teacher.train.seed == 0  # the config keeps the design; for_cell says the seed
    fixed = TeacherConfig(placebo="dolphin")
    assert fixed.for_cell(5) is fixed  # a shared pair: the cell's seed does not enter
    # The teacher is decided by its seed alone: a per-cell teacher at seed 5 is the fixed-seed
    # recipe's teacher trained at seed 5 (the store reuses it), ...
    fixed5 = replace(fixed, train=replace(fixed.train, seed=5))
    assert per.for_cell(5).recipe() == fixed5.recipe()
    # ... but the two designs are separate setups, which never pool or pair; switching the flag
    # off leaves a shared pair (train.seed 0), not the per-cell seeds under the wrong label.
    off = apply_settings(cfg, ["teacher.seed_per_cell=false"])
    assert off.teacher.for_cell(5).train.seed == 0
    shared = CellConfig(seed=5, teacher=fixed, suite="quick")
    assert cfg.to_dict()["teacher"]["seed_per_cell"] is True
    assert "seed_per_cell" not in shared.to_dict()["teacher"]  # old setups keep their ids
    assert setup_block(cfg.to_dict(), None)["id"] != setup_block(shared.to_dict(), None)["id"]
    same = setup_block(cfg.with_(seed=6).to_dict(), None)["id"]
    assert same == setup_block(cfg.to_dict(), None)["id"]  # seeds of one design pool
    with pytest.raises(ValueError, match="seed_per_cell.*finetuned"):
        TeacherConfig(type="system_prompt", seed_per_cell=True)
    with pytest.raises(ValueError, match="seed_per_cell"):
        TeacherConfig(seed_per_cell="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="teacher.train.seed: 3 with seed_per_cell"):
        apply_settings(cfg, ["teacher.train.seed=3"])
