"""The pre-registration file of ``slb confirm`` (``docs/prereg/<name>.yaml``): its fields, checks,
the cells it fixes and where it was committed. The format and the rule are described in
:mod:`benchmark.run.confirm`; every problem in a file is a ValueError naming the file and field.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import yaml

from benchmark.core.animals import CANDIDATE_ANIMALS
from benchmark.core.multi_trait import MULTI
from benchmark.core.results import OWN_ANIMAL
from benchmark.core.stats.paired import MIN_EXACT, min_sign_flip_p
from benchmark.run.config import CellConfig
from benchmark.run.presets import preset
from tasks.base import get_task

SCHEMA = "slb.prereg/1"
STATISTICS = {
    OWN_ANIMAL: ("leakage", "teacher_forced", OWN_ANIMAL, "log_odds_diff"),
    # Several trait animals per run (``traits``): read over a seed's cells, not from one artifact
    # (benchmark.core.multi_trait).
    MULTI: (),
}
TESTS = ("t_and_sign_flip", "t")
# (good, bad) verdicts. A calibration has null runs only: does the same-animal null hold?
PURPOSES = {
    "confirm": ("pass", "fail"),
    "screen": ("lead", "no lead"),
    "calibrate": ("null holds", "null fails"),
}
MIN_SEEDS = {"confirm": 6, "screen": 3}
MIN_CALIBRATION_SEEDS = 6  # null runs of a calibration: the exact sign-flip test's first size
# Fields of the main runs' rule: a calibration has no main runs, so it must not state them.
MAIN_RULE = ("alpha", "specific_share")
SEED_FIELD = "{seed}"  # in a setting, the run's seed (e.g. teacher.train.seed={seed})
MAX_BYTES = 64_000
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "schema": str,
    "name": str,
    "question": str,
    "suite": str,
    "task": str,
    "trait": str,
    "traits": list,
    "settings": list,
    "seeds": list,
    "null_seeds": list,
    "statistic": str,
    "test": str,
    "alpha": float,
    "specific_share": float,
    "null_alpha": float,
    "purpose": str,
    "null_margin": float,
}
_OPTIONAL = {"question", "settings", "purpose", "null_margin", "trait", "traits"}


def load_prereg(path: Path) -> dict[str, Any]:
    """The pre-registration at ``path``, checked: every problem is a ValueError naming the file
    and the field."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such pre-registration file")
    if path.stat().st_size > MAX_BYTES:
        raise ValueError(f"{path}: larger than {MAX_BYTES} bytes; not a pre-registration")
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not YAML ({e})") from e
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a mapping of fields, got {type(d).__name__}")
    for k in d:
        if k not in _FIELDS:
            raise ValueError(f"{path}: unknown field {k!r}; known: {', '.join(_FIELDS)}")
    calibrate = d.get("purpose") == "calibrate"
    for k, tp in _FIELDS.items():
        if k not in d:
            if k in _OPTIONAL or (calibrate and k in MAIN_RULE):
                continue
            raise ValueError(f"{path}: missing field {k!r}")
        v = d[k]
        if tp is float and isinstance(v, int) and not isinstance(v, bool):
            v = d[k] = float(v)
        if not isinstance(v, tp) or isinstance(v, bool):
            raise ValueError(f"{path}: field {k!r} must be a {getattr(tp, '__name__', tp)}")
    if d["schema"] != SCHEMA:
        raise ValueError(f"{path}: schema {d['schema']!r}; expected {SCHEMA!r}")
    if d["statistic"] not in STATISTICS:
        raise ValueError(f"{path}: statistic {d['statistic']!r}; known: {', '.join(STATISTICS)}")
    if d["test"] not in TESTS:
        raise ValueError(f"{path}: test {d['test']!r}; known: {', '.join(TESTS)}")
    purpose = d.setdefault("purpose", "confirm")
    _check_traits(path, d)
    if calibrate:
        _check_calibration(path, d)
        d.setdefault("settings", [])
        built = _check_settings(path, d)
        if not all(cfg.null_arm or cfg.null_animal for _, cfg in built):
            raise ValueError(
                f"{path}: a setting turns the null off (null_arm or null_animal); a "
                "calibration's runs are nulls"
            )
        if d["statistic"] == MULTI:
            _check_multi_cells(path, d, built)
        return d
    if "null_margin" in d and len(d["null_seeds"]) < 2:
        raise ValueError(  # one run has no interval, so the bound could never be met
            f"{path}: field 'null_margin' needs at least 2 null seeds (it bounds their interval)"
        )
    if purpose not in PURPOSES:
        raise ValueError(f"{path}: purpose {purpose!r}; known: {', '.join(PURPOSES)}")
    if purpose == "confirm" and d["test"] != "t_and_sign_flip":
        raise ValueError(
            f"{path}: a confirmation's test must be t_and_sign_flip (t is for screens)"
        )
    for k in ("alpha", "null_alpha", "specific_share", "null_margin"):
        if k in d and not 0 < d[k] <= 1:
            raise ValueError(f"{path}: field {k!r} must be in (0, 1], got {d[k]}")
    for k in ("seeds", "null_seeds"):
        seeds = d[k]
        empty_ok = k == "null_seeds" and purpose == "screen"
        if (not seeds and not empty_ok) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds
        ):
            raise ValueError(f"{path}: field {k!r} must be a non-empty list of integer seeds")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{path}: field {k!r} repeats a seed")
    n = len(d["seeds"])
    if n < MIN_SEEDS[purpose]:
        why = "for the exact sign-flip test" if purpose == "confirm" else "for a t over runs"
        raise ValueError(f"{path}: 'seeds' needs at least {MIN_SEEDS[purpose]} runs {why}")
    if d["test"] == "t_and_sign_flip" and n >= MIN_EXACT and min_sign_flip_p(n) >= d["alpha"]:
        raise ValueError(  # p is the larger of the two tests, so it could never reach alpha
            f"{path}: with {n} runs the exact sign-flip test's smallest p is 2/2^{n} = "
            f"{min_sign_flip_p(n):.3g}, not below alpha {d['alpha']}: the file could never pass"
        )
    d.setdefault("settings", [])
    built = _check_settings(path, d)
    if d["statistic"] == MULTI:
        _check_multi_cells(path, d, built)
    elif any(cfg.null_animal for _, cfg in built):
        raise ValueError(f"{path}: null_animal is the null of a 'traits' file; this one has a pair")
    return d


