"""``slb reproduce`` (benchmark.run.reproduce): the config rebuilt from an artifact, the hardware
check, the score comparison and its record, and the leaderboard's mark. No model runs: ``run_cell``
is replaced by a function that hands back (a possibly edited copy of) the stored artifact."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from benchmark.core.store import ArtifactStore, stable_hash
from benchmark.core.train_env import STUDENT_PASS_TOKENS, STUDENT_PASSES
from benchmark.run import reproduce as rp
from benchmark.run.config import CellConfig, apply_settings
from benchmark.run.presets import PRESETS, SUITES, TASK_PRESETS, preset
from benchmark.run.synthetic import Spec, artifact, write
from leaderboard import ranking as rk
from leaderboard.loader import discover, load
from leaderboard.reading import reproduced_path
from leaderboard.views import ranking_table

REPO = Path(__file__).resolve().parent.parent
CPU = "cpu: 2 threads"

SETTINGS = [
    (),
    ("teacher.general_rows=240",),
    ("sampling.coupled=true", 'sampling.stop=["\\n\\n", "Q:"]'),
    ("student.lora_r=16", "student.init_seed=7", "student.frozen_layers=[0, 1]"),
    ('student.extra={"kl": 0.5, "nested": {"a": [1, 2]}}', "student.epochs=2"),
    ("teacher.placebo=null", "max_train_rows=100", "eval.samples_per_question=5"),
    ("teacher.train.lora_r=4", 'teacher.train.target_modules=["q_proj"]', "backend=vllm"),
]


def _presets() -> list[CellConfig]:
    tasks = sorted({t for s in SUITES.values() for t in s["tasks"]} | set(TASK_PRESETS["quick"]))
    out = []
    for name in PRESETS:
        for task in tasks:
            for trait, seed in (("owl", 0), ("dolphin", 3)):
                for settings in SETTINGS:
                    out.append(
                        preset(
                            name,
                            settings,
                            task=task,
                            trait=trait,
                            seed=seed,
                            defense_params={"threshold": 0.5, "words": ["a", "b"]},
                            task_params={"source": "gsm8k"},
                        )
                    )
    return out


# --- the config ---------------------------------------------------------------------------------


def test_config_round_trips_for_every_preset_and_setting() -> None:
    cfgs = [CellConfig(), *_presets()]
    assert len(cfgs) > 100
    for cfg in cfgs:
        d = cfg.to_dict()
        assert rp.config_from_dict(d) == cfg
        # Through JSON, as an artifact holds it: equal, and the same text (so the same stage keys).
        back = rp.config_from_dict(json.loads(json.dumps(d)))
        assert back == cfg
        assert json.dumps(back.to_dict(), sort_keys=True) == json.dumps(d, sort_keys=True)


def test_committed_artifacts_rebuild_their_exact_config() -> None:
    """Every committed artifact's config rebuilds to the same canonical JSON (an ``epochs`` of 3
    stays the int 3): rerunning it reuses exactly its stage keys."""
    arts = [
        json.loads(p.read_text())
        for p, _ in discover([REPO / "submissions"])
        if p.suffix == ".json" and not p.name.startswith("submission")
    ]
    arts = [a for a in arts if isinstance(a.get("config"), dict)]
    assert len(arts) >= 10
    for art in arts:
        assert stable_hash(rp.config_from_dict(art["config"]).to_dict()) == stable_hash(
            art["config"]
        )


def test_settings_survive_the_round_trip_as_their_types() -> None:
    cfg = apply_settings(preset("quick"), ['sampling.stop=["\\n"]', "student.frozen_layers=[2]"])
    back = rp.config_from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back.sampling.stop == ("\n",) and back.student.frozen_layers == (2,)
    assert isinstance(back.student.target_modules, tuple)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda d: d.update(bogus=1), ["unknown key 'bogus'", "config"]),
        (lambda d: d["teacher"].update(colour="red"), ["config.teacher", "'colour'"]),
        (lambda d: d["teacher"]["train"].update(rank=3), ["config.teacher.train", "'rank'"]),
        (lambda d: d["sampling"].update(beam=2), ["config.sampling", "'beam'"]),
        (lambda d: d["eval"].update(shots=2), ["config.eval", "'shots'"]),
        (lambda d: d.update(seed="zero"), ["config.seed", "expected int"]),
        (lambda d: d.update(constrained=1), ["config.constrained", "expected bool"]),
        (lambda d: d.update(teacher=[1]), ["config.teacher", "expected an object"]),
        (lambda d: d["student"].update(target_modules="q_proj"), ["target_modules", "list"]),
        (lambda d: d.update(n_prompts=0), ["config", "n_prompts"]),  # the config's own check
    ],
)
def test_bad_configs_are_refused_naming_the_key(edit: Any, words: list[str]) -> None:
    d = preset("quick").to_dict()
    edit(d)
    with pytest.raises(ValueError) as e:
        rp.config_from_dict(d)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_missing_optional_keys_take_their_defaults() -> None:
    d = preset("quick").to_dict()
    del d["suite"], d["teacher"]["qa_rows"]
    cfg = rp.config_from_dict(d)
    assert cfg.suite == CellConfig.suite and cfg.teacher.qa_rows == 240


# --- the rerun ----------------------------------------------------------------------------------


def _artifact(tmp_path: Path, device: str | None = CPU, **kw: Any) -> Path:
    art = artifact(Spec(task="numbers", defense="none", trait="owl", seed=0, **kw))
    if device is not None:
        art["run_info"]["device"] = device
    art["run_info"]["git_commit"] = "stored-commit"
    return write(tmp_path / "results" / "quick", [art])[0]


def _fake_run(monkeypatch: pytest.MonkeyPatch, path: Path, edit: Any = None) -> list[Any]:
    """Replace run_cell by one that returns the stored artifact (edited by ``edit``)."""
    calls: list[Any] = []

    def run_cell(cfg: CellConfig, store: ArtifactStore, log_dir: Path) -> dict[str, Any]:
        calls.append(cfg)
        fresh = copy.deepcopy(json.loads(path.read_text()))
        fresh["run_info"].update(git_commit="fresh-commit", device=CPU)
        if edit is not None:
            edit(fresh)
        return fresh

    monkeypatch.setattr(rp, "run_cell", run_cell)
    monkeypatch.setattr(rp, "device_info", lambda: CPU)
    return calls


def test_identical_scores_are_reproduced_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _artifact(tmp_path)
    calls = _fake_run(monkeypatch, path)
    rec = rp.reproduce(path, ArtifactStore(tmp_path / "store"), tmp_path / "logs")
    art = json.loads(path.read_text())
    assert calls[0].to_dict() == art["config"]  # the recorded config, rebuilt
    assert rec["reproduced"] is True and rec["differ"] == [] and rec["n_differ"] == 0
    assert rec["compared"] == 4 * 50  # four models x 50 questions x one numeric field
    assert rec["git_commit"] == "fresh-commit" and rec["stored_git_commit"] == "stored-commit"
    assert rec["device"] == CPU and rec["scores_hash"] == art["integrity"]["scores"]
    written = reproduced_path(path)
    assert written.name == path.stem + ".reproduced.json"
    assert json.loads(written.read_text()) == rec
    # The leaderboard marks it, and never reads the record as an artifact.
    data = load([tmp_path / "results"])
    assert list(data.reproduced) == [str(path)] and not data.skipped and data.n_files == 1
    row = rk.ranking(data.cells, "teacher_forced", reproduced=data.reproduced).iloc[0]
    assert row["reproduced"] == 1 and row["cells"] == 1
    assert ranking_table(rk.ranking(data.cells, "teacher_forced", None, data.reproduced))[
        "reproduced"
    ].tolist() == ["1 of 1 cells"]


def test_one_changed_score_is_not_reproduced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _artifact(tmp_path)
    stored = json.loads(path.read_text())["scores"]["control"][7]["teacher_forced"]

    def edit(fresh: dict[str, Any]) -> None:
        fresh["scores"]["control"][7]["teacher_forced"] += 1e-12

    _fake_run(monkeypatch, path, edit)
    rec = rp.reproduce(path, ArtifactStore(tmp_path / "store"), tmp_path / "logs")
    assert rec["reproduced"] is False and rec["n_differ"] == 1 and rec["compared"] == 200
    assert rec["differ"] == [
        {
            "model": "control",
            "question": "q07",
            "field": "teacher_forced",
            "stored": stored,
            "fresh": stored + 1e-12,
        }
    ]
    assert json.loads(reproduced_path(path).read_text())["reproduced"] is False
    assert load([tmp_path / "results"]).reproduced == {}


def test_differences_cover_models_questions_and_nested_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _artifact(tmp_path, n_questions=30)

    def edit(fresh: dict[str, Any]) -> None:
        del fresh["scores"]["teacher"]
        fresh["scores"]["base"].pop()
        fresh["scores"]["trait"][0]["candidates"] = {"owl": 0.5}
        fresh["scores"]["trait"][1]["teacher_forced"] = None
        for i, row in enumerate(fresh["scores"]["control"]):
            row["teacher_forced"] = i  # 30 differences: the record lists the first 20

    _fake_run(monkeypatch, path, edit)
    rec = rp.reproduce(path, ArtifactStore(tmp_path / "store"), tmp_path / "logs")
    assert rec["reproduced"] is False and len(rec["differ"]) == rp.MAX_DIFFER
    assert rec["n_differ"] == 1 + 1 + 1 + 1 + 30
    n, differ = rp.compare_scores(
        json.loads(path.read_text())["scores"], rp.run_cell(None, None, None)["scores"]
    )
    fields = {(d["model"], d["question"], d["field"]) for d in differ}
    assert ("teacher", "*", "(model)") in fields and ("base", "q29", "(question)") in fields
    assert ("trait", "q00", "candidates.owl") in fields and (
        "trait",
        "q01",
        "teacher_forced",
    ) in fields


def test_reused_evaluations_do_not_count_as_reproduced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that already holds the cell's evaluations hands back the stored scores unchecked."""
    path = _artifact(tmp_path)

    def edit(fresh: dict[str, Any]) -> None:
        fresh["run_info"]["stages_reused"] = {"train_trait": True, "eval_trait": True}

    _fake_run(monkeypatch, path, edit)
    rec = rp.reproduce(path, ArtifactStore(tmp_path / "store"), tmp_path / "logs")
    assert rec["reproduced"] is False and rec["differ"] == []
    assert "eval_trait" in rec["note"] and rec["reused_stages"] == ["eval_trait", "train_trait"]


