"""slb confirm (benchmark.run.confirm): the file is checked and must be committed; every run is
kept and reported; the verdict follows the file's own rule. Cells are faked here (the real ones
take minutes each); the pre-registered runs themselves are in docs/results.md."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import benchmark.run.confirm as cf
from benchmark.core.store import ArtifactStore
from benchmark.run.timer import Pace

PREREG = """\
schema: slb.prereg/1
name: t
suite: quick
task: numbers
trait: owl
settings: [n_prompts=16]
seeds: [10, 11, 12, 13, 14, 15]
null_seeds: [20, 21]
statistic: own_animal
test: t_and_sign_flip
alpha: 0.05
specific_share: 0.8
null_alpha: 0.05
"""


def _repo(tmp_path: Path, text: str = PREREG, commit: bool = True) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    f = tmp_path / "p.yaml"
    f.write_text(text)
    if commit:
        git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "add", "p.yaml"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "prereg"], check=True)
    return f


def _art(cfg, value: float, p_rank: float) -> dict:
    spec = {"rank": 1, "n_alternatives": 551, "p_rank": p_rank}
    tf = {"own_animal": {"log_odds_diff": value}, "specificity": spec}
    return {
        "config": cfg.to_dict(),
        "leakage": {"teacher_forced": tf},
        "run_info": {"wall_seconds": 1.0},
    }


def _fake_cells(monkeypatch, make) -> list[int]:
    """Cells faked by ``make(cfg)``; returns the list the seeds of the cells made are added to."""
    ran: list[int] = []

    def fake_run(cfg, store, log_dir):
        ran.append(cfg.seed)
        return make(cfg)

    monkeypatch.setattr(cf, "prepare_teacher", lambda cfg, store, log_dir: "t")
    monkeypatch.setattr(cf, "run_cell", fake_run)
    return ran


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("schema: slb.prereg/2", "schema 'slb.prereg/2'"),
        ("alpha: 2", "'alpha' must be in"),
        ("seeds: [1, 2]", "at least 6 runs"),
        ("seeds: [1, 1, 2, 3, 4, 5]", "repeats a seed"),
        ("alpha: 0.01", r"smallest p is 2/2\^6 = 0.0312, not below alpha 0.01"),
        ("statistic: owl_contrast", "statistic 'owl_contrast'"),
        ("trait: owel", "owel"),
        ("colour: red", "unknown field 'colour'"),
    ],
)
def test_bad_files_are_refused_naming_the_field(tmp_path: Path, edit: str, message: str) -> None:
    _refused(tmp_path, PREREG, edit, message)


def _refused(tmp_path: Path, text: str, edit: str, message: str) -> None:
    """``text`` with the line of ``edit``'s field replaced by ``edit`` is refused with ``message``."""
    key = edit.split(":")[0]
    lines = [ln for ln in text.splitlines() if not ln.startswith(key + ":")] + [edit]
    f = tmp_path / "p.yaml"
    f.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=message):
        cf.load_prereg(f)


def test_uncommitted_or_edited_file_is_refused(tmp_path: Path) -> None:
    f = _repo(tmp_path, commit=False)
    with pytest.raises(ValueError, match="not committed"):
        cf.registration(f, allow_unregistered=False)
    assert cf.registration(f, allow_unregistered=True)["registered"] is False
    f = _repo(tmp_path / "b")
    assert cf.registration(f, allow_unregistered=False)["registered"] is True
    f.write_text(PREREG + "# edited\n")
    with pytest.raises(ValueError, match="changed since its last commit"):
        cf.registration(f, allow_unregistered=False)


