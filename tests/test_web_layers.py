"""web/'s imports go one way (syndicate/web/app.py's docstring): app.py builds the app from
the route modules, they import the shared pieces, and services.py, which every route uses,
imports no route module. Read from the source with `ast`, so an import hidden inside a
function (the usual way round a cycle) counts like any other.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from syndicate.web.services import WebServices

WEB = Path(__file__).parent.parent / "syndicate" / "web"
# What services.py may reach inside web/: none of these has a route or imports one.
FLOOR = {"services", "health", "ratelimit", "render", "pagecache", "language", "admingate"}


def web_imports(path: Path) -> set[str]:
    """The modules of syndicate.web that `path` imports, wherever the import statement is."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            inside_web = parts[:2] == ["syndicate", "web"] and len(parts) > 2
            if inside_web and (WEB / f"{parts[2]}.py").exists():
                found.add(parts[2])
    return found


def graph() -> dict[str, set[str]]:
    return {path.stem: web_imports(path) - {path.stem} for path in sorted(WEB.glob("*.py"))}


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(edges.get(module, ()))
    return seen


def test_no_module_in_web_imports_itself_back() -> None:
    edges = graph()
    circles = {m for m in edges if any(m in reachable(edges, n) for n in edges[m])}
    assert circles == set()


def test_services_imports_no_route_module() -> None:
    assert (WEB / "services.py").exists()
    assert reachable(graph(), "services") <= FLOOR


def test_every_import_is_at_module_level() -> None:
    inside_functions = []
    for path in sorted(WEB.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(function):
                    if isinstance(node, ast.Import | ast.ImportFrom):
                        inside_functions.append(f"{path.name}:{node.lineno}")
    assert inside_functions == []


def test_the_shared_state_is_typed_fields() -> None:
    # No string-keyed bag: what a route keeps for the life of the app is a field of its own.
    names = {field.name for field in dataclasses.fields(WebServices)}
    assert {"csrf", "health", "subscribe_limiter"} <= names
    assert "extra" not in names
