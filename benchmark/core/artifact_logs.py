"""Where a written artifact's Inspect logs live: in its own folder's ``logs/``, linked by paths
relative to the artifact, so a committed results folder links to its own logs on any machine.

A cell whose evals were reused from the store (``slb submit`` into another checkout, ``slb suite``
into another results folder) names logs written elsewhere; :func:`gather_logs` copies each such
log that exists into the folder's ``logs/`` first, so the artifact never points into another
checkout that may be gone. A log that no longer exists keeps its path as recorded.

:func:`kept_on_disk` says when a cell written again (every stage reused from the store) should
leave the artifact already at its path alone: the same result, logs that resolve. The first one
records the run that computed it; writing again would only swap in a run of seconds."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any


def _at(folder: Path, p: str) -> Path:
    """Where a log link ``p`` of an artifact in ``folder`` points (relative: against it)."""
    return Path(p) if Path(p).is_absolute() else folder / p


def with_relative_logs(art: dict[str, Any], folder: Path | str) -> dict[str, Any]:
    """``art`` with each Inspect log path that lies under ``folder`` (where the artifact is
    written) made relative to it (readers resolve a relative path against the artifact's
    folder, and so does this); a path elsewhere stays as it was."""
    root = Path(folder).resolve()

    def rel(p: str) -> str:
        try:
            return _at(root, p).resolve().relative_to(root).as_posix()
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
        src = _at(root, p)
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


# What differs between two writes of one cell from the same stages: when and where it ran, and
# where its logs were.
RUN_KEYS = frozenset({"run_info", "inspect_logs"})


def kept_on_disk(path: Path | str, art: dict[str, Any]) -> dict[str, Any] | None:
    """The artifact already at ``path`` if it holds ``art``'s result (every key but
    :data:`RUN_KEYS` equal, as JSON) and each of its log links is relative and names a file;
    else None (then the caller writes ``art``, its logs gathered)."""
    path = Path(path)
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict):
        return None

    def result(a: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in a.items() if k not in RUN_KEYS}, sort_keys=True)

    logs = old.get("inspect_logs")
    links = [p for ps in logs.values() for p in ps] if isinstance(logs, dict) else []
    resolves = all(not Path(p).is_absolute() and _at(path.parent, p).is_file() for p in links)
    return old if resolves and result(old) == result(art) else None