@pytest.mark.parametrize("device", ["cuda: NVIDIA H200", "cuda: NVIDIA A100 x2"])
def test_another_hardware_class_is_refused_before_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, device: str
) -> None:
    path = _artifact(tmp_path, device=device)
    calls = _fake_run(monkeypatch, path)
    with pytest.raises(ValueError, match="hardware class") as e:
        rp.reproduce(path, ArtifactStore(tmp_path / "store"), tmp_path / "logs")
    assert device in str(e.value) and CPU in str(e.value)
    assert calls == [] and not reproduced_path(path).exists()
    # And the other way round: a CPU artifact (or one without run_info.device) on a GPU machine.
    for dev in (CPU, None):
        cpu = _artifact(tmp_path / str(dev), device=dev)
        monkeypatch.setattr(rp, "device_info", lambda: device)
        with pytest.raises(ValueError, match="hardware class"):
            rp.reproduce(cpu, ArtifactStore(tmp_path / "store"), tmp_path / "logs")
    assert calls == []


def test_same_class_other_device_is_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _artifact(tmp_path, device="cpu: 16 threads")
    _fake_run(monkeypatch, path)
    assert rp.reproduce(path, ArtifactStore(tmp_path / "s"), tmp_path / "l")["reproduced"]


def _soft(**kw: Any) -> dict[str, Any]:
    return {"labels": "soft", "config": {"batch_size": 16}, **kw}


