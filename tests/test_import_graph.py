"""Import circles in src/wdlab: the graph of every ``import`` (module level and lazy, inside
functions) between wdlab modules, built with ``ast``. No strongly connected component may
contain a module of the pure layers (``PURE``: the engine and the math below it)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: The layers whose modules must sit in no circle: the pure math at the bottom of the house.
#: Circles elsewhere are listed by ``remaining_circles``; the views and the command line are
#: held to none as well (``VIEWS``).
PURE = ("wdlab.engine", "wdlab.conventions", "wdlab.data", "wdlab.exact.ridge", "wdlab.exact.theory",
        "wdlab.exact.decompose")
#: The views and the command line: no circle (the typer app lives in ``wdlab.cli._app``, so no
#: command module imports ``wdlab.cli``; the report's shared parts live in ``report.run`` and
#: ``report.sections``, so no submodule imports ``wdlab.report``).
VIEWS = ("wdlab.report", "wdlab.cli", "wdlab.plots", "wdlab.figdata")
#: The sweep's execution layer: the driver consumes what the executors yield through
#: ``wdlab.sweep.executor``, and no backend imports the driver (issue 13 item 8).
SWEEP_EXECUTION = ("wdlab.sweep.driver", "wdlab.sweep.executor", "wdlab.sweep.backends",
                   "wdlab.sweep.ray_backend")


def modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in (SRC / "wdlab").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the wdlab modules it imports (``from pkg import sub`` -> ``pkg.sub``)."""
    mods = modules()
    graph = {}
    for name, (path, is_pkg) in mods.items():
        package = name if is_pkg else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
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
    assert "wdlab.engine.kernels" in g["wdlab.engine.kernels._triton_kernel"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]


def remaining_circles() -> list[list[str]]:
    return sorted(sorted(c) for c in cycles(import_graph()))


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


def test_no_import_circle_in_the_views_or_the_command_line():
    g = import_graph()
    assert "wdlab.cli._app" in g["wdlab.cli.sweep"]  # commands register on the app module
    assert "wdlab.report.run" in g["wdlab.report.figures"]
    looped = [sorted(c) for c in cycles(g)
              if any(m == p or m.startswith(p + ".") for m in c for p in VIEWS)]
    assert looped == [], f"import circles through the views or the CLI: {looped}"
