"""End to end: ``wdlab reproduce``, the run directory, reproducibility, validation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from wdlab.cli import app
from wdlab.config import ConfigError, ExperimentConfig, TrainConfig, validate
from wdlab.config.presets import experiment

SEED = experiment("seed")

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


def test_reproduce_writes_the_closed_form_and_views_only_read_it(seed_run, tmp_path):
    """ridge.parquet holds the exact test MSE along lam (the configs' ridge_test_mse at the
    grid's lams, to the bit), ridge_coefficients.parquet its coefficient path (= numpy's
    lstsq-free closed form), and the report's references read them: without the files
    they give None instead of regenerating data."""
    import shutil

    from wdlab.report.references import ridge_coefficients, ridge_for
    from wdlab.report.run import load_run

    out, _ = seed_run
    configs = pd.read_parquet(out / "configs.parquet")
    ridge = pd.read_parquet(out / "ridge.parquet")
    grid = ridge[ridge["in_grid"]].set_index("lam")["ridge_test_mse"]
    np.testing.assert_array_equal(grid.reindex(configs["lam"]).to_numpy(),
                                  configs["ridge_test_mse"].to_numpy())
    assert ridge["lam"].max() >= 9.99 * configs["lam"].max()  # a decade past the grid
    assert ridge["ridge_val_mse"].isna().all() and (ridge["n_seeds"] == 1).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"ridge.parquet", "ridge_coefficients.parquet"} <= set(manifest["files"])

    run = load_run(out)
    read = ridge_for(run)
    assert read is not None and set(read.columns) >= {"regularizer", "loss", "lam", "test_mse"}
    np.testing.assert_array_equal(read["test_mse"].to_numpy(), ridge["ridge_test_mse"].to_numpy())
    coefs = ridge_coefficients(run)
    assert coefs is not None and list(coefs.columns) == ["lam", "feature", "coef"]
    assert coefs["feature"].nunique() == int(configs["n_features"].iloc[0])

    bare = tmp_path / "bare"
    shutil.copytree(out, bare)
    for name in ("ridge.parquet", "ridge.csv", "ridge_coefficients.parquet",
                 "ridge_coefficients.csv"):
        (bare / name).unlink(missing_ok=True)
    run = load_run(bare)
    assert ridge_for(run) is None and ridge_coefficients(run) is None


def test_one_engine_spec_builder_for_reproduce_and_sweeps():
    """experiment.engine_spec reads a TrainConfig, and a sweep's train section with a
    group's static fields as overrides; the dtype by name (conventions.DTYPES)."""
    import torch

    from wdlab.engine import EngineSpec
    from wdlab.experiment import HYPER_COLUMNS, engine_spec, hyper_table

    t = SEED.train
    spec = engine_spec(t)
    assert spec == EngineSpec(
        optimizer=t.optimizer, regularizer=t.regularizer, loss=t.loss, epochs=t.epochs,
        batch_size=t.batch_size, batch_seed=t.batch_seed, schedule=t.schedule, eps=t.eps,
        decay_bias=t.decay_bias, dtype=torch.float32 if t.dtype == "float32" else torch.float64,
        device=t.device)
    other = engine_spec(t, optimizer="sgd", regularizer="half_sum", batch_size=0, dtype="float64")
    assert (other.optimizer, other.regularizer, other.batch_size, other.dtype) == (
        "sgd", "half_sum", None, torch.float64)
    table = hyper_table({"extra": [1, 2], "lam": [0.0, 1.0], "config_id": [0, 1],
                         "optimizer": "adam"}, lead=())
    assert list(table.columns) == ["config_id", "optimizer", "lam", "extra"]
    assert HYPER_COLUMNS[0] == "config_id"



def test_the_estimators_spec_comes_from_the_same_builder(monkeypatch):
    """cvfit.engine_spec (every estimator fit) is EngineSpec.from_settings, the builder the
    reproduce and sweep pipelines use (experiment.engine_spec): numpy scalars from a
    parameter grid become Python values, an estimator's missing fields (eps) the defaults."""
    import numpy as np
    import torch

    from wdlab import cvfit
    from wdlab.engine import EngineSpec
    from wdlab.estimator import WeightDecayRegressor
    from wdlab.experiment import engine_spec

    assert engine_spec.__func__ is EngineSpec.from_settings.__func__
    est = WeightDecayRegressor(optimizer="sgd", regularizer="half_sum", epochs=np.int64(7),
                               batch_size=np.int64(4), dtype="float64")
    calls = []
    real = EngineSpec.from_settings.__func__
    monkeypatch.setattr(EngineSpec, "from_settings",
                        classmethod(lambda cls, *a, **k: calls.append(k) or real(cls, *a, **k)))
    spec = cvfit.engine_spec(est, np.int64(3))
    assert calls and spec == EngineSpec(
        optimizer="sgd", regularizer="half_sum", loss=est.loss, epochs=7, batch_size=4,
        batch_seed=3, schedule=est.schedule, decay_bias=bool(est.decay_bias),
        dtype=torch.float64, device=est.device)
    assert type(spec.epochs) is int and type(spec.batch_seed) is int and spec.eps == 1e-8
    with pytest.raises(TypeError, match=r"unknown field\(s\) \['batchsize'\]"):
        EngineSpec.from_settings(est, batchsize=3)  # a misspelt override is no silent no-op

def test_renamed_collisions_are_gone():
    """One meaning per name: the sweep's plan is SweepPlan (engine.kernels keeps Plan), the
    user-table reader is read_user_table (store keeps read_table), the sweep's metric tuple
    is LINEAR_METRICS (selection keeps METRICS)."""
    import wdlab.data.tables as userdata
    import wdlab.sweep.plan as plan
    from wdlab.engine.kernels.common import Plan  # noqa: F401  the engine's, unchanged
    from wdlab.selection import METRICS
    from wdlab.store import read_table  # noqa: F401

    assert not hasattr(plan, "Plan") and not hasattr(plan, "METRICS")
    assert hasattr(plan, "SweepPlan") and set(plan.LINEAR_METRICS) <= set(METRICS)
    assert not hasattr(userdata, "read_table") and callable(userdata.read_user_table)
