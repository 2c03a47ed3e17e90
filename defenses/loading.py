"""Where defense classes come from: built-ins by name, outside ones by entry point or module file.

A *defense reference* (``CellConfig.defense``, ``slb run --defense``) is one of

* a built-in name (``none``, ``banned_words``, ...) — a class in ``defenses/`` registered with
  :func:`register_defense`; trusted, runs in the pipeline's process;
* an entry point name — a class an installed package exposes in the group
  ``subliminal_bench.defenses`` (``[project.entry-points."subliminal_bench.defenses"]
  my_defense = "my_pkg.module:MyDefense"``), so installing the package makes it usable by name;
* ``path/to/file.py:ClassName`` — a class in a plain Python file (a submission folder).

The last two are untrusted: ``defenses.registry.get_defense`` hands them to
:class:`defenses.isolation.IsolatedDefense`, which calls :func:`load_class` only in a child process. Duplicate names are refused: registering a
built-in twice, an entry point named like a built-in, or two entry points of one name from
different packages, each with an error naming both sides.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.machinery import PathFinder
from importlib.metadata import EntryPoint, distributions
from pathlib import Path
from typing import Any

from defenses.base import Defense

ENTRY_POINT_GROUP = "subliminal_bench.defenses"
_BUILTINS: dict[str, type[Defense]] = {}
_MODULE_REF = re.compile(r"^(?P<path>.+\.py):(?P<cls>[A-Za-z_][A-Za-z0-9_]*)$")


class DefenseRegistryError(ValueError):
    """A defense name is ambiguous or cannot be resolved."""


def register_defense(name: str) -> Callable[[type[Defense]], type[Defense]]:
    """Class decorator: register a built-in defense under ``name`` (refuses a duplicate)."""

    def deco(cls: type[Defense]) -> type[Defense]:
        if name in _BUILTINS and _BUILTINS[name] is not cls:
            old = _BUILTINS[name]
            raise DefenseRegistryError(
                f"defense {name!r} is already registered by {old.__module__}.{old.__qualname__}; "
                f"refusing {cls.__module__}.{cls.__qualname__}"
            )
        cls.name = name
        _BUILTINS[name] = cls
        return cls

    return deco


def _builtins() -> dict[str, type[Defense]]:
    return _BUILTINS


def entry_point_table() -> dict[str, EntryPoint]:
    """Installed entry points by name (not loaded: loading runs their code)."""
    builtins = _builtins()
    table: dict[str, EntryPoint] = {}
    # Walk the distributions: entry_points() keeps one entry per name and would hide a clash.
    found = [ep for d in distributions() for ep in d.entry_points if ep.group == ENTRY_POINT_GROUP]
    for ep in found:
        where = f"{ep.value} from {ep.dist.name if ep.dist else 'an unknown distribution'}"
        if ep.name in builtins:
            b = builtins[ep.name]
            raise DefenseRegistryError(
                f"entry point {ep.name!r} ({where}) collides with the built-in defense "
                f"{ep.name!r} ({b.__module__}.{b.__qualname__}); rename or uninstall the plugin"
            )
        if ep.name in table and table[ep.name].value != ep.value:
            other = table[ep.name]
            raise DefenseRegistryError(
                f"two entry points are named {ep.name!r}: {other.value} "
                f"({other.dist.name if other.dist else '?'}) and {where}; uninstall one"
            )
        table[ep.name] = ep
    return table


def builtin_names() -> list[str]:
    return sorted(_builtins())


def known_defenses() -> list[str]:
    return sorted({*_builtins(), *entry_point_table()})


@dataclass(frozen=True)
class Source:
    """Where a defense class comes from; picklable, so a child process can load it."""

    kind: str  # "builtin" | "entry_point" | "module"
    ref: str  # the reference as given
    target: str = ""  # builtin: module.Class; entry point: its value; module: the absolute path
    cls: str = ""  # module file: the class name

    @property
    def trusted(self) -> bool:
        return self.kind == "builtin"


def resolve(ref: str, expect: str | None = None) -> Source:
    """The :class:`Source` a defense reference names, or a ``ValueError`` listing known names.
    ``expect`` (a :attr:`Source.kind`) refuses a reference of another kind: a submission that says
    ``{builtin: ...}`` or ``{entry_point: ...}`` must not load a module file."""
    source = _resolve(ref)
    if expect is not None and source.kind != expect:
        kinds = {
            "builtin": "a built-in",
            "entry_point": "an entry point",
            "module": "a module file",
        }
        raise DefenseRegistryError(f"defense {ref!r} is {kinds[source.kind]}, not {kinds[expect]}")
    return source


def _resolve(ref: str) -> Source:
    if m := _MODULE_REF.match(ref):
        path = Path(m["path"])
        if not path.is_file():
            raise DefenseRegistryError(f"defense module file {str(path)!r} does not exist")
        # Absolute: the child that loads it runs in a private working directory.
        return Source("module", ref, str(path.resolve()), m["cls"])
    builtins = _builtins()
    if ref in builtins:
        entry_point_table()  # refuses a plugin that shadows this built-in
        b = builtins[ref]
        return Source("builtin", ref, f"{b.__module__}.{b.__qualname__}")
    eps = entry_point_table()
    if ref in eps:
        return Source("entry_point", ref, eps[ref].value)
    raise DefenseRegistryError(
        f"unknown defense {ref!r}; known defenses: {', '.join(known_defenses())} "
        "(or path/to/file.py:ClassName)"
    )


def sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_class(source: Source) -> type[Defense]:
    """Import the defense class. Runs plugin code: call it for untrusted sources only in a child."""
    if source.kind == "builtin":
        return _builtins()[source.ref]
    if source.kind == "entry_point":
        obj = entry_point_table()[source.ref].load()
    else:
        path = Path(source.target).resolve()
        # A unique module name per file content: two submissions may both have "defense.py".
        name = f"slb_plugin_{path.stem}_{sha256_file(path)[:8]}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise DefenseRegistryError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and typing resolve annotations through it
        sys.path.insert(0, str(path.parent))  # the file may import siblings in its folder
        spec.loader.exec_module(module)
        obj = getattr(module, source.cls, None)
        if obj is None:
            raise DefenseRegistryError(f"{path} defines no {source.cls!r}")
    if not (isinstance(obj, type) and issubclass(obj, Defense)):
        raise DefenseRegistryError(
            f"{source.ref!r} is {obj!r}, not a subclass of defenses.base.Defense"
        )
    return obj


def code_file(source: Source) -> Path | None:
    """The file that defines the defense class, found without running plugin code: a module
    file itself, a built-in's module, or an entry point's module located through the import
    system's finders (a top-level lookup and ``PathFinder`` below it execute nothing)."""
    if source.kind == "module":
        return Path(source.target).resolve()
    if source.kind == "builtin":
        f = getattr(sys.modules.get(_builtins()[source.ref].__module__), "__file__", None)
        return Path(f).resolve() if f else None
    parts = source.target.partition(":")[0].strip().split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
        for i in range(1, len(parts)):
            where = spec.submodule_search_locations if spec else None
            spec = PathFinder.find_spec(".".join(parts[: i + 1]), list(where)) if where else None
    except (ImportError, ValueError):
        return None
    origin = spec.origin if spec is not None and spec.has_location else None
    return Path(origin).resolve() if origin else None


