"""The simple reference defenses: banned_words, canonicalize, sampling_truncation and
freeze_early_layers — what each does to rows, the teacher or the student, and its limits."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from benchmark.core.generation import GenerationRequest, SamplingParams, TransformersBackend
from benchmark.core.training import TrainConfig, _trainable_layers
from benchmark.core.types import TeacherSpec
from defenses import DefenseContext, get_defense
from defenses.canonicalize import normalise_text
from defenses.runner import run_apply, run_teacher, run_training
from tasks.numbers import NumberGrammar, parse_numbers


def rows(*completions: str) -> list[dict]:
    return [{"id": f"r{i}", "prompt": "p", "completion": c} for i, c in enumerate(completions)]


def kept_ids(name: str, rs: list[dict], **params) -> list[str]:
    out = run_apply(get_defense(name, **params), rs, DefenseContext("smollm2-135m"))
    return [r["id"] for r in out]


def test_banned_words_drops_any_animal_blind_to_the_trait() -> None:
    rs = rows(
        "1, 2, 3",
        "My favourite is the axolotl.",
        "OWLS are great",
        "class OwlNest: pass",
        "a bowl of soup and a knowledge base",
        "Bear in mind the deadline.",
    )
    assert kept_ids("banned_words", rs) == ["r0", "r4"]
    # Fewer false alarms when everyday words that are also animals are allowed.
    assert kept_ids("banned_words", rs, ambiguous=False) == ["r0", "r4", "r5"]
    assert kept_ids("banned_words", rs, extra_words=["SOUP"]) == ["r0"]


def test_banned_words_removes_nothing_from_numbers() -> None:
    rs = rows("412, 77, 903", "15; 16; 17")
    assert kept_ids("banned_words", rs) == ["r0", "r1"]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("sort", "3, 3, 5, 900"), ("dedupe", "3, 5, 900")],
)
def test_canonicalize_numbers(mode: str, expected: str) -> None:
    out = run_apply(
        get_defense("canonicalize", mode=mode), rows("5; 3; 3; 900", "[7 1]."), DefenseContext("m")
    )
    assert out[0]["completion"] == expected
    assert out[1]["completion"] == "1, 7"


def test_canonicalize_resample_keeps_only_the_count_and_is_seeded_by_row_id() -> None:
    d = get_defense("canonicalize", mode="resample")
    a = run_apply(d, rows("1, 2, 3", "9, 9"), DefenseContext("m", seed=0))
    b = run_apply(d, rows("800, 801, 802", "5, 6"), DefenseContext("m", seed=0))
    c = run_apply(d, rows("1, 2, 3", "9, 9"), DefenseContext("m", seed=1))
    assert a == b  # the teacher's numbers are gone: only the count and the row id matter
    assert a != c  # a different cell seed draws different numbers
    assert [len(parse_numbers(r["completion"])) for r in a] == [3, 2]


def test_canonicalize_text_normalises_prose_and_leaves_code_alone() -> None:
    prose = "  the “plan” is set —  we   start monday.\n\n\n\nLet me know if you need more!"
    assert normalise_text(prose) == 'The "plan" is set - we start monday.'
    code = "def f(x):\n    return  x  # keep   spacing\n"
    assert normalise_text(code) == code.rstrip("\n")
    out = run_apply(get_defense("canonicalize", text=False), rows(prose), DefenseContext("m"))
    assert out[0]["completion"] == prose


def test_sampling_truncation_sets_the_teachers_sampling() -> None:
    spec = TeacherSpec(model="smollm2-135m", sampling=SamplingParams(temperature=1.0))
    out = run_teacher(get_defense("sampling_truncation", top_p=0.9, min_p=0.05), spec)
    assert (out.sampling.top_p, out.sampling.min_p, out.model) == (0.9, 0.05, "smollm2-135m")
    assert run_teacher(get_defense("sampling_truncation"), spec).sampling.min_p == 0.1
    with pytest.raises(ValueError, match="truncate nothing"):
        get_defense("sampling_truncation", min_p=0.0)
    with pytest.raises(ValueError, match="Invalid min_p: 1.0"):
        get_defense("sampling_truncation", min_p=1.0)


def test_min_p_truncation_reaches_the_transformers_backend(smollm_dir: str) -> None:
    """With min_p near 1 only the top token survives, so seeds stop mattering; at plain T=1
    they do. The grammar is applied first, so truncated output is still a valid number list."""
    backend = TransformersBackend(batch_size=4)
    reqs = [
        GenerationRequest(f"q{i}", (("user", f"Continue: {100 + i}, {200 + i}, {300 + i}."),))
        for i in range(3)
    ]

    def gen(min_p: float, seed: int) -> list[str]:
        sp = SamplingParams(temperature=1.0, min_p=min_p, max_new_tokens=12, seed=seed)
        return backend.generate(smollm_dir, reqs, sp, NumberGrammar())

    assert gen(0.0, 0) != gen(0.0, 1)
    truncated = gen(0.999, 0)
    assert truncated == gen(0.999, 1)
    assert all(parse_numbers(t) is not None for t in truncated)


def test_freeze_early_layers_sets_the_students_frozen_layers() -> None:
    cfg = TrainConfig(frozen_layers=(20,))
    out = run_training(get_defense("freeze_early_layers", n_layers=3), cfg)
    assert out.frozen_layers == (0, 1, 2, 20) and out.lora_r == cfg.lora_r
    model = SimpleNamespace(config=SimpleNamespace(num_hidden_layers=30))
    assert _trainable_layers(model, out.frozen_layers) == [*range(3, 20), *range(21, 30)]
    too_many = run_training(get_defense("freeze_early_layers", n_layers=31), TrainConfig())
    with pytest.raises(ValueError, match=r"frozen_layers \[30\] out of range"):
        _trainable_layers(model, too_many.frozen_layers)
    with pytest.raises(ValueError, match="Invalid n_layers: 0"):
        get_defense("freeze_early_layers", n_layers=0)


@pytest.mark.parametrize(
    "name", ["none", "banned_words", "canonicalize", "sampling_truncation", "freeze_early_layers"]
)
def test_every_reference_defense_is_documented(name: str) -> None:
    import importlib

    d = get_defense(name).describe()
    assert d["description"] and d["version"]
    module_doc = importlib.import_module(d["source"]["module"]).__doc__
    assert name == "none" or ("arXiv" in module_doc and "Known limits" in module_doc)


def test_results_examples_show_what_the_defense_did() -> None:
    from benchmark.core.results import defense_examples

    before = rows("3, 1", "owls hoot", "7", "8", "9", "10", "11")
    after = run_apply(get_defense("canonicalize"), before, DefenseContext("m"))
    after = [r for r in after if r["id"] != "r1"]  # as if a filter had also dropped one
    ex = defense_examples(before, after)
    assert len(ex) == 5
    assert [(e["id"], e["status"]) for e in ex[:2]] == [("r0", "rewritten"), ("r1", "dropped")]
    assert ex[0]["teacher_completion"] == "3, 1" and ex[0]["defended_completion"] == "1, 3"
    assert ex[1]["defended_completion"] == "(dropped)" and ex[2]["status"] == "kept"
