"""End to end: ``wdlab sweep --preset seed --lam 1e-3:1e2:50 --seeds 20`` and a spec file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from wdlab.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def seed_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "seed"
    res = runner.invoke(app, ["sweep", "--preset", "seed", "--lam", "1e-3:1e2:50", "--seeds", "20",
                              "--out", str(out), "--no-report"])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_acceptance_files_and_table(seed_sweep):
    out, output = seed_sweep
    for name in ("configs", "curves", "summary", "selection"):
        for ext in ("parquet", "csv"):
            assert (out / f"{name}.{ext}").is_file(), f"{name}.{ext}"
    assert (out / "manifest.json").is_file() and (out / "ridge.parquet").is_file()
    assert "Model selection" in output and "best λ" in output and "ridge λ" in output
    assert "configs/s" in output and "1000/1000" in output
    configs = pd.read_parquet(out / "configs.parquet")
    assert len(configs) == 1000 and configs["data_seed"].nunique() == 20
    assert (configs["status"] == "ok").all()
    summary = pd.read_parquet(out / "summary.parquet")
    assert len(summary) == 50 and (summary["n_seeds"] == 20).all()
    assert len(pd.read_parquet(out / "curves.parquet")) == 1000 * 101
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["seeds"]["data_seeds"] == list(range(20))


def test_acceptance_best_lam_vs_closed_form(seed_sweep):
    """Issue 4's criterion: Adam+L2 (mean) best lam within 2x of the closed-form optimum on
    the same draws. Measured: both sit at the top of this grid (lam = 100): Adam's validation
    error falls with lam because decay is what shrinks the null-space part of w0 ~ N(0, I),
    and the closed-form validation curve is nearly flat here (it keeps falling to lam ~ 460).
    README "Sweeps" reports the wider grids; this checks the criterion as stated."""
    out, _ = seed_sweep
    row = pd.read_parquet(out / "selection.parquet").iloc[0]
    assert (row["optimizer"], row["regularizer"]) == ("adam", "mean")
    assert 0.5 <= row["best_lam"] / row["ridge_lam"] <= 2.0
    assert row["lam_1se"] >= row["best_lam"]
    assert np.isfinite(row["best_test_mse"]) and np.isfinite(row["ridge_test_mse"])


def test_example_spec_with_report(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["sweep", str(EXAMPLES / "tiny.toml"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "report.html").is_file()
    sel = pd.read_parquet(out / "selection.parquet")
    assert set(zip(sel["optimizer"], sel["regularizer"], strict=True)) >= {("sgd", "half_sum"),
                                                                          ("adamw", "decoupled")}


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.iterdir()
                                          if p.suffix in (".toml", ".yaml")))
def test_examples_are_valid_specs(name):
    from wdlab.config.load import load_spec
    from wdlab.sweep import make_plan, resolve_spec

    plan = make_plan(resolve_spec(load_spec(EXAMPLES / name)))
    assert plan.n_configs >= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_sweep_matches_cpu(tmp_path):
    args = ["sweep", str(EXAMPLES / "tiny.toml"), "--no-report", "--no-csv"]
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "cpu")]).exit_code == 0
    res = runner.invoke(app, [*args, "--device", "cuda", "--out", str(tmp_path / "gpu")])
    assert res.exit_code == 0, res.output
    a = pd.read_parquet(tmp_path / "cpu" / "configs.parquet")
    b = pd.read_parquet(tmp_path / "gpu" / "configs.parquet")
    # two float32 rounding sequences (cuBLAS vs CPU), so only a loose bound: 1e-3 is ~1000x
    # the float32 error of short tiny runs (err(f32, f64) <= 1.1e-6 at 20 epochs in test_sweep.py's
    # chunking test); a machine-independent bound would need a float64 run on both devices
    np.testing.assert_allclose(a["test_mse"], b["test_mse"], rtol=1e-3)
