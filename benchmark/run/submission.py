"""Submissions: a folder that names a defense, and the official run that fills its ``results/``.

``submissions/<name>/submission.yaml``::

    name: example-digit-entropy        # lower-case letters, digits, '-' and '_'; the folder name
    version: "1.0"                     # of the submission
    authors: [Ada Author]
    contact: ada@example.org
    license: Apache-2.0
    defense: {module: digit_entropy.py, class: DigitEntropyFilter}
    #   or {builtin: banned_words}     (a defense in defenses/)
    #   or {entry_point: my_defense}   (an installed package's subliminal_bench.defenses entry)
    params: {max_share: 0.4}           # optional; the defense's typed parameters
    description: >
      One paragraph: what the defense does and why.

:func:`load_submission` reads it and collects *every* problem instead of stopping at the first;
the file is untrusted input: over :data:`MAX_SUBMISSION_BYTES` it is refused unread, and one that
nests deeper than :data:`MAX_DEPTH` or expands (through YAML aliases) to more than
:data:`MAX_YAML_VALUES` values is refused before any field is looked at. ``yaml.safe_load`` builds
no Python objects from tags (``!!python/...`` is a YAML error). :func:`read_capped` and
:func:`tree_problem` are the same guards for the result files ``slb validate`` reads.
:func:`submit` (``slb submit <folder>``) runs the suite for that defense and writes the artifacts to
``<folder>/results/<suite>/``; ``benchmark.run.validate`` (``slb validate <folder>``) checks them.
"""

from __future__ import annotations

import json
import math
import os
import re
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmark.core.results import CONTROL, REFERENCE_KINDS
from benchmark.core.setup_keys import PRIMARY_SUITE
from benchmark.run.names import suggest
from benchmark.run.suite import pool_results, run_suite
from defenses.loading import builtin_names, entry_point_table

SUBMISSION_FILE = "submission.yaml"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_DEFENSE_KINDS = ("builtin", "entry_point", "module")
# `slb submit` runs the matched random drop for a defense that kept less than this share of rows.
MATCH_BELOW = 0.99
RANDOM_DROP = "random_drop"
_TOP = {
    "name": "a lower-case name: letters, digits, '-' and '_'",
    "version": 'a version string, e.g. "1.0"',
    "authors": "a non-empty list of names",
    "contact": "an e-mail address or URL",
    "license": "a license identifier, e.g. Apache-2.0",
    "defense": "{builtin: NAME} | {entry_point: NAME} | {module: FILE.py, class: CLASS}",
    "params": "a mapping of the defense's parameters (optional)",
    "description": "one paragraph describing the defense",
    "reference": f"optional: this entry is a reference row, not a defense ({', '.join(REFERENCE_KINDS)})",
}
_OPTIONAL = {"params", "reference"}
# A real submission.yaml is under 2 kB and holds a few dozen values; a result artifact nests 7 deep.
MAX_SUBMISSION_BYTES = 1_000_000
MAX_YAML_VALUES = 10_000
MAX_DEPTH = 32
_SHOW = reprlib.Repr()  # bounded reprs: a message quotes a value, never a megabyte of it
_SHOW.maxstring = _SHOW.maxother = 80
_SHOW.maxlevel = 3


def read_capped(path: Path, cap: int, what: str) -> tuple[bytes | None, str | None]:
    """``(content, None)`` of a regular file of at most ``cap`` bytes, checked before reading;
    else ``(None, why not)`` in one line naming the cap."""
    try:
        if not path.is_file():
            return None, f"not a regular file (expected {what})"
        if (size := path.stat().st_size) > cap:
            return None, f"{size} bytes, over the {cap}-byte cap for {what}; not read"
        with path.open("rb") as f:
            data = f.read(cap + 1)  # it may have grown since stat
    except OSError as e:
        return None, f"cannot be read: {e}"
    if len(data) > cap:
        return None, f"over the {cap}-byte cap for {what}; not read"
    return data, None


