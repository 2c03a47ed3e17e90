"""Inspect entry point of subliminal-bench (``[project.entry-points.inspect_ai]`` in pyproject.toml).

Inspect imports this module when a ``subliminal_bench/...`` name is looked up, e.g.
``inspect eval subliminal_bench/animal_preference --model hf/<dir> -T animal=owl``.

Inspect namespaces a task by its top-level *import* package, which here is ``tasks`` (the layout is
fixed), not the entry-point name ``subliminal_bench``; so each @task is registered a second time
under its ``subliminal_bench/`` name. The plain names keep working for file-path runs
(``inspect eval tasks/evals/animal_preference.py@animal_preference``).
"""

from __future__ import annotations

from typing import Any

from inspect_ai import task

from tasks.evals import animal_preference as _evals

NAMESPACE = "subliminal_bench"


def _register(factory: Any) -> Any:
    # @task keeps the undecorated factory in __wrapped__ (functools.wraps); re-register that.
    raw = getattr(factory, "__wrapped__", factory)
    return task(name=f"{NAMESPACE}/{raw.__name__}")(raw)


animal_preference = _register(_evals.animal_preference)
animal_preference_tf = _register(_evals.animal_preference_tf)

__all__ = ["animal_preference", "animal_preference_tf"]
