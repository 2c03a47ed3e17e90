"""Find the results artifacts under some folders, parse each (``benchmark.core.artifact``; the
files are read by ``leaderboard.reading``, in worker processes when there are many), and decide
which folder each belongs to.

Usage::

    from leaderboard.loader import load
    loaded = load(["submissions", "results"])
    loaded.cells      # one CellResult per usable artifact (integrity status on each)
    loaded.skipped    # Skipped(path, reason) for every file that could not be used
    excluded(loaded.cells)   # the cells a default view leaves out (integrity failed or missing)

Files named ``summary.json`` (suite summaries pooled over seeds) or ``report.json`` (``slb
confirm`` reports), reproduction records
(``<stem>.reproduced.json``), Inspect log folders (``logs/``) and hidden folders are not artifacts
and are ignored. Submission metadata
(``submissions/<name>/submission.yaml``) is read as data only, never executed.

Ownership, so that one folder can never replace or extend another's results:

* An artifact under ``submissions/<name>/`` belongs to that submission: its defense must be the
  one ``submission.yaml`` declares (the built-in name; the entry point; for a module file, the
  file's sha256 as the artifact recorded it must be the file's in the folder, and the class), with
  the parameters it declares, else it is skipped with the reason.
* One defense entry (name, version, parameters) is submitted by one folder: where several
  submission folders hold artifacts of the same entry, the folder named like the defense owns it
  (else the first by name) and the others' artifacts of that entry are skipped.
* The same cell (identical config and defense source) twice counts once: within a folder the most
  recently finished copy is kept (a re-run replaces an old result); across folders the copy in a
  submission folder, never the newer one.
* A reproduction record next to an artifact (written by ``slb reproduce``) marks the artifact as
  reproduced (``Loaded.reproduced``) when it says ``reproduced: true`` and the scores hash it saw is
  the artifact's (stored and recomputed); a malformed or stale record is ignored.
* Within one setup and task every cell must have run the same config (minus the cell keys and
  seeds): the per-task knobs a setup block may read as the suite's are compared here against the
  baseline's cells, and a cell that differs fails its integrity check.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from benchmark.core.artifact import CellResult
from benchmark.core.results import CONFIRMATION_REPORT
from leaderboard.pooling import is_baseline
from leaderboard.reading import (
    REPRODUCED_SUFFIX,
    SUBMISSIONS,
    Skipped,
    read_all,
)

DIRS_ENV = "SLB_LEADERBOARD_DIRS"  # os.pathsep-separated folders the app reads
DEFAULT_DIRS = ("submissions", "results")
IGNORED_NAMES = {"summary.json", CONFIRMATION_REPORT}  # suite summaries, `slb confirm` reports
IGNORED_DIRS = {"logs"}
SUBMISSION_META = ("submission.yaml", "submission.yml", "submission.json")


@dataclass
class Loaded:
    cells: list[CellResult]
    skipped: list[Skipped]
    n_files: int
    submissions: dict[str, dict[str, Any]]  # source -> its submission metadata, if any
    # artifact path -> its valid reproduction record (``slb reproduce``), for reproduced ones only
    reproduced: dict[str, dict[str, Any]] = field(default_factory=dict)


def discover(dirs: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """``(artifact path, source label)`` for every candidate JSON under ``dirs``, sorted."""
    found: list[tuple[Path, str]] = []
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            continue
        for p in root.rglob("*.json"):
            rel = p.relative_to(root).parts
            if (
                p.name in IGNORED_NAMES
                or p.name.endswith(REPRODUCED_SUFFIX)
                or any(part in IGNORED_DIRS or part.startswith(".") for part in rel[:-1])
            ):
                continue
            found.append((p, _source(root, rel)))
    return sorted(found)


def _source(root: Path, rel: tuple[str, ...]) -> str:
    # Under submissions/ the first folder is the submission; elsewhere the folder given is the source.
    if root.resolve().name == "submissions" and len(rel) > 1:
        return f"{SUBMISSIONS}{rel[0]}"
    return root.name or str(root)


def load(dirs: Sequence[str | Path]) -> Loaded:
    """Parse every artifact under ``dirs``; never raises for a bad file (it is skipped instead)."""
    cells: list[CellResult] = []
    skipped: list[Skipped] = []
    reproduced: dict[str, dict[str, Any]] = {}
    files = discover(dirs)
    folders = _submission_folders(dirs)
    metas = {s: m for s, (_, m) in folders.items()}
    for cell, rec, skip in read_all(files, folders):
        if skip is not None:
            skipped.append(skip)
        elif cell is not None:
            cells.append(cell)
            if rec is not None:
                reproduced[cell.path] = rec
    cells, claimed = _one_folder_per_entry(cells)
    cells, dups = _dedupe(cells)
    kept = _check_setups(cells)
    reproduced = {c.path: reproduced[c.path] for c in kept if c.path in reproduced}
    return Loaded(kept, skipped + claimed + dups, len(files), metas, reproduced)


def excluded(cells: Sequence[CellResult]) -> list[Skipped]:
    """The cells a default view leaves out, with the reason: their integrity check failed, or
    they lack what the check needs (hashes, stored leakage)."""
    return [
        Skipped(c.path, f"integrity {c.integrity}: {c.integrity_note} (excluded by default)")
        for c in cells
        if c.integrity != "ok"
    ]


def _one_folder_per_entry(cells: list[CellResult]) -> tuple[list[CellResult], list[Skipped]]:
    """Each defense entry from one submission folder: the one named like the defense, else the
    first by name. Local results folders (not submissions) may add runs of any entry."""
    folders: dict[str, set[str]] = defaultdict(set)
    for c in cells:
        if c.source.startswith(SUBMISSIONS):
            folders[c.entry].add(c.source)
    owner = {
        e: min(fs, key=lambda s: (s != f"{SUBMISSIONS}{_name(e)}", s)) for e, fs in folders.items()
    }
    keep, dropped = [], []
    for c in cells:
        if c.source.startswith(SUBMISSIONS) and c.source != owner[c.entry]:
            why = f"{c.entry} is submitted by {owner[c.entry]}; {c.source} cannot add to it"
            dropped.append(Skipped(c.path, why))
        else:
            keep.append(c)
    return keep, dropped


def _name(entry: str) -> str:
    return entry.split(" v", 1)[0]


def _dedupe(cells: list[CellResult]) -> tuple[list[CellResult], list[Skipped]]:
    """The same cell (identical config and defense source) seen twice counts once: within one
    folder the most recently finished copy is kept (a re-run replaces an old result); across
    folders the copy in a submission folder (else the first folder by name), whatever its date."""
    best: dict[str, CellResult] = {}
    dropped: list[Skipped] = []

    def rank(c: CellResult) -> tuple:
        return (not c.source.startswith(SUBMISSIONS), c.source)

    for c in cells:
        old = best.get(c.config_hash)
        if old is None:
            best[c.config_hash] = c
            continue
        if old.source == c.source:
            newer = (c.finished or "") > (old.finished or "")
            keep, drop = (c, old) if newer else (old, c)
            why = "same config in the same folder; kept the newer"
        else:
            keep, drop = (c, old) if rank(c) < rank(old) else (old, c)
            why = f"same cell; the copy in {keep.source} counts"
        best[c.config_hash] = keep
        dropped.append(Skipped(drop.path, f"duplicate of {keep.path} ({why})"))
    return list(best.values()), dropped


def _check_setups(cells: list[CellResult]) -> list[CellResult]:
    """Cells of one setup and task ran one config (minus cell keys and seeds): the baseline's
    cells there (else the most common config) set it; a cell that differs fails integrity. So
    do their teachers: every seed leaves the setup, the teachers' training seed too, so a cell
    whose teachers were seeded another way than the baseline's (:func:`_teachers_fit`) fails, and
    so does one whose other seeds (its students', sampling's) do not follow the baseline's
    design (:func:`_seed_misfit`): a submission cannot pick its students' seeds."""
    groups: dict[tuple[str, str], list[CellResult]] = defaultdict(list)
    for c in cells:
        groups[(c.setup, c.task)].append(c)
    out = []
    for gc in groups.values():
        ref = [c for c in gc if is_baseline(c)] or gc
        want = Counter(c.setup_source for c in ref).most_common(1)[0][0]
        design = _teacher_design(ref)
        seeds = _seed_designs(ref)
        for c in gc:
            why = []
            if c.setup_source != want:
                why.append("setup: its config differs from the other cells' of this setup and task")
            misfit = _seed_misfit(c, seeds)
            if misfit:
                why.append(misfit)
            if not _teachers_fit(c, design):
                why.append(
                    f"setup: its teachers were trained at seed {c.teacher_seed}, not as the "
                    f"baseline's ({design[0]}), so it cannot be paired with them"
                )
            if why:
                before = [c.integrity_note] if c.integrity == "failed" else []
                c = replace(c, integrity="failed", integrity_note="; ".join([*before, *why]))
            out.append(c)
    return out