def test_confirm_runs_every_cell_keeps_them_and_judges(tmp_path: Path, monkeypatch, capsys) -> None:
    f = _repo(tmp_path / "repo")
    ran: list[tuple[bool, int]] = []

    def fake_run(cfg, store, log_dir):
        ran.append((cfg.null_arm, cfg.seed))
        if cfg.null_arm:
            return _art(cfg, 0.05 if cfg.seed % 2 else -0.04, 0.5)
        if cfg.seed == 15:
            raise RuntimeError("boom")
        return _art(cfg, 0.3 + cfg.seed / 100, 0.01)

    monkeypatch.setattr(cf, "prepare_teacher", lambda cfg, store, log_dir: "t")
    monkeypatch.setattr(cf, "run_cell", fake_run)
    store = ArtifactStore(tmp_path / "store")
    rep = cf.confirm(f, store, tmp_path / "res")
    assert ran[:4] == [(False, 10), (True, 20), (False, 11), (True, 21)]  # interleaved
    assert len(rep["runs"]) == 8 and "boom" in rep["runs"][-1]["error"]
    assert rep["result"]["verdict"] == "incomplete"  # a failed run is missing, never a pass
    assert rep["registration"]["fixed_at_commit"]
    saved = json.loads((tmp_path / "res" / "confirm" / "t" / "report.json").read_text())
    assert saved["result"] == rep["result"]
    out = capsys.readouterr().out  # each run's place, and the time left once one was made here
    assert "[1/8] main seed 10: +0.400" in out and "left at this pace (7 runs)" in out

    # Resumed: finished cells are read back, only the failed one runs again.
    ran.clear()
    monkeypatch.setattr(
        cf, "run_cell", lambda cfg, store, log_dir: ran.append(cfg.seed) or _art(cfg, 0.5, 0.01)
    )
    rep = cf.confirm(f, store, tmp_path / "res")
    assert ran == [15]
    out = capsys.readouterr().out  # read-back runs set no pace; none is left after the last
    assert "[8/8] main seed 15" in out and "at this pace" not in out
    res = rep["result"]
    assert res["verdict"] == "pass" and res["n_main"] == 6 and res["n_null"] == 2
    assert res["checks"] == {
        "positive_over_runs": True,
        "specific_in_enough_runs": True,
        "null_not_significant": True,
    }


def test_the_pace_counts_only_runs_made_here() -> None:
    pace = Pace(total=10, started=100.0)
    assert pace.left(3, now=400.0) == ""  # three runs read back: no pace yet
    pace.made = 2
    assert pace.left(3, now=400.0) == "; about 18 min left at this pace (7 runs)"  # 150 s a run
    assert pace.left(10, now=400.0) == ""


def test_judge_fails_on_a_significant_null_or_too_few_specific_runs() -> None:
    prereg = {
        "seeds": list(range(6)),
        "null_seeds": [0, 1, 2],
        "test": "t_and_sign_flip",
        "alpha": 0.05,
        "specific_share": 0.8,
        "null_alpha": 0.05,
    }
    main = [{"arm": "main", "value": 0.4 + i / 50, "specific": i > 1} for i in range(6)]
    null = [{"arm": "null", "value": 0.4 + i / 50} for i in range(3)]
    res = cf.judge(prereg, main + null, registered=True)
    assert res["verdict"] == "fail"
    assert res["checks"]["specific_in_enough_runs"] is False  # 4 of 6 < 0.8
    assert res["checks"]["null_not_significant"] is False
    good = [{**r, "specific": True} for r in main] + [
        {"arm": "null", "value": v} for v in (0.1, -0.12, 0.03)
    ]
    assert cf.judge(prereg, good, registered=True)["verdict"] == "pass"
    assert cf.judge(prereg, good, registered=False)["verdict"] == "fail"  # unregistered


