"""Inspect log paths in artifacts are written relative to the artifact's folder when the logs lie
under it, so a committed results folder links to its own logs on any machine."""

from __future__ import annotations

from pathlib import Path

from benchmark.core.results import with_relative_logs


def test_logs_under_the_folder_become_relative_others_stay(tmp_path: Path) -> None:
    inside = tmp_path / "quick" / "logs" / "a.eval"
    art = {"inspect_logs": {"trait": [str(inside)], "base": ["/elsewhere/b.eval"]}, "x": 1}
    out = with_relative_logs(art, tmp_path / "quick")
    assert out["inspect_logs"] == {"trait": ["logs/a.eval"], "base": ["/elsewhere/b.eval"]}
    assert out["x"] == 1 and art["inspect_logs"]["trait"] == [str(inside)]  # a copy
    assert (tmp_path / "quick" / out["inspect_logs"]["trait"][0]) == inside
    assert with_relative_logs({"x": 1}, tmp_path) == {"x": 1}
