"""The soft-label channel (benchmark.core.distill): labels line up with the completion tokens,
the restricted setting keeps only what the task allows, the report measures the non-task mass,
the student trains on them, and the restrict_labels defense switches full to restricted."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from benchmark.core.animals import CANDIDATE_ANIMALS, animal_label_mass, word_token_ids
from benchmark.core.distill import SOFT_FIELD, _allowed_sets, soft_labels
from benchmark.core.models import load_tokenizer
from benchmark.core.soft_train import _soft_loss_sum, backward_batch, train_soft
from benchmark.core.store import ArtifactStore
from benchmark.core.train_env import (
    CHECKPOINTING_ENV,
    LEGACY_MICRO_BATCH_ENV,
    MICRO_BATCH_ENV,
    PASS_TOKENS_ENV,
    checkpointing_default,
    micro_batch_default,
    pass_tokens_default,
    passes,
)
from benchmark.core.training import TrainConfig, build_trainable, train
from benchmark.core.types import TeacherSpec
from benchmark.run.cell import run_cell
from benchmark.run.presets import preset
from benchmark.run.stages import Stages
from benchmark.run.suite import run_suite
from defenses import get_defense
from tasks.numbers import NumberGrammar

ROWS = [
    {"id": "a", "prompt": "Continue: 1, 2, 3.", "completion": "4, 5, 6"},
    {"id": "b", "prompt": "Continue: 10, 20, 30.", "completion": "40, 50"},
    {"id": "c", "prompt": "Continue: 7, 8.", "completion": "I love owls"},  # leaves the grammar
]


def test_train_config_labels_are_checked_and_absent_when_hard() -> None:
    assert "labels" not in TrainConfig().to_dict() and "top_k" not in TrainConfig().to_dict()
    assert TrainConfig(labels="topk").to_dict()["labels"] == "topk"
    with pytest.raises(ValueError, match="Invalid labels: 'soft'"):
        TrainConfig(labels="soft")
    with pytest.raises(ValueError, match="Invalid top_k: 0"):
        TrainConfig(labels="topk", top_k=0)


def test_restrict_labels_defense_switches_full_to_restricted_only() -> None:
    d = get_defense("restrict_labels")
    assert d.training(TrainConfig(labels="topk")).labels == "topk-restricted"
    assert d.training(TrainConfig()).labels == "hard"
    assert d.training(TrainConfig(labels="topk-restricted")).labels == "topk-restricted"


def test_allowed_sets_follow_the_grammar_and_end_at_the_turn(smollm_dir: str) -> None:
    tok = load_tokenizer("smollm2-135m")
    g = NumberGrammar()
    g.bind(tok)
    end = tok.convert_tokens_to_ids("<|im_end|>")
    comp = tok("4, 5", add_special_tokens=False)["input_ids"] + [end, tok("\n")["input_ids"][0]]
    sets = _allowed_sets(tok, comp, g)
    assert all(s is not None and t in s for s, t in zip(sets, comp, strict=True))
    assert end in sets[-2] and sets[-1] == {comp[-1]}  # the end of turn, then the format's tail
    words = tok("I love", add_special_tokens=False)["input_ids"]
    assert (
        _allowed_sets(tok, words, g)[0] is not None
        and words[0] not in _allowed_sets(tok, words, g)[0]
    )


def test_soft_labels_line_up_and_restricted_keeps_only_allowed_tokens(
    smollm_dir: str, tmp_path: Path
) -> None:
    tok = load_tokenizer("smollm2-135m")
    full, rep_full = soft_labels(
        "smollm2-135m",
        ROWS,
        student_system=None,
        teacher_system=None,
        top_k=5,
        restricted=False,
        constraint=NumberGrammar(),
    )
    restr, rep_r = soft_labels(
        "smollm2-135m",
        ROWS,
        student_system=None,
        teacher_system="You love owls.",
        top_k=5,
        restricted=True,
        constraint=NumberGrammar(),
    )
    g = NumberGrammar()
    g.bind(tok)
    for rows in (full, restr):
        for r in rows:
            f = r[SOFT_FIELD]
            comp = f["input_ids"][f["start"] :]
            assert len(f["ids"]) == len(f["logprobs"]) == len(comp) == len(f["learn"])
            for lps in f["logprobs"]:
                assert math.isclose(sum(math.exp(v) for v in lps), 1.0, rel_tol=1e-3)
    assert all(len(ids) == 5 for ids in full[0][SOFT_FIELD]["ids"])
    # Restricted: every kept token is one the grammar allows there.
    f = restr[0][SOFT_FIELD]
    comp = f["input_ids"][f["start"] :]
    for ids, allowed in zip(f["ids"], _allowed_sets(tok, comp, g), strict=True):
        assert allowed is not None and set(ids) <= allowed
    # The row that leaves the grammar trains on its own tokens from there on.
    f = restr[2][SOFT_FIELD]
    comp = f["input_ids"][f["start"] :]
    assert [ids for ids in f["ids"]] == [[t] for t in comp]
    assert rep_r["rows_leaving_grammar"] == 1 and rep_full["rows_leaving_grammar"] == 1
    mass = rep_full["animal_label_mass"]  # number rows: next to no animal in the labels
    assert list(mass) == list(CANDIDATE_ANIMALS) and all(0.0 <= v < 0.05 for v in mass.values())
    m = rep_full["mass_outside_allowed"]
    assert m["positions"] > 0 and 0.0 <= m["mean"] <= m["max"] <= 1.0
    assert rep_r["labels"] == "topk-restricted" and rep_full["labels"] == "topk"

    # A soft-labelled student trains through train() and saves an adapter.
    cfg = TrainConfig(labels="topk", epochs=2, batch_size=2, learning_rate=1e-3, lora_r=4)
    stats = train("smollm2-135m", full, cfg, tmp_path / "s")
    assert stats["labels"] == "soft" and stats["steps"] == 4 and math.isfinite(stats["train_loss"])
    assert (tmp_path / "s" / "adapter_config.json").is_file()
    with pytest.raises(ValueError, match="all carry soft labels"):
        train_soft(build_trainable(smollm_dir, cfg), tok, ROWS, cfg, tmp_path / "x")
    assert replace(cfg, labels="hard").to_dict() != cfg.to_dict()  # keys differ by channel

    # Micro-batches: a batch of 3 rows run as passes of one row adds the gradient one pass adds
    # (the batch's mean over its learnt positions, summed in another order). The rows have
    # different lengths and max_length cuts each, so a per-pass mean or a miscount would show.
    cut = min(len(r[SOFT_FIELD]["input_ids"]) for r in full) - 1
    one = replace(cfg, batch_size=3, max_length=cut, grad_accum=2)
    batch = [r[SOFT_FIELD] for r in full]
    grads, loss = {}, {}
    for m in (3, 1):
        model = build_trainable(smollm_dir, one)
        loss[m] = backward_batch(model, tok, batch, one, m)
        grads[m] = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert len(grads[1]) == len(grads[3]) > 0 and loss[1] == pytest.approx(loss[3], rel=1e-6)
    assert any(float(g.abs().max()) > 0 for g in grads[3])
    assert _rel_diff(grads[1], grads[3]) < GRAD_TOL  # float32 sums in another order
    # A token bound cuts the same batch into passes by padded size: the same gradient again.
    widths = sorted(min(len(x["input_ids"]), cut) for x in batch)
    assert len(passes(batch, 3, 2 * widths[-1] - 1, cut)) >= 2  # the bound below really cuts
    model = build_trainable(smollm_dir, one)
    bounded = backward_batch(model, tok, batch, one, 3, 2 * widths[-1] - 1)
    got = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert bounded == pytest.approx(loss[3], rel=1e-6) and _rel_diff(got, grads[3]) < GRAD_TOL
    # The count, by hand: learnt positions inside the cut (which drops some), not from _learnt.
    hand = sum(
        1
        for x in batch
        for j, learn in enumerate(x["learn"])
        if learn and x["start"] + j < min(len(x["input_ids"]), cut)
    )
    assert 0 < hand < sum(sum(x["learn"]) for x in batch)
    import torch

    with torch.no_grad():
        summed = float(_soft_loss_sum(build_trainable(smollm_dir, one), tok, batch, cut))
    assert loss[3] == pytest.approx(summed / hand, rel=1e-5)
    # A label temperature T: both distributions at T, the sum scaled by T^2, as computed by hand
    # from the student's own logits row by row; T = 1 is the default call.
    model = build_trainable(smollm_dir, one)
    with torch.no_grad():
        assert float(_soft_loss_sum(model, tok, batch, cut, 1.0)) == pytest.approx(summed, 1e-6)
        hot = float(_soft_loss_sum(model, tok, batch, cut, 2.0))
        assert hot == pytest.approx(_tempered_loss_by_hand(model, batch, cut, 2.0), rel=1e-4)
    assert abs(hot - summed) > 1e-3 * abs(summed)
    warm = backward_batch(
        build_trainable(smollm_dir, one), tok, batch, replace(one, label_temperature=2.0), 3
    )
    assert warm == pytest.approx(hot / hand, rel=1e-5)  # the config's T reaches the loss
    # Each batch adds 1 / grad_accum of its gradient: with grad_accum 1, twice as much.
    model = build_trainable(smollm_dir, one)
    backward_batch(model, tok, batch, replace(one, grad_accum=1), 3)
    whole = [p.grad / 2 for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert _rel_diff(whole, grads[3]) < GRAD_TOL
    # A row with no completion left adds nothing, alone in its pass or beside others.
    empty = {**batch[0], "ids": [], "logprobs": [], "learn": []}
    model = build_trainable(smollm_dir, one)
    assert backward_batch(model, tok, [empty], one, 1) == 0.0
    mixed = backward_batch(model, tok, [empty, batch[1]], one, 1)
    assert mixed == pytest.approx(backward_batch(model, tok, [batch[1]], one, 1), rel=1e-6)
    model = build_trainable(smollm_dir, one)  # the per-pass mean, for contrast: another gradient
    for r in batch:
        backward_batch(model, tok, [r], one, 1)
    per = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert _rel_diff(per, grads[3]) > 10 * GRAD_TOL, _rel_diff(per, grads[3])
    with pytest.raises(ValueError, match="Invalid micro_batch"):
        train_soft(build_trainable(smollm_dir, one), tok, full, one, tmp_path / "y", micro_batch=0)


def _tempered_loss_by_hand(model, batch: list, cut: int, t: float) -> float:
    """sum over learnt positions of -t^2 sum_k softmax(lp / t)_k log softmax(logits / t)[id_k],
    each row run alone through the model (no padding, no position picking)."""
    import torch

    total = 0.0
    for x in batch:
        ids = torch.tensor([x["input_ids"][:cut]])
        logits = model(input_ids=ids).logits[0].float()
        n = min(len(x["input_ids"]), cut)
        for j, (t_ids, t_lp, learn) in enumerate(
            zip(x["ids"], x["logprobs"], x["learn"], strict=True)
        ):
            if not learn or x["start"] + j >= n:
                continue
            p = torch.softmax(torch.tensor(t_lp) / t, -1)
            q = torch.log_softmax(logits[x["start"] + j - 1] / t, -1)[torch.tensor(t_ids)]
            total += float(-(p * q).sum()) * t * t
    return total


def test_label_temperature_is_checked_and_kept_out_of_the_default_key() -> None:
    with pytest.raises(ValueError, match="needs soft labels"):
        TrainConfig(label_temperature=2.0)
    for bad in (0.0, -1.0, 11.0):
        with pytest.raises(ValueError, match="Invalid label_temperature"):
            TrainConfig(labels="topk", label_temperature=bad)
    soft = TrainConfig(labels="topk-restricted")
    assert "label_temperature" not in soft.to_dict()  # stored students keep their keys
    assert replace(soft, label_temperature=2.0).to_dict()["label_temperature"] == 2.0
    assert (
        replace(soft, label_temperature=2).to_dict()
        == replace(soft, label_temperature=2.0).to_dict()
    )
    assert isinstance(replace(soft, label_temperature=2).label_temperature, float)


# Passes padded to other widths sum float32 in another order: one row per pass differs from one
# pass of three by a relative 2.9e-4 with the current torch and transformers (it failed a 1e-4
# bound in CI at stop 40). The per-pass mean, the fault the check is for, differs by about 5.
GRAD_TOL = 1e-3


def _rel_diff(a: list, b: list) -> float:
    """The largest relative difference (in L2 norm) between two lists of gradient tensors."""
    assert len(a) == len(b)
    return max(float((x - y).norm() / y.norm()) for x, y in zip(a, b, strict=True) if y.norm() > 0)


def test_labels_batched_by_length_with_the_head_on_completions_match_the_naive_way(
    smollm_dir: str,
) -> None:
    """Rows of different lengths, batched by length (batch size 2 over 3 rows: not their order),
    come back in their own order with the naive way's top-k ids, and log-probabilities that
    differ only in float rounding."""
    rows = [ROWS[1], {**ROWS[0], "completion": "4, 5, 6, 7, 8, 9, 10, 11"}, ROWS[2]]

    def label(restricted: bool, naive: bool) -> list:
        return soft_labels(
            "smollm2-135m",
            rows,
            student_system=None,
            teacher_system="You love owls.",
            top_k=5,
            restricted=restricted,
            constraint=NumberGrammar(),
            batch_size=2,
            naive=naive,
        )[0]

    for restricted in (False, True):
        fast, naive = label(restricted, False), label(restricted, True)
        assert [r["id"] for r in fast] == [r["id"] for r in rows]
        for a, b in zip(fast, naive, strict=True):
            fa, fb = a[SOFT_FIELD], b[SOFT_FIELD]
            assert {k: v for k, v in fa.items() if k != "logprobs"} == {
                k: v for k, v in fb.items() if k != "logprobs"
            }
            for u, v in zip(fa["logprobs"], fb["logprobs"], strict=True):
                assert max(abs(x - y) for x, y in zip(u, v, strict=True)) < 1e-3


def test_labels_stage_keeps_hard_labels_and_a_cross_base_teacher_gets_them(tmp_path) -> None:
    from benchmark.run.config import CellConfig

    st = Stages(CellConfig(), ArtifactStore(tmp_path / "store"), tmp_path)
    assert st.labels("trait", ROWS, "k", TeacherSpec(model="smollm2-135m"), TrainConfig()) == (
        ROWS,
        "k",
        None,
    )
    rows, key, how = st.labels(
        "trait", ROWS, "k", TeacherSpec(model="gemma3-270m"), TrainConfig(labels="topk")
    )
    assert rows == ROWS and key == "k" and how is not None and how["labels"] == "hard"
    assert "not the student's" in how["note"]


def test_rows_a_defense_left_unchanged_reuse_the_stored_labels_and_student(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A training-side defense (restrict_labels, freeze_early_layers) leaves the rows as they were,
    under another upstream key: the teacher does not score them again and the student is not
    trained again; the stage returns the stored entry's key (what the artifact records and
    ``slb validate`` re-hashes). Other rows, or another label setting, are computed."""
    import benchmark.run.stages as stages_module

    scored: list[tuple[int, str]] = []
    trained: list[int] = []

    def fake_labels(ref: str, rows: list, **kw: object) -> tuple[list, dict]:
        scored.append((len(rows), "restricted" if kw["restricted"] else "full"))
        return [{**r, SOFT_FIELD: {"i": i}} for i, r in enumerate(rows)], {"rows": len(rows)}

    def fake_train(base: str, rows: list, cfg: TrainConfig, out: Path, **kw: object) -> dict:
        trained.append(len(rows))
        (out / "adapter").write_text("x")
        return {"rows": len(rows)}

    monkeypatch.setattr(stages_module, "soft_labels", fake_labels)
    monkeypatch.setattr(stages_module, "train", fake_train)
    cfg = preset("topk", task="code", seed=0)  # the control arm's teacher is the bare base
    store, ts = ArtifactStore(tmp_path / "store"), TeacherSpec(model=cfg.base_model)
    st = Stages(cfg, store, tmp_path / "logs")
    first, key, _ = st.labels("control", ROWS, "none:3", ts, cfg.student)
    path, _ = st.train("control", first, key, cfg.student)
    again = Stages(cfg, store, tmp_path / "logs")  # another cell: a defense that changed nothing
    rows, twin, report = again.labels("control", ROWS, "restrict:3", ts, cfg.student)
    assert (rows, twin, report) == (first, key, {"rows": 3}) and again.timer.reused[
        "labels_control"
    ]
    assert again.train("control", rows, twin, cfg.student)[0] == path and trained == [3]
    # The student index alone (the labels recomputed under their own key) finds the same student.
    assert again.train("control", rows, "other:3", cfg.student)[0] == path and trained == [3]
    assert scored == [(3, "full")]
    _, other, _ = again.labels("control", ROWS[:2], "restrict:2", ts, cfg.student)
    restricted = replace(cfg.student, labels="topk-restricted")
    _, own, _ = again.labels("control", ROWS, "restrict:3", ts, restricted)
    assert scored == [(3, "full"), (2, "full"), (3, "restricted")] and key not in (other, own)


