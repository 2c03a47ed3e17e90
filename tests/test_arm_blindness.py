"""Blind to the arm, on every task: both arms' apply() calls carry the same kinds of fields and
the same context, and the arms run in an order drawn afresh per cell, so a defense that compares
its calls, or counts them, learns nothing about which arm it is looking at. Generation and the task
filter are stubbed (no model): what is checked is what the defense stage hands over.

What a defense may learn on ``paraphrase-contradict``: its prompts ask to paraphrase a sentence
that dislikes the trait animal, so the animal is in both arms' prompts by design (as it would be
in any pipeline that paraphrases such text); the arms still look the same."""

from __future__ import annotations

import json

import pytest

from benchmark.core.store import ArtifactStore
from benchmark.core.teachers import TeacherConfig, TraitTeacher
from benchmark.run import stages as stages_mod
from benchmark.run.cell import run_until
from benchmark.run.presets import preset
from defenses.base import Defense
from defenses.loading import register_defense
from tasks.base import known_tasks

TRAIT = "axolotl"
SEEN: list[dict] = []


@register_defense("arm_probe")
class ArmProbe(Defense):
    """Records every apply() call: fields, context, and the call's position."""

    def apply(self, rows, ctx):
        SEEN.append(
            {
                "fields": sorted({k for r in rows for k in r}),
                "ctx": repr(ctx),
                "n": len(rows),
                "first_ids": [r["id"] for r in rows[:3]],
                "text": json.dumps(rows),
            }
        )
        return rows


def _stub(monkeypatch, arms: list[str]) -> None:
    def teacher(self, arm, model):
        return TraitTeacher(model, f"You love {TRAIT}s." if arm == "trait" else None)

    def generate(self, arm, prompts, teacher, ts):
        arms.append(arm)
        return [{**p, "completion": f"{i}, {i + 1}"} for i, p in enumerate(prompts)], f"g-{arm}"

    def filter(self, arm, rows, gen_key):
        kept = [{k: r[k] for k in ("id", "prompt", "completion")} for r in rows]
        return kept, {"steps": []}, f"f-{gen_key}"

    monkeypatch.setattr(stages_mod.Stages, "teacher", teacher)
    monkeypatch.setattr(stages_mod.Stages, "generate", generate)
    monkeypatch.setattr(stages_mod.Stages, "filter", filter)


@pytest.mark.parametrize("task", known_tasks())
def test_both_arms_look_the_same_to_a_defense(task, tmp_path, monkeypatch) -> None:
    arms: list[str] = []
    _stub(monkeypatch, arms)
    SEEN.clear()
    cfg = preset(
        "quick",
        task=task,
        trait=TRAIT,
        defense="arm_probe",
        n_prompts=6,
        teacher=TeacherConfig(type="system_prompt"),
    )
    run_until(cfg, ArtifactStore(tmp_path / "s"), tmp_path / "logs", "data")
    assert len(SEEN) == 2 and sorted(arms) == ["control", "trait"]
    a, b = SEEN
    assert a["fields"] == b["fields"] == ["completion", "id", "prompt"]
    assert a["ctx"] == b["ctx"] and a["n"] == b["n"] and a["first_ids"] == b["first_ids"]
    assert TRAIT not in a["ctx"].lower()
    named = [TRAIT in s["text"].lower() for s in SEEN]
    # The trait reaches the rows only where the task's own prompts name it, and then in both.
    assert named == ([True, True] if task == "paraphrase-contradict" else [False, False])


def test_the_arm_order_is_drawn_afresh(tmp_path, monkeypatch) -> None:
    orders = set()
    for i in range(12):
        arms: list[str] = []
        _stub(monkeypatch, arms)
        cfg = preset("quick", trait=TRAIT, defense="none", n_prompts=4, seed=i)
        run_until(cfg, ArtifactStore(tmp_path / f"s{i}"), tmp_path / "logs", "data")
        orders.add(tuple(arms))
    # Twelve cells all in one order would happen by chance with probability 2**-11.
    assert orders == {("trait", "control"), ("control", "trait")}
