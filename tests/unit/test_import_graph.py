"""No package of app/ imports a package that imports it: the arrows between features point one way.

A package here is a top-level name under app/ (`app.memories`, `app.writes`, or a module such as `app.filters`),
except for the HTTP layer: every feature's `router` module and `app.deps` (the dependencies routes ask for, which
hand out the services) are one layer above the services, as routes and services are in FastAPI's own template.
Every import statement counts, at module level or inside a function."""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"


HTTP_LAYER = "http"


def package_of(module: str) -> str | None:
    """`app.memories.service` -> `memories`, `app.memories.router` -> the HTTP layer; None outside app/ and for the
    root package itself."""
    parts = module.split(".")
    if parts[0] != "app" or len(parts) < 2:
        return None
    if parts[1] == "deps" or parts[-1] == "router":
        return HTTP_LAYER
    return parts[1]


def imported_modules(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            if node.module == "app":  # `from app import memories`
                yield from (f"app.{alias.name}" for alias in node.names)


def package_graph(root: Path) -> dict[str, set[str]]:
    """Each package and the other packages it imports."""
    graph: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        module = ".".join(("app", *path.relative_to(root).with_suffix("").parts))
        package = package_of(module)
        if package is None or package == "__init__":
            continue
        imported = {package_of(name) for name in imported_modules(ast.parse(path.read_text(), str(path)))}
        graph.setdefault(package, set()).update(p for p in imported if p is not None and p != package)
    return graph


def first_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        cycle: list[str] = error.args[1]
        return cycle
    return None


def test_no_package_imports_a_package_that_imports_it():
    cycle = first_cycle(package_graph(APP))
    assert cycle is None, f"import cycle between app packages: {' -> '.join(reversed(cycle))}"


def test_a_cycle_is_found(tmp_path):
    for name, body in {
        "memories/service.py": "from app.jobs.repository import JobRepository\n",
        "jobs/repository.py": "import app.filters\n",
        "filters.py": "def f():\n    from app.memories import service\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    assert sorted(set(first_cycle(package_graph(tmp_path)) or [])) == ["filters", "jobs", "memories"]


@pytest.mark.parametrize("removed", ["filters.py"])
def test_no_cycle_once_one_arrow_is_gone(tmp_path, removed):
    for name, body in {
        "memories/service.py": "from app.jobs.repository import JobRepository\n",
        "jobs/repository.py": "import app.filters\n",
        "filters.py": "def f():\n    from app.memories import service\n",
    }.items():
        if name != removed:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(body)
    assert first_cycle(package_graph(tmp_path)) is None