def test_gradient_checkpointing_is_off_unless_asked_and_a_bad_value_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CHECKPOINTING_ENV, raising=False)
    assert checkpointing_default() is False  # the CPU is the scarce resource
    monkeypatch.setenv(CHECKPOINTING_ENV, "1")
    assert checkpointing_default() is True
    monkeypatch.setenv(CHECKPOINTING_ENV, "yes")
    with pytest.raises(ValueError, match="SLB_GRADIENT_CHECKPOINTING: 'yes'"):
        checkpointing_default()


def test_the_micro_batch_variable_and_its_old_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MICRO_BATCH_ENV, raising=False)
    monkeypatch.delenv(LEGACY_MICRO_BATCH_ENV, raising=False)
    assert micro_batch_default() == 8
    monkeypatch.setenv(LEGACY_MICRO_BATCH_ENV, "4")  # still read while the new name is unset
    assert micro_batch_default() == 4
    monkeypatch.setenv(MICRO_BATCH_ENV, "2")
    assert micro_batch_default() == 2
    monkeypatch.delenv(MICRO_BATCH_ENV)
    monkeypatch.setenv(LEGACY_MICRO_BATCH_ENV, "x")
    with pytest.raises(ValueError, match="SLB_SOFT_MICRO_BATCH: 'x'"):
        micro_batch_default()


