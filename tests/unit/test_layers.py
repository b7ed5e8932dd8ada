"""The house matches its drawing (docs/architecture.md, "Layers"): import arrows point one way.

Read from the source with ``ast`` (no import side effects): every ``import`` of an
``authsvc`` module, top-level or inside a function, is an arrow.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "authsvc"
COMPOSITION = {"app", "cli", "services", "background"}
"""The composition root: wires everything, imported by nothing but itself and entry points."""


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        yield ".".join(["authsvc", *parts]), path


def is_module(name: str) -> bool:
    path = ROOT.parent / name.replace(".", "/")
    return path.with_suffix(".py").exists() or path.is_dir()


def imports(path: Path) -> set[str]:
    """Every authsvc module ``path`` imports (``from authsvc.x import y`` counts ``y`` when it
    is a module itself)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("authsvc"):
            out.add(node.module)
            out.update(
                f"{node.module}.{a.name}"
                for a in node.names
                if is_module(f"{node.module}.{a.name}")
            )
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("authsvc"))
    return out


def folder(module: str) -> str:
    """The unit of the drawing: a domain folder (``keys``) or a top-level module (``errors``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "authsvc"


def kind(module: str) -> str:
    name = module.rsplit(".", 1)[-1]
    if folder(module) in COMPOSITION:
        return "composition"
    if folder(module) == "web":
        return "web"
    if name in ("controller", "authz", "guard", "wellknown", "schemas"):
        return "controller"
    return "service"


GRAPH = {module: imports(path) for module, path in modules()}


def test_no_two_folders_import_each_other() -> None:
    arrows = {
        (folder(a), folder(b))
        for a, targets in GRAPH.items()
        for b in targets
        if folder(a) != folder(b) and folder(a) not in COMPOSITION
    }
    both_ways = sorted((a, b) for a, b in arrows if (b, a) in arrows and a < b)
    assert both_ways == []


def test_folder_graph_has_no_cycle() -> None:
    edges: dict[str, set[str]] = {}
    for a, targets in GRAPH.items():
        if folder(a) in COMPOSITION:
            continue
        for b in targets:
            if folder(a) != folder(b):
                edges.setdefault(folder(a), set()).add(folder(b))
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            assert state.get(nxt) != 1, f"cycle: {' -> '.join([*path, node, nxt])}"
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])


def test_nothing_imports_the_composition_root() -> None:
    offenders = sorted(
        (a, b)
        for a, targets in GRAPH.items()
        for b in targets
        if folder(b) in COMPOSITION and folder(a) not in COMPOSITION
    )
    assert offenders == []


WEB_MAY_IMPORT = (
    "authsvc.web",
    "authsvc.errors",
    "authsvc.principal",
    "authsvc.scopes",
    "authsvc.metrics",
    "authsvc.ratelimit.limits",
    "authsvc.ratelimit.types",
)
"""web/ is the HTTP edge every route shares: errors, wire shapes and metrics, no service."""


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if kind(m) == "web"))
def test_web_imports_no_service_and_no_controller(module: str) -> None:
    bad = sorted(b for b in GRAPH[module] if b != "authsvc" and not b.startswith(WEB_MAY_IMPORT))
    assert bad == []


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if kind(m) == "service"))
def test_services_know_no_http(module: str) -> None:
    source = Path(ROOT.parent / (module.replace(".", "/") + ".py"))
    if not source.exists():
        source = ROOT.parent / module.replace(".", "/") / "__init__.py"
    text = source.read_text()
    assert "from litestar" not in text, module
    assert "import litestar" not in text, module
    bad = sorted(b for b in GRAPH[module] if kind(b) in ("web", "controller", "composition"))
    assert bad == []


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if kind(m) == "controller"))
def test_controllers_do_not_reach_into_the_database(module: str) -> None:
    assert not any(b.startswith("authsvc.db") for b in GRAPH[module])