def test_a_decided_fail_stops_early_and_lists_the_runs_not_made(
    tmp_path: Path, monkeypatch
) -> None:
    # 6 seeds, specific_share 0.8: 5 of 6 must be specific. Two non-specific main runs decide it.
    f = _repo(tmp_path / "repo")
    ran = _fake_cells(monkeypatch, lambda cfg: _art(cfg, 0.1, 0.5))  # never specific
    store = ArtifactStore(tmp_path / "store")
    rep = cf.confirm(f, store, tmp_path / "res")
    assert ran == [10, 20, 11]  # main 10, null 20, main 11: 0 of 2 specific, 4 left, need 5
    res = rep["result"]
    assert res["verdict"] == "fail" and res["decided_early"] is True
    assert "at most 4 of 6" in res["decided_by"]
    assert rep["not_run"][0] == {"arm": "null", "seed": 21} and len(rep["not_run"]) == 5
    # --all-runs makes the rest; the verdict stays the same, now complete.
    rep = cf.confirm(f, store, tmp_path / "res", all_runs=True)
    assert ran[3:] == [21, 12, 13, 14, 15] and "not_run" not in rep
    assert rep["result"]["verdict"] == "fail" and rep["result"]["decided_early"] is False
    # Without --all-runs again: the runs made after the decision still count (none is dropped).
    rep = cf.confirm(f, store, tmp_path / "res")
    assert len(rep["runs"]) == 8 and "not_run" not in rep and len(ran) == 8


def test_one_more_specific_run_keeps_the_verdict_open() -> None:
    prereg = {"seeds": list(range(6)), "null_seeds": [0], "alpha": 0.05, "test": "t"}
    prereg |= {"specific_share": 0.8, "null_alpha": 0.05}
    runs = [{"arm": "main", "value": 0.3, "specific": s} for s in (False, True)]
    res = cf.judge(prereg, runs, registered=True)
    assert res["verdict"] == "incomplete" and res["decided_early"] is False  # 5 of 6 still possible


SCREEN = PREREG.replace("seeds: [10, 11, 12, 13, 14, 15]", "seeds: [10, 11, 12]")
SCREEN = SCREEN.replace("null_seeds: [20, 21]", "null_seeds: []")
SCREEN = SCREEN.replace("test: t_and_sign_flip", "test: t\npurpose: screen")


