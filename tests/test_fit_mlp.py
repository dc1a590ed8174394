"""``wdlab fit --model mlp``: end to end on wine and breast_cancer (CSV from scikit-learn),
regression on diabetes, the task rule, and every bad input -> one line, exit 2, nothing
written (the linear fit's cases plus the MLP's own)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from tests.test_fit_cli import _bad_inputs, _run, diabetes_csv  # noqa: F401 (fixture)

from wdlab.fitrun_nets import resolve_task

MLP = ["--model", "mlp", "--hidden", "8", "--epochs", "20", "--lr", "0.05",
       "--lam", "1e-3:1:3", "--folds", "3"]


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    d = tmp_path_factory.mktemp("tables")
    out = {}
    for name, loader in (("wine", load_wine), ("breast_cancer", load_breast_cancer)):
        out[name] = d / f"{name}.csv"
        loader(as_frame=True).frame.to_csv(out[name], index=False)
    wine = load_wine(as_frame=True)
    named = wine.frame.assign(target=np.asarray(wine.target_names)[wine.target])
    out["wine_named"] = d / "wine_named.csv"
    named.to_csv(out["wine_named"], index=False)
    return out


@pytest.mark.parametrize("name", ["wine", "breast_cancer", "wine_named"])
def test_fit_mlp_classification_end_to_end(tables, tmp_path, name):
    out = tmp_path / "run"
    result, text = _run(["fit", tables[name], "--target", "target", "--out", out, *MLP])
    assert result.exit_code == 0, text
    assert "MLP classification" in text and "accuracy" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["kind"] == "fit"
    assert manifest["config"]["model"] == "mlp" and manifest["split"]["task"] == "classification"
    for f in ("configs.parquet", "curves.parquet", "selection.parquet", "figures/cv_curve.png",
              "figures/training.png", "report.html"):
        assert f in manifest["files"] and (out / f).is_file(), f
    configs = pd.read_parquet(out / "configs.parquet")
    sel = pd.read_parquet(out / "selection.parquet").iloc[0]
    assert len(configs) == 3 and set(configs["status"]) == {"ok"}
    assert sel["best_val_accuracy"] == configs["val_accuracy"].max()
    assert sel["lam_1se"] >= sel["best_lam"]
    assert sel["best_test_accuracy"] > manifest["baseline"]["test_accuracy"]
    n_classes = {"wine": 3, "wine_named": 3, "breast_cancer": 2}[name]
    assert len(manifest["split"]["classes"]) == n_classes
    if name == "wine_named":
        assert manifest["split"]["classes"] == ["class_0", "class_1", "class_2"]
    curves = pd.read_parquet(out / "curves.parquet")
    assert {"train_loss", "test_loss", "train_accuracy", "test_accuracy"} <= set(curves)
    page = (out / "report.html").read_text()
    assert "status: complete" in page and "test accuracy" in page


def test_fit_mlp_regression_standardises_the_target(diabetes_csv, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    result, text = _run(["fit", diabetes_csv, "--target", "target", "--out", out, *MLP])
    assert result.exit_code == 0, text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["split"]["task"] == "regression" and manifest["split"]["y_std"] > 1
    sel = pd.read_parquet(out / "selection.parquet").iloc[0]
    assert np.isfinite(sel["best_test_mse"]) and sel["best_test_mse"] > 100  # target units


def test_task_rule():
    df = pd.DataFrame({"a": [1.0, 2, 3, 4], "i": [0, 1, 1, 0], "f": [0.5, 1, 2, 3],
                       "s": ["x", "y", "x", "y"], "u": [1, 2, 3, 4]})
    assert resolve_task(df, "i", "auto")[0] == "classification"
    assert resolve_task(df, "s", "auto")[0] == "classification"
    assert resolve_task(df, "f", "auto")[0] == "regression"
    assert resolve_task(df, "u", "auto")[0] == "regression"  # every value distinct
    assert resolve_task(df, "i", "regression")[0] == "regression"
    task, coded, classes = resolve_task(df, "s", "classification")
    assert classes == ["x", "y"] and coded["s"].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_every_bad_input_is_one_line_exit_2_and_nothing_written(tables, diabetes_csv,  # noqa: F811
                                                                tmp_path):
    cases = [(n, [*a, "--model", "mlp"], f) for n, a, f in _bad_inputs(tmp_path, diabetes_csv)]
    wine = pd.read_csv(tables["wine"])
    few = wine.copy()
    few.loc[:1, "target"] = 7  # a class of 2 rows
    few_path = tmp_path / "few.csv"
    few.to_csv(few_path, index=False)
    cases += [
        ("float target as classes", [diabetes_csv, "--target", "bmi", "--model", "mlp",
                                     "--task", "classification"],
         "--task: classification needs class labels, but target column 'bmi' holds non-integer"),
        ("class smaller than folds", [few_path, "--target", "target", "--model", "mlp"],
         "--target: class 7 of column 'target' has"),
        ("bad hidden", [tables["wine"], "--target", "target", "--model", "mlp", "--hidden",
                        "64,x"], "--hidden: expected comma-separated positive integers"),
        ("zero hidden", [tables["wine"], "--target", "target", "--model", "mlp", "--hidden",
                         "0"], "--hidden: widths must lie in"),
        ("bad activation", [tables["wine"], "--target", "target", "--model", "mlp",
                            "--activation", "sigmoid"], "--activation: expected one of"),
        ("bad task", [tables["wine"], "--target", "target", "--model", "mlp", "--task", "rank"],
         "--task: expected one of"),
        ("bad model", [tables["wine"], "--target", "target", "--model", "cnn"],
         "--model: expected 'linear' or 'mlp'"),
    ]
    for name, args, fragment in cases:
        out = tmp_path / f"run-{name.replace(' ', '_')}"
        result, text = _run(["fit", *args, "--out", out, "--epochs", "5", "--folds", "5"])
        assert result.exit_code == 2, f"{name}: {text}"
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{name}: {text}"
        assert fragment in lines[0], f"{name}: {lines[0]}"
        assert "Traceback" not in text
        assert not out.exists(), name
