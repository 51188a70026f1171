"""The engine's layers: a module imports only from modules in rows below its own, at the top of the file, with no
cycles. Rows are listed top down; a module not listed fails the test (place it in a row when you add it)."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Top down. `harness.models.*` means every module of that package (the package's __init__ included).
LAYERS: List[Tuple[str, ...]] = [
    ("harness.cli",),
    ("harness.app",),
    ("harness.contest.entries",),
    ("harness.validate",),
    ("harness.compose",),
    ("harness.board.write",),
    ("harness.publish.page",),
    ("harness.publish.plots", "harness.publish.readme"),
    ("harness.board.uncertainty", "harness.board.history", "harness.board.freshness"),
    ("harness.board.formats",),
    ("harness.board.frame",),
    ("harness.execution.executors",),
    ("harness.execution.evaluator",),
    ("harness.execution.cells", "harness.execution.statistics"),
    ("harness.execution.isolation", "harness.execution.worker"),
    ("harness.execution.sandbox",),
    ("harness.contest.ledger", "harness.contest.splits"),
    ("harness.contest.rules",),
    ("harness.board.policies", "harness.board.significance"),
    ("harness.guard",),
    ("harness.scoring", "harness.prompting"),
    ("harness.safety",),
    ("harness.submission",),
    ("harness.models.*", "tasks.*", "harness.filehash"),
    ("harness.metrics.*", "harness.store"),
    ("harness.data", "harness.requests", "harness.runtime", "harness.language"),
    ("harness.config",),
    ("harness.status", "harness.errors"),
    # packages whose __init__ holds nothing but a docstring (or the version)
    ("harness", "harness.execution", "harness.contest", "harness.board", "harness.publish", "harness.conf"),
]
# Function-local imports of the project's own modules that remain, each commented where it is (at most ten).
LOCAL_ALLOWED = {
    ("harness.app", "harness.board.write"),  # pandas, numpy and matplotlib load only when a board is written
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> Dict[str, Path]:
    return {module_name(p): p for package in ("harness", "tasks") for p in sorted((ROOT / package).rglob("*.py"))}


def _entry(module: str) -> Tuple[int, str]:
    for index, row in enumerate(LAYERS):
        for entry in row:
            if module == entry or (entry.endswith(".*") and (module == entry[:-2] or module.startswith(entry[:-1]))):
                return index, entry
    raise AssertionError(f"{module} is in no row of tests/test_layers.py LAYERS; add it to the row it belongs to")


def row_of(module: str) -> int:
    return _entry(module)[0]


def same_package(a: str, b: str) -> bool:
    """Both in one `pkg.*` entry: a package's modules may import each other (the cycle test still applies)."""
    entry_a, entry_b = _entry(a)[1], _entry(b)[1]
    return entry_a == entry_b and entry_a.endswith(".*")


def imports(path: Path, module: str) -> List[Tuple[str, bool]]:
    """(imported project module, at top level) for every import of the project's own modules in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    known = project_modules()
    top = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        names: List[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + [base])
            # `from harness.board import write` imports the module harness.board.write
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for name in names:
            if name.split(".")[0] in ("harness", "tasks"):
                out.append((name, id(node) in top))
    return out


@pytest.mark.parametrize("module", sorted(project_modules()))
def test_a_module_imports_only_from_rows_below_it(module):
    path = project_modules()[module]
    mine = row_of(module)
    for imported, at_top in imports(path, module):
        if imported == module or imported.startswith(module + ".") and path.name == "__init__.py":
            continue  # a package's __init__ may import its own modules (registries do, lazily)
        if not at_top:
            assert (module, imported) in LOCAL_ALLOWED, (
                f"{module} imports {imported} inside a function; import it at the top of the file (if that makes a "
                f"cycle, the layers are wrong)")
            continue
        theirs = row_of(imported)
        assert theirs > mine or same_package(module, imported), (f"{module} (row {mine}) imports {imported} (row {theirs}); a module may import only "
                               f"from rows below its own")


def test_at_most_ten_function_local_project_imports():
    assert len(LOCAL_ALLOWED) <= 10


def test_there_are_no_import_cycles():
    graph: Dict[str, Set[str]] = {m: {i for i, _ in imports(p, m) if i in project_modules()}
                                  for m, p in project_modules().items()}
    visiting: Set[str] = set()
    done: Set[str] = set()

    def visit(node: str, trail: List[str]) -> None:
        if node in done:
            return
        assert node not in visiting, f"import cycle: {' -> '.join(trail + [node])}"
        visiting.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt != node and not (node.startswith(nxt + ".") or nxt.startswith(node + ".")):
                visit(nxt, trail + [node])
        visiting.discard(node)
        done.add(node)

    for module in sorted(graph):
        visit(module, [])
