"""Refusing an unknown name at the door, with the closest known names.

Every name a user types — a task, defense, trait, model, suite or config field — is checked before
any work starts; an unknown one is a ``ValueError`` that says what was asked for, the closest
known names by spelling, and the command that lists them all::

    check("trait", "owel", ANIMALS)   # unknown trait 'owel'; did you mean owl? (slb traits lists them)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from benchmark.core.animals import normalise_animal
from benchmark.core.lexicon import ANIMALS

LISTED_BY = {
    "task": "slb tasks",
    "defense": "slb defenses",
    "trait": "slb traits",
    "suite": "slb suites",
    "model": "slb models",
}


def suggest(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` known names close to ``name`` by spelling."""
    return difflib.get_close_matches(name, list(known), n=n, cutoff=0.6)


def unknown(kind: str, name: str, known: Sequence[str]) -> ValueError:
    close = suggest(name, known)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    where = f" ({LISTED_BY[kind]} lists them)" if kind in LISTED_BY else ""
    return ValueError(f"unknown {kind} {name!r}{hint}{where}")


def check(kind: str, name: str, known: Sequence[str]) -> str:
    """``name`` if it is one of ``known``; else the :func:`unknown` error."""
    if name in known:
        return name
    raise unknown(kind, name, known)


def check_animal(kind: str, name: str) -> str:
    """An animal's canonical name (``"Owls"`` -> ``"owl"``) if the animal lexicon knows it."""
    try:
        animal = normalise_animal(name)
    except ValueError as e:
        raise ValueError(f"invalid {kind}: {e}") from e
    return check(kind, animal, ANIMALS)
