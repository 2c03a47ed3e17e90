"""Submissions: the submission.yaml schema (every problem listed), `slb validate` on the real
baseline artifacts and on tampered copies, and `slb submit` → `slb validate` end to end on a tiny
cell of the worked example (real embedded model), including a failing plugin's error record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import tiny_cell

from benchmark.core.results import pooled_leakage
from benchmark.core.store import ArtifactStore
from benchmark.run.cli import main
from benchmark.run.stages import ARMS
from benchmark.run.submission import load_submission, submit
from benchmark.run.suite import _pooled_entry, run_suite
from benchmark.run.validate import diff_numbers, validate_submission

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "submissions" / "example-digit-entropy"
NONE = ROOT / "submissions" / "none"
TINY = tiny_cell()


def _example_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "example-digit-entropy"
    folder.mkdir()
    for name in ("submission.yaml", "digit_entropy.py"):
        shutil.copy(EXAMPLE / name, folder / name)
    return folder


def test_schema_lists_every_problem(tmp_path: Path) -> None:
    folder = tmp_path / "my-defense"
    folder.mkdir()
    (folder / "submission.yaml").write_text(
        "name: Other Name\nversion: 1\nauthors: []\nlicense: MIT\ncolour: blue\n"
        "defense: {module: ../evil.py}\nparams: [1]\n"
        "description: 'first paragraph\n\n  second paragraph'\n"
    )
    sub, problems = load_submission(folder)
    assert sub is None
    text = "\n".join(problems)
    for expected in (
        "unknown field 'colour'",
        "missing field 'contact'",
        "'version' must be",
        "'name' must be a lower-case name",
        "'authors' must be a non-empty list",
        "'params' must be a mapping",
        "'description' must be one paragraph",
        "'defense.module' '../evil.py' is outside the submission folder",
        "'defense.class' must name the defense class",
    ):
        assert expected in text
    assert len(problems) == 9


def test_defense_must_name_exactly_one_source(tmp_path: Path) -> None:
    folder = _example_copy(tmp_path)
    y = folder / "submission.yaml"
    y.write_text(y.read_text().replace("defense:\n", "defense:\n  builtin: none\n"))
    assert "exactly one of builtin, entry_point, module" in load_submission(folder)[1][0]


def test_an_entry_point_or_builtin_given_as_a_path_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "x.py"
    outside.write_text("print('ran')\n")
    for kind in ("entry_point", "builtin"):
        (tmp_path / kind).mkdir()
        folder = _example_copy(tmp_path / kind)
        y = folder / "submission.yaml"
        text = y.read_text()
        start = text.index("defense:")
        end = text.index("\n", text.index("class:", start)) + 1
        y.write_text(text[:start] + f"defense:\n  {kind}: {outside}:P\n" + text[end:])
        sub, problems = load_submission(folder)
        assert sub is None and any(f"'defense.{kind}'" in p for p in problems), problems


def test_example_loads_in_a_child_and_lists_missing_results(tmp_path: Path, capsys) -> None:
    folder = _example_copy(tmp_path)
    sub, problems = load_submission(folder)
    assert not problems and sub.kind == "module" and sub.params == {"drop_share": 0.2}
    assert main(["validate", str(folder), "--store", str(tmp_path / "store")]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM: no results yet" in out and "defense 'digit-entropy' v1.0 loads (module)" in out
    # A bad parameter is caught by the plugin's own typed Params, in the child.
    y = folder / "submission.yaml"
    y.write_text(y.read_text().replace("drop_share: 0.2", "drop_share: 1.5"))
    report = validate_submission(folder)
    assert any("Invalid drop_share: 1.5" in p for p in report.problems)


def test_baseline_artifacts_validate_with_predates_warnings(tmp_path: Path) -> None:
    report = validate_submission(NONE)
    assert report.ok, report.render()
    # An artifact written before integrity hashes existed (the experiments under docs/ hold two)
    # is a warning, not a problem.
    folder = tmp_path / "none"
    shutil.copytree(NONE, folder)
    cell = next((folder / "results" / "quick").glob("numbers__*seed0*.json"))
    art = json.loads(cell.read_text())
    del art["integrity"]
    cell.write_text(json.dumps(art))
    report = validate_submission(folder)
    assert report.ok, report.render()
    assert any(
        "no integrity block (artifact predates integrity hashes)" in w for w in report.warnings
    )


def test_tampered_baseline_copy_lists_every_problem(tmp_path: Path) -> None:
    folder = tmp_path / "none"
    shutil.copytree(NONE, folder)
    cell = next((folder / "results" / "quick-bare-control").glob("numbers__*seed0*.json"))
    art = json.loads(cell.read_text())
    art["leakage"]["teacher_forced"]["trait_vs_control"]["diff_pp"] += 0.5
    art["config"]["defense_params"] = {"strength": 2}
    cell.write_text(json.dumps(art))
    summary = folder / "results" / "quick-bare-control" / "summary.json"
    s = json.loads(summary.read_text())
    s["pooled"][0]["leakage"]["teacher_forced"]["p_value"] = 0.5
    summary.write_text(json.dumps(s))
    problems = "\n".join(validate_submission(folder).problems)
    assert "leakage.teacher_forced.trait_vs_control.diff_pp: stored" in problems
    assert "ran with params {'strength': 2}" in problems
    # That cell's config no longer matches its seeds' others: the pool stands for no one setup.
    assert "pooled none: no listed cells of one setup with exactly seeds [0, 1, 2, 3]" in problems
    # With the cell left alone, the tampered pooled number itself is named.
    shutil.copy(NONE / "results" / "quick-bare-control" / cell.name, cell)
    assert "pooled none.teacher_forced.p_value" in "\n".join(validate_submission(folder).problems)


def test_placebo_artifacts_own_animal_checked_and_older_ones_warned(tmp_path: Path) -> None:
    """The own-animal statistic is recomputed like every stored number; an artifact written
    before it existed is a warning, not a problem."""
    from benchmark.core.results import OWN_ANIMAL, leakage_block
    from benchmark.core.store import stable_hash

    folder = tmp_path / "none"
    shutil.copytree(NONE, folder)
    cells = sorted((folder / "results" / "quick").glob("numbers__*.json"))
    art = json.loads(cells[0].read_text())
    art["leakage"]["teacher_forced"].pop(OWN_ANIMAL, None)  # as written before it existed
    art["integrity"]["leakage"] = stable_hash(art["leakage"])
    cells[0].write_text(json.dumps(art))

    art = json.loads(cells[1].read_text())
    evals = {name: {"per_question": rows} for name, rows in art["scores"].items()}
    own = leakage_block(evals, "teacher_forced")[OWN_ANIMAL]
    own["log_odds_diff"] += 0.1
    art["leakage"]["teacher_forced"][OWN_ANIMAL] = own
    cells[1].write_text(json.dumps(art))
    report = validate_submission(folder)
    assert any(
        f"{cells[0]}: leakage.teacher_forced: no own_animal statistic (artifact predates it)" in w
        for w in report.warnings
    ), report.render()
    assert [p for p in report.problems if str(cells[1]) in p] == [
        f"{cells[1]}: the leakage block does not match its integrity hash",
        f"{cells[1]}: leakage.teacher_forced.own_animal.log_odds_diff: stored "
        f"{own['log_odds_diff']!r}, recomputed {own['log_odds_diff'] - 0.1!r}",
    ]
    assert not [p for p in report.problems if str(cells[0]) in p]


def test_training_rows_from_other_hardware_are_unverified_not_failed(tmp_path: Path) -> None:
    """Stage keys name the config, not the hardware: a GPU artifact's rows can differ from a CPU
    store's entry under the same key, which the validator says instead of calling it tampering."""
    from benchmark.run.integrity import check_integrity
    from benchmark.run.validate import Report

    cell = next((NONE / "results" / "quick").glob("numbers__*seed0*.json"))
    art = json.loads(cell.read_text())

    class OtherRows:
        def has(self, stage: str, key: str) -> bool:
            return True

        def read_rows(self, stage: str, key: str) -> list[dict]:
            return [{"id": "x", "prompt": "p", "completion": key}]

    for device, bucket in [("cuda: NVIDIA H200", "warnings"), ("cpu: 2 threads", "problems")]:
        art["run_info"]["device"] = device
        report = Report()
        check_integrity(art, "cell", report, OtherRows())
        hits = [m for m in getattr(report, bucket) if "training rows" in m]
        assert len(hits) == 2, (device, report.render())
        other = "problems" if bucket == "warnings" else "warnings"
        assert not [m for m in getattr(report, other) if "training rows" in m]


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory) -> ArtifactStore:
    return ArtifactStore(tmp_path_factory.mktemp("store"))


