"""``slb validate``'s integrity check of one artifact: the ``scores`` and ``leakage`` blocks
against their hashes, and the rows each student trained on re-hashed from the artifact store.

What a student trained on is rebuilt as the cell built it (``benchmark.run.cell``): the defended
rows of both arms (``data.<arm>.defended_key``), equalised to one count; then the planted rows of
the positive control (config ``planted_share``, :func:`benchmark.run.controls.plant`, which is
deterministic); then, in the soft-label channel, the rows with the teacher's labels, read from their
own store entry (``data.<arm>.labelled_key``). A soft-label artifact written before that key was
recorded cannot be re-hashed: a note says so, not a problem.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from benchmark.core.store import stable_hash
from benchmark.core.types import Row
from benchmark.run.cell import equalise
from benchmark.run.controls import plant
from benchmark.run.stages import ARMS


def as_dict(v: Any) -> dict[str, Any]:
    """``v`` if it is a dict, else an empty one (untrusted artifact blocks)."""
    return v if isinstance(v, dict) else {}


def is_count(v: Any) -> TypeGuard[int]:
    """A non-negative int, not a bool."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _labelled_keys(art: dict[str, Any]) -> list[Any]:
    """Each arm's ``data.<arm>.labelled_key`` (None where absent)."""
    return [as_dict(as_dict(art.get("data")).get(arm)).get("labelled_key") for arm in ARMS]


def check_integrity(art: dict[str, Any], where: str, report: Any, store: Any) -> None:
    """Add to ``report`` (``problems``, ``warnings``, ``notes``: lists of lines) what does not
    match; ``store`` None: the training rows are not re-hashed (a note)."""
    if "integrity" not in art:
        report.warnings.append(f"{where}: no integrity block (artifact predates integrity hashes)")
        return
    integ = as_dict(art["integrity"])  # not an object: refused by validate's shape check
    for block in ("scores", "leakage"):
        if integ.get(block) != stable_hash(art[block]):
            report.problems.append(f"{where}: the {block} block does not match its integrity hash")
    try:
        arms, why = trained_rows(art, store)
    except ValueError as e:  # a key the store refuses, or a config it cannot rebuild from
        report.problems.append(f"{where}: {e}")
        return
    if arms is None:
        report.notes.append(f"{where}: training rows not re-hashed ({why})")
        return
    device = str(as_dict(art.get("run_info")).get("device") or "")
    labelled = all(_labelled_keys(art))
    for arm, rows in zip(ARMS, arms, strict=True):
        if as_dict(integ.get("training_rows")).get(arm) == stable_hash(rows):
            continue
        if device.startswith("cuda") and not labelled:
            # GPU artifacts written before stage keys named the hardware (models.hardware_spec)
            # share their keys with CPU runs of the same config, whose rows differ: this store's
            # rows may be another machine's run of this cell. Not so for labelled rows: that key
            # names the hardware and came later.
            report.warnings.append(
                f"{where}: {arm} training rows differ from this store's entry for the same key; "
                f"the artifact ran on {device}, so the store's rows may come from other hardware "
                "(not verified)"
            )
        else:
            report.problems.append(f"{where}: {arm} training rows do not match their hash")


def trained_rows(art: dict[str, Any], store: Any) -> tuple[list[list[Row]] | None, str]:
    """Each arm's training rows as the cell trained on them, from ``store``; (None, why) where
    they cannot be rebuilt. Raises ValueError for a key the store refuses or a bad config."""
    data = {arm: as_dict(as_dict(art.get("data")).get(arm)) for arm in ARMS}
    labelled = _labelled_keys(art)
    if all(labelled):
        if store is None or not all(_has(store, "labelled", k, "labelled_key") for k in labelled):
            return None, "no store entry for them"
        return [store.read_rows("labelled", k) for k in labelled], ""
    if any(labelled):
        raise ValueError("data.<arm>.labelled_key is recorded for one arm only")
    if any(as_dict(data[arm].get("labels")).get("labels", "hard") != "hard" for arm in ARMS):
        return None, "soft-label rows; the artifact predates data.<arm>.labelled_key"
    keys = [data[arm].get("defended_key") for arm in ARMS]
    if store is None or not all(_has(store, "defended", k, "defended_key") for k in keys):
        return None, "no store entry for them"
    cfg = as_dict(art.get("config"))
    cap = cfg.get("max_train_rows")
    if cap is not None and not is_count(cap):
        raise ValueError(f"config.max_train_rows is {cap!r}, expected a count")
    trait, control = equalise(
        store.read_rows("defended", keys[0]), store.read_rows("defended", keys[1]), cap
    )
    share = cfg.get("planted_share") or 0
    if share:
        seed = cfg.get("seed")
        if not isinstance(share, (int, float)) or not is_count(seed):
            raise ValueError(f"config.planted_share {share!r} / seed {seed!r}: cannot replant")
        trait, _ = plant(trait, str(cfg.get("trait")), float(share), seed)
    return [trait, control], ""


def _has(store: Any, kind: str, key: Any, field: str) -> bool:
    if not isinstance(key, str):
        return False
    try:
        return bool(store.has(kind, key))
    except ValueError as e:  # a key the store refuses to look up
        raise ValueError(f"data {field}: {e}") from e
