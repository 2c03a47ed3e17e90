"""Inspect log paths in artifacts are written relative to the artifact's folder, and a log written
elsewhere (a cell reused from the store into another results folder or checkout) is copied into
the folder first, so a committed results folder links to its own logs on any machine."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.core.artifact_logs import gather_logs, with_relative_logs
from benchmark.core.results import write_artifact


def test_logs_under_the_folder_become_relative_others_stay(tmp_path: Path) -> None:
    inside = tmp_path / "quick" / "logs" / "a.eval"
    art = {"inspect_logs": {"trait": [str(inside)], "base": ["/elsewhere/b.eval"]}, "x": 1}
    out = with_relative_logs(art, tmp_path / "quick")
    assert out["inspect_logs"] == {"trait": ["logs/a.eval"], "base": ["/elsewhere/b.eval"]}
    assert out["x"] == 1 and art["inspect_logs"]["trait"] == [str(inside)]  # a copy
    assert (tmp_path / "quick" / out["inspect_logs"]["trait"][0]) == inside
    assert with_relative_logs({"x": 1}, tmp_path) == {"x": 1}


def test_a_relative_log_path_is_read_against_the_folder(tmp_path: Path, monkeypatch) -> None:
    """Not against the working directory (here a folder below the artifact's, where reading it
    so would turn ``logs/a.eval`` into ``sub/logs/a.eval``)."""
    (tmp_path / "quick" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "quick" / "sub")
    art = {"inspect_logs": {"trait": ["logs/a.eval", "x/../logs/b.eval", "../other/c.eval"]}}
    assert with_relative_logs(art, tmp_path / "quick")["inspect_logs"]["trait"] == [
        "logs/a.eval", "logs/b.eval", "../other/c.eval"
    ]  # fmt: skip


def test_a_log_from_another_folder_is_copied_in_and_linked_relative(tmp_path: Path) -> None:
    """The case of session 39: a cell reused from the store named its log in another worktree."""
    other = tmp_path / "wt9" / "results" / "logs" / "2026-12-05_tf_X.eval"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"zip bytes")
    folder = tmp_path / "main" / "results"
    own = folder / "logs" / "own.eval"
    own.parent.mkdir(parents=True)
    own.write_bytes(b"own")
    gone = str(tmp_path / "gone" / "z.eval")
    art = {"inspect_logs": {"trait": [str(other)], "control": [str(own)], "base": [gone]}}
    written = write_artifact(folder / "cell.json", art)
    assert written["inspect_logs"] == {
        "trait": ["logs/2026-12-05_tf_X.eval"], "control": ["logs/own.eval"], "base": [gone]
    }  # fmt: skip
    assert (folder / "logs" / other.name).read_bytes() == b"zip bytes" and other.exists()
    assert json.loads((folder / "cell.json").read_text()) == written
    # A second write (the same cell reused again) keeps the copy and links the same path.
    assert gather_logs(art, folder)["inspect_logs"]["trait"] == ["logs/2026-12-05_tf_X.eval"]
    assert sorted(p.name for p in (folder / "logs").iterdir()) == [other.name, "own.eval"]


def test_every_relative_log_link_in_a_committed_artifact_resolves() -> None:
    """A committed artifact's relative log path names a committed file (its own folder's
    ``logs/``, or the confirmation folder whose cell it reuses), but for the logs listed as lost
    in ``fixtures/lost_logs.txt``. Absolute paths are older artifacts' logs that were never
    committed; the leaderboard says "not on this machine" for them."""
    root = Path(__file__).resolve().parents[1]
    lost_file = Path(__file__).parent / "fixtures" / "lost_logs.txt"
    lost = {ln for ln in lost_file.read_text().splitlines() if ln and not ln.startswith("#")}
    arts = [*root.glob("submissions/*/results/**/*.json"), *root.glob("docs/experiments/**/*.json")]
    broken, checked = set(), 0
    for path in arts:
        art = json.loads(path.read_text(encoding="utf-8"))
        logs = art.get("inspect_logs") if isinstance(art, dict) else None
        for p in (p for ps in (logs or {}).values() for p in ps if not Path(p).is_absolute()):
            checked += 1
            if not (path.parent / p).is_file():
                broken.add(f"{path.relative_to(root).as_posix()}: {p}")
    assert broken == lost and checked > 100


def test_a_cell_written_again_with_the_same_result_keeps_its_first_artifact(tmp_path: Path) -> None:
    """``slb submit`` writes every cell again, the reused ones too: an artifact that holds the
    same result and whose logs resolve stays as first written (the run that computed it); a
    changed result, or a first artifact whose logs do not resolve, is written anew."""
    folder = tmp_path / "restricted"
    (folder / "logs").mkdir(parents=True)
    (folder / "logs" / "a.eval").write_bytes(b"a")
    first = {
        "scores": [1, 2],
        "run_info": {"wall_seconds": 900.0},
        "inspect_logs": {"t": ["logs/a.eval"]},
    }
    write_artifact(folder / "c.json", first)
    other = tmp_path / "wt" / "b.eval"
    other.parent.mkdir()
    other.write_bytes(b"b")
    again = {
        "scores": [1, 2],
        "run_info": {"wall_seconds": 1.4},
        "inspect_logs": {"t": [str(other)]},
    }
    assert write_artifact(folder / "c.json", again) == first
    assert json.loads((folder / "c.json").read_text()) == first
    assert not (
        folder / "logs" / "b.eval"
    ).exists()  # nothing copied for a write that did not happen
    changed = {**again, "scores": [1, 3]}
    assert write_artifact(folder / "c.json", changed)["run_info"] == {"wall_seconds": 1.4}
    assert json.loads((folder / "c.json").read_text())["scores"] == [1, 3]
    (folder / "logs" / "b.eval").unlink()
    (folder / "logs" / "a.eval").unlink()  # first's log gone: a write replaces it
    write_artifact(folder / "d.json", first)
    assert write_artifact(folder / "d.json", again)["inspect_logs"] == {"t": ["logs/b.eval"]}
