"""The package's layers: an import graph with no cycles, each layer importing
only the layers below it, and inference never reaching training code.

The graph is built from the source with ``ast`` (imports inside functions
included), so a cycle hidden by a function-level import is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

PKG = ROOT / "ecg_model"

#: Layer of each sub-package, bottom first; modules at the package's top level
#: (``cli``, ``bench``, ``publish``, ...) form the top layer.
LAYERS = ("core", "data", "inference", "training", "app")
TOP = len(LAYERS)


def _modules(pkg: Path = PKG) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package."""
    out = {}
    for p in sorted(pkg.rglob("*.py")):
        parts = list(p.relative_to(pkg.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path, mods: dict[str, Path]) -> list[tuple[str, bool]]:
    """(imported package module, whether the import sits inside a function).

    ``from x import y`` counts ``x.y`` where ``y`` is a module, else ``x``. A
    package's ``__init__`` importing its own submodules is not an edge back.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nested: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            nested |= {id(n) for n in ast.walk(fn) if n is not fn}
    out = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = [f"{mod}.{a.name}" for a in node.names]
            targets = [s for s in subs if s in mods] or [mod]
        for t in targets:
            if t not in mods or t == name:
                continue
            if path.name == "__init__.py" and t.startswith(name + "."):
                continue
            out.append((t, id(node) in nested))
    return out


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Module -> imported package modules, all imports and function-level ones."""
    mods = _modules()
    graph, local = {m: set() for m in mods}, {m: set() for m in mods}
    for m, p in mods.items():
        for t, inside in _imports(m, p, mods):
            graph[m].add(t)
            if inside:
                local[m].add(t)
    return graph, local


def graph_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk meets, each as ``[a, b, ..., a]``."""
    state: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(u: str) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                found.append(stack[stack.index(v) :] + [v])
            elif not state.get(v):
                visit(v)
        stack.pop()
        state[u] = 2

    for m in sorted(graph):
        if not state.get(m):
            visit(m)
    return found


def layer_of(module: str) -> int:
    """Rank of a module's layer: 0 for ``core`` ... ``TOP`` for the top modules."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return TOP


def _edges_where(graph: dict[str, set[str]], bad) -> list[str]:
    """``"a -> b"`` for every edge for which ``bad(a, b)`` holds."""
    return [
        f"{m} -> {t}"
        for m, ts in sorted(graph.items())
        for t in sorted(ts)
        if bad(m, t)
    ]


def test_graph_sees_imports_inside_functions(tmp_path):
    # A cycle hidden by a function-level import is found and named.
    pkg = tmp_path / "pk"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import x\n")
    mods = _modules(pkg)
    assert set(mods) == {"pk", "pk.a", "pk.sub", "pk.sub.b"}
    graph = {m: {t for t, _ in _imports(m, p, mods)} for m, p in mods.items()}
    assert graph["pk.a"] == {"pk.sub.b"}
    assert graph["pk.sub.b"] == {"pk.a"}
    assert graph_cycles(graph) == [["pk.a", "pk.sub.b", "pk.a"]]


def test_no_import_cycles():
    graph, _ = import_graph()
    assert len(graph) > 20  # the walk found the package
    cycles = graph_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_each_layer_imports_only_layers_below():
    graph, _ = import_graph()
    up = _edges_where(graph, lambda m, t: layer_of(t) > layer_of(m))
    assert not up, "imports from a higher layer: " + "; ".join(up)


def test_inference_never_imports_training():
    # A deployment that only predicts loads inference/ and what it needs below.
    graph, _ = import_graph()
    reach: set[str] = set()
    todo = [m for m in graph if m.startswith("ecg_model.inference")]
    while todo:
        m = todo.pop()
        if m not in reach:
            reach.add(m)
            todo.extend(graph[m])
    assert all(layer_of(m) <= LAYERS.index("inference") for m in reach), sorted(reach)


def test_no_function_level_package_imports_below_the_top():
    # Only the command line and tooling import layers lazily (so a command loads
    # only what it uses, after TensorFlow's import notices are muted).
    _, local = import_graph()
    hidden = _edges_where(local, lambda m, t: layer_of(m) < TOP)
    assert not hidden, "function-level imports of package modules: " + "; ".join(hidden)


@pytest.mark.parametrize("layer", LAYERS)
def test_every_layer_is_a_documented_package(layer):
    init = PKG / layer / "__init__.py"
    assert init.exists()
    assert ast.get_docstring(ast.parse(init.read_text())), f"{init} has no docstring"


def test_predictor_is_re_exported_without_loading_inference_at_import():
    import subprocess
    import sys

    code = (
        "import sys, ecg_model; "
        "assert 'ecg_model.inference.predict' not in sys.modules; "
        "from ecg_model import Predictor; "
        "from ecg_model.inference.predict import Predictor as P; "
        "assert Predictor is P; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True
    )
    assert out.stdout.strip() == "ok", out.stderr[-2000:]
