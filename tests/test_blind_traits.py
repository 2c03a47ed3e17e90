"""Held-out traits (benchmark.run.blind): drawn at run time, recorded, refused when misused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_executors import _fake_result

from benchmark.core.animals import CANDIDATE_ANIMALS
from benchmark.run.blind import ENV_SEED, draw_traits
from benchmark.run.cli import main


def test_draw_is_seeded_distinct_and_recorded(monkeypatch) -> None:
    monkeypatch.delenv(ENV_SEED, raising=False)
    traits, rec = draw_traits(3, seed=7)
    assert traits == draw_traits(3, seed=7)[0] and len(set(traits)) == 3
    assert set(traits) <= set(CANDIDATE_ANIMALS)
    assert rec == {"n": 3, "seed": 7, "seed_source": "given", "traits": traits}
    seeds = {draw_traits(2)[1]["seed"] for _ in range(5)}
    assert len(seeds) == 5  # a fresh seed each time when none is given
    monkeypatch.setenv(ENV_SEED, "7")
    assert draw_traits(3) == (traits, {**rec, "seed_source": ENV_SEED})
    monkeypatch.setenv(ENV_SEED, "seven")
    with pytest.raises(ValueError, match=r"Invalid \$SLB_BLIND_SEED: 'seven'"):
        draw_traits(3)
    for bad in (0, len(CANDIDATE_ANIMALS) + 1, True):
        with pytest.raises(ValueError, match="Invalid --blind-traits"):
            draw_traits(bad)


def test_suite_draws_blind_traits_and_records_the_draw(monkeypatch, tmp_path: Path, capsys) -> None:
    import benchmark.run.suite as pipeline

    monkeypatch.delenv(ENV_SEED, raising=False)
    ran: list[str] = []
    monkeypatch.setattr(pipeline, "prepare_teacher", lambda cfg, store, log_dir: "teacher")

    def fake_run(cfg, store, log_dir):
        ran.append(cfg.trait)
        return _fake_result(cfg)

    monkeypatch.setattr(pipeline, "run_cell", fake_run)
    common = ["--results", str(tmp_path / "r"), "--store", str(tmp_path / "s"), "--seeds", "0"]
    assert (
        main(
            [
                "suite",
                "quick",
                "--tasks",
                "numbers",
                "--blind-traits",
                "2",
                "--blind-seed",
                "11",
                *common,
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "r" / "quick" / "summary.json").read_text())
    assert summary["blind_traits"]["seed"] == 11
    assert ran == summary["blind_traits"]["traits"] == draw_traits(2, 11)[0]
    assert "blind traits: 2 drawn" in capsys.readouterr().out
    assert main(["suite", "quick", "--traits", "owl", "--blind-traits", "2", *common]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert main(["suite", "quick", "--blind-seed", "3", *common]) == 2
    assert "--blind-seed needs --blind-traits" in capsys.readouterr().err


def test_submit_takes_blind_traits_and_records_them(monkeypatch, tmp_path: Path) -> None:
    import benchmark.run.cli as cli

    seen: dict = {}

    def fake_submit(folder, store, **kw):
        seen.update(kw)
        return {"errors": []}

    monkeypatch.delenv(ENV_SEED, raising=False)
    monkeypatch.setattr(cli, "submit", fake_submit)
    monkeypatch.setattr(
        cli,
        "validate_submission",
        lambda folder, store: type("R", (), {"ok": True, "render": lambda self: "ok"})(),
    )
    sub = tmp_path / "sub"
    sub.mkdir()
    assert (
        main(
            [
                "submit",
                str(sub),
                "--blind-traits",
                "3",
                "--blind-seed",
                "5",
                "--store",
                str(tmp_path / "s"),
            ]
        )
        == 0
    )
    assert seen["traits"] == draw_traits(3, 5)[0]
    assert seen["record"]["blind_traits"]["seed"] == 5