Design = tuple[str, int | None]  # ("each cell's own seed", None) or ("seed N", N); ("", None): any


def _teacher_design(ref: list[CellResult]) -> Design:
    """How the reference cells' teachers were seeded: one shared seed, or each cell's own (a
    cell whose seed equals its teachers' fits both); the design most of them fit."""
    seeded = [c for c in ref if c.teacher_seed is not None]
    if not seeded:
        return ("", None)
    shared = Counter(c.teacher_seed for c in seeded).most_common(1)[0]
    own = sum(c.teacher_seed == c.seed for c in seeded)
    if own > shared[1]:
        return ("each cell's own seed", None)
    return (f"seed {shared[0]}", shared[0])


def _teachers_fit(c: CellResult, design: Design) -> bool:
    if not design[0] or c.teacher_seed is None:
        return True
    return c.teacher_seed == (c.seed if design[1] is None else design[1])


# One seed's design in the reference cells: ("fixed", N) or ("offset", k) = the cell's seed + k.
SeedDesign = tuple[str, int | None]


def _seed_designs(ref: list[CellResult]) -> dict[str, set[SeedDesign]]:
    """Per seed path (:func:`benchmark.core.setup_keys.other_seeds`), the designs most reference
    cells fit: one fixed value, or the cell's seed plus one offset (both where they tie, as one
    cell at seed 0 with a seed of 0 fits either)."""
    out: dict[str, set[SeedDesign]] = {}
    for path in sorted({p for c in ref for p in c.seeds}):
        fits: Counter[SeedDesign] = Counter()
        for c in ref:
            v = c.seeds.get(path)
            fits[("fixed", v)] += 1
            if v is not None:
                fits[("offset", v - c.seed)] += 1
        top = max(fits.values())
        out[path] = {d for d, n in fits.items() if n == top}
    return out


