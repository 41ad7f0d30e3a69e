"""The shape of the package (issue 14): a folder per stage, no import cycles,
lower layers never reaching up into the runtime or the command line, small
modules. Read from the source with ``ast``, so a new module is checked the
moment it exists."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "assist"
MAX_LINES = 650
LOWER = ("assist.core", "assist.capture", "assist.hazards", "assist.describe", "assist.speech", "assist.config")
UPPER = ("assist.runtime", "assist.app")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, here: str) -> list[str]:
    """The assist modules an import statement names (``from a import b`` is a.b when that is a module)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            pkg = here if MODULES.get(here, Path()).name == "__init__.py" else here.rpartition(".")[0]
            for _ in range(node.level - 1):
                pkg = pkg.rpartition(".")[0]
            base = f"{pkg}.{base}".rstrip(".")
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    return [n for n in names if n in MODULES]


def top_level_imports(name: str) -> set[str]:
    """Imports executed when the module is imported: module level (also inside
    try/if at module level), not in functions and not under ``if TYPE_CHECKING``."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found: set[str] = set()
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.update(_targets(node, name))
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            stack.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            stack.extend(node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body])
    found.discard(name)
    return found


def all_imports(name: str) -> set[str]:
    """Every import anywhere in the module, lazy ones inside functions included."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    return {t for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
            for t in _targets(node, name)} - {name}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_level_import_cycle() -> None:
    graph = {name: top_level_imports(name) for name in MODULES}
    assert find_cycles(graph) == []


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith(LOWER)))
def test_lower_layers_never_import_the_runtime_or_the_app(name: str) -> None:
    upward = sorted(t for t in all_imports(name) if t.startswith(UPPER))
    assert upward == [], f"{name} imports {upward}"


def test_only_the_app_knows_exit_codes() -> None:
    users = sorted(n for n in MODULES if "assist.app.exitcodes" in all_imports(n))
    assert all(n.startswith(("assist.app", "assist.training")) for n in users), users


def test_modules_are_small() -> None:
    big = {n: len(p.read_text(encoding="utf-8").splitlines()) for n, p in MODULES.items()}
    assert {n: lines for n, lines in big.items() if lines > MAX_LINES} == {}


def test_a_folder_per_stage_and_few_loose_modules() -> None:
    packages = [p.parent.name for p in PKG.glob("*/__init__.py")]
    loose = [p.name for p in PKG.glob("*.py")]
    assert len(packages) >= 5, packages
    assert len(loose) <= 8, loose


@pytest.mark.parametrize("name", sorted(n for n, p in MODULES.items() if p.name == "__init__.py"))
def test_every_package_explains_its_stage(name: str) -> None:
    doc = ast.get_docstring(ast.parse(MODULES[name].read_text(encoding="utf-8")))
    assert doc and len(doc) > 80, f"{name}: the package docstring should explain the stage"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.endswith("pyttsx3_child")))
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)