def test_failing_plugin_is_a_clean_error_record_and_keeps_stages(
    tiny_store, tmp_path, smollm_dir
) -> None:
    crash = tmp_path / "crash.py"
    crash.write_text(
        "import os\nfrom defenses import Defense\n\n"
        "class Crash(Defense):\n    def apply(self, rows, ctx):\n        os._exit(7)\n"
    )
    summary = run_suite(
        "quick", tiny_store, tmp_path / "results", seeds=[0], overrides=TINY,
        defenses=[f"{crash}:Crash"], tasks=["numbers"],
    )  # fmt: skip
    (err,) = summary["errors"]
    # The arms run in a random order (blindness): the one that ran first is the one that failed.
    assert err["stage"] == "defense" and err["hook"] == "apply" and err["arm"] in ARMS
    assert err["defense"] == "Crash" and "exited with code 7" in err["error"]
    assert err["cell"].startswith("numbers__crash.Crash__owl__seed0__")
    # What was computed before the defense (that arm's data) survives in the store.
    (gen,) = tiny_store.root.glob("generations/*/.complete")
    assert json.loads((gen.parent / "meta.json").read_text())["arm"] == err["arm"]
    assert len(list(tiny_store.root.glob("filtered/*/.complete"))) == 1
    assert not list(tiny_store.root.glob("defended/*"))
    assert json.loads((tmp_path / "results" / "quick" / "summary.json").read_text())["errors"]


