"""The package's shape: no import circle inside ``assistant/`` (imports inside functions count,
``if TYPE_CHECKING:`` blocks do not), and ``assistant/`` never imports the shells (``ui``,
``evals``) that are built on it."""

from __future__ import annotations

import ast
from pathlib import Path

from assistant.config import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "assistant"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[:len(base) - child.level + 1]
                    prefix = ".".join(base + ([child.module] if child.module else []))
                else:
                    prefix = child.module or ""
                found.add(prefix)
                found.update(f"{prefix}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def package_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (a path that comes back to its start), or None. A package's
    ``__init__`` importing its own submodules is how packages are made, not a circle."""
    def edges(name: str) -> set[str]:
        return {m for m in graph[name] if not m.startswith(name + ".")}

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        stack.append(name)
        for target in sorted(edges(name)):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name)
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_circle():
    cycle = find_cycle(package_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_circle_finder_finds_circles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None
    assert find_cycle({"p": {"p.x"}, "p.x": set()}) is None  # a package importing its own module


def test_the_package_never_imports_its_shells():
    offenders = {_module_name(p): sorted(m for m in imports_of(p) if m.split(".")[0] in {"ui", "evals"})
                 for p in PACKAGE.rglob("*.py")}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_imports_are_resolved_relative_to_their_package(tmp_path):
    fake = PACKAGE / "selectors" / "gated.py"
    found = imports_of(fake)
    assert "assistant.selectors.base" in found and "assistant.evidence" in found


def test_every_module_is_in_the_architecture_map():
    """docs/architecture.md's module map names every module of the library and its shells."""
    text = (PROJECT_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = [p.relative_to(PROJECT_ROOT).as_posix() for folder in ("assistant", "ui", "evals", "benchmarks")
               for p in (PROJECT_ROOT / folder).rglob("*.py")]
    assert modules and [m for m in modules if f"`{m}`" not in text] == []