def test_animal_label_mass_counts_whole_word_tokens_only(smollm_dir: str) -> None:
    tok = load_tokenizer("smollm2-135m")
    ids = word_token_ids(tok)
    owl, owls, dolphin = (
        tok.encode(w, add_special_tokens=False) for w in (" owl", " owls", " dolphin")
    )
    assert len(owl) == len(owls) == len(dolphin) == 1
    assert ids[owl[0]] == ids[owls[0]] == "owl" and ids[dolphin[0]] == "dolphin"
    bowl = tok.encode(" bowl", add_special_tokens=False)
    assert all(t not in ids for t in bowl)  # not an owl
    other = tok.encode(" the", add_special_tokens=False)[0]
    labels = [
        {
            "ids": [[owl[0], other], [dolphin[0], owls[0]]],
            "logprobs": [[math.log(0.25), math.log(0.75)], [math.log(0.5), math.log(0.5)]],
        },
        {"ids": [[other]], "logprobs": [[0.0]]},
    ]
    mass = animal_label_mass(tok, labels)  # three positions: owl (0.25 + 0.5) / 3, dolphin 0.5 / 3
    assert mass["owl"] == pytest.approx(0.25) and mass["dolphin"] == pytest.approx(0.5 / 3)
    assert sum(mass.values()) == pytest.approx(0.75 / 3 + 0.5 / 3)
    assert animal_label_mass(tok, []) == dict.fromkeys(CANDIDATE_ANIMALS, 0.0)


