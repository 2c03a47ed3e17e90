"""What a cell's *setup* is: its config minus the cell coordinates, read relative to its suite.

Cells are pooled or compared only within one setup. :func:`setup_config_of` drops the keys that
say which cell or replicate this is (``CELL_KEYS`` and every ``seed``) and reads a knob that the
suite sets per task (``benchmark.config.TASK_PRESETS``) as part of the task, not of the setup.
"""

from __future__ import annotations

import functools
import json
from typing import Any

# Keys that say which cell or which replicate this is, not how the experiment was set up; the rest
# of the config must match for cells to be pooled or compared.
CELL_KEYS = {"task", "defense", "trait", "seed", "defense_params", "task_params"}


def setup_config_of(cfg: dict[str, Any]) -> dict[str, Any]:
    """The part of a cell's config that must match for cells to be pooled."""
    return _strip_cell(_task_defaults_as_suite(cfg))


@functools.lru_cache(maxsize=256)
def _per_task_knobs(suite: str, task: str) -> tuple[tuple[str, str, str], ...]:
    """``(knob, task value, suite value)`` as JSON text, for the knobs suite ``suite`` sets
    differently for ``task`` (``benchmark.config.TASK_PRESETS``); () for unknown suites."""
    from benchmark.config import PRESETS, TASK_PRESETS, CellConfig, preset

    if task not in TASK_PRESETS.get(suite, {}):
        return ()
    by_task = _strip_cell(preset(suite, task=task).to_dict())
    suite_wide = _strip_cell(CellConfig(**PRESETS[suite]).to_dict())
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
        if _canon(_strip_cell(out[k], False)) == by_task:
            out[k] = json.loads(suite_wide)
        else:  # tagged, so it cannot pass for the suite-wide value (or another task's default)
            out[k] = {"set for this task": out[k]}
    return out


def _strip_cell(obj: Any, top: bool = True) -> Any:
    if isinstance(obj, dict):
        return {
            k: _strip_cell(v, False)
            for k, v in obj.items()
            if k != "seed" and not (top and k in CELL_KEYS)
        }
    if isinstance(obj, list):
        return [_strip_cell(v, False) for v in obj]
    return obj
