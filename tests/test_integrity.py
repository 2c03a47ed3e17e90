"""`slb validate` re-hashes what each student trained on: in the soft-label channel the rows with
the teacher's labels, in the positive control the rows with the planted ones. A tiny real cell of
each (embedded model), submitted and validated; then the hashes and the store tampered with."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import tiny_cell

from benchmark.core.distill import SOFT_FIELD
from benchmark.core.store import ArtifactStore
from benchmark.run.integrity import check_integrity, trained_rows
from benchmark.run.submission import submit
from benchmark.run.validate import Report, validate_submission

ROOT = Path(__file__).resolve().parent.parent
TINY = tiny_cell()


@pytest.fixture(scope="module")
def soft_planted(tmp_path_factory, smollm_dir) -> tuple[Path, ArtifactStore]:
    """``none`` submitted on one tiny numbers cell with top-k labels and two planted rows."""
    tmp = tmp_path_factory.mktemp("integrity")
    folder = tmp / "none"
    folder.mkdir()
    shutil.copy(ROOT / "submissions" / "none" / "submission.yaml", folder / "submission.yaml")
    store = ArtifactStore(tmp / "store")
    settings = ["student.labels=topk", "student.top_k=3", "planted_share=0.34"]
    summary = submit(
        folder, store, "quick", seeds=[0], tasks=["numbers"], overrides=TINY, settings=settings
    )
    assert summary["errors"] == [] and len(summary["cells"]) == 1
    return folder, store


def _artifact(folder: Path) -> tuple[Path, dict]:
    path = next((folder / "results" / "quick").glob("numbers__none__*.json"))
    return path, json.loads(path.read_text())


def test_soft_label_and_planted_rows_are_rehashed(soft_planted) -> None:
    folder, store = soft_planted
    _, art = _artifact(folder)
    assert art["data"]["trait"]["planted"] == 2
    for arm in ("trait", "control"):
        assert art["data"][arm]["labels"]["labels"] == "topk"
        assert store.has("labelled", art["data"][arm]["labelled_key"])
    report = validate_submission(folder, store)
    assert report.ok, report.render()
    assert not [n for n in report.notes if "not re-hashed" in n], report.notes
    # The labelled rows are what the hash covers.
    rows, _ = trained_rows(art, store)
    assert rows is not None and all(SOFT_FIELD in r for arm in rows for r in arm)


def test_a_changed_labelled_row_or_hash_is_a_problem(soft_planted, tmp_path: Path) -> None:
    folder, store = soft_planted
    _, art = _artifact(folder)

    class Changed:  # the store's labelled rows with one teacher log-prob nudged
        def has(self, stage: str, key: str) -> bool:
            return store.has(stage, key)

        def read_rows(self, stage: str, key: str) -> list[dict]:
            rows = store.read_rows(stage, key)
            if key == art["data"]["control"]["labelled_key"]:
                rows[0][SOFT_FIELD]["logprobs"][0][0] += 0.01
            return rows

    report = Report()
    check_integrity(art, "cell", report, Changed())
    assert report.problems == ["cell: control training rows do not match their hash"]
    gpu = json.loads(json.dumps(art))  # labelled keys name the hardware: no GPU excuse
    gpu["run_info"]["device"] = "cuda: NVIDIA H200"
    report = Report()
    check_integrity(gpu, "cell", report, Changed())
    assert report.problems == ["cell: control training rows do not match their hash"]


def test_planted_rows_are_replanted_and_old_soft_artifacts_get_a_note(soft_planted) -> None:
    folder, store = soft_planted
    _, art = _artifact(folder)
    hard = json.loads(json.dumps(art))
    for arm in ("trait", "control"):  # as if the students had learnt the sampled tokens
        del hard["data"][arm]["labelled_key"], hard["data"][arm]["labels"]
    rows, why = trained_rows(hard, store)
    assert rows is not None, why
    planted = [r for r in rows[0] if "owl" in r["completion"].lower()]
    assert len(planted) == 2  # the planted rows, rebuilt from the config's share and seed
    # Row for row what the students trained on, but for the teacher's labels.
    labelled, _ = trained_rows(art, store)
    assert labelled is not None
    for rebuilt, stored in zip(rows, labelled, strict=True):
        assert rebuilt == [{k: v for k, v in r.items() if k != SOFT_FIELD} for r in stored]
    old = json.loads(json.dumps(art))
    for arm in ("trait", "control"):  # a soft-label artifact from before labelled_key
        del old["data"][arm]["labelled_key"]
    report = Report()
    check_integrity(old, "cell", report, store)
    assert report.problems == []
    assert report.notes == [
        "cell: training rows not re-hashed (soft-label rows; the artifact predates "
        "data.<arm>.labelled_key)"
    ]
    one = json.loads(json.dumps(art))
    del one["data"]["trait"]["labelled_key"]
    report = Report()
    check_integrity(one, "cell", report, store)
    assert report.problems == ["cell: data.<arm>.labelled_key is recorded for one arm only"]