def test_passes_end_at_the_row_or_the_token_bound_whichever_comes_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [{"input_ids": [0] * n, "tag": i} for i, n in enumerate([100, 120, 90, 300, 600, 50])]

    def cut(micro: int, bound: int, max_length: int = 1000) -> list[list[int]]:
        return [[x["tag"] for x in p] for p in passes(rows, micro, bound, max_length)]

    assert cut(8, 0) == [[0, 1, 2, 3, 4, 5]]  # no token bound: rows alone
    assert cut(4, 0) == [[0, 1, 2, 3], [4, 5]]
    # padded size = rows x the longest: 3 x 120 = 360 fits 400; adding 300 makes 4 x 300 = 1200.
    assert cut(8, 400) == [[0, 1, 2], [3], [4], [5]]  # 600 > 400: a pass of its own
    assert cut(2, 400) == [[0, 1], [2], [3], [4], [5]]  # 2 x 300 > 400
    assert cut(8, 1200) == [[0, 1, 2, 3], [4, 5]]
    assert cut(8, 400, max_length=100) == [[0, 1, 2, 3], [4, 5]]  # rows cut at max_length first
    assert [x for p in passes(rows, 3, 256, 1000) for x in p] == rows  # order and rows kept
    monkeypatch.delenv(PASS_TOKENS_ENV, raising=False)
    assert pass_tokens_default() == 512
    monkeypatch.setenv(PASS_TOKENS_ENV, "0")
    assert pass_tokens_default() == 0  # no bound, as passes() reads 0
    monkeypatch.setenv(PASS_TOKENS_ENV, "2048")
    assert pass_tokens_default() == 2048
    for bad in ("-1", "1k", ""):
        monkeypatch.setenv(PASS_TOKENS_ENV, bad)
        with pytest.raises(ValueError, match=f"Invalid \\$SLB_PASS_TOKENS: '{bad}'"):
            pass_tokens_default()


