"""What a cell's *setup* is: its config minus the cell coordinates, read relative to its suite.

Cells are pooled or compared only within one setup. :func:`setup_config_of` drops the keys that
say which cell or replicate this is (``CELL_KEYS``, and every ``seed`` through
``benchmark.config.without_seeds``, as ``slb pool`` does) and reads a knob that the suite sets per
task (``benchmark.config.TASK_PRESETS``) as part of the task, not of the setup.
:func:`setup_labels` names each setup by the knobs in which it differs from its suite's preset.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from benchmark.config import without_seeds

if TYPE_CHECKING:
    from leaderboard.artifact import Cell

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
        if _canon(without_seeds(out[k])) == by_task:
            out[k] = json.loads(suite_wide)
        else:  # tagged, so it cannot pass for the suite-wide value (or another task's default)
            out[k] = {"set for this task": out[k]}
    return out


def _strip_cell(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in without_seeds(cfg).items() if k not in CELL_KEYS}


def setup_labels(cells: Iterable[Cell]) -> dict[str, str]:
    """A readable name per setup: the config knobs in which it differs from its suite's current
    preset (e.g. ``teacher.type=system_prompt``), ``default`` when it is that preset; for a suite
    without a preset, the knobs in which it differs from the other setups of the same suite and
    base model."""
    configs: dict[str, dict[str, str]] = {}
    scope: dict[str, tuple[str, str]] = {}
    for c in cells:
        if c.setup not in configs:
            configs[c.setup] = _flatten(c.setup_config)
            scope[c.setup] = (c.suite, c.base_model)
    labels = {}
    for s, flat in configs.items():
        ref = _preset_setup(scope[s][0])
        if ref is not None:
            keys = sorted((set(flat) | set(ref)) - {"suite", "base_model"})
            differ = [k for k in keys if flat.get(k) != ref.get(k)]
        else:
            peers = [configs[o] for o in configs if scope[o] == scope[s]]
            keys = sorted({k for p in peers for k in p} - {"suite", "base_model"})
            differ = [k for k in keys if len({p.get(k) for p in peers}) > 1]
        label = ", ".join(f"{k}={flat.get(k, 'unset')}" for k in differ) or "default"
        labels[s] = label if len(label) <= 100 else f"{label[:90]}… [{s[:6]}]"
    return labels


@functools.lru_cache(maxsize=16)
def _preset_setup(suite: str) -> dict[str, str] | None:
    """The flattened setup config of suite ``suite``'s current preset; None if there is none."""
    from benchmark.config import PRESETS, preset

    if suite not in PRESETS:
        return None
    return _flatten(setup_config_of(preset(suite).to_dict()))


def _flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(obj, dict):
        out: dict[str, str] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: json.dumps(obj) if isinstance(obj, list) else str(obj)}
