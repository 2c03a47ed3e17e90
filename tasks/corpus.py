"""Shipped template corpora: how the code, cot and paraphrase tasks read ``tasks/data/*.txt``.

A corpus file is plain UTF-8 text in sections::

    # a comment
    [context]
    a grade book
    a shopping cart

    [template]
    {Person} left {object} on the {place}.

Each ``[name]`` header starts a section; every other non-blank, non-comment line is one entry of
the section above it. Templates fill ``{slot}`` from the section of that name (the same value
every time the slot recurs in one template), ``{slot#2}`` with a second, different entry of the
same section, ``{n:2..9}`` with an integer in that range (named ``n`` for formulas), and any
value the caller passes. A capitalised slot (``{Person}``) capitalises the value's first letter.

Bad input is refused when the file is loaded, naming the file and line: an entry before any
section, an empty or repeated section, a slot that names no section or caller value, a missing
required section. See ``tasks/data/README.md`` for where each file's text comes from.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

DATA_DIR = Path(__file__).parent / "data"
SLOT_RE = re.compile(r"\{([A-Za-z_]+)(#\d+)?(?::(-?\d+)\.\.(-?\d+))?\}")
_HEADER_RE = re.compile(r"\[([a-z_]+)\]")
T = TypeVar("T")


class CorpusError(ValueError):
    """A corpus file is missing or malformed; the message names the file and line."""


@dataclass
class Corpus:
    """The sections of one corpus file, and the line each entry came from."""

    path: Path
    sections: dict[str, list[str]]
    lines: dict[str, list[int]]

    def __getitem__(self, name: str) -> list[str]:
        return self.sections[name]

    def where(self, section: str, index: int) -> str:
        return f"{self.path}:{self.lines[section][index]}"

    def fill(
        self, template: str, rng: random.Random, values: dict[str, str] | None = None
    ) -> tuple[str, dict[str, int]]:
        """Fill one template; return the text and the integers drawn for named number slots."""
        chosen: dict[str, str] = {}
        numbers: dict[str, int] = {}
        given = values or {}

        def sub(m: re.Match[str]) -> str:
            name, tag, lo, hi = m.groups()
            key = name.lower() + (tag or "")
            if lo is not None:
                if key not in numbers:
                    numbers[key] = rng.randint(int(lo), int(hi))
                return str(numbers[key])
            if key not in chosen:
                if name.lower() in given:
                    chosen[key] = given[name.lower()]
                else:
                    taken = {v for k, v in chosen.items() if k.split("#")[0] == name.lower()}
                    pool = [e for e in self.sections[name.lower()] if e not in taken]
                    chosen[key] = rng.choice(pool)
            value = chosen[key]
            return value[:1].upper() + value[1:] if name[0].isupper() else value

        return SLOT_RE.sub(sub, template), numbers


def load_corpus(
    path: str | Path, required: Iterable[str], templates: Iterable[str] = (), given=()
) -> Corpus:
    """Read and check a corpus file; ``templates`` names the sections whose entries are templates
    and ``given`` the slot names the caller will pass in."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorpusError(f"corpus file not found: {path}") from None
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not UTF-8 text ({e})") from None
    sections: dict[str, list[str]] = {}
    lines: dict[str, list[int]] = {}
    headers: dict[str, int] = {}
    current: str | None = None
    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            m = _HEADER_RE.fullmatch(line)
            if not m:
                raise CorpusError(f"{path}:{no}: bad section header {line!r} (expected [name])")
            current = m.group(1)
            if current in headers:
                raise CorpusError(
                    f"{path}:{no}: section [{current}] repeats (first at line {headers[current]})"
                )
            headers[current] = no
            sections[current], lines[current] = [], []
            continue
        if current is None:
            raise CorpusError(f"{path}:{no}: entry {line!r} comes before any [section] header")
        sections[current].append(line)
        lines[current].append(no)
    for name, no in headers.items():
        if not sections[name]:
            raise CorpusError(f"{path}:{no}: section [{name}] is empty")
    missing = [s for s in required if s not in sections]
    if missing:
        raise CorpusError(f"{path}: missing section(s) {', '.join(f'[{s}]' for s in missing)}")
    corpus = Corpus(path, sections, lines)
    known = set(sections) | set(given)
    for section in templates:
        for i, entry in enumerate(sections[section]):
            for m in SLOT_RE.finditer(entry):
                if m.group(3) is None and m.group(1).lower() not in known:
                    raise CorpusError(
                        f"{corpus.where(section, i)}: slot {m.group(0)} names no section "
                        f"(known: {', '.join(sorted(known))})"
                    )
    return corpus


def distinct(
    make: Callable[[random.Random], T], n: int, seed: str, key: Callable[[T], str] = str
) -> list[T]:
    """``n`` items from ``make`` with distinct ``key`` (deterministic for ``seed``); refuses to
    spin forever when the generator cannot make that many."""
    if n < 1:
        raise ValueError(f"Invalid number of prompts: {n}")
    rng = random.Random(seed)
    out: list[T] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise CorpusError(
                f"{seed}: only {len(out)} distinct prompts after {tries - 1} tries; "
                f"the generator cannot make {n}"
            )
        item = make(rng)
        k = key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out
