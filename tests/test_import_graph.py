"""Import circles in src/wdlab: the graph of every ``import`` (module level and lazy, inside
functions; absolute and relative) between wdlab modules, built with ``ast``. No strongly
connected component may exist anywhere in src/wdlab, but the ones ``ALLOWED`` names (each
with its reason); the pure layers (``PURE``) and the sweep's execution layer may never be
in one."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: The layers whose modules must sit in no circle: the pure math at the bottom of the house.
PURE = ("wdlab.engine", "wdlab.optim", "wdlab.conventions", "wdlab.data", "wdlab.exact",
        "wdlab.nets")
#: The only circles left, each with why it is there (a set of modules -> the reason). A
#: circle not listed fails the test, and so does a listed one that no longer exists.
ALLOWED: dict[frozenset[str], str] = {}  # none left
#: The sweep's execution layer: the driver consumes what the executors yield through
#: ``wdlab.sweep.executor``, and no backend imports the driver (issue 13 item 8).
SWEEP_EXECUTION = ("wdlab.sweep.driver", "wdlab.sweep.executor", "wdlab.sweep.backends",
                   "wdlab.sweep.ray_backend")


def modules(src: Path = SRC) -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in (src / "wdlab").rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """module -> the wdlab modules it imports (``from pkg import sub`` -> ``pkg.sub``)."""
    mods = modules(src)
    graph = {}
    for name, (path, is_pkg) in mods.items():
        package = name if is_pkg else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from the module's own package, level - 1 up
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                for a in node.names:
                    sub = f"{mod}.{a.name}"
                    targets.add(sub if sub in mods else mod)
        graph[name] = {t for t in targets if t in mods and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on:
                    low[v] = min(low[v], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(frozenset(comp))
    return out


def test_the_graph_sees_lazy_imports_and_submodules():
    g = import_graph()
    assert "wdlab.engine.dispatch" in g["wdlab.engine.core"]
    assert "wdlab.engine.kernels.native" in g["wdlab.engine.fast"]  # lazy, inside native_possible
    assert "wdlab.engine.kernels.common" in g["wdlab.engine.kernels._triton_kernel"]
    assert "wdlab.data.tables" in g["wdlab.nets.datasets"]  # ``from wdlab.data import tables``
    assert "wdlab.optim.rules" in g["wdlab.optim.registry"]
    assert "wdlab.engine.observer" in g["wdlab.engine.eager"]
    assert "wdlab.engine.eager" in g["wdlab.engine.fast"]  # lazy, the in-place fallback
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]


def test_relative_imports_resolve_against_the_package(tmp_path):
    pkg = tmp_path / "wdlab" / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / "wdlab" / "__init__.py").write_text("")
    (tmp_path / "wdlab" / "top.py").write_text("from .sub import a\n")
    (pkg / "__init__.py").write_text("from . import b\n")
    (pkg / "a.py").write_text("def f():\n    from ..top import x\n")
    (pkg / "b.py").write_text("from .a import f\n")
    g = import_graph(tmp_path)
    assert g["wdlab.top"] == {"wdlab.sub.a"} and g["wdlab.sub"] == {"wdlab.sub.b"}
    assert g["wdlab.sub.a"] == {"wdlab.top"} and g["wdlab.sub.b"] == {"wdlab.sub.a"}
    assert cycles(g) == [frozenset({"wdlab.top", "wdlab.sub.a"})]


def remaining_circles() -> list[list[str]]:
    return sorted(sorted(c) for c in cycles(import_graph()))


def test_no_import_circle_anywhere_in_src_wdlab():
    found = set(cycles(import_graph()))
    new = sorted(sorted(c) for c in found - set(ALLOWED))
    assert new == [], f"import circles in src/wdlab: {new}"
    gone = sorted(sorted(c) for c in set(ALLOWED) - found)
    assert gone == [], f"ALLOWED lists circles that no longer exist (remove them): {gone}"


def test_no_import_circle_in_the_engine_or_the_math_layers():
    pure = [sorted(c) for c in cycles(import_graph())
            if any(m == p or m.startswith(p + ".") for m in c for p in PURE)]
    assert pure == [], f"import circles through the pure layers: {pure}"


def test_no_import_circle_through_the_sweep_driver_and_its_executors():
    g = import_graph()
    assert "wdlab.sweep.executor" in g["wdlab.sweep.ray_backend"]
    assert "wdlab.sweep.backends" in g["wdlab.sweep.driver"]  # lazy, inside _spec_executor
    looped = [sorted(c) for c in cycles(g) if set(c) & set(SWEEP_EXECUTION)]
    assert looped == [], f"import circles through the sweep's execution layer: {looped}"