def test_a_screen_says_lead_or_no_lead_never_pass(tmp_path: Path, monkeypatch) -> None:
    f = _repo(tmp_path / "repo", SCREEN)
    assert cf.load_prereg(f)["purpose"] == "screen"
    monkeypatch.setattr(cf, "prepare_teacher", lambda cfg, store, log_dir: "t")
    monkeypatch.setattr(cf, "run_cell", lambda cfg, store, log_dir: _art(cfg, 1 + cfg.seed / 9, 0))
    rep = cf.confirm(f, ArtifactStore(tmp_path / "store"), tmp_path / "res")
    res = rep["result"]
    assert res["verdict"] == "lead" and res["n_main"] == 3 and res["n_null"] == 0
    assert "null_not_significant" not in res["checks"]  # no null seeds: no null check
    assert res["main"]["p_sign_flip"] is None and res["main"]["p"] == res["main"]["p_t"]
    # Decided early after two runs that are not specific, a screen still makes its third.
    ran: list[int] = []
    monkeypatch.setattr(
        cf, "run_cell", lambda cfg, store, log_dir: ran.append(cfg.seed) or _art(cfg, 0.1, 0.5)
    )
    rep = cf.confirm(f, ArtifactStore(tmp_path / "s2"), tmp_path / "res2")
    assert ran == [10, 11, 12] and rep["result"]["verdict"] == "no lead" and "not_run" not in rep
    flat = [{"arm": "main", "value": v, "specific": True} for v in (0.3, -0.2, 0.1)]
    assert cf.judge(cf.load_prereg(f), flat, registered=True)["verdict"] == "no lead"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (SCREEN.replace("seeds: [10, 11, 12]", "seeds: [10, 11]"), "at least 3 runs"),
        (SCREEN.replace("purpose: screen", "purpose: explore"), "purpose 'explore'"),
        (SCREEN.replace("purpose: screen", ""), "test must be t_and_sign_flip"),
        (PREREG.replace("null_seeds: [20, 21]", "null_seeds: []"), "'null_seeds' must be"),
    ],
)
def test_screen_and_confirmation_rules_are_checked(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(ValueError, match=message):
        cf.load_prereg(f)


def test_a_setting_can_take_each_runs_seed(tmp_path: Path) -> None:
    block = "settings:\n  - n_prompts=16\n  - teacher.train.seed={seed}  # block style: no quotes"
    text = PREREG.replace("settings: [n_prompts=16]", block)
    f = tmp_path / "p.yaml"
    f.write_text(text)
    runs = cf.cells(cf.load_prereg(f))
    assert [c.teacher.train.seed for _, c in runs] == [c.seed for _, c in runs]
    assert {c.seed for _, c in runs} == {10, 11, 12, 13, 14, 15, 20, 21}
    f.write_text(text.replace("{seed}", "{run}"))
    with pytest.raises(ValueError, match="the only placeholder is"):
        cf.load_prereg(f)


def test_a_null_margin_fails_a_null_that_is_not_significant_but_not_small() -> None:
    # "Not significant" is easiest to meet with few, noisy null runs; the margin is an equivalence
    # bound: the null's interval must lie inside ±margin × the main mean.
    prereg = {"seeds": list(range(6)), "null_seeds": [0, 1, 2], "test": "t_and_sign_flip"}
    prereg |= {"alpha": 0.05, "specific_share": 0.8, "null_alpha": 0.05, "null_margin": 0.25}
    main = [{"arm": "main", "value": 4.0 + i / 10, "specific": True} for i in range(6)]
    noisy = [{"arm": "null", "value": v} for v in (1.5, -1.2, 0.9)]  # p 0.67, 95 % [-3.1, 3.9]
    res = cf.judge(prereg, main + noisy, registered=True)
    assert res["checks"]["null_not_significant"] is True
    assert res["checks"]["null_within_margin"] is False and res["verdict"] == "fail"
    assert res["null_bound"] == pytest.approx(0.25 * 4.25)
    tight = [{"arm": "null", "value": v} for v in (0.1, -0.12, 0.03)]
    res = cf.judge(prereg, main + tight, registered=True)
    assert res["checks"]["null_within_margin"] is True and res["verdict"] == "pass"
    assert res["null_confidence"] == pytest.approx(0.95)
    # The interval's confidence is 1 - null_alpha: at 0.5 (a 50 % interval) this null fits.
    mid = [{"arm": "null", "value": v} for v in (1.2, -0.6, 0.4, 0.2)]  # 95 % [-0.88, 1.48]
    assert cf.judge(prereg, main + mid, registered=True)["checks"]["null_within_margin"] is False
    res = cf.judge(prereg | {"null_alpha": 0.5}, main + mid, registered=True)
    assert res["checks"]["null_within_margin"] is True and res["null_confidence"] == 0.5
    # Without a positive main mean there is nothing to bound the null by: that check is absent
    # and the fail is the main check's, not the null's.
    neg = [{**r, "value": -r["value"]} for r in main]
    res = cf.judge(prereg, neg + tight, registered=True)
    assert "null_within_margin" not in res["checks"] and res["null_bound"] is None
    assert res["checks"]["positive_over_runs"] is False and res["verdict"] == "fail"
    # Without the field the check is absent (older files keep their rule).
    del prereg["null_margin"]
    assert "null_within_margin" not in cf.judge(prereg, main + noisy, registered=True)["checks"]


def test_a_null_margin_needs_null_seeds_and_a_share(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(PREREG + "null_margin: 1.5\n")
    with pytest.raises(ValueError, match="'null_margin' must be in"):
        cf.load_prereg(f)
    f.write_text(SCREEN + "null_margin: 0.25\n")
    with pytest.raises(ValueError, match="'null_margin' needs at least 2 null seeds"):
        cf.load_prereg(f)
    f.write_text(PREREG.replace("null_seeds: [20, 21]", "null_seeds: [20]") + "null_margin: 0.2\n")
    with pytest.raises(ValueError, match="'null_margin' needs at least 2 null seeds"):
        cf.load_prereg(f)  # one run has no interval: the file could never pass
    f.write_text(PREREG + "null_margin: 0.25\n")
    assert cf.load_prereg(f)["null_margin"] == 0.25


CALIBRATE = """\
schema: slb.prereg/1
name: c
purpose: calibrate
suite: quick
task: numbers
trait: owl
settings: [n_prompts=16, "student.seed=5{seed}"]
seeds: []
null_seeds: [30, 31, 32, 33, 34, 35]
statistic: own_animal
test: t_and_sign_flip
null_alpha: 0.05
"""


def test_a_calibration_runs_the_null_alone_and_says_whether_it_holds(
    tmp_path: Path, monkeypatch
) -> None:
    f = _repo(tmp_path / "repo", CALIBRATE)
    made: list[tuple[bool, int, int]] = []

    def noise(cfg):  # both signs: the null holds
        made.append((cfg.null_arm, cfg.seed, cfg.student.seed))
        return _art(cfg, (-1) ** cfg.seed * (0.02 + cfg.seed / 1000), 0.5)

    monkeypatch.setattr(cf, "prepare_teacher", lambda cfg, store, log_dir: "t")
    monkeypatch.setattr(cf, "run_cell", lambda cfg, store, log_dir: noise(cfg))
    rep = cf.confirm(f, ArtifactStore(tmp_path / "store"), tmp_path / "res")
    res = rep["result"]
    # Every run is a same-animal null cell; a setting can move the students' seed off the cell's.
    assert made == [(True, s, int(f"5{s}")) for s in range(30, 36)]
    assert res["verdict"] == "null holds" and res["checks"] == {"null_not_significant": True}
    assert res["main"] is None and res["n_null"] == 6 and res["specific_share"] is None
    # One-way drift in every run: the null fails, and only once every run is made (no main
    # run exists to decide it earlier, so none is skipped).
    drift = [{"arm": "null", "value": 0.04 + i / 100} for i in range(6)]
    pre = cf.load_prereg(f)
    assert cf.judge(pre, drift[:5], registered=True)["verdict"] == "incomplete"
    res = cf.judge(pre, drift, registered=True)
    assert res["verdict"] == "null fails" and res["null"]["p"] < 0.05
    noisy = [{"arm": "null", "value": v} for v in (0.1, -0.12, 0.03, -0.05, 0.08, -0.02)]
    assert cf.judge(pre, noisy, registered=False)["verdict"] == "null fails"  # unregistered
    assert "specific" not in cf._says(rep)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("alpha: 0.05", "'alpha' has no meaning in a calibration"),
        ("specific_share: 0.9", "'specific_share' has no meaning"),
        ("null_margin: 0.5", "'null_margin' has no meaning"),
        ("seeds: [1]", "'seeds' must be \\[\\]"),
        ("null_seeds: [30, 31, 32, 33, 34]", "at least 6 runs in a calibration"),
        ("null_seeds: [30, 30, 32, 33, 34, 35]", "distinct integer seeds"),
        ("test: t", "a calibration's test must be t_and_sign_flip"),
        ("settings: [null_arm=false]", "a setting turns the null off"),
    ],
)
def test_a_calibration_file_is_checked(tmp_path: Path, edit: str, message: str) -> None:
    _refused(tmp_path, CALIBRATE, edit, message)


