"""Find the results artifacts under some folders and parse each (``benchmark.core.artifact``).

Usage::

    from leaderboard.loader import load
    loaded = load(["submissions", "results"])
    loaded.cells      # one CellResult per usable artifact (duplicates of the same cell dropped)
    loaded.skipped    # Skipped(path, reason) for every file that could not be used

Files named ``summary.json`` (suite summaries pooled over seeds), Inspect log folders (``logs/``)
and hidden folders are not artifacts and are ignored. Submission metadata
(``submissions/<name>/submission.yaml``) is read as data only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmark.core.artifact import CellResult, Skip, parse

DIRS_ENV = "SLB_LEADERBOARD_DIRS"  # os.pathsep-separated folders the app reads
DEFAULT_DIRS = ("submissions", "results")
IGNORED_NAMES = {"summary.json"}
IGNORED_DIRS = {"logs"}
SUBMISSION_META = ("submission.yaml", "submission.yml", "submission.json")


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class Loaded:
    cells: list[CellResult]
    skipped: list[Skipped]
    n_files: int
    submissions: dict[str, dict[str, Any]]  # source -> its submission metadata, if any


def discover(dirs: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """``(artifact path, source label)`` for every candidate JSON under ``dirs``, sorted."""
    found: list[tuple[Path, str]] = []
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            continue
        for p in root.rglob("*.json"):
            rel = p.relative_to(root).parts
            if p.name in IGNORED_NAMES or any(
                part in IGNORED_DIRS or part.startswith(".") for part in rel[:-1]
            ):
                continue
            found.append((p, _source(root, rel)))
    return sorted(found)


def _source(root: Path, rel: tuple[str, ...]) -> str:
    # Under submissions/ the first folder is the submission; elsewhere the folder given is the source.
    if root.resolve().name == "submissions" and len(rel) > 1:
        return f"submissions/{rel[0]}"
    return root.name or str(root)


def load(dirs: Sequence[str | Path]) -> Loaded:
    """Parse every artifact under ``dirs``; never raises for a bad file (it is skipped instead)."""
    cells: list[CellResult] = []
    skipped: list[Skipped] = []
    files = discover(dirs)
    for path, source in files:
        try:
            cells.append(parse(_read(path), str(path), source))
        except Skip as e:
            skipped.append(Skipped(str(path), str(e)))
        except Exception as e:  # noqa: BLE001 - one odd file must never take the app down
            skipped.append(Skipped(str(path), f"unexpected {type(e).__name__}: {e}"))
    cells, dups = _dedupe(cells)
    return Loaded(cells, skipped + dups, len(files), _submission_meta(dirs))


def _read(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Skip(f"not readable JSON: {e}") from None


def _dedupe(cells: list[CellResult]) -> tuple[list[CellResult], list[Skipped]]:
    """The same cell (identical config) seen twice, e.g. in results/ and in a submission, counts
    once: the most recently finished copy is kept, so a re-run replaces an old result."""
    best: dict[str, CellResult] = {}
    dropped: list[Skipped] = []
    for c in cells:
        key = c.config_hash
        old = best.get(key)
        if old is None:
            best[key] = c
            continue
        keep, drop = (c, old) if (c.finished or "") > (old.finished or "") else (old, c)
        best[key] = keep
        dropped.append(
            Skipped(drop.path, f"duplicate of {keep.path} (same config; kept the newer)")
        )
    return list(best.values()), dropped


def _submission_meta(dirs: Sequence[str | Path]) -> dict[str, dict[str, Any]]:
    """Metadata files of submissions (``submissions/<name>/submission.yaml``), read as data only."""
    out: dict[str, dict[str, Any]] = {}
    for d in dirs:
        root = Path(d)
        if not root.is_dir() or root.resolve().name != "submissions":
            continue
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            for fname in SUBMISSION_META:
                meta = _read_meta(sub / fname)
                if meta is not None:
                    out[f"submissions/{sub.name}"] = meta
                    break
    return out


def _read_meta(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        if path.suffix == ".json":
            meta = json.loads(path.read_text(encoding="utf-8"))
        else:
            meta = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception as e:  # noqa: BLE001 - a broken metadata file is shown, not fatal
        return {"error": f"cannot read {path.name}: {e}"}
    return meta if isinstance(meta, dict) else {"error": f"{path.name} is not a mapping"}
