"""What a sweep records by default (issue 20): every epoch of a short run, ~100 log-spaced
epochs of a long one (every epoch one flag away), curves stored at the run's precision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from wdlab.cli import app
from wdlab.config.schema import DEFAULT_LOG_POINTS, EVERY_EPOCH_UP_TO, SweepRecord
from wdlab.sweep.files import compact_curves


def test_default_records_every_epoch_of_short_runs_and_log_spaced_epochs_of_long_ones():
    assert SweepRecord().epochs(100) == list(range(101))  # the seed's 100 epochs: all
    assert SweepRecord().epochs(EVERY_EPOCH_UP_TO) == list(range(EVERY_EPOCH_UP_TO + 1))
    long = SweepRecord().epochs(1000)
    assert long[0] == 0 and long[-1] == 1000 and len(long) <= DEFAULT_LOG_POINTS + 1
    assert long == SweepRecord(log_points=DEFAULT_LOG_POINTS).epochs(1000)
    assert SweepRecord(every=1).epochs(1000) == list(range(1001))  # one flag away


def _sweep(tmp_path, name, *extra):
    out = tmp_path / name
    res = CliRunner().invoke(app, ["sweep", "--preset", "seed", "--lam", "1e-2,1", "--seeds",
                                   "2", "--epochs", "250", "--no-csv", "--no-report",
                                   "--out", str(out), *extra])
    assert res.exit_code == 0, res.output
    return pd.read_parquet(out / "curves.parquet"), pd.read_parquet(out / "configs.parquet")


def test_long_sweep_curves_are_log_spaced_float32_and_every_epoch_on_request(tmp_path):
    curves, configs = _sweep(tmp_path, "default")
    every, _ = _sweep(tmp_path, "every", "--record-every", "1")
    assert sorted(curves["epoch"].unique()) == SweepRecord().epochs(250)
    assert sorted(every["epoch"].unique()) == list(range(251))
    metrics = [c for c in curves.columns if c not in ("config_id", "epoch")]
    assert metrics and all(curves[c].dtype == np.float32 for c in metrics)
    assert every["test_mse"].dtype == np.float32
    # the same values as every-epoch recording at the shared epochs, nothing lost
    both = curves.merge(every, on=["config_id", "epoch"], suffixes=("", "_all"))
    assert len(both) == len(curves)
    for c in metrics:
        np.testing.assert_array_equal(both[c].to_numpy(), both[f"{c}_all"].to_numpy())
    # the last curve point is the configs table's final value (float32 exactly)
    last = curves[curves["epoch"] == 250].set_index("config_id")["test_mse"]
    final = configs.set_index("config_id")["test_mse"]
    np.testing.assert_array_equal(last.to_numpy(np.float64), final.loc[last.index].to_numpy())


@pytest.mark.parametrize("kfold", [False, True])
def test_compact_curves_keeps_float64_runs_and_a_kfold_mean(kfold):
    curves = pd.DataFrame({"config_id": [0, 0], "epoch": [0, 1],
                           "val_mse": [1 / 3, 0.25], "test_mse": [0.5, 0.125]})
    f64 = pd.DataFrame({"dtype": ["float64"], **({"val_mse_se": [0.1]} if kfold else {})})
    f32 = f64.assign(dtype="float32")
    assert compact_curves(curves, f64)["test_mse"].dtype == np.float64
    out = compact_curves(curves, f32)
    assert out["test_mse"].dtype == np.float32 and out["epoch"].dtype == np.int64
    assert out["val_mse"].dtype == (np.float64 if kfold else np.float32)