def _check_multi_cells(path: Path, d: dict[str, Any], cells_: list[tuple[str, CellConfig]]) -> None:
    """The cells of a ``traits`` file can make runs: each seed's cells one per distinct trait
    (as the cells name them: ``owls`` is ``owl``), every animal a candidate the evals score,
    main cells plain and null cells the run's null (no pair null, no planted rows), and one
    control arm the traits can share."""
    built = [cfg for _, cfg in cells_]
    if any((kind == "main") == (cfg.null_animal is not None) for kind, cfg in cells_):
        raise ValueError(f"{path}: a setting sets null_animal; the file's null runs set it")
    placebos = {cfg.teacher.placebo for cfg in built}
    if len(placebos) != 1 or None in placebos:
        raise ValueError(  # the traits' cells must share one control arm: one placebo teacher
            f"{path}: statistic {MULTI} needs one placebo control teacher for every trait's "
            f"cells (teacher.placebo, not among the traits); got {sorted(map(str, placebos))}"
        )
    names = sorted({cfg.trait for cfg in built})
    if len(names) != len(d["traits"]):
        raise ValueError(f"{path}: 'traits' name {len(names)} distinct animals: {names}")
    outside = [a for a in [*names, *placebos] if a not in CANDIDATE_ANIMALS]
    if outside:
        raise ValueError(
            f"{path}: {outside} not among the {len(CANDIDATE_ANIMALS)} candidate animals the "
            "evals score, so the students' tables would differ"
        )
    if any(cfg.null_arm or cfg.planted_share for cfg in built):
        raise ValueError(f"{path}: a setting makes null or planted cells; {MULTI} reads plain ones")
    task = get_task(built[0].task, trait=built[0].trait, **built[0].task_params)
    if task.prompts_use_trait or task.trait_filter_both_arms:
        raise ValueError(
            f"{path}: task {built[0].task!r} builds its prompts for the trait or filters the "
            "control arm for it, so each trait's control arm is its own: no run could form"
        )


def _check_settings(path: Path, d: dict[str, Any]) -> list[tuple[str, CellConfig]]:
    """The file's cells, built (and so checked) before any work starts."""
    if not all(isinstance(s, str) for s in d["settings"]):
        raise ValueError(f"{path}: 'settings' must be a list of KEY=VALUE strings")
    for s in d["settings"]:
        if set("{}") & set(s.replace(SEED_FIELD, "")):
            raise ValueError(f"{path}: setting {s!r}: the only placeholder is {SEED_FIELD}")
    return cells(d)


