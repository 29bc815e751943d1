"""The import graph of ``src/pathprune`` has no file-level cycles and flows one way through the layers.

Layers, lowest first (the README's architecture section): a module imports only from its own layer or
lower ones. Lazy imports inside functions count: they still make the lower layer depend on the higher.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "pathprune"

LAYERS = [
    {"errors", "io", "stats"},
    {"tasks", "models"},
    {"engine"},
    {"stop", "testbed"},
    {"signals"},
    {"distributed"},
    {"evaluation"},
    {"integrations"},
    {"serving"},
    {"cli", "__main__"},
]
LAYER_OF = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py")}


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    """The pathprune modules a file imports (``from X import name`` counts X.name when that is a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("pathprune"):
                continue
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            out.update(subs if subs and len(subs) == len(node.names) else [target, *subs])
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("pathprune"))
    return {m for m in out if m in known and m != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, known) for name, path in known.items()}


def top_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the root package, which sits above every layer


def test_every_package_has_a_layer():
    packages = {top_package(m) for m in modules()} - {None}
    assert packages <= set(LAYER_OF), f"packages without a layer: {sorted(packages - set(LAYER_OF))}"


def test_imports_flow_down_the_layers():
    bad = []
    for src, targets in graph().items():
        low = top_package(src)
        if low is None:
            continue
        for dst in targets:
            high = top_package(dst)
            if high is None or LAYER_OF[high] > LAYER_OF[low]:
                bad.append(f"{src} -> {dst}")
    assert not bad, "imports from a lower layer into a higher one:\n" + "\n".join(sorted(bad))


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among modules (a package's ``__init__`` re-exporting its own modules is not one)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt.startswith(node + "."):  # a package importing its own submodules
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_file_level_import_cycles():
    edges = {src: {d for d in dsts if not src.startswith(d + ".") and not d.startswith(src + ".")}
             for src, dsts in graph().items()}
    # edges to a package mean its __init__; ignore a module importing the package it belongs to
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
])
def test_cycle_finder_finds_cycles(edges, expected):
    assert (find_cycle(edges) is not None) == expected


def test_layer_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The checker itself fails on a planted upward import (engine importing signals)."""
    pkg = tmp_path / "pathprune"
    (pkg / "engine").mkdir(parents=True)
    (pkg / "signals").mkdir()
    for f in ("__init__.py", "engine/__init__.py", "signals/__init__.py", "signals/base.py"):
        (pkg / f).write_text("")
    (pkg / "engine" / "pruner.py").write_text("def f():\n    from ..signals import base\n")
    monkeypatch.setattr(__import__(__name__), "SRC", pkg)
    with pytest.raises(AssertionError, match="pathprune.engine.pruner -> pathprune.signals"):
        test_imports_flow_down_the_layers()


BACKEND_TYPES = ("TransformersBackend", "VllmBackend", "LiveBatch", "VllmBatch")
STREAM_METHODS = ("launch", "extend", "resume", "submit", "collect", "probe", "read", "prefix_batch", "loop")


def backend_guesses(path: Path) -> list[str]:
    """Where a module branches on a backend's or paused batch's concrete type or attributes instead of its
    declared capabilities (``Backend.in_process``, ``per_request_checks``, ``CheckView.in_process``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 2:
            what = node.args[1]
            names = [e.id for e in (what.elts if isinstance(what, ast.Tuple) else [what]) if isinstance(e, ast.Name)]
            if node.func.id == "isinstance" and set(names) & set(BACKEND_TYPES):
                found.append(f"line {node.lineno}: isinstance(..., {', '.join(names)})")
            if node.func.id == "hasattr" and isinstance(what, ast.Constant) and what.value in STREAM_METHODS:
                found.append(f"line {node.lineno}: hasattr(..., {what.value!r})")
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) and node.left.attr == "model" \
                and isinstance(node.left.value, ast.Attribute) and node.left.value.attr in ("batch", "backend") \
                and any(isinstance(c, ast.Constant) and c.value is None for c in node.comparators):
            found.append(f"line {node.lineno}: ….{node.left.value.attr}.model compared with None")
    return found


def test_no_code_outside_the_engine_guesses_the_backend():
    """Signals, serving, evaluation, STOP and the rest ask a backend what it can do; only engine/ knows its types."""
    bad = {name: guesses for name, path in modules().items()
           if not name.startswith("pathprune.engine") and (guesses := backend_guesses(path))}
    assert not bad, bad


def test_the_backend_guess_check_catches_a_guess(tmp_path):
    planted = tmp_path / "signal.py"
    planted.write_text("def score(view, model):\n    if view.batch.model is None:\n        return 1\n"
                       "    return hasattr(model, 'launch') or isinstance(model, (int, VllmBackend))\n")
    assert len(backend_guesses(planted)) == 3
