"""A cell's *setup*: what must match for cells to be pooled, and its name, fixed when the cell runs.

The orchestrator writes :func:`setup_block` into every results artifact (``art["setup"]``), so
readers (the leaderboard, through ``benchmark.core.artifact``) group and name cells without
reading the presets, and an artifact keeps its setup when a preset changes later::

    from benchmark.run.setups import setup_block
    art["setup"] = setup_block(cfg.to_dict(), run_info["device"])
    art["setup"]["label"]   # "quick" or "quick · teacher.type=system_prompt"

The setup config is the cell's config minus the keys that say which cell or replicate it is
(``benchmark.core.setup_keys.without_cell_keys``), with a knob that the suite sets per task
(``benchmark.run.presets.TASK_PRESETS``) read as part of the task, not of the setup, plus the
hardware when it is not a CPU. The label is the suite and the knobs in which the setup differs
from its suite's current preset (all of them in ``diff``).
"""

from __future__ import annotations

import functools
import json
from typing import Any

from benchmark.core.setup_keys import with_hardware, without_cell_keys, without_seeds
from benchmark.core.store import stable_hash
from benchmark.run.config import CellConfig
from benchmark.run.presets import PRESETS, TASK_PRESETS, preset

LABEL_MAX = 80  # characters: what a sidebar select box shows without cutting
VALUE_MAX = 30  # a knob value longer than this shows as "key=…" when the label must be shortened


def setup_block(config: dict[str, Any], device: str | None) -> dict[str, Any]:
    """``{"id", "label", "diff", "config"}`` of the cell whose config (``CellConfig.to_dict()``)
    is ``config`` and which computed on ``device`` (``run_info.device``, e.g. ``"cuda: NVIDIA
    H200"``; None for an unknown device, read as CPU as old artifacts are)."""
    setup = with_hardware(setup_config_of(config), device)
    sid = stable_hash(setup)
    suite = str(config.get("suite", "n/a"))
    knobs = _differing_knobs(suite, setup)
    if knobs is None:
        label, diff = (
            f"{suite} (no preset, {sid[:6]})",
            f"suite {suite!r} has no preset to name it by",
        )
    else:
        label, diff = _label(suite, knobs), ", ".join(knobs)
    return {"id": sid, "label": label, "diff": diff, "config": setup}


def setup_config_of(cfg: dict[str, Any]) -> dict[str, Any]:
    """The part of a cell's config that must match for cells to be pooled (hardware aside)."""
    return without_cell_keys(_task_defaults_as_suite(cfg))


def _label(suite: str, knobs: list[str]) -> str:
    """``suite · knob=value, …``; when that is longer than :data:`LABEL_MAX`, long values shrink
    to ``knob=…`` and the knobs that do not fit whole are counted (``+2 more``), never cut."""
    if not knobs:
        return suite
    full = f"{suite} · {', '.join(knobs)}"
    if len(full) <= LABEL_MAX:
        return full
    short = [
        k if len(k.split("=", 1)[-1]) <= VALUE_MAX else f"{k.split('=', 1)[0]}=…" for k in knobs
    ]
    for n in range(len(short), 0, -1):
        more = f" (+{len(short) - n} more)" if n < len(short) else ""
        label = f"{suite} · {', '.join(short[:n])}{more}"
        if len(label) <= LABEL_MAX:
            return label
    return f"{suite} · {len(short)} knobs differ"


def _differing_knobs(suite: str, setup: dict[str, Any]) -> list[str] | None:
    """``knob=value`` (flattened, sorted) for the knobs in which ``setup`` differs from suite
    ``suite``'s current preset (``unset``: the setup lacks it); None for a suite without one."""
    ref = _preset_setup(suite)
    if ref is None:
        return None
    flat = _flatten(setup)
    keys = sorted((set(flat) | set(ref)) - {"suite", "base_model"})
    return [f"{k}={flat.get(k, 'unset')}" for k in keys if flat.get(k) != ref.get(k)]


@functools.lru_cache(maxsize=16)
def _preset_setup(suite: str) -> dict[str, str] | None:
    """The flattened setup config of suite ``suite``'s current preset; None if there is none."""
    if suite not in PRESETS:
        return None
    return _flatten(setup_config_of(preset(suite).to_dict()))


@functools.lru_cache(maxsize=256)
def _per_task_knobs(suite: str, task: str) -> tuple[tuple[str, str, str], ...]:
    """``(knob, task value, suite value)`` as JSON text, for the knobs suite ``suite`` sets
    differently for ``task`` (``TASK_PRESETS``); () for unknown suites."""
    if task not in TASK_PRESETS.get(suite, {}):
        return ()
    by_task = without_cell_keys(preset(suite, task=task).to_dict())
    suite_wide = without_cell_keys(CellConfig(**PRESETS[suite]).to_dict())
    return tuple(
        (k, _canon(by_task[k]), _canon(suite_wide[k]))
        for k in by_task
        if _canon(by_task[k]) != _canon(suite_wide.get(k))
    )


def _canon(v: Any) -> str:
    return json.dumps(v, sort_keys=True)


def _task_defaults_as_suite(cfg: dict[str, Any]) -> dict[str, Any]:
    """A knob the suite sets per task (the quick preset gives free-text tasks their own teacher and
    token cap) belongs to the task, not to the setup: where a cell has its task's preset value, it
    is read as the suite-wide value, so the five tasks of one suite run pool into one setup. A knob
    changed away from the task's preset still makes its own setup."""
    knobs = _per_task_knobs(str(cfg.get("suite")), str(cfg.get("task")))
    if not knobs:
        return cfg
    out = dict(cfg)
    for k, by_task, suite_wide in knobs:
        if k not in out:
            continue
        if _canon(without_seeds(out[k])) == by_task:
            out[k] = json.loads(suite_wide)
        else:  # tagged, so it cannot pass for the suite-wide value (or another task's default)
            out[k] = {"set for this task": out[k]}
    return out


def _flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(obj, dict):
        out: dict[str, str] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: json.dumps(obj) if isinstance(obj, list) else str(obj)}
