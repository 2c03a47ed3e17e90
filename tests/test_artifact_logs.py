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
