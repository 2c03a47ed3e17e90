"""What exists, by name: tasks, defenses, traits, suites and models, and the checks of a name.

``slb tasks``, ``slb defenses``, ``slb traits`` and ``slb suites`` print these lists, one line
each; the ``check_*`` functions refuse an unknown name before any work starts, with the closest
known names (``benchmark.run.names``).
"""

from __future__ import annotations

from pathlib import Path

from benchmark.core.animals import CANDIDATE_ANIMALS
from benchmark.core.lexicon import ANIMALS
from benchmark.core.models import EMBEDDED
from benchmark.core.setup_keys import PRIMARY_SUITE
from benchmark.run.names import check, check_animal
from benchmark.run.presets import PRESETS, SUITES
from defenses import known_defenses, load_defense
from tasks.base import get_task, known_tasks


def check_defense(ref: str) -> str:
    """A built-in or entry-point name, or an existing ``path/to/file.py:ClassName``."""
    if ":" in ref and ref.split(":", 1)[0].endswith(".py"):
        if not Path(ref.split(":", 1)[0]).is_file():
            raise ValueError(f"defense module file {ref.split(':', 1)[0]!r} does not exist")
        return ref
    return check("defense", ref, known_defenses())


def check_model(ref: str) -> str:
    """An embedded name, an existing directory, or something shaped like a hub id (owner/name)."""
    if ref in EMBEDDED or Path(ref).is_dir():
        return ref
    if "/" in ref and not ref.startswith(("/", ".")) and ref.count("/") == 1:
        return ref  # a Hugging Face id; whether it exists is the hub's to say
    return check("model", ref, sorted(EMBEDDED))


def check_trait(name: str) -> str:
    return check_animal("trait", name)


def check_task(name: str) -> str:
    return check("task", name, known_tasks())


def check_suite(name: str) -> str:
    return check("suite", name, sorted(SUITES))


def check_preset(name: str) -> str:
    return check("suite", name, sorted(PRESETS))


def task_lines() -> list[str]:
    return [f"{t:24} {get_task(t).description}" for t in known_tasks()]


def defense_lines() -> list[str]:
    out = []
    for name in known_defenses():
        try:
            d = load_defense(name).describe()
            first = (d.get("description") or "").strip().splitlines()[0:1]
            out.append(f"{name:24} {first[0] if first else ''}")
        except Exception as e:  # a broken plugin is listed, not fatal to the listing
            out.append(f"{name:24} (cannot load: {type(e).__name__}: {e})")
    return out


def trait_lines() -> list[str]:
    """Every animal the lexicon knows; those in the eval's default candidate set are marked."""
    marked = [f"{a}{'*' if a in CANDIDATE_ANIMALS else ''}" for a in ANIMALS]
    width = max(map(len, marked)) + 2
    per_line = max(1, 96 // width)
    lines = [
        "".join(m.ljust(width) for m in marked[i : i + per_line]).rstrip()
        for i in range(0, len(marked), per_line)
    ]
    note = (
        f"{len(ANIMALS)} animals; * = in the teacher-forced eval's default candidate set "
        f"({len(CANDIDATE_ANIMALS)}), where the specificity check ranks the trait among them"
    )
    return [*lines, note]


def suite_lines() -> list[str]:
    width = max(map(len, SUITES))
    return [
        f"{name:{width}} tasks {','.join(s['tasks'])}; seeds {','.join(map(str, s['seeds']))}"
        + ("" if name in PRESETS else " (no preset)")
        + (" (the default: slb run, slb submit, the leaderboard)" if name == PRIMARY_SUITE else "")
        for name, s in SUITES.items()
    ]