COMMITTED = sorted((Path(__file__).parents[1] / "docs" / "prereg").glob("*.yaml"))


def test_the_committed_pre_registrations_are_found() -> None:
    assert len(COMMITTED) >= 5  # the parametrised check below would pass on an empty list


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_every_committed_pre_registration_is_valid(path: Path) -> None:
    # A rule added later (e.g. "could never pass") must not strand a file already run or running.
    prereg = cf.load_prereg(path)
    assert prereg["name"] == path.stem


def test_a_significant_null_decides_the_fail_once_every_null_run_is_made(
    tmp_path: Path, monkeypatch
) -> None:
    # Seeds 10-15 main, 20-21 null, interleaved: m10 n20 m11 n21 | m12 m13 m14 m15. Every main
    # run is specific and strong; the null is too (both 0.5): once n21 is made no main run can
    # change the null check, so the file stops there.
    f = _repo(tmp_path / "repo")
    ran = _fake_cells(monkeypatch, lambda cfg: _art(cfg, 0.5 + cfg.seed / 1000, 0.01))
    rep = cf.confirm(f, ArtifactStore(tmp_path / "store"), tmp_path / "res")
    res = rep["result"]
    assert ran == [10, 20, 11, 21]
    assert res["verdict"] == "fail" and res["decided_early"] is True
    assert res["decided_by"].startswith("all 2 null runs made and the null is significant")
    assert [r["seed"] for r in rep["not_run"]] == [12, 13, 14, 15]
    # A null that is not significant leaves the verdict open.
    runs = [{"arm": "main", "value": 0.5, "specific": True} for _ in range(2)]
    runs += [{"arm": "null", "value": v} for v in (0.3, -0.3)]
    assert cf.judge(cf.load_prereg(f), runs, registered=True)["verdict"] == "incomplete"


