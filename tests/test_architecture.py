"""The package's import graph: imports point down the layers only, and no two files import each other.

Read from the source (AST), so an import inside a function counts like one at the top of a file: a
cycle hidden behind a late import is still a cycle. docs/architecture.md explains the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "augrgb"

LAYERS = ["core", "annotations", "models", "metrics", "extract", "detect", "distill", "evaluate", "synth",
          "experiments", "plot", "demo", "cli"]
"""Bottom to top: a module may import its own layer and the ones before it, never one after it."""


def module_name(path: Path) -> str:
    """``augrgb.a.b`` for ``augrgb/a/b.py`` and ``augrgb/a/b/__init__.py``."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, path: Path) -> set[str]:
    """The package modules ``path`` imports anywhere in it (``from pkg import mod`` names the module ``pkg.mod``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                found.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imported_modules(name, path) for name, path in MODULES.items()}


def layer_of(module: str) -> int | None:
    """Index in :data:`LAYERS` of the module's layer; None for the root package (``__version__``)."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    return LAYERS.index(parts[1])


def test_every_module_has_a_layer() -> None:
    unknown = sorted({m.split(".")[1] for m in MODULES if "." in m} - set(LAYERS))
    assert not unknown, f"packages or modules outside the layers: {unknown} (add them to LAYERS and the docs)"


def test_root_package_imports_nothing_of_the_package() -> None:
    assert GRAPH["augrgb"] == set()


def test_imports_point_down_the_layers() -> None:
    upward = []
    for source, targets in GRAPH.items():
        for target in targets:
            low, high = layer_of(target), layer_of(source)
            if low is not None and (high is None or low > high):
                upward.append(f"{source} -> {target}")
    assert not upward, "imports from a higher layer into a lower one:\n" + "\n".join(sorted(upward))


def test_no_file_level_import_cycles() -> None:
    cycles: set[tuple[str, ...]] = set()
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycle = path[path.index(target):]
                start = cycle.index(min(cycle))
                cycles.add(tuple(cycle[start:] + cycle[:start]))
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c + (c[0],)) for c in sorted(cycles))