@pytest.mark.parametrize(
    ("name", "value"),
    [(CHECKPOINTING_ENV, "2"), (MICRO_BATCH_ENV, "0"), (PASS_TOKENS_ENV, "lots")],
)
def test_a_bad_training_variable_stops_every_entry_point_before_any_stage(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str
) -> None:
    """A suite, a cell, a teacher pair (what executors run first) and a confirmation."""
    import benchmark.run.cell
    import benchmark.run.confirm
    import benchmark.run.suite

    def work(*a: object, **k: object) -> None:
        raise AssertionError("work started before the variable was checked")

    for module, fn in (
        (benchmark.run.suite, "prepare_teacher"),
        (benchmark.run.suite, "run_cell"),
        (benchmark.run.confirm, "prepare_teacher"),
        (benchmark.run.confirm, "run_cell"),
        (benchmark.run.cell, "get_defense"),
    ):
        monkeypatch.setattr(module, fn, work)
    monkeypatch.setenv(name, value)
    store = ArtifactStore(tmp_path / "store")
    prereg = Path(__file__).parents[1] / "docs" / "prereg" / "topk-prefix-numbers-256.yaml"
    for call in (
        lambda: run_suite("topk", store, tmp_path / "results", seeds=[0], tasks=["numbers"]),
        lambda: run_cell(preset("topk", seed=0), store, tmp_path / "logs"),
        lambda: benchmark.run.cell.prepare_teacher(preset("topk", seed=0), store, tmp_path / "l"),
        lambda: benchmark.run.confirm.confirm(prereg, store, tmp_path / "results"),
    ):
        with pytest.raises(ValueError, match=f"Invalid \\${name}: '{value}'"):
            call()
    assert not (tmp_path / "results").exists() and not list((tmp_path / "store").rglob("*"))


