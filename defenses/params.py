"""Typed defense parameters: a frozen dataclass per defense, checked at the door.

A defense declares its parameters as a nested frozen dataclass ``Params`` (defaults, help text in
``field(metadata={"help": ...})``, range checks in ``__post_init__`` raising ``ValueError``).
:func:`build_params` turns the keyword arguments a user gave (CLI JSON, ``submission.yaml``) into
that dataclass, refusing unknown names (listing the accepted ones) and wrong types (naming the field
and the expected type) before any work is done. JSON has no tuples, so a list is accepted where a
tuple is declared. Supported annotations: ``bool``, ``int``, ``float``, ``str``, ``None``,
``Literal[...]``, unions of these, ``tuple[X, ...]``, ``list[X]`` and ``dict[str, X]``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class NoParams:
    """The parameters of a defense that takes none."""


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


class _Mismatch(Exception):
    pass


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` as ``hint`` (lists → tuples, ints → floats), or raise :class:`_Mismatch`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if hint is type(None) or hint is None:
        if value is None:
            return None
        raise _Mismatch
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            try:
                return _coerce(value, arm)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is typing.Literal:
        # bool is an int in Python; Literal[1] must not accept True.
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _Mismatch
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if origin in (tuple, list) or hint in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise _Mismatch
            items = [_coerce(v, a) for v, a in zip(value, args, strict=True)]
        else:
            items = [_coerce(v, args[0]) for v in value] if args else list(value)
        return tuple(items) if (origin or hint) is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _Mismatch
        return {k: _coerce(v, args[1]) if args else v for k, v in value.items()}
    raise TypeError(f"unsupported parameter annotation {_type_name(hint)}")


def param_fields(params_cls: type) -> dict[str, tuple[Any, dataclasses.Field]]:
    """Name → (resolved type, field) for each init field of a Params dataclass."""
    if not dataclasses.is_dataclass(params_cls):
        raise TypeError(f"{params_cls.__qualname__} must be a dataclass")
    hints = typing.get_type_hints(params_cls)
    return {f.name: (hints[f.name], f) for f in dataclasses.fields(params_cls) if f.init}


def build_params(defense: str, params_cls: type, given: Mapping[str, Any]) -> Any:
    """An instance of ``params_cls`` from ``given``, or a ``ValueError`` naming the problem."""
    fields = param_fields(params_cls)
    unknown = sorted(set(given) - set(fields))
    if unknown and not fields:
        raise ValueError(f"defense {defense!r} takes no parameters, got {unknown}")
    if unknown:
        accepted = ", ".join(f"{n}: {_type_name(t)}" for n, (t, _) in fields.items())
        raise ValueError(
            f"defense {defense!r}: unknown parameter(s) {unknown}; accepted: {accepted}"
        )
    values = {}
    for name, value in given.items():
        hint = fields[name][0]
        try:
            values[name] = _coerce(value, hint)
        except _Mismatch:
            raise ValueError(
                f"defense {defense!r}: parameter {name!r} expects {_type_name(hint)}, "
                f"got {type(value).__name__} {value!r}"
            ) from None
    try:
        return params_cls(**values)
    except (ValueError, TypeError) as e:
        raise ValueError(f"defense {defense!r}: {e}") from e


def params_dict(params: Any) -> dict[str, Any]:
    """The parameters as a JSON-ready dict (tuples become lists)."""
    return _jsonable(dataclasses.asdict(params))


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def params_schema(params_cls: type) -> list[dict[str, Any]]:
    """One entry per parameter: name, type, default and help (for docs and the leaderboard)."""
    out = []
    for name, (hint, f) in param_fields(params_cls).items():
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        out.append(
            {
                "name": name,
                "type": _type_name(hint),
                "default": _jsonable(default),
                "help": f.metadata.get("help", ""),
            }
        )
    return out
