"""The module boundaries, read from the source: only the stores touch an index's arrays, and the
stores import nothing that builds or answers (``assistant.index`` sits above them). No import
circle at all: ``test_imports``."""

from __future__ import annotations

import ast
from pathlib import Path

from assistant.config import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "assistant"
STORES = PACKAGE / "stores"
# What an ``Index`` keeps to itself: its arrays and the tables locating rows in them.
INTERNALS = {"sentence_vectors", "chunk_vectors", "heading_vectors", "sentence_position", "chunk_position",
             "chunk_by_id", "sentence_by_id"}
INTERNALS |= {"_" + name for name in INTERNALS}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the package ``name`` imports, wherever in the file (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found.update(c for c in candidates if c in modules and c != name)
    return found


def test_only_the_stores_read_an_index_s_arrays():
    readers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if STORES in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in INTERNALS:
                readers.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} .{node.attr}")
    assert not readers, "read through the Store methods instead:\n" + "\n".join(readers)


def test_the_stores_never_import_what_builds_or_answers():
    """The stores are read by everything and read nothing above them (building, retrieval,
    answering, the API): ``assistant.index`` imports them, never the other way round."""
    modules = _modules()
    allowed = {"assistant.chunking", "assistant.config", "assistant.corpus", "assistant.embeddings",
               "assistant.errors", "assistant.registry", "assistant.text", "assistant.types"}
    for name, path in modules.items():
        if name == "assistant.stores" or name.startswith("assistant.stores."):
            outside = {m for m in _imports(name, path, modules) if not m.startswith("assistant.stores")}
            assert outside <= allowed, (name, outside - allowed)