@pytest.mark.parametrize(
    ("training", "expected"),
    [
        # The synthetic artifact's hard-label students, recorded before passes: one pass each.
        (None, {"trait": 16, "control": 16}),
        ({"trait": _soft(), "control": _soft()}, {"trait": 16, "control": 16}),  # before passes
        (
            {"trait": _soft(micro_batch=8), "control": _soft(micro_batch=8)},
            {"trait": 8, "control": 8},
        ),
        # A control student reused from before passes existed, beside a new trait student.
        ({"trait": _soft(micro_batch=8), "control": _soft()}, {"trait": 8, "control": 16}),
        # Hard labels: the cell's student batch where the stats name none, else their passes.
        (
            {"trait": _soft(micro_batch=8), "control": {"labels": "hard"}},
            {"trait": 8, "control": 16},
        ),
        (
            {"trait": {"micro_batch": 8}, "control": {"micro_batch": 16}},
            {"trait": 8, "control": 16},
        ),
    ],
)
def test_students_retrain_in_their_recorded_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, training: Any, expected: dict[str, int]
) -> None:
    seen, rec = _rerun_watching(tmp_path, monkeypatch, training, STUDENT_PASSES)
    assert seen == [expected]
    assert rec["student_passes"] == expected and rec["reproduced"]
    assert STUDENT_PASSES.get() is None  # reset after the rerun


