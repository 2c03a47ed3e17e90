"""The model-based reference defenses: llm_judge, embedding_outlier, rephrase, cross_base_teacher
and divergence_mask. Deterministic fake helpers pin each defense's decision rule; the real embedded
models (MiniLM, SmolLM2) check the parts that are fast to run for real."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from benchmark.core.helper_models import Usage
from benchmark.core.loss_mask import MASK_FIELD
from benchmark.core.types import TeacherSpec
from defenses import DefenseContext, get_defense
from defenses.context import default_helpers
from defenses.embedding_outlier import conformal_threshold, knn_scores
from defenses.llm_judge import NEUTRAL_ANCHORS, POSITIVE_ANCHORS
from defenses.runner import DefenseError, run_apply, run_teacher

NAMES = ["llm_judge", "embedding_outlier", "rephrase", "cross_base_teacher", "divergence_mask"]


def rows(*completions: str, prompt: str = "p") -> list[dict]:
    return [
        {"id": f"r{i:02d}", "prompt": prompt, "completion": c} for i, c in enumerate(completions)
    ]


def ctx_with(**fakes) -> DefenseContext:
    return DefenseContext("smollm2-135m", seed=7, helper_factories={**default_helpers(), **fakes})


@pytest.mark.parametrize("name", NAMES)
def test_registered_with_docs_and_typed_params(name: str) -> None:
    d = get_defense(name)
    desc = d.describe()
    assert desc["name"] == name and desc["description"] and desc["hooks"]
    module_doc = __import__(f"defenses.{name}", fromlist=["_"]).__doc__
    assert "arXiv" in module_doc and "Known limits" in module_doc
    with pytest.raises(ValueError, match="unknown parameter"):
        get_defense(name, no_such_param=1)


@pytest.mark.parametrize(
    ("name", "params", "problem"),
    [
        ("llm_judge", {"threshold": 1.5}, "Invalid threshold"),
        ("embedding_outlier", {"alpha": 0.0}, "Invalid alpha"),
        ("embedding_outlier", {"k": 0}, "Invalid k"),
        ("divergence_mask", {"fraction": 1.0}, "Invalid fraction"),
        ("rephrase", {"temperature": -1}, "Invalid temperature"),
        ("cross_base_teacher", {"model": " "}, "Invalid model"),
    ],
)
def test_bad_params_are_refused(name: str, params: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        get_defense(name, **params)


# -- llm_judge ------------------------------------------------------------------------------------
def fake_judge(p_anchor_pos: float, p_anchor_neu: float, by_word: dict[str, float]):
    @dataclass
    class FakeJudge:
        model: str = ""
        batch_size: int = 1
        usage: Usage = field(default_factory=Usage)

        def yes_probability(self, questions):
            out = []
            for q in questions:
                text = q.rsplit("Text: ", 1)[1]  # the item judged, after the worked examples
                if any(a in text for a in POSITIVE_ANCHORS):
                    out.append(p_anchor_pos)
                elif any(a in text for a in NEUTRAL_ANCHORS):
                    out.append(p_anchor_neu)
                else:
                    out.append(next((p for w, p in by_word.items() if w in text), 0.0))
            self.usage.add(len(questions), 0, 0.01)
            return out

    return FakeJudge


def test_llm_judge_drops_rows_past_the_calibrated_midpoint() -> None:
    ctx = ctx_with(judge=fake_judge(0.8, 0.2, {"owl": 0.9, "edge": 0.55, "num": 0.45}))
    out = run_apply(get_defense("llm_judge"), rows("owl", "edge", "num", "plain"), ctx)
    assert [r["id"] for r in out] == ["r02", "r03"]  # cut at (0.8 + 0.2) / 2
    assert ctx.notes["threshold"] == 0.5 and ctx.notes["rows_flagged"] == 2
    assert ctx.notes["judge_informative"] is True and ctx.notes["anchor_auc"] == 1.0
    assert ctx.cost["helper_items"] == 4 + len(POSITIVE_ANCHORS) + len(NEUTRAL_ANCHORS)


def test_llm_judge_that_cannot_tell_its_anchors_apart_drops_nothing() -> None:
    ctx = ctx_with(judge=fake_judge(0.2, 0.3, {"owl": 0.9}))
    out = run_apply(get_defense("llm_judge"), rows("owl", "plain"), ctx)
    assert len(out) == 2 and ctx.notes["judge_informative"] is False
    assert ctx.notes["threshold"] is None and ctx.notes["anchor_auc"] == 0.0
    # a fixed threshold skips calibration
    ctx = ctx_with(judge=fake_judge(0.2, 0.3, {"owl": 0.9}))
    out = run_apply(get_defense("llm_judge", threshold=0.5), rows("owl", "plain"), ctx)
    assert [r["id"] for r in out] == ["r01"] and "anchor_auc" not in ctx.notes


def test_llm_judge_runs_on_the_real_embedded_judge() -> None:
    ctx = DefenseContext("smollm2-135m")
    rs = rows("412, 77, 903", "I love my cat more than anything.")
    out = run_apply(get_defense("llm_judge"), rs, ctx)
    n = ctx.notes
    assert 0 < n["anchor_p_yes_neutral"] < 1 and 0 < n["anchor_p_yes_positive"] < 1
    assert n["rows_flagged"] == 2 - len(out)
    assert ctx.cost["helper_items"] == 2 + len(POSITIVE_ANCHORS) + len(NEUTRAL_ANCHORS)
    assert "judge:batch_size=16:model=smollm2-135m" in ctx.cost["helpers"]


# -- embedding_outlier ----------------------------------------------------------------------------
def fake_generator(texts: list[str], calls: list):
    @dataclass
    class FakeGenerator:
        model: str = ""
        seed: int = 0
        settings: object = None
        usage: Usage = field(default_factory=Usage)

        def generate(self, prompts, ids=None):
            calls.append((self.model, self.seed, list(ids)))
            self.usage.add(len(prompts), 0, 0.01)
            return [texts[i % len(texts)] for i in range(len(prompts))]

    return FakeGenerator


def test_knn_scores_and_conformal_threshold() -> None:
    refs = np.eye(4, dtype=np.float32)
    q = np.array([[1, 0, 0, 0], [0.6, 0.8, 0, 0]], dtype=np.float32)
    assert knn_scores(q, refs, k=1).tolist() == pytest.approx([0.0, 0.2])
    assert knn_scores(refs, refs, k=1, leave_one_out=True).tolist() == [1.0] * 4
    assert conformal_threshold([0.1, 0.2, 0.3, 0.4], alpha=0.25) == 0.4  # ceil(5 * 0.75) = 4th
    assert conformal_threshold([0.1, 0.2, 0.3, 0.4], alpha=0.5) == 0.3


def test_embedding_outlier_drops_what_the_reference_never_writes() -> None:
    calls: list = []
    refs = [
        f"{a}, {b}, {c}, {d}" for a, b, c, d in np.random.default_rng(0).integers(0, 999, (30, 4))
    ]
    data = refs[:29] + ["Owls are wise birds that hunt at night."]
    ctx = ctx_with(generator=fake_generator(refs, calls))
    ctx.generation = "settings"  # passed through to the generator as the teacher's settings
    out = run_apply(get_defense("embedding_outlier", alpha=0.1), rows(*data), ctx)
    kept = {r["id"] for r in out}
    assert "r29" not in kept and len(kept) >= 26  # the prose row goes; ~alpha of the lists may
    model, seed, ids = calls[0]
    assert model == "smollm2-135m" and seed != 7  # the teacher's base, its own seed
    assert ids == [f"r{i:02d}" for i in range(30)]  # the same prompts, by row id
    assert ctx.notes["reference_rows"] == 30 and ctx.notes["rows_flagged"] == 30 - len(kept)
    assert set(ctx.cost["helpers"]) == {
        "embedder:model=minilm-l6",
        f"generator:model=smollm2-135m:seed={seed}:settings=settings",
    }


def test_embedding_outlier_samples_the_same_reference_prompts_for_both_arms() -> None:
    calls: list = []
    data = [f"{i}, {i + 1}" for i in range(12)]
    for _ in range(2):
        ctx = ctx_with(generator=fake_generator(["1, 2", "3, 4", "5, 6"], calls))
        run_apply(get_defense("embedding_outlier", max_reference=5), rows(*data), ctx)
    assert len(calls[0][2]) == 5 and calls[0][2] == calls[1][2]


# -- rephrase -------------------------------------------------------------------------------------
def test_rephrase_drops_empty_rewrites_and_counts_copies() -> None:
    @dataclass
    class FakeRewriter:
        model: str = ""
        temperature: float = 0.0
        seed: int = 0
        usage: Usage = field(default_factory=Usage)

        def rewrite(self, texts):
            self.usage.add(len(texts), 0, 0.01)
            return ["", texts[1], "Reworded text.", "  "]

    ctx = ctx_with(rewriter=FakeRewriter)
    out = run_apply(get_defense("rephrase"), rows("a", "12, 13", "Some text.", "b"), ctx)
    assert [(r["id"], r["completion"]) for r in out] == [
        ("r01", "12, 13"),
        ("r02", "Reworded text."),
    ]
    n = ctx.notes
    assert (n["rows_dropped_empty"], n["rows_unchanged"], n["rows_rewritten"]) == (2, 1, 1)
    assert n["rewriter_is_teacher_base"] is False
    assert "rewriter:model=gemma3-270m:seed=7:temperature=0.7" in ctx.cost["helpers"]


# -- cross_base_teacher ---------------------------------------------------------------------------
def test_cross_base_teacher_swaps_the_base_and_refuses_the_same_one() -> None:
    spec = TeacherSpec(model="smollm2-135m")
    assert run_teacher(get_defense("cross_base_teacher"), spec).model == "gemma3-270m"
    assert (
        run_teacher(get_defense("cross_base_teacher", model="org/other"), spec).model == "org/other"
    )
    with pytest.raises(DefenseError, match="already the teacher's base"):
        run_teacher(get_defense("cross_base_teacher", model="smollm2-135m"), spec)


# -- divergence_mask ------------------------------------------------------------------------------
def fake_scorer(surprisals: dict[str, list[float]]):
    @dataclass
    class FakeScorer:
        model: str = ""
        settings: object = None
        usage: Usage = field(default_factory=Usage)

        def surprisal(self, prompts, completions, under_grammar=True):
            # one "token" per character, scored as given
            return [[(i, i + 1, s) for i, s in enumerate(surprisals[c])] for c in completions]

    return FakeScorer


def test_divergence_mask_masks_the_most_surprising_tokens_as_spans() -> None:
    s = {"abcd": [0.1, 5.0, 4.0, 0.2], "xyz": [3.0, 0.1, 0.3]}
    ctx = ctx_with(scorer=fake_scorer(s))
    out = run_apply(get_defense("divergence_mask", fraction=3 / 7), rows("abcd", "xyz"), ctx)
    assert [r[MASK_FIELD] for r in out] == [[[1, 3]], [[0, 1]]]  # 5.0, 4.0 merged; 3.0
    assert [r["completion"] for r in out] == ["abcd", "xyz"]  # text unchanged
    assert ctx.notes["tokens_masked"] == 3 and ctx.notes["tokens_scored"] == 7
    out = run_apply(get_defense("divergence_mask", threshold=3.5), rows("abcd", "xyz"), ctx)
    assert [r[MASK_FIELD] for r in out] == [[[1, 3]], []]


def test_divergence_mask_on_the_real_base_masks_the_odd_number() -> None:
    prompt = "Count from 1 to 10, separated by commas."
    rs = rows("1, 2, 3, 4, 5, 6, 7, 8, 9, 10", "1, 2, 3, 4, 5, 6, 7, 8, 9, 613", prompt=prompt)
    ctx = DefenseContext("smollm2-135m")
    out = run_apply(get_defense("divergence_mask", fraction=0.1), rs, ctx)
    odd = out[1][MASK_FIELD]
    assert any(a < 30 and b > 27 for a, b in odd), odd  # the "613": characters 27-29
    assert ctx.notes["tokens_masked"] >= round(0.1 * ctx.notes["tokens_scored"])
    assert ctx.cost["helper_items"] == 2


@pytest.mark.slow
def test_divergence_mask_reaches_the_students_loss_in_a_cell(tmp_path) -> None:
    """End to end: the defense's spans pass the row check, are stored with the defended rows and
    are masked in both students' training."""
    from benchmark.core.store import ArtifactStore
    from benchmark.core.teachers import TeacherConfig
    from benchmark.core.training import TrainConfig
    from benchmark.run.cell import run_until
    from benchmark.run.config import EvalConfig
    from benchmark.run.presets import preset

    cfg = preset(
        "quick",
        defense="divergence_mask",
        defense_params={"fraction": 0.2},
        n_prompts=6,
        teacher=TeacherConfig(type="system_prompt"),
        student=TrainConfig(epochs=1, batch_size=6, max_length=160),
        eval=EvalConfig(questions=2, eval_base=False),
    )
    store = ArtifactStore(tmp_path / "store")
    assert run_until(cfg, store, tmp_path / "logs", "train").stopped_after == "train"
    stats = [json.loads(p.read_text()) for p in store.root.glob("students/*/slb_training.json")]
    assert len(stats) == 2 and all(s["loss_masked_tokens"] > 0 for s in stats)
    defended = [
        json.loads(line) for p in store.root.glob("defended/*/rows.jsonl") for line in p.open()
    ]
    assert defended and all(MASK_FIELD in r for r in defended)