def test_submit_then_validate_end_to_end(tiny_store, tmp_path, smollm_dir, monkeypatch) -> None:
    folder = _example_copy(tmp_path)
    monkeypatch.chdir(tmp_path)  # as a submitter runs it: the config records a relative path
    summary = submit(folder, tiny_store, "quick", seeds=[0], tasks=["numbers"], overrides=TINY)
    assert summary["errors"] == [] and len(summary["cells"]) == 1
    art_path = next((folder / "results" / "quick").glob("numbers__digit_entropy*.json"))
    art = json.loads(art_path.read_text())
    assert art["config"]["defense"] == "example-digit-entropy/digit_entropy.py:DigitEntropyFilter"
    assert art["defense"]["name"] == "digit-entropy" and art["defense"]["source"]["sha256"]
    assert art["defense"]["description"].startswith("Drops the share of number-list rows")
    for arm in ("trait", "control"):
        d = art["data"][arm]
        assert d["rows_kept_share"] == d["after_defense"] / d["generated"]
        assert d["defense_notes"]["digit_entropy_dropped"] == 1  # a fifth of six rows
        assert d["defense_cost"]["wall_seconds"] > 0 and d["defense_cost"]["helper_calls"] == 0
        assert sum(e["defended_completion"] == "(dropped)" for e in d["examples"]) == 1
        assert d["examples"][0]["status"] == "dropped"
    report = validate_submission(folder, tiny_store)
    assert report.ok, report.render()
    assert not any("not re-hashed" in n for n in report.notes)  # training rows were re-hashed

    # The defense kept 5 of 6 rows per arm, so submit also ran the matched random drop, into the
    # folder that owns those artifacts, at that share, on the same seed and teachers' data.
    (drop_path,) = (tmp_path / "random_drop" / "results" / "quick").glob("numbers__random_drop*")
    drop = json.loads(drop_path.read_text())
    assert drop["config"]["defense_params"] == {"keep": round(5 / 6, 3)}
    assert drop["config"]["seed"] == art["config"]["seed"]
    for arm in ("trait", "control"):
        d, ours = drop["data"][arm], art["data"][arm]
        assert d["generated"] == ours["generated"] and d["after_defense"] == ours["after_defense"]
        assert sum(e["defended_completion"] == "(dropped)" for e in d["examples"]) == 1

    # Tamper with a score, the training-data hash and the module's code: each is named.
    art["scores"]["trait"][0]["teacher_forced"] = 0.5
    art["integrity"]["training_rows"]["trait"] = "0" * 16
    art_path.write_text(json.dumps(art))
    module = folder / "digit_entropy.py"
    module.write_text(module.read_text() + "\n# edited\n")
    problems = "\n".join(validate_submission(folder, tiny_store).problems)
    assert "the scores block does not match its integrity hash" in problems
    assert "leakage.teacher_forced.trait_vs_control" in problems
    assert "trait training rows do not match their hash" in problems
    assert "control training rows" not in problems
    assert "the defense code changed since these results were produced" in problems