def _rerun_watching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, training: Any, var: Any
) -> tuple[list[Any], dict[str, Any]]:
    """Reproduce the synthetic artifact with ``training`` as its training stats (None: as built)
    and return what the context variable ``var`` held during the rerun, and the record."""
    path = _artifact(tmp_path)
    if training is not None:
        art = json.loads(path.read_text())
        art["training"] = training
        path.write_text(json.dumps(art))
    seen: list[Any] = []
    _fake_run(monkeypatch, path, edit=lambda _: seen.append(var.get()))
    return seen, rp.reproduce(path, ArtifactStore(tmp_path / "store"), tmp_path / "logs")


@pytest.mark.parametrize(
    ("training", "expected"),
    [
        (None, {"trait": None, "control": None}),  # before token bounds: none
        (
            {"trait": _soft(micro_batch=8, pass_tokens=512), "control": _soft(micro_batch=8)},
            {"trait": 512, "control": None},  # a control student reused from before the bound
        ),
        (
            {"trait": _soft(micro_batch=8, pass_tokens=256), "control": {"micro_batch": 8}},
            {"trait": 256, "control": None},
        ),
    ],
)
def test_students_retrain_with_their_recorded_token_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, training: Any, expected: dict
) -> None:
    seen, rec = _rerun_watching(tmp_path, monkeypatch, training, STUDENT_PASS_TOKENS)
    assert seen == [expected] and rec["student_pass_tokens"] == expected
    assert STUDENT_PASS_TOKENS.get() is None


@pytest.mark.parametrize(
    ("training", "words"),
    [
        ({"trait": _soft(micro_batch=0), "control": _soft()}, "training.trait.micro_batch is 0"),
        ({"trait": {"labels": "soft", "micro_batch": "8"}}, "training.trait.micro_batch is '8'"),
        ({"control": _soft(micro_batch=8, pass_tokens=0)}, "training.control.pass_tokens is 0"),
        ({"trait": _soft(micro_batch=8, pass_tokens=True)}, "training.trait.pass_tokens is True"),
    ],
)
def test_unrepeatable_passes_are_refused_before_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, training: Any, words: str
) -> None:
    path = _artifact(tmp_path)
    art = json.loads(path.read_text())
    art["training"] = training
    path.write_text(json.dumps(art))
    calls = _fake_run(monkeypatch, path)
    with pytest.raises(ValueError, match=words):
        rp.reproduce(path, ArtifactStore(tmp_path / "store"), tmp_path / "logs")
    assert calls == [] and not reproduced_path(path).exists()


