"""Reference rows: bounds and controls that are shown beside the defenses but never ranked.

A reference answers "how far could anything get?" or "what does chance alone do?", not "does this
defense work?", so it must not compete with defenses (the resample bound, which throws away every
number the teacher chose, would otherwise top every ranking by overshooting the baseline). A cell
is a reference when

* its submission says so: ``reference: <kind>`` in ``submissions/<name>/submission.yaml``
  (``reference: true`` reads as "reference"), e.g. ``reference: bound``;
* it is a known bound or control by what its artifact records (:data:`BY_DEFENSE`): the
  ``random_drop`` defense (the matched random-drop control) and ``canonicalize`` with
  ``mode=resample`` (the resample bound);
* it is one of the instrument's own controls (``benchmark.run.controls``): a same-animal null
  (config ``null_arm``: the control teacher carries the trait animal too, so nothing but noise
  distinguishes the arms; or ``null_animal``: every teacher of a several-traits run carries one
  animal) or a planted leak (config ``planted_share``: overt trait rows mixed into
  the trait arm, a leak the instrument must detect).

The loader stores the kind in :attr:`benchmark.core.artifact.CellResult.reference`; ``""`` is a
defense. The baseline (``none``) is neither: it is what every row is compared with.
"""

from __future__ import annotations

from typing import Any

from benchmark.core.artifact import CellResult
from benchmark.core.results import BOUND, CONTROL, NULL, PLANTED

RANDOM_DROP = "random_drop"
# (defense name, params that must match, kind): references recognised from the artifact alone.
BY_DEFENSE: tuple[tuple[str, dict[str, Any], str], ...] = (
    (RANDOM_DROP, {}, CONTROL),
    ("canonicalize", {"mode": "resample"}, BOUND),
)


def reference_kind(cell: CellResult, meta: dict[str, Any] | None = None) -> str:
    """What kind of reference ``cell`` is ("" for a defense); ``meta`` is its submission's
    metadata, if it came from a submission folder."""
    flag = (meta or {}).get("reference")
    if flag:
        return flag if isinstance(flag, str) else "reference"
    for name, params, kind in BY_DEFENSE:
        if cell.defense == name and all(cell.params.get(k) == v for k, v in params.items()):
            return kind
    if cell.setup_config.get("null_arm") or cell.setup_config.get("null_animal"):
        return NULL  # a pair's null, or a cell of a several-traits run's null
    if cell.setup_config.get("planted_share"):
        return PLANTED
    return ""


def kept_param(cell: CellResult) -> float | None:
    """The share of rows a ``random_drop`` cell was asked to keep (its ``keep`` parameter), else
    the share it reports keeping."""
    keep = cell.params.get("keep")
    if isinstance(keep, (int, float)) and not isinstance(keep, bool):
        return float(keep)
    return cell.rows_kept
