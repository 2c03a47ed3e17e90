"""The Defense interface: a name, a version, typed parameters and up to three hooks.

Hooks (all optional, each takes and returns the same kind of object, so defenses compose):

* ``teacher(spec: TeacherSpec) -> TeacherSpec`` — change who generates and how it samples; sees the
  teacher's model identity, never the trait;
* ``apply(rows, ctx) -> rows`` — filter or rewrite ``{id, prompt, completion}`` rows; may drop rows
  or change text, never add or reorder ids;
* ``training(cfg: TrainConfig) -> TrainConfig`` — change how the student trains.

Built-ins register by name with :func:`register_defense`; outside packages through the entry point
group ``subliminal_bench.defenses``. Duplicate names are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from benchmark.teachers import TeacherSpec
from benchmark.training import TrainConfig

Row = dict[str, Any]
ENTRY_POINT_GROUP = "subliminal_bench.defenses"


@dataclass
class DefenseContext:
    """What a defense may use while it runs: helper models, with their cost counted."""

    teacher_model: str
    seed: int = 0
    cost: dict[str, float] = field(
        default_factory=lambda: {"helper_calls": 0, "helper_seconds": 0.0}
    )


class Defense:
    name: str = ""
    version: str = "0"

    def __init__(self, **params: Any) -> None:
        if params:
            raise ValueError(f"defense {self.name!r} takes no parameters, got {sorted(params)}")
        self.params: dict[str, Any] = {}

    def teacher(self, spec: TeacherSpec) -> TeacherSpec:
        return spec

    def apply(self, rows: Sequence[Row], ctx: DefenseContext) -> list[Row]:
        return list(rows)

    def training(self, cfg: TrainConfig) -> TrainConfig:
        return cfg

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": self.params}


_DEFENSES: dict[str, Callable[..., Defense]] = {}


def register_defense(name: str) -> Callable[[type[Defense]], type[Defense]]:
    def deco(cls: type[Defense]) -> type[Defense]:
        if name in _DEFENSES:
            raise ValueError(f"defense {name!r} is already registered")
        cls.name = name
        _DEFENSES[name] = cls
        return cls

    return deco


def _load_entry_points() -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _DEFENSES:
            _DEFENSES[ep.name] = ep.load()


def known_defenses() -> list[str]:
    _load_entry_points()
    return sorted(_DEFENSES)


def get_defense(name: str, **params: Any) -> Defense:
    known = known_defenses()
    if name not in _DEFENSES:
        raise ValueError(f"unknown defense {name!r}; known defenses: {', '.join(known)}")
    return _DEFENSES[name](**params)
