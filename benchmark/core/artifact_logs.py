"""Where a written artifact's Inspect logs live: in its own folder's ``logs/``, linked by paths
relative to the artifact, so a committed results folder links to its own logs on any machine.

A cell whose evals were reused from the store (``slb submit`` into another checkout, ``slb suite``
into another results folder) names logs written elsewhere; :func:`gather_logs` copies each such
log that exists into the folder's ``logs/`` first, so the artifact never points into another
checkout that may be gone. A log that no longer exists keeps its path as recorded."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any


def with_relative_logs(art: dict[str, Any], folder: Path | str) -> dict[str, Any]:
    """``art`` with each Inspect log path that lies under ``folder`` (where the artifact is
    written) made relative to it (readers resolve a relative path against the artifact's
    folder, and so does this); a path elsewhere stays as it was."""
    root = Path(folder).resolve()

    def rel(p: str) -> str:
        q = Path(p) if Path(p).is_absolute() else root / p
        try:
            return q.resolve().relative_to(root).as_posix()
        except ValueError:
            return p

    logs = art.get("inspect_logs")
    if not isinstance(logs, dict):
        return art
    return {**art, "inspect_logs": {k: [rel(str(p)) for p in v] for k, v in logs.items()}}


def gather_logs(art: dict[str, Any], folder: Path | str) -> dict[str, Any]:
    """``art`` with each existing log outside ``folder`` copied into ``folder/logs/`` (kept if a
    file of that name is there already: Inspect names logs by time and a random id) and its path
    pointed at the copy; then :func:`with_relative_logs`."""
    root = Path(folder).resolve()
    logs = art.get("inspect_logs")
    if not isinstance(logs, dict):
        return art

    def local(p: str) -> str:
        src = Path(p) if Path(p).is_absolute() else root / p
        if not src.is_file() or src.resolve().is_relative_to(root):
            return p
        dest = root / "logs" / src.name
        if not dest.exists():  # copied whole or not at all: a cut copy never stands as the log
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = dest.with_name(dest.name + ".part")
            shutil.copy2(src, part)
            os.replace(part, dest)
        return str(dest)

    moved = {k: [local(str(p)) for p in v] for k, v in logs.items()}
    return with_relative_logs({**art, "inspect_logs": moved}, root)