def code_root(source: Source) -> Path | None:
    """Where a plugin's code lives: its file, or the folder of an entry point's top package."""
    path = code_file(source)
    if path is None or source.kind != "entry_point":
        return path
    top = source.target.partition(":")[0].strip().split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return path
    where = list(spec.submodule_search_locations or []) if spec else []
    return Path(where[0]).resolve() if where else path


def source_info(source: Source) -> dict[str, Any]:
    """The ``source`` block of ``describe()``: kind, reference, file and the sha256 of that file,
    computed in the parent (a plugin's child could report any hash it liked). Built-ins too: the
    hash names the exact code that produced a result."""
    path = code_file(source)
    info: dict[str, Any] = {"kind": source.kind, "ref": source.ref}
    if source.kind == "builtin":
        info["module"] = _builtins()[source.ref].__module__
    shown: str | None = str(path) if path else None
    if source.kind == "module":  # as the reference gives it (relative, so no home dir shows)
        shown = source.ref.rpartition(":")[0]
    elif source.kind == "builtin" and path is not None:
        shown = path.relative_to(Path(__file__).resolve().parents[1]).as_posix()
    info.update(path=shown)
    info.update(sha256=sha256_file(path) if path is not None and path.is_file() else None)
    if source.kind == "module":
        info["class"] = source.cls
    elif source.kind == "entry_point":
        info["entry_point"] = source.target
    return info