def test_a_file_edited_after_its_runs_cannot_pass(tmp_path: Path, monkeypatch) -> None:
    f = _repo(tmp_path / "repo")

    def art(cfg) -> dict:
        null = 0.02 if cfg.seed % 2 else -0.03
        return _art(
            cfg, null if cfg.null_arm else 0.5 + cfg.seed / 100, 0.5 if cfg.null_arm else 0.01
        )

    _fake_cells(monkeypatch, art)
    res = tmp_path / "res"
    rep = cf.confirm(f, ArtifactStore(tmp_path / "store"), res)
    assert rep["result"]["verdict"] == "pass" and rep["registration"]["runs_before_fixed"] == []
    sha = rep["registration"]["sha256"]
    assert all(r["prereg_sha256"] == sha for r in rep["runs"])  # each run names its file
    # The file is edited and committed again; the finished cells are reused, not rerun.
    f.write_text(PREREG.replace("null_alpha: 0.05", "null_alpha: 0.01"))
    git = ["git", "-C", str(f.parent), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "commit", "-qam", "edit"], check=True)
    rep = cf.confirm(f, ArtifactStore(tmp_path / "store"), res)
    assert len(rep["registration"]["runs_before_fixed"]) == 8
    assert rep["result"]["verdict"] == "fail"
    assert "made under another version of the file" in cf._says(rep)


def test_a_cell_that_recorded_no_file_is_judged_by_its_finish_time() -> None:
    reg = {"sha256": "s", "fixed_at": "2026-12-05T10:00:00+00:00"}
    runs = [
        {"arm": "main", "seed": 1, "finished": "2026-12-05T09:59:00+00:00"},
        {"arm": "main", "seed": 2, "finished": "2026-12-05T10:01:00+00:00"},
        {"arm": "main", "seed": 3, "finished": "2026-12-04T00:00:00+00:00", "prereg_sha256": "s"},
        {"arm": "null", "seed": 4, "error": "boom"},
    ]
    assert cf.before_registration(runs, reg) == [
        {"arm": "main", "seed": 1, "why": "finished 2026-12-05T09:59:00+00:00"}
    ]


def test_every_committed_report_ran_after_its_file_was_fixed() -> None:
    root = Path(__file__).resolve().parent.parent / "docs" / "experiments" / "confirm"
    reports = sorted(root.glob("*/report.json"))
    assert len(reports) >= 10
    for path in reports:
        rep = json.loads(path.read_text())
        runs = [
            r | {"finished": _finished(path.parent, r)} for r in rep["runs"] if "error" not in r
        ]
        assert cf.before_registration(runs, rep["registration"]) == [], path


def _finished(folder: Path, run: dict) -> str | None:
    """When the run's cell finished (a multi-animal run: its earliest cell; None if one lacks it)."""
    names = run.get("artifacts") or [run["artifact"]]
    done = [json.loads((folder / n).read_text())["run_info"].get("finished") for n in names]
    return None if None in done else min(done)
