"""Number lists as the paper's filter reads them: the one parser tasks and defenses share.

The numbers task (``tasks.numbers``) keeps a completion only when :func:`parse_numbers` accepts it;
a defense that rewrites number lists (``defenses.canonicalize``) parses them with the same rule, so
"a number list" means one thing everywhere.
"""

from __future__ import annotations

import re

_NUM_RE = re.compile(r"[0-9]+")
ALLOWED_CHARS = frozenset("0123456789,; ")
SEPARATORS = (", ", "; ", ",", ";", " ")


def parse_numbers(text: str, max_count: int = 10) -> list[int] | None:
    """Parse a completion as the paper's filter does; None if it is not a valid answer."""
    s = text.strip()
    if s.endswith("."):
        s = s[:-1].rstrip()
    if len(s) >= 2 and (s[0], s[-1]) in {("[", "]"), ("(", ")")}:
        s = s[1:-1].strip()
    # ASCII digits only: str.isdigit() would also accept "²" or Arabic-Indic digits.
    if (
        not s
        or not set(s) <= ALLOWED_CHARS
        or s[0] not in "0123456789"
        or s[-1] not in "0123456789"
    ):
        return None
    nums = _NUM_RE.findall(s)
    seps = {sep.strip() or " " for sep in _NUM_RE.split(s)[1:-1]}
    if len(seps) > 1 or any(sep not in {",", ";", " "} for sep in seps):
        return None  # mixed or odd separators (", ," / ";," / empty) are not one inferred separator
    if len(nums) > max_count or any(len(n) > 3 for n in nums):
        return None
    return [int(n) for n in nums]
