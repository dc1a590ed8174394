"""End to end: ``wdlab reproduce``, the run directory, reproducibility, validation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from wdlab.cli import app
from wdlab.config import ConfigError, ExperimentConfig, TrainConfig, validate
from wdlab.presets import SEED

runner = CliRunner()


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "seed"
    res = runner.invoke(app, ["reproduce", "seed", "--out", str(out), "--no-report"])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_run_directory_layout(seed_run):
    out, _ = seed_run
    for name in ("manifest.json", "curves.parquet", "curves.csv", "configs.parquet",
                 "configs.csv", "figures/curves.png"):
        assert (out / name).is_file(), name
    curves = pd.read_parquet(out / "curves.parquet")
    assert list(curves.columns[:7]) == ["config_id", "epoch", "train_mse", "test_mse", "penalty",
                                        "objective", "w_norm"]
    assert len(curves) == 2 * 101
    pd.testing.assert_frame_equal(curves, pd.read_csv(out / "curves.csv"), check_dtype=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["config"]["lams"] == [0.0, 3.0]
    for key in ("wdlab", "torch", "python", "device", "git_revision"):
        assert key in manifest["provenance"]


def test_seed_claim_and_penalty_reported_separately(seed_run):
    out, output = seed_run
    configs = pd.read_parquet(out / "configs.parquet").set_index("lam")
    assert configs.loc[3.0, "test_mse"] < configs.loc[0.0, "test_mse"]
    curves = pd.read_parquet(out / "curves.parquet")
    c3 = curves[curves.config_id == 1]
    # objective = data loss + penalty, and the penalty is lam * mean(w^2), not inside test_mse
    np.testing.assert_allclose(c3.objective, c3.train_mse + c3.penalty, rtol=1e-5)
    np.testing.assert_allclose(c3.penalty, 3.0 * c3.w_norm**2 / 200, rtol=1e-4)
    assert (curves[curves.config_id == 0].penalty == 0).all()
    assert "test MSE" in output and "λ" in output


def test_bitwise_reproducible(tmp_path):
    outs = []
    for i in range(2):
        res = runner.invoke(app, ["reproduce", "seed", "--out", str(tmp_path / f"r{i}"),
                                  "--no-report", "--epochs", "30"])
        assert res.exit_code == 0, res.output
        outs.append(pd.read_parquet(tmp_path / f"r{i}" / "curves.parquet"))
    a, b = (o.drop(columns=["config_id", "epoch"]).to_numpy() for o in outs)
    assert a.tobytes() == b.tobytes()


def test_completed_run_not_overwritten(seed_run):
    out, _ = seed_run
    before = (out / "curves.parquet").read_bytes()
    res = runner.invoke(app, ["reproduce", "seed", "--out", str(out), "--no-report"])
    assert res.exit_code == 2
    assert "--force" in res.output
    assert (out / "curves.parquet").read_bytes() == before


@pytest.mark.parametrize(("section", "field", "value", "needle"), [
    ("train", "lr", 0.0, "train.lr"),
    ("train", "lr", -1.0, "train.lr"),
    ("train", "optimizer", "rmsprop", "train.optimizer"),
    ("train", "regularizer", "l3", "train.regularizer"),
    ("train", "loss", "mae", "train.loss"),
    ("data", "n_train", 0, "data.n_train"),
    (None, "lams", [1.0, -3.0], "lams"),
])
def test_bad_hyperparameters_name_the_field(section, field, value, needle):
    raw = SEED.model_dump()
    (raw[section] if section else raw)[field] = value
    with pytest.raises(ConfigError) as exc:
        validate(ExperimentConfig, raw)
    msg = str(exc.value)
    assert msg.startswith(needle) and "\n" not in msg


def test_adamw_pairs_only_with_decoupled():
    with pytest.raises(ConfigError, match="adamw"):
        validate(TrainConfig, {"optimizer": "adamw", "regularizer": "mean"})


def test_cli_bad_preset_is_one_line(tmp_path):
    res = runner.invoke(app, ["reproduce", "nope", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2
    assert res.output.strip().startswith("error: preset") and "Traceback" not in res.output
    assert not (tmp_path / "x").exists()


def test_cli_bad_dtype_is_one_line(tmp_path):
    res = runner.invoke(app, ["reproduce", "seed", "--dtype", "float16", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "train.dtype" in res.output
    assert not (tmp_path / "x").exists()


def test_exact_answer_and_error_split_columns(seed_run):
    out, _ = seed_run
    configs = pd.read_parquet(out / "configs.parquet").set_index("lam")
    parts = ["err_init_null", "err_opt", "err_bias", "err_noise", "err_cross", "err_intercept"]
    total = configs[parts].sum(axis=1) + 0.01**2
    np.testing.assert_allclose(total, configs["pop_test_mse"], rtol=1e-10)
    # at lam = 0 the test error is the initial weights left in the null space, not noise
    assert configs.loc[0.0, "err_init_null"] > 0.95 * configs.loc[0.0, "pop_test_mse"]
    assert configs.loc[0.0, "err_noise"] < 1e-3
    # the closed form at the same lam is far better than 100 Adam epochs from w0 ~ N(0, 1)
    assert (configs["ridge_test_mse"] < 0.1).all()
    curves = pd.read_parquet(out / "curves.parquet")
    assert curves["dist_to_ridge"].notna().all()