@pytest.mark.parametrize(
    "folder", sorted(p.parent.name for p in (ROOT / "submissions").glob("*/submission.yaml"))
)
def test_every_shipped_submission_is_well_formed(folder: str) -> None:
    sub, problems = load_submission(ROOT / "submissions" / folder)
    assert not problems and sub.name == folder


def test_pool_rebuilds_the_summary_of_seeds_run_separately(tmp_path: Path, capsys) -> None:
    """`slb pool`: the baseline's three seeds, copied into a folder as if each had been run by
    its own `slb submit` (each leaves a summary of its own seed only), pool to exactly the summary
    one invocation over all three wrote. A replicate of another setup pools apart; a file that
    is not a cell result is an error naming it, and the summary is left as it was."""
    real = NONE / "results" / "quick"
    want = json.loads((real / "summary.json").read_text())
    out = tmp_path / "quick"
    out.mkdir()
    for f in sorted(real.glob("numbers__*.json")):
        shutil.copy(f, out / f.name)
    stale = {"suite": "quick", "cells": [want["cells"][2]], "pooled": [], "errors": []}
    stale["errors"] = [{"cell": "numbers__none__owl__seed7__deadbeef", "error": "X: killed"}]
    (out / "summary.json").write_text(json.dumps(stale))
    other = sorted((NONE / "results" / "quick-bare-control").glob("numbers__*seed[01]__*.json"))
    for f in other:
        shutil.copy(f, out / f.name)
    assert main(["pool", str(out)]) == 0
    got = json.loads((out / "summary.json").read_text())
    ours = [p for p in got["pooled"] if p["seeds"] == [0, 1, 2]]
    # The committed summary predates the verdict block; everything it has is reproduced
    assert len(ours) == 1 and "verdict" in ours[0]["leakage"]
    # (up to float round-off, the tolerance `slb validate` allows).
    fresh = {k: v for k, v in ours[0]["leakage"].items() if k != "verdict"}
    assert not diff_numbers(want["pooled"][0]["leakage"], fresh, "pool")
    assert ours[0]["cost"] == want["pooled"][0]["cost"]
    assert set(want["cells"]) <= set(got["cells"]) and len(got["cells"]) == 5
    assert [p["seeds"] for p in got["pooled"] if p is not ours[0]] == [[0, 1]]  # bare control
    assert got["errors"] == stale["errors"]  # that cell still has no results file
    assert "pooled over seeds [0, 1, 2]" in capsys.readouterr().out
    before = (out / "summary.json").read_text()
    (out / "notes.json").write_text('{"hello": 1}')
    assert main(["pool", str(out)]) == 2
    assert "notes.json: not a cell result" in capsys.readouterr().err
    assert (out / "summary.json").read_text() == before


def test_a_pool_does_not_depend_on_the_order_its_seeds_ran_in() -> None:
    """`slb submit --seeds 700,...,704,602,603,604` pooled its per-seed lists in the order given
    while `slb validate` recomputed them from the files (by name), so the summary it had just
    written failed validation. A pool now lists seeds and per-seed values in seed order."""
    real = sorted((NONE / "results" / "quick").glob("numbers__*.json"))
    arts = [json.loads(f.read_text()) for f in real]
    assert [a["config"]["seed"] for a in arts] == [0, 1, 2]
    forward, backward = pooled_leakage(arts), pooled_leakage(arts[::-1])
    assert forward == backward
    assert forward["own_animal"]["per_seed_log_odds"][0] == pytest.approx(
        arts[0]["leakage"]["teacher_forced"]["own_animal"]["log_odds_diff"]
    )
    entry = _pooled_entry("numbers", "none", "owl", [arts[2], arts[0]])
    assert entry["seeds"] == [0, 2] and entry["leakage"] == pooled_leakage([arts[0], arts[2]])


@pytest.mark.parametrize(
    "folder", sorted(p.parent.name for p in (ROOT / "submissions").glob("*/submission.yaml"))
)
def test_every_shipped_submission_validates(folder: str) -> None:
    """What `slb validate submissions/<name>` says of every committed folder: the matched-drop
    control folder failed (30 problems) until its per-share params and its summary of two shares
    were read as their writers wrote them."""
    report = validate_submission(ROOT / "submissions" / folder)
    assert report.ok, report.render()


