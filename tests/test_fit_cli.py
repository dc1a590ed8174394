"""``wdlab fit``: end to end on diabetes and a wide table; every bad input -> one line, exit 2,
no traceback, no run directory."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_diabetes
from typer.testing import CliRunner

from runs import one_line_error
from wdlab.cli import app
from wdlab.cli.fit import parse_lams

#: Small, fast settings: a standardised problem converges in a few hundred Adam epochs.
QUICK = ["--epochs", "300", "--lr", "0.1", "--lam", "1e-3:1e2:6", "--folds", "3"]


@pytest.fixture(scope="module")
def diabetes_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "diabetes.csv"
    load_diabetes(as_frame=True).frame.to_csv(path, index=False)
    return path


def _run(args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result, result.output


def test_fit_diabetes_end_to_end(diabetes_csv, tmp_path):
    out = tmp_path / "run"
    result, text = _run(["fit", diabetes_csv, "--target", "target", "--out", out, *QUICK])
    assert result.exit_code == 0, text
    for word in ("λ CV", "λ 1-SE", "unregularized baseline", "ridge λ", "R²"):
        assert word in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["kind"] == "fit"
    assert manifest["config"]["features"] == ["age", "sex", "bmi", "bp", "s1", "s2", "s3",
                                              "s4", "s5", "s6"]
    assert (out / "report.html").is_file() and (out / "figures" / "coefficients.png").is_file()
    assert "report.html" in manifest["files"]
    assert "status: complete" in (out / "report.html").read_text()
    coefs = pd.read_parquet(out / "coefficients.parquet")
    assert set(coefs["feature"]) == set(manifest["config"]["features"])
    sel = pd.read_parquet(out / "selection.parquet").iloc[0]
    configs = pd.read_parquet(out / "configs.parquet")
    assert sel["lam_1se"] >= sel["best_lam"]
    assert sel["best_val_mse"] == configs["val_mse"].min()
    # the printed test R^2 is the R^2 of the refit model on the held-out rows
    assert 0.3 < sel["best_test_r2"] < 0.7
    assert np.isclose(sel["best_test_mse"], sel["ridge_test_mse"], rtol=1e-3)


def test_fit_wide_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 500))
    y = X[:, :5].sum(1) + 0.1 * rng.standard_normal(60)
    hostile = "<script>alert(1)</script>"
    names = [hostile] + [f"g{j}" for j in range(1, 500)]
    df = pd.DataFrame(X, columns=names).assign(label=y, name="row")
    data = tmp_path / "wide.csv"
    df.to_csv(data, index=False)
    out = tmp_path / "run"
    result, text = _run(["fit", data, "--target", "label", "--out", out, *QUICK,
                         "--regularizer", "mean,decoupled", "--optimizer", "adam"])
    assert result.exit_code == 0, text
    assert "skipping non-numeric columns name" in text
    assert "min-norm least squares" in text
    assert hostile not in (out / "report.html").read_text()  # user strings are escaped
    assert hostile in set(pd.read_parquet(out / "coefficients.parquet")["feature"])
    sel = pd.read_parquet(out / "selection.parquet")
    assert list(sel["regularizer"]) == ["mean", "decoupled"]
    assert np.isnan(sel["ridge_lam"].iloc[1])  # no closed form for the decoupled decay


def test_constant_columns_warn_and_drop_parquet(diabetes_csv, tmp_path):
    df = pd.read_csv(diabetes_csv).assign(const=3.0)
    data = tmp_path / "c.parquet"
    df.to_parquet(data)
    out = tmp_path / "run"
    result, text = _run(["fit", data, "--target", "target", "--out", out, "--no-report", *QUICK])
    assert result.exit_code == 0, text
    assert "warning: dropping constant column 'const'" in text
    assert "const" not in json.loads((out / "manifest.json").read_text())["config"]["features"]


def test_dropna_drops_incomplete_rows(diabetes_csv, tmp_path):
    df = pd.read_csv(diabetes_csv)
    df.loc[4, "bmi"] = np.nan
    data = tmp_path / "n.csv"
    df.to_csv(data, index=False)
    out = tmp_path / "run"
    result, text = _run(["fit", data, "--target", "target", "--out", out, "--dropna",
                         "--no-report", *QUICK])
    assert result.exit_code == 0, text
    assert "dropped 1 incomplete rows" in text
    assert json.loads((out / "manifest.json").read_text())["split"]["n_rows"] == len(df) - 1


def _bad_inputs(tmp, diabetes_csv):
    """(name, args, expected message fragment) for every bad input of the issue."""
    base = pd.read_csv(diabetes_csv)
    cases = []

    def csv(name, df=None, text=None):
        path = tmp / name
        if text is not None:
            path.write_text(text)
        else:
            df.to_csv(path, index=False)
        return path

    cases.append(("missing file", [tmp / "nope.csv", "--target", "y"], "no such file"))
    garbage = tmp / "garbage.parquet"
    garbage.write_bytes(b"this is not parquet at all")
    cases.append(("unreadable", [garbage, "--target", "y"], "cannot read"))
    cases.append(("empty", [csv("empty.csv", text=""), "--target", "y"], "is empty"))
    cases.append(("header only", [csv("hdr.csv", text="a,b,y\n"), "--target", "y"], "is empty"))
    cases.append(("missing target", [diabetes_csv, "--target", "glucose"],
                  "--target: no column 'glucose'"))
    cases.append(("duplicate columns", [csv("dup.csv", text="a,b,a,y\n1,2,3,4\n2,3,4,5\n3,4,5,7\n"),
                                        "--target", "y"], "duplicate column name 'a'"))
    words = base.assign(city=["x"] * len(base), zone=["z"] * len(base))
    cases.append(("non-numeric features", [csv("words.csv", words), "--target", "target",
                                           "--features", "age,city,zone"],
                  "non-numeric columns 'city', 'zone' (row 1: 'x'); choose numeric columns with --features"))
    nan_x = base.copy()
    nan_x.loc[6, "bmi"] = np.nan
    cases.append(("NaN in a feature", [csv("nanx.csv", nan_x), "--target", "target"],
                  "feature column 'bmi' has NaN at row 7; fix the file or pass --dropna"))
    inf_y = base.copy()
    inf_y.loc[2, "target"] = np.inf
    cases.append(("inf in the target", [csv("infy.csv", inf_y), "--target", "target"],
                  "target column 'target' has inf at row 3"))
    cases.append(("fewer than 3 rows", [csv("two.csv", base.iloc[:2]), "--target", "target"],
                  "2 complete rows; need at least 3"))
    cases.append(("fewer rows than folds", [csv("five.csv", base.iloc[:5]), "--target", "target",
                                            "--folds", "5"], "--folds: 5 folds need at least 5 training rows; 5 rows leave 4"))
    cases.append(("bad lam grid", [diabetes_csv, "--target", "target", "--lam", "1e-3:1e2"],
                  "--lam:"))
    cases.append(("bad pair", [diabetes_csv, "--target", "target", "--optimizer", "adamw",
                               "--regularizer", "mean"], "--regularizer: no valid pair"))
    if not torch.cuda.is_available():
        cases.append(("no cuda", [diabetes_csv, "--target", "target", "--device", "cuda"],
                      "--device: 'cuda' requested but CUDA is not available"))
    return cases


def test_every_bad_input_is_one_line_exit_2_and_nothing_written(diabetes_csv, tmp_path):
    cases = _bad_inputs(tmp_path, diabetes_csv)
    assert len(cases) >= 13
    for name, args, fragment in cases:
        out = tmp_path / f"run-{name.replace(' ', '_')}"
        result, _ = _run(["fit", *args, "--out", out, *QUICK[:4]])
        one_line_error(result, fragment, what=name)
        assert not out.exists(), name


def test_parse_lams():
    assert parse_lams("1e-3:1e2:6")[0] == pytest.approx(1e-3)
    assert len(parse_lams("1e-3:1e2:6")) == 6 and parse_lams("1e-3:1e2:6")[-1] == pytest.approx(100)
    assert parse_lams("0,0.1,1") == [0.0, 0.1, 1.0]
    for bad in ("a", "1:0:3", "-1", "1e-3:1e2"):
        with pytest.raises(ValueError, match="--lam"):
            parse_lams(bad)
