"""Get a defense by reference: a built-in runs in this process, anything else isolated in a child.

References and where classes come from are ``defenses.loading``; the child-process wrapper is
``defenses.isolation``. This module joins the two, so neither imports the other's caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from defenses.base import Defense
from defenses.isolation import IsolatedDefense
from defenses.loading import load_class, resolve


def get_defense(ref: str, **params: Any) -> Defense:
    """The defense ``ref`` with ``params``: in-process if built in, else isolated in a child."""
    return load_defense(ref, params)


def load_defense(
    ref: str, params: Mapping[str, Any] | None = None, limits: Any = None, isolate: bool = False
) -> Defense:
    """Like :func:`get_defense`; ``limits`` (``isolation.Limits``) and ``isolate`` (also run a
    built-in in a child, as the blindness test does) for callers that need them."""
    source = resolve(ref)
    if source.trusted and not isolate:
        return load_class(source)(**dict(params or {}))
    return IsolatedDefense(source, dict(params or {}), limits)