def test_matched_drops_are_checked_at_their_own_share(tmp_path: Path) -> None:
    """The control folder holds a run per share a defense kept, each `{"keep": share}`: accepted
    there (checked against the built-in at that share), and nowhere else; anything else in its
    params, a share outside (0, 1], or a pool over the wrong cells is still a problem."""
    folder = tmp_path / "random_drop"
    shutil.copytree(ROOT / "submissions" / "random_drop", folder)
    runs = folder / "results" / "topk-prefix"
    keeps = {json.loads(f.read_text())["config"]["defense_params"]["keep"] for f in runs.glob("n*")}
    assert len(keeps) == 2  # two shares in one folder, one pooled over seeds 700-704
    assert validate_submission(folder).ok
    (first, second, *_) = sorted(runs.glob("numbers__*.json"))
    for f, params in ((first, {"keep": 0.947, "mode": "x"}), (second, {"keep": 1.5})):
        art = json.loads(f.read_text())
        art["config"]["defense_params"] = params
        f.write_text(json.dumps(art))
    pools = folder / "results" / "restricted" / "summary.json"
    summary = json.loads(pools.read_text())
    summary["pooled"][0]["leakage"]["own_animal"]["diff_pp"] += 0.1
    pools.write_text(json.dumps(summary))
    problems = "\n".join(validate_submission(folder).problems)
    assert "ran with params {'keep': 0.947, 'mode': 'x'}" in problems
    assert "ran with params {'keep': 1.5}" in problems
    assert "pooled random_drop.own_animal.diff_pp" in problems
    # The topk-prefix pool's cells no longer share a config: it stands for no one setup.
    assert "pooled random_drop: no listed cells of one setup with exactly seeds" in problems
    # The same runs under a submission that is not the control: its own params or a problem.
    other = tmp_path / "not_control"
    shutil.copytree(ROOT / "submissions" / "random_drop", other)
    yaml_path = other / "submission.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("reference: matched random drop\n", ""))
    yaml_path.write_text(yaml_path.read_text().replace("name: random_drop", "name: not_control"))
    problems = "\n".join(validate_submission(other).problems)
    assert problems.count("submission.yaml has {}") == 11


def test_a_pool_stands_for_exactly_one_setups_cells(tmp_path: Path) -> None:
    """A pooled entry must be the pool of all the cells of one setup with exactly its seeds (its
    `pool_key` names the setup): a pool over some of them (seeds picked), over two shares, over
    one cell, or under another setup's key is a problem; so are params that are not an object
    and a control folder whose yaml sets params (the leaderboard would skip its runs)."""
    folder = tmp_path / "random_drop"
    shutil.copytree(ROOT / "submissions" / "random_drop", folder)
    runs = folder / "results" / "topk-prefix"
    cells = {n: json.loads((runs / f"{n}.json").read_text()) for n in _listed(runs)}
    by_share: dict[float, list[dict]] = {}
    for art in cells.values():
        by_share.setdefault(art["config"]["defense_params"]["keep"], []).append(art)
    five, one = sorted(by_share.values(), key=len, reverse=True)
    honest = _pooled_entry("numbers", "random_drop", "owl", five)
    picked = _pooled_entry("numbers", "random_drop", "owl", five[1:4])
    mixed = _pooled_entry("numbers", "random_drop", "owl", [one[0], five[1]])
    single = {**_pooled_entry("numbers", "random_drop", "owl", five[:2]), "seeds": [700]}
    alias = {**honest, "pool_key": mixed["pool_key"]}
    summary = json.loads((runs / "summary.json").read_text())
    summary["pooled"] = [honest, picked, mixed, single, alias]
    (runs / "summary.json").write_text(json.dumps(summary))
    problems = validate_submission(folder).problems
    pool_lines = [p for p in problems if "pooled random_drop" in p]
    assert len(pool_lines) == 4, problems  # all but the honest one
    assert sum("exactly seeds [701, 702, 703]" in p for p in pool_lines) == 1
    assert sum("expected the list of its 2 or more cells' seeds" in p for p in pool_lines) == 1
    art = cells[next(iter(cells))]
    art["config"]["defense_params"] = 5
    (runs / f"{next(iter(cells))}.json").write_text(json.dumps(art))
    yaml_path = folder / "submission.yaml"
    yaml_path.write_text(yaml_path.read_text() + "params: {keep: 0.5}\n")
    report = validate_submission(folder)
    assert any("ran with params 5, submission.yaml has" in p for p in report.problems)
    assert not any("cannot be checked" in p for p in report.problems)
    assert sum("submission.yaml has {'keep': 0.5}" in p for p in report.problems) == 11


def _listed(runs: Path) -> list[str]:
    return json.loads((runs / "summary.json").read_text())["cells"]