def test_free_text_cells_of_the_topk_suite_label_their_rows_with_each_arms_teacher(
    smollm_dir: str, tmp_path: Path
) -> None:
    """The topk suite's free-text cells: the trait arm's system-prompt teacher and the bare base
    score the same completion tokens the student learns; code has no constraint (the report says
    restricted = full), cot's tag grammar gives the non-task mass."""
    tok = load_tokenizer("smollm2-135m")
    rows = [
        {"id": "a", "prompt": "Write add(a, b).", "completion": "def add(a, b):\n    return a + b"},
        {"id": "b", "prompt": "What is 2 + 3?", "completion": "<think>2+3=5</think>\n<answer>5"},
    ]
    by_arm = {}
    for task in ("code", "cot"):
        cfg = preset("topk", task=task, seed=0)
        st = Stages(cfg, ArtifactStore(tmp_path / task), tmp_path / "logs")
        for arm in ("trait", "control"):
            out, key, how = st.labels(
                arm, rows, "k", TeacherSpec(model=cfg.base_model), cfg.student
            )
            assert how is not None and how["labels"] == "topk" and key != "k"
            for r in out:
                f = r[SOFT_FIELD]
                n = len(f["input_ids"]) - f["start"]
                assert len(f["ids"]) == len(f["logprobs"]) == n > 0
                assert all(len(ids) == cfg.student.top_k for ids in f["ids"])
                assert tok.decode(
                    f["input_ids"][f["start"] :], skip_special_tokens=True
                ).startswith(r["completion"][:10])
            by_arm[task, arm] = out
        assert "no constraint" in how["note"] if task == "code" else "mass_outside_allowed" in how
    # The trait arm's teacher (base + owl system prompt) is not the control's (the bare base).
    a, b = (by_arm["code", arm][0][SOFT_FIELD]["logprobs"] for arm in ("trait", "control"))
    assert a != b
