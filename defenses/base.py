"""The Defense interface: a name, a version, typed parameters and up to three hooks.

Hooks (all optional; each takes and returns the same kind of object, so defenses compose):

* ``teacher(spec: TeacherSpec) -> TeacherSpec`` — change who generates and how it samples. The spec
  holds the teacher's *base* model identity (provenance) and sampling, never the trait.
* ``apply(rows, ctx) -> rows`` — filter or rewrite ``{id, prompt, completion}`` rows. A defense may
  drop rows, change their text, or add JSON fields of its own; it may never add rows, change or
  reorder ids. ``ctx`` (:class:`defenses.context.DefenseContext`) lends helper models and counts
  their cost; it holds no trait.
* ``training(cfg: TrainConfig) -> TrainConfig`` — change how the student trains.

One extra row field is read downstream: ``loss_mask_spans``, a list of ``[start, end)`` character
spans of the row's completion that the student must not learn from (training sets those tokens'
labels to ignored; ``benchmark.core.loss_mask``). The row check refuses spans that are not integer pairs
within the completion. ``divergence_mask`` writes it; rows without it train as usual.

Parameters are a nested frozen dataclass ``Params`` (see :mod:`defenses.params`); the instance is
``self.params``. The class docstring is the defense's description on the leaderboard; bump
``version`` whenever behaviour changes, because stored stage outputs are keyed by name, version and
parameters. Two template subclasses make the common cases short::

    @register_defense("short_only")
    class ShortOnly(FilterDefense):
        '''Drops completions longer than max_chars characters.'''
        @dataclass(frozen=True)
        class Params:
            max_chars: int = 80
        def keep(self, row):
            return len(row["completion"]) <= self.params.max_chars

:class:`FilterDefense` — implement ``keep(row) -> bool`` (or ``keep_many(rows, ctx)`` to batch,
e.g. through a judge model). :class:`RewriteDefense` — implement ``rewrite(row) -> str | None`` (None
drops the row), or ``rewrite_many(rows, ctx)`` to batch through a rewriter model.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from benchmark.core.training import TrainConfig
from benchmark.core.types import TeacherSpec
from defenses.context import DefenseContext
from defenses.params import NoParams, build_params, params_dict, params_schema

Row = dict[str, Any]
HOOKS = ("teacher", "apply", "training")

__all__ = ["Defense", "DefenseContext", "FilterDefense", "RewriteDefense", "Row", "HOOKS"]


class Defense:
    """Base class of every defense; the hooks default to passing their input through."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    Params: ClassVar[type] = NoParams

    def __init__(self, **params: Any) -> None:
        self.params = build_params(self.display_name(), self.Params, params)

    # -- hooks --------------------------------------------------------------------------------
    def teacher(self, spec: TeacherSpec) -> TeacherSpec:
        return spec

    def apply(self, rows: Sequence[Row], ctx: DefenseContext) -> list[Row]:
        return list(rows)

    def training(self, cfg: TrainConfig) -> TrainConfig:
        return cfg

    # -- description --------------------------------------------------------------------------
    @classmethod
    def display_name(cls) -> str:
        return cls.name or cls.__name__

    @classmethod
    def hooks(cls) -> list[str]:
        """The hooks this class overrides (the others pass their input through)."""
        return [h for h in HOOKS if getattr(cls, h) is not getattr(Defense, h)]

    @classmethod
    def description(cls) -> str:
        # The class's own docstring: an undocumented subclass must not show its parent's.
        doc = cls.__dict__.get("__doc__")
        return inspect.cleandoc(doc) if doc else ""

    def describe(self) -> dict[str, Any]:
        """What the results artifact and the leaderboard record about this defense."""
        return {
            "name": self.display_name(),
            "version": str(self.version),
            "params": params_dict(self.params),
            "description": self.description(),
            "hooks": self.hooks(),
            "params_schema": params_schema(self.Params),
            "source": {
                "kind": "builtin",
                "module": type(self).__module__,
                # The exact code (not part of the entry's identity: a docstring edit must not
                # split one entry's runs into two).
                "code_sha256": _file_sha256(inspect.getfile(type(self))),
            },
        }

    def identity(self) -> dict[str, Any]:
        """What determines this defense's outputs; part of the stage hashes."""
        return {
            "name": self.display_name(),
            "version": str(self.version),
            "params": params_dict(self.params),
        }


class FilterDefense(Defense):
    """Keeps the rows for which ``keep(row)`` is true (template; not a defense by itself)."""

    def __init__(self, **params: Any) -> None:
        if (
            type(self).keep is FilterDefense.keep
            and type(self).keep_many is FilterDefense.keep_many
        ):
            raise TypeError(f"{type(self).__qualname__} must implement keep() or keep_many()")
        super().__init__(**params)

    def keep(self, row: Row) -> bool:
        raise NotImplementedError

    def keep_many(self, rows: Sequence[Row], ctx: DefenseContext) -> Sequence[bool]:
        return [self.keep(r) for r in rows]

    def apply(self, rows: Sequence[Row], ctx: DefenseContext) -> list[Row]:
        flags = list(self.keep_many(rows, ctx))
        if len(flags) != len(rows):
            raise ValueError(f"keep_many returned {len(flags)} flags for {len(rows)} rows")
        for r, k in zip(rows, flags, strict=True):
            # A truthy non-bool (a score, a string) is almost always a bug in the filter.
            if not isinstance(k, bool) and type(k).__name__ != "bool_":
                raise TypeError(f"keep() returned {type(k).__name__} for row {r['id']!r}, not bool")
        return [dict(r) for r, k in zip(rows, flags, strict=True) if k]


class RewriteDefense(Defense):
    """Replaces each completion by ``rewrite(row)``; None drops the row (template)."""

    def __init__(self, **params: Any) -> None:
        cls = type(self)
        if (
            cls.rewrite is RewriteDefense.rewrite
            and cls.rewrite_many is RewriteDefense.rewrite_many
        ):
            raise TypeError(f"{cls.__qualname__} must implement rewrite() or rewrite_many()")
        super().__init__(**params)

    def rewrite(self, row: Row) -> str | None:
        raise NotImplementedError

    def rewrite_many(self, rows: Sequence[Row], ctx: DefenseContext) -> Sequence[str | None]:
        return [self.rewrite(r) for r in rows]

    def apply(self, rows: Sequence[Row], ctx: DefenseContext) -> list[Row]:
        texts = list(self.rewrite_many(rows, ctx))
        if len(texts) != len(rows):
            raise ValueError(f"rewrite_many returned {len(texts)} texts for {len(rows)} rows")
        return [{**r, "completion": t} for r, t in zip(rows, texts, strict=True) if t is not None]


def _file_sha256(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None
