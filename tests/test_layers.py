"""Layers flow one way (edgesite/README.md): no module imports one above it, and the render
core, which also runs inside the isolate, imports nothing host-only."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "edgesite"
LAYERS = [
    {"errors", "contract"},
    {"site", "deps", "worker", "content"},
    {"routes", "markdown", "templates", "invalidate"},
    {"render"},
    {"component", "isolate"},
    {"cache"},
    {"node"},
    None,  # everything not named: commands and hooks above the node (watch, dev, network, ...)
    {"cli", "__main__"},
]
PURE = set().union(*LAYERS[:4])
HOST_ONLY = {"starlette", "uvicorn", "diskcache", "wasmtime", "httpx", "watchfiles", "click", "rich", "redis", "brotli", "anyio"}


def layer_of(module: str) -> int:
    for i, names in enumerate(LAYERS):
        if names is not None and module in names:
            return i
    return LAYERS.index(None)


def imports_of(path: Path) -> tuple[set[str], set[str]]:
    """(edgesite modules, third-party top-level packages) imported at module level or anywhere."""
    tree = ast.parse(path.read_text())
    inner, outer = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                inner.add(node.module.split(".")[0])
            elif node.level == 1:
                inner.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("edgesite"):
                parts = node.module.split(".")
                inner.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
            elif node.module:
                outer.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("edgesite."):
                    inner.add(alias.name.split(".")[1])
                else:
                    outer.add(alias.name.split(".")[0])
    return inner, outer


def modules() -> dict[str, Path]:
    return {p.stem: p for p in PACKAGE.glob("*.py")}


def test_no_module_imports_a_module_above_it() -> None:
    wrong = []
    for name, path in modules().items():
        inner, _ = imports_of(path)
        for target in inner:
            if target in modules() and layer_of(target) > layer_of(name):
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_the_render_core_imports_nothing_host_only() -> None:
    wrong = []
    for name in PURE:
        _, outer = imports_of(modules()[name])
        wrong += [f"{name} imports {pkg}" for pkg in outer & HOST_ONLY]
    assert wrong == []
