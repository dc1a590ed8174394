"""Math modules stay pure: they import torch/numpy and the standard library only.

The pure layers (``PURE``, files and packages below src/wdlab, subpackages included) are the
glossary, the synthetic data, the update rules, the linear engine and its kernels, the nets
family and the closed forms. A pure module imports nothing of wdlab but other pure modules.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "wdlab"
PURE = ["conventions.py", "frameworks.py", "decay_rules.py", "answer.py", "data", "optim",
        "engine", "nets", "exact"]
#: The data layer inside a math package: user tables and scikit-learn's loaders read files.
IO_LAYER = {"data/tables.py", "nets/datasets.py"}
#: The engines' toolchains do IO on the engine's behalf, as torch.compile and Triton do:
#: it builds and caches the native kernel with the system C++ compiler.
TOOLCHAINS = {"engine/kernels/native_build.py"}
FORBIDDEN = {"matplotlib", "pandas", "typer", "rich", "plotly", "pyarrow", "pydantic", "sklearn",
             "ray", "yaml", "tomllib", "io", "pathlib", "subprocess"}  # shutil.which probes a compiler


def _module(rel: str) -> str:
    parts = ["wdlab", *Path(rel).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


#: The wdlab modules a pure module may import: every module of the pure layers but IO_LAYER.
PURE_WDLAB = {_module(str(p.relative_to(SRC))) for name in PURE
              for p in ([SRC / name] if (SRC / name).is_file() else (SRC / name).rglob("*.py"))
              if str(p.relative_to(SRC)) not in IO_LAYER}


def _files():
    for name in PURE:
        path = SRC / name
        if path.is_dir():
            yield from (p for p in sorted(path.rglob("*.py"))
                        if str(p.relative_to(SRC)) not in IO_LAYER | TOOLCHAINS)
        elif path.exists():
            yield path


def test_the_pure_layers_are_where_the_test_looks():
    files = {str(p.relative_to(SRC)) for p in _files()}
    for rel in ("data/synthetic.py", "optim/rules.py", "optim/registry.py", "exact/ridge.py",
                "exact/linf.py", "engine/kernels/common.py", "engine/kernels/native.py",
                "engine/kernels/triton.py", "engine/kernels/_triton_kernel.py"):
        assert rel in files
    assert "wdlab.engine.kernels.native_build" in PURE_WDLAB
    assert "wdlab.data.tables" not in PURE_WDLAB and "wdlab.nets.datasets" not in PURE_WDLAB


@pytest.mark.parametrize("path", list(_files()), ids=lambda p: str(p.relative_to(SRC)))
def test_math_module_is_pure(path):
    rel = path.relative_to(SRC)
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):  # os only to read the environment (e.g. TRITON_INTERPRET)
        if isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "os":
            assert node.attr == "environ", f"{rel} uses os.{node.attr}"
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
            raise AssertionError(f"{rel} opens a file")
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            root = name.split(".")[0]
            assert root not in FORBIDDEN, f"{rel} imports {name}"
            if root == "wdlab":
                assert name in PURE_WDLAB, f"{rel} imports the impure {name}"
            else:
                assert root in sys.stdlib_module_names or root in {"torch", "numpy", "triton"}, (
                    f"{rel} imports {name}")