def _check_traits(path: Path, d: dict[str, Any]) -> None:
    """One ``trait`` (a pair per run), or several ``traits`` read together by the multi-animal
    statistic: one cell per trait and seed, all sharing the control arm."""
    multi = d["statistic"] == MULTI
    if ("trait" in d) == ("traits" in d):
        raise ValueError(f"{path}: give either 'trait' or 'traits' (a list, for {MULTI})")
    if not multi and "traits" in d:
        raise ValueError(f"{path}: field 'traits' goes with statistic {MULTI}; use 'trait'")
    if not multi:
        return
    traits = d.get("traits")
    if (
        not isinstance(traits, list)
        or not all(isinstance(t, str) for t in traits)
        or len(set(traits)) != len(traits)
        or len(traits) < 2
    ):
        raise ValueError(f"{path}: statistic {MULTI} needs 'traits': at least 2 distinct animals")


def _check_calibration(path: Path, d: dict[str, Any]) -> None:
    """A calibration runs the same-animal null alone: no main runs, so no main rule; enough null
    runs for the exact sign-flip test; its only threshold is ``null_alpha``."""
    for k in (*MAIN_RULE, "null_margin"):
        if k in d:
            raise ValueError(
                f"{path}: field {k!r} has no meaning in a calibration (null runs only; its rule "
                "is null_alpha); remove it"
            )
    if d["seeds"]:
        raise ValueError(f"{path}: a calibration has no main runs: 'seeds' must be []")
    if d["test"] != "t_and_sign_flip":  # the rule of a confirmation's null check, so they compare
        raise ValueError(f"{path}: a calibration's test must be t_and_sign_flip")
    if not 0 < d["null_alpha"] <= 1:
        raise ValueError(f"{path}: field 'null_alpha' must be in (0, 1], got {d['null_alpha']}")
    null = d["null_seeds"]
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in null) or len(
        set(null)
    ) != len(null):
        raise ValueError(f"{path}: field 'null_seeds' must be a list of distinct integer seeds")
    if len(null) < MIN_CALIBRATION_SEEDS:
        raise ValueError(
            f"{path}: 'null_seeds' needs at least {MIN_CALIBRATION_SEEDS} runs in a calibration "
            "(the exact sign-flip test)"
        )


def cells(prereg: dict[str, Any]) -> list[tuple[str, CellConfig]]:
    """``("main" | "null", config)`` of every cell, main and null runs interleaved (with
    ``traits`` a run is a seed's cells, one per trait in the file's order, in a row; its null
    cells carry ``null_animal``, the first trait, in every teacher)."""

    traits = prereg.get("traits") or [prereg["trait"]]  # several: a run is a seed's cells
    # The null of a run of several traits: every teacher carries the first trait's animal.
    null_kw = {"null_animal": traits[0]} if len(traits) > 1 else {"null_arm": True}

    def cfg(seed: int, null: bool, trait: str) -> CellConfig:
        over: dict[str, Any] = null_kw if null else {}
        return preset(
            prereg["suite"],
            [x.replace(SEED_FIELD, str(seed)) for x in prereg["settings"]],
            task=prereg["task"],
            trait=trait,
            seed=seed,
            defense="none",
            **over,
        )

    main = [[("main", cfg(s, False, t)) for t in traits] for s in prereg["seeds"]]
    null = [[("null", cfg(s, True, t)) for t in traits] for s in prereg["null_seeds"]]
    out = []
    for i in range(max(len(main), len(null))):
        out += [cell for run in main[i : i + 1] + null[i : i + 1] for cell in run]
    return out


def registration(path: Path, allow_unregistered: bool) -> dict[str, Any]:
    """Where the file was fixed: its sha256 and the last commit that touched it, which must leave
    it as it is on disk."""
    path = Path(path).resolve()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    def git(*a: str) -> str:
        r = subprocess.run(["git", *a], cwd=path.parent, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""

    commit = git("log", "-1", "--format=%H", "--", path.name)
    fixed_at = git("log", "-1", "--format=%cI", "--", path.name)
    dirty = git("status", "--porcelain", "--", path.name)
    ok = bool(commit) and not dirty
    if not ok and not allow_unregistered:
        why = "not committed" if not commit else "changed since its last commit"
        raise ValueError(
            f"{path}: {why}; commit the pre-registration before its runs (or pass "
            "--unregistered to try it out: such a report can never pass)"
        )
    return {
        "file": str(path),
        "sha256": digest,
        "fixed_at_commit": commit or None,
        "fixed_at": fixed_at or None,
        "registered": ok,
        "run_at_commit": git("rev-parse", "HEAD") or None,
    }