def tree_problem(obj: Any, max_depth: int = MAX_DEPTH, max_values: int | None = None) -> str | None:
    """What makes a decoded JSON/YAML tree unsafe to use, or None: nesting deeper than
    ``max_depth``, more than ``max_values`` values counted with every alias expanded, or a NaN or
    infinite number. Walked without recursion, and stopped at the first problem."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return f"the top level is {obj}: expected a finite number"
    stack: list[tuple[Any, str, int]] = [(obj, "", 1)] if isinstance(obj, (dict, list)) else []
    seen = 0
    while stack:
        node, where, depth = stack.pop()
        if depth > max_depth:
            return f"nested deeper than {max_depth} levels (at {where.lstrip('.')})"
        seen += len(node)
        if max_values is not None and seen > max_values:
            return f"more than {max_values} values (YAML aliases expand to copies)"
        is_dict = isinstance(node, dict)
        for k, v in node.items() if is_dict else enumerate(node):
            if isinstance(v, (dict, list)) or (isinstance(v, float) and not math.isfinite(v)):
                at = f"{where}.{k}" if is_dict else f"{where}[{k}]"  # built only when needed
                if isinstance(v, float):
                    return f"{v} at {at.lstrip('.')}: expected a finite number"
                stack.append((v, at, depth + 1))
    return None


@dataclass
class Submission:
    folder: Path
    name: str
    version: str
    authors: list[str]
    contact: str
    license: str
    defense: dict[str, str]
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None

    @property
    def kind(self) -> str:
        return next(k for k in _DEFENSE_KINDS if k in self.defense)

    @property
    def module_path(self) -> Path | None:
        return self.folder / self.defense["module"] if self.kind == "module" else None

    def defense_ref(self) -> str:
        """The reference ``get_defense`` takes (and cell configs record)."""
        if (path := self.module_path) is None:
            return self.defense[self.kind]
        # Relative to the working directory when below it, so configs do not hold a home dir.
        shown = os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd()) else path
        return f"{shown}:{self.defense['class']}"


def _check_defense(d: Any, folder: Path) -> list[str]:
    if not isinstance(d, dict):
        return [f"'defense' must be {_TOP['defense']}, got {type(d).__name__}"]
    kinds = [k for k in _DEFENSE_KINDS if k in d]
    if len(kinds) != 1:
        got = _SHOW.repr(sorted(map(str, d)))
        return [f"'defense' must have exactly one of {', '.join(_DEFENSE_KINDS)}, got {got}"]
    kind, problems = kinds[0], []
    allowed = {kind, "class"} if kind == "module" else {kind}
    if extra := sorted(map(str, set(d) - allowed)):
        problems.append(f"'defense' has unknown key(s) {_SHOW.repr(extra)}")
    if not isinstance(d[kind], str) or not d[kind]:
        return [*problems, f"'defense.{kind}' must be a non-empty string"]
    if kind == "builtin" and d[kind] not in builtin_names():
        close = suggest(d[kind], builtin_names())
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        problems.append(f"'defense.builtin' {_SHOW.repr(d[kind])} is not a built-in defense{hint}")
    if kind == "entry_point" and d[kind] not in entry_point_table():
        # A name only: never a path (a path would load an outside file as an "entry point").
        known = sorted(entry_point_table())
        problems.append(
            f"'defense.entry_point' {_SHOW.repr(d[kind])} is not an installed entry point "
            f"(group subliminal_bench.defenses; installed: {', '.join(known) or 'none'})"
        )
    if kind == "module":
        problems += _check_module_file(d[kind], folder)
        cls = d.get("class")
        if not (isinstance(cls, str) and cls.isidentifier()):
            problems.append("'defense.class' must name the defense class in the module file")
    return problems


def _check_module_file(name: str, folder: Path) -> list[str]:
    shown = _SHOW.repr(name)
    if not name.endswith(".py"):
        return [f"'defense.module' must be a .py file in the folder, got {shown}"]
    try:
        path = (folder / name).resolve()
        if not path.is_relative_to(folder.resolve()):
            return [f"'defense.module' {shown} is outside the submission folder"]
        if not path.is_file():
            return [f"'defense.module' file {shown} does not exist in {folder}"]
    except (OSError, ValueError) as e:  # a NUL byte, a name too long for the file system
        why = getattr(e, "strerror", None) or e  # an OSError's message repeats the long path
        return [f"'defense.module' {shown} is not a usable file name: {why}"]
    return []


def _check_fields(raw: dict[str, Any], folder: Path) -> list[str]:
    problems = [f"unknown field {_SHOW.repr(k)}" for k in raw if k not in _TOP]
    problems += [
        f"missing field {k!r} ({_TOP[k]})" for k in _TOP if k not in raw and k not in _OPTIONAL
    ]
    strings = ("version", "contact", "license", "description")
    for k in strings:
        if k in raw and not (isinstance(raw[k], str) and raw[k].strip()):
            problems.append(
                f"{k!r} must be {_TOP[k]} (a non-empty string), got {_SHOW.repr(raw[k])}"
            )
    if "name" in raw:
        if not (isinstance(raw["name"], str) and _NAME_RE.match(raw["name"])):
            problems.append(f"'name' must be {_TOP['name']}, got {_SHOW.repr(raw['name'])}")
        elif raw["name"] != folder.name:
            problems.append(
                f"'name' {_SHOW.repr(raw['name'])} differs from the folder name {folder.name!r}"
            )
    authors = raw.get("authors")
    if "authors" in raw and not (
        isinstance(authors, list) and authors and all(isinstance(a, str) and a for a in authors)
    ):
        problems.append(f"'authors' must be {_TOP['authors']}, got {_SHOW.repr(authors)}")
    if "params" in raw and not isinstance(raw["params"], dict):
        problems.append(f"'params' must be {_TOP['params']}, got {type(raw['params']).__name__}")
    desc = raw.get("description")
    if isinstance(desc, str) and "\n" in desc.strip():
        # Folded (">") and quoted YAML turn a blank line into "\n"; literal ("|") keeps every break.
        problems.append(
            "'description' must be one paragraph (folded style 'description: >', no blank line)"
        )
    if "reference" in raw and raw["reference"] not in REFERENCE_KINDS:
        problems.append(
            f"'reference' must be one of {REFERENCE_KINDS}, got {_SHOW.repr(raw['reference'])}"
        )
    if "defense" in raw:
        problems += _check_defense(raw["defense"], folder)
    return problems


def _one_line(e: yaml.YAMLError) -> str:
    """A YAML error without its multi-line source excerpt: what went wrong, and where."""
    if not isinstance(e, yaml.MarkedYAMLError) or e.problem_mark is None:
        return " ".join(str(e).split())[:300]
    what = "; ".join(str(m) for m in (e.context, e.problem) if m)[:300]
    return f"{what} (line {e.problem_mark.line + 1}, column {e.problem_mark.column + 1})"


def load_submission(folder: str | Path) -> tuple[Submission | None, list[str]]:
    """The submission in ``folder`` and every problem found (the submission is None if any)."""
    folder = Path(folder)
    path = folder / SUBMISSION_FILE
    if not path.exists():
        return None, [f"{path} does not exist"]
    data, problem = read_capped(path, MAX_SUBMISSION_BYTES, SUBMISSION_FILE)
    if data is None:
        return None, [f"{path}: {problem}"]
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        return None, [f"{path} is not UTF-8 text: {e}"]
    except yaml.YAMLError as e:
        return None, [f"{path} is not valid YAML: {_one_line(e)}"]
    except RecursionError:
        return None, [f"{path} nests too deeply to parse (at most {MAX_DEPTH} levels expected)"]
    if problem := tree_problem(raw, max_values=MAX_YAML_VALUES):
        return None, [f"{path}: {problem}"]
    if not isinstance(raw, dict):
        return None, [f"{path} must hold a mapping of fields, got {type(raw).__name__}"]
    if problems := _check_fields(raw, folder):
        return None, problems
    raw.setdefault("params", {})
    raw["description"] = " ".join(raw["description"].split())
    return Submission(folder=folder, **raw), []


def submit(
    folder: str | Path,
    store: Any,
    suite: str = PRIMARY_SUITE,
    seeds: list[int] | None = None,
    tasks: list[str] | None = None,
    traits: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    settings: list[str] | None = None,
    executor: Any = None,
    record: dict[str, Any] | None = None,
    matched_drop: bool = True,
) -> dict[str, Any]:
    """Run ``suite`` for the submission's defense into ``<folder>/results/<suite>/``
    (``overrides`` / ``settings`` / ``record`` as for :func:`benchmark.run.suite.run_suite`),
    then, for each task where it kept less than :data:`MATCH_BELOW` of the rows, the random drop
    at the share it kept (the mean over this call's seeds and arms) on the same seeds.
    ``matched_drop=False`` skips that: seeds run in separate calls would each get a share of
    their own, i.e. separate random-drop entries, so run it once, in one call over every seed
    (the defense's finished cells are reused from the store). The control folder is shared by
    every dropping defense, so its ``summary.json`` is then rebuilt over all its runs
    (:func:`benchmark.run.suite.pool_results`), not just this one's."""

    sub, problems = load_submission(folder)
    if sub is None:
        raise ValueError(f"{folder}: " + "; ".join(problems))
    common = dict(seeds=seeds, traits=traits, settings=settings, executor=executor, record=record)
    summary = run_suite(
        suite,
        store,
        Path(folder) / "results",
        overrides={**(overrides or {}), "defense_params": sub.params},
        defenses=[sub.defense_ref()],
        tasks=tasks,
        **common,
    )
    if sub.reference is not None or sub.defense_ref() == RANDOM_DROP:
        return summary
    control = Path(folder).resolve().parent / RANDOM_DROP  # the folder that owns those artifacts
    for task, keep in kept_shares(Path(folder) / "results" / suite, summary["cells"]).items():
        if keep >= MATCH_BELOW:
            continue
        if not matched_drop:
            print(
                f"{task}: the defense kept {keep:.1%} of rows; matched random drop skipped "
                "(--no-matched-drop): run `slb submit` once over every seed for it"
            )
            continue
        print(f"{task}: the defense kept {keep:.1%} of rows; matched random drop at that share")
        run_suite(
            suite,
            store,
            control / "results",
            overrides={**(overrides or {}), "defense_params": {"keep": round(max(keep, 1e-3), 3)}},
            defenses=[RANDOM_DROP],
            tasks=[task],
            **common,
        )
        try:  # the folder is shared: its summary pools every defense's drops, not this run's
            pool_results(control / "results" / suite)
        except ValueError as e:  # a stray file there, or no cell at all: the runs are kept
            print(f"{control}: summary.json not re-pooled ({e}); fix it, then `slb pool` it")
    return summary


def matched_drop_params(sub: Submission, params: Any) -> bool:
    """``params`` are one matched random drop's, as :func:`submit` writes them into the control
    folder (the built-in ``random_drop`` with ``reference: matched random drop``), one run per
    share a defense kept: ``{"keep": share}``, whatever that folder's submission.yaml says."""
    # The folder's yaml sets no params of its own (where it does, the leaderboard's rule applies).
    if not isinstance(params, dict) or sub.params:
        return False
    keep = params.get("keep")
    return (
        sub.reference == CONTROL
        and sub.defense_ref() == RANDOM_DROP
        and set(params) == {"keep"}
        and isinstance(keep, (int, float))
        and not isinstance(keep, bool)
        and 0 < keep <= 1
    )


def kept_shares(results: Path, cells: list[str]) -> dict[str, float]:
    """Per task, the mean share of rows the defense let through (over arms and seeds) in the
    finished cells ``cells`` of ``results``."""
    shares: dict[str, list[float]] = {}
    for name in cells:
        art = json.loads((results / f"{name}.json").read_text(encoding="utf-8"))
        for arm in art["data"].values():
            if isinstance(arm.get("defense_kept_share"), (int, float)):
                shares.setdefault(art["config"]["task"], []).append(arm["defense_kept_share"])
    return {task: sum(v) / len(v) for task, v in shares.items() if v}