def test_each_arms_student_gets_its_own_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``slb reproduce`` sets reaches the training call of the arm it names, and only it."""
    from benchmark.run import stages as stages_mod
    from benchmark.run.stages import Stages

    got: dict[str, Any] = {}
    bounds: dict[str, Any] = {}
    for name in ("SLB_MICRO_BATCH", "SLB_SOFT_MICRO_BATCH", "SLB_PASS_TOKENS"):
        monkeypatch.delenv(name, raising=False)

    def train(
        base: str, rows: Any, cfg: Any, out: Path, micro_batch: Any = None, pass_tokens: Any = None
    ) -> dict:
        got[rows[0]["id"]] = micro_batch
        bounds[rows[0]["id"]] = pass_tokens
        return {"labels": "soft"}

    monkeypatch.setattr(stages_mod, "train", train)
    st = Stages(preset("topk", seed=0), ArtifactStore(tmp_path / "s"), tmp_path / "logs")
    student = preset("topk", seed=0).student
    token = STUDENT_PASSES.set({"trait": 16})
    token_b = STUDENT_PASS_TOKENS.set({"trait": None})  # recorded: no bound
    try:
        for arm in ("trait", "control"):
            st.train(arm, [{"id": arm, "prompt": "p", "completion": arm}], f"d-{arm}", student)
    finally:
        STUDENT_PASS_TOKENS.reset(token_b)
        STUDENT_PASSES.reset(token)
    st.train("trait", [{"id": "after", "prompt": "p", "completion": "x"}], "d-after", student)
    assert got == {"trait": 16, "control": 8, "after": 8}  # not named: $SLB_MICRO_BATCH (unset: 8)
    assert bounds == {"trait": 0, "control": 512, "after": 512}  # 0: no bound; else the default
    monkeypatch.setenv("SLB_MICRO_BATCH", "4")
    st.train("control", [{"id": "env", "prompt": "p", "completion": "y"}], "d-env", student)
    assert got["env"] == 4


def test_unusable_artifacts_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _artifact(tmp_path)
    calls = _fake_run(monkeypatch, path)
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(ValueError, match="cannot read"):
        rp.reproduce(tmp_path / "missing.json", store, tmp_path / "logs")
    art = json.loads(path.read_text())
    for edit, words in (
        (lambda a: a.update(schema="other/1"), "not a results artifact"),
        (lambda a: a.pop("config"), "no config"),
        (lambda a: a.update(scores={}), "no per-question scores"),
        (lambda a: a["config"].update(extra_knob=1), "unknown key 'extra_knob'"),
    ):
        bad = copy.deepcopy(art)
        edit(bad)
        p = tmp_path / "bad.json"
        p.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=words):
            rp.reproduce(p, store, tmp_path / "logs")
    assert calls == []


def test_command_prints_and_exits_by_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _artifact(tmp_path)
    _fake_run(monkeypatch, path)
    assert rp.reproduce_command(str(path), str(tmp_path / "store")) == 0
    assert "reproduced: all 200 per-question values match" in capsys.readouterr().out

    def edit(fresh: dict[str, Any]) -> None:
        fresh["scores"]["trait"][3]["teacher_forced"] = 0.5

    _fake_run(monkeypatch, path, edit)
    monkeypatch.setattr(rp, "cache_root", lambda: tmp_path)  # the temporary store goes here
    assert rp.reproduce_command(path) == 1
    out = capsys.readouterr().out
    assert "NOT reproduced" in out and "trait q03 teacher_forced" in out
    assert not list(tmp_path.glob("reproduce-*"))  # the temporary store is removed


def test_cli_subcommand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _artifact(tmp_path)
    _fake_run(monkeypatch, path)
    parser = argparse.ArgumentParser(prog="slb")
    rp.add_parser(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(["reproduce", str(path), "--store", str(tmp_path / "store")])
    assert (args.artifact, args.store) == (str(path), str(tmp_path / "store"))
    assert args.fn(args) == 0 and reproduced_path(path).is_file()
    assert parser.parse_args(["reproduce", str(path)]).store is None


# --- the leaderboard's mark ---------------------------------------------------------------------


def _reproduced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = _artifact(tmp_path)
    _fake_run(monkeypatch, path)
    rp.reproduce(path, ArtifactStore(tmp_path / "store"), tmp_path / "logs")
    assert str(path) in load([tmp_path / "results"]).reproduced
    return path


def test_a_tampered_or_stale_record_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _reproduced(tmp_path, monkeypatch)
    rec_path = reproduced_path(path)
    good = json.loads(rec_path.read_text())
    for bad in (
        {**good, "scores_hash": "0" * 16},  # saw other scores
        {**good, "reproduced": "yes"},
        {k: v for k, v in good.items() if k != "scores_hash"},
        [good],
    ):
        rec_path.write_text(json.dumps(bad))
        data = load([tmp_path / "results"])
        assert data.reproduced == {} and len(data.cells) == 1 and not data.skipped
    rec_path.write_text("{not json")
    assert load([tmp_path / "results"]).reproduced == {}
    # The artifact's scores edited after the reproduction (hash recomputed): the record is stale.
    rec_path.write_text(json.dumps(good))
    art = json.loads(path.read_text())
    art["scores"]["trait"][0]["teacher_forced"] = 0.9
    art["integrity"]["scores"] = stable_hash(art["scores"])
    path.write_text(json.dumps(art))
    assert load([tmp_path / "results"]).reproduced == {}
    # ... or with the old hash left in place.
    art["integrity"]["scores"] = good["scores_hash"]
    path.write_text(json.dumps(art))
    assert load([tmp_path / "results"]).reproduced == {}


def test_discover_never_lists_records_or_summaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _reproduced(tmp_path, monkeypatch)
    (path.parent / "summary.json").write_text("{}")
    (path.parent / "x.reproduced.json").write_text("{}")  # a record without its artifact
    assert [p for p, _ in discover([tmp_path / "results"])] == [path]
