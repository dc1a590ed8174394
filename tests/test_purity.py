"""Math modules stay pure: they import torch/numpy and the standard library only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "wdlab"
PURE = ["conventions.py", "data.py", "ridge.py", "linf.py", "theory.py", "decompose.py", "frameworks.py", "decay_rules.py", "engine", "nets",
        "answer.py"]
# The data layer inside a math package: scikit-learn's loaders and userdata read files.
IO_LAYER = {"nets/datasets.py"}
FORBIDDEN = {"matplotlib", "pandas", "typer", "rich", "plotly", "pyarrow", "pydantic", "sklearn",
             "ray", "yaml", "tomllib", "io", "pathlib", "subprocess"}  # shutil.which probes a compiler
PURE_WDLAB = {"wdlab.conventions", "wdlab.data", "wdlab.exact.ridge", "wdlab.exact.linf", "wdlab.exact.theory",
              "wdlab.exact.decompose"}
# The engines' toolchains do IO on the engine's behalf, as torch.compile and Triton do:
# wdlab.engine.kernels.native_build builds and caches the native kernel with the system C++ compiler.
TOOLCHAINS = {"wdlab.engine.kernels.native_build"}


def _files():
    for name in PURE:
        path = SRC / name
        if path.is_dir():
            yield from (p for p in sorted(path.glob("*.py"))
                        if str(p.relative_to(SRC)) not in IO_LAYER)
        elif path.exists():
            yield path


@pytest.mark.parametrize("path", list(_files()), ids=lambda p: p.name)
def test_math_module_is_pure(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):  # os only to read the environment (e.g. TRITON_INTERPRET)
        if isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "os":
            assert node.attr == "environ", f"{path.name} uses os.{node.attr}"
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
            raise AssertionError(f"{path.name} opens a file")
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            root = name.split(".")[0]
            assert root not in FORBIDDEN, f"{path.name} imports {name}"
            if root == "wdlab":
                pure_nets = name.startswith("wdlab.nets.") and name != "wdlab.nets.datasets"
                assert (name in PURE_WDLAB | TOOLCHAINS or name.startswith("wdlab.engine")
                        or pure_nets), (
                    f"{path.name} imports the impure {name}")
            else:
                assert root in sys.stdlib_module_names or root in {"torch", "numpy", "triton"}, (
                    f"{path.name} imports {name}")
