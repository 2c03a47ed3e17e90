"""Argument checks of the ``slb`` command line: argparse types and the results-folder probe.

Each turns a bad value into one line that names the flag and what was expected, before any work
starts (``benchmark.run.cli`` wires them into its parsers).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any


def writable(folder: Path, flag: str) -> Path:
    """``folder`` (created) if a file can be written in it: checked before any work starts, so a
    read-only results folder fails now, not after hours of stages."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".slb-write-check-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"{flag} {str(folder)!r} is not writable: {e.strerror or e}") from None
    return folder


def json_object(text: str, flag: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{flag} is not valid JSON ({e}): {text!r}") from e
    if not isinstance(value, dict):
        raise ValueError(f"{flag} must be a JSON object, got {text!r}")
    return value


def checked(fn: Any) -> Any:
    """An argparse ``type`` from a check that raises ValueError: its message becomes the error."""

    def parse(text: str) -> Any:
        try:
            return fn(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = fn.__name__
    return parse


def positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def non_negative(text: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def csv(text: str | None, cast: Any = str) -> list[Any] | None:
    if not text:
        return None
    try:
        return [cast(x) for x in text.split(",")]
    except ValueError:
        raise ValueError(f"expected comma-separated whole numbers, got {text!r}") from None