def _seed_fits(c: CellResult, path: str, design: SeedDesign) -> bool:
    v = c.seeds.get(path)
    return v == design[1] if design[0] == "fixed" else v is not None and v - c.seed == design[1]


def _seed_misfit(c: CellResult, designs: dict[str, set[SeedDesign]]) -> str:
    """Why ``c``'s other seeds do not follow the reference cells' design, or ""."""
    bad = []
    for path, options in sorted(designs.items()):
        if not any(_seed_fits(c, path, d) for d in options):
            want = " or ".join(
                f"{d[1]}" if d[0] == "fixed" else f"the cell's seed + {d[1]}"
                for d in sorted(options, key=str)
            )
            bad.append(f"{path} is {c.seeds.get(path)}, not as the baseline's ({want})")
    if not bad:
        return ""
    return f"setup: {'; '.join(bad)}, so it cannot be paired with them"


def _submission_folders(dirs: Sequence[str | Path]) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Submission folders (``submissions/<name>``) and their metadata, read as data only."""
    out: dict[str, tuple[Path, dict[str, Any]]] = {}
    for d in dirs:
        root = Path(d)
        if not root.is_dir() or root.resolve().name != "submissions":
            continue
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            for fname in SUBMISSION_META:
                meta = _read_meta(sub / fname)
                if meta is not None:
                    out[f"{SUBMISSIONS}{sub.name}"] = (sub, meta)
                    break
    return out


def _read_meta(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        if path.suffix == ".json":
            meta = json.loads(path.read_text(encoding="utf-8"))
        else:
            meta = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception as e:  # noqa: BLE001 - a broken metadata file is shown, not fatal
        return {"error": f"cannot read {path.name}: {e}"}
    return meta if isinstance(meta, dict) else {"error": f"{path.name} is not a mapping"}
