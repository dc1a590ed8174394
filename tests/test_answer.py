"""The answer of a run (wdlab.answer): translations proven against torch.optim and
scikit-learn, each named check on inputs that trigger it and inputs that do not, and end to
end on the seed sweep and on ``wdlab fit`` with diabetes."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from typer.testing import CliRunner

from wdlab import answer
from wdlab.cli import app
from wdlab.exact.ridge import ridge_path

runner = CliRunner()


# ------------------------------------------------------------------------------------------
# translations: exact, against the oracles
# ------------------------------------------------------------------------------------------


def _data(n=30, d=8, seed=0):
    g = np.random.default_rng(seed)
    X = g.normal(size=(n, d))
    return X, X @ g.normal(size=d) + 0.3 * g.normal(size=n) + 0.5


@pytest.mark.parametrize(("loss", "reg"), [("mse", "mean"), ("mse", "sum"),
                                           ("half_mse", "half_sum"), ("mse", "weight_decay")])
def test_alpha_is_sklearn_ridge(loss, reg):
    X, y = _data()
    lam = 0.7
    tr = answer.translations(lam, optimizer="adam", regularizer=reg, loss=loss, n_train=len(y),
                             n_features=X.shape[1])
    ours = ridge_path(X, y, [lam], loss=loss, penalty=reg).coef.numpy()[0]
    sk = Ridge(alpha=tr["alpha"], fit_intercept=True, solver="svd").fit(X, y).coef_
    np.testing.assert_allclose(ours, sk, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("opt", "loss", "reg"), [("sgd", "mse", "mean"), ("adam", "mse", "mean"),
                                                  ("sgd", "half_mse", "sum"),
                                                  ("adam", "mse", "weight_decay")])
def test_torch_weight_decay_takes_the_same_steps(opt, loss, reg):
    """torch.optim.X(weight_decay=wd) on nn.MSELoss (x 0.5 for half_mse) = the same optimizer
    on the loss with the penalty in the group's convention, step for step (float64)."""
    from wdlab.conventions import penalty

    X, y = (torch.as_tensor(a) for a in _data())
    lam = 0.3
    tr = answer.translations(lam, optimizer=opt, regularizer=reg, loss=loss, n_train=len(y),
                             n_features=X.shape[1])
    scale = 1.0 if loss == "mse" else 0.5
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[opt]
    ws = []
    for use_wd in (True, False):
        w = torch.zeros(X.shape[1], dtype=torch.float64, requires_grad=True)
        o = cls([w], lr=0.01, weight_decay=tr["torch_weight_decay"] if use_wd else 0.0)
        for _ in range(5):
            o.zero_grad()
            data = scale * torch.nn.functional.mse_loss(X @ w, y)
            pen = 0.0 if use_wd else penalty(w[None], torch.tensor([lam], dtype=torch.float64),
                                             reg if reg != "weight_decay" else "half_sum")[0]
            (data + pen).backward()
            o.step()
        ws.append(w.detach())
    torch.testing.assert_close(ws[0], ws[1], rtol=1e-12, atol=1e-14)


def test_decoupled_translations():
    kw = dict(loss="mse", n_train=20, n_features=5)
    adamw = answer.translations(0.1, optimizer="adamw", regularizer="decoupled", **kw)
    assert adamw["torch_weight_decay"] == 0.1 and adamw["torch_optimizer"] == "AdamW"
    assert math.isnan(adamw["alpha"])  # no ridge twin
    assert math.isnan(answer.translations(0.1, optimizer="sgd", regularizer="decoupled",
                                          momentum=0.9, **kw)["torch_weight_decay"])
    # plain SGD: w - lr g - lr lam w is torch SGD(weight_decay=lam) exactly
    plain = answer.translations(0.1, optimizer="sgd", regularizer="decoupled", momentum=0.0, **kw)
    X, y = (torch.as_tensor(a) for a in _data(20, 5))
    w0 = torch.ones(5, dtype=torch.float64)
    w = w0.clone().requires_grad_(True)
    o = torch.optim.SGD([w], lr=0.05, weight_decay=plain["torch_weight_decay"])
    torch.nn.functional.mse_loss(X @ w, y).backward()
    o.step()
    v = w0.clone().requires_grad_(True)
    torch.nn.functional.mse_loss(X @ v, y).backward()
    decoupled = w0 - 0.05 * v.grad - 0.05 * 0.1 * w0
    torch.testing.assert_close(w.detach(), decoupled, rtol=1e-13, atol=1e-15)
    indep = answer.translations(0.1, optimizer="sgd", regularizer="independent", lr=0.05, **kw)
    assert indep["torch_weight_decay"] == pytest.approx(0.1 / 0.05)


# ------------------------------------------------------------------------------------------
# the checks, triggered and not
# ------------------------------------------------------------------------------------------


def test_lam_range_is_the_contiguous_set_within_tol():
    lam = np.array([0.01, 0.1, 1.0, 10.0, 100.0])
    val = np.array([5.0, 1.2, 1.0, 1.1, 3.0])
    assert answer.lam_range(lam, val, 0.25, 1.0) == (0.1, 10.0, 3)
    assert answer.lam_range(lam, val, 0.15, 1.0) == (1.0, 10.0, 2)
    assert answer.lam_range(lam, val, 0.0, 1.0) == (1.0, 1.0, 1)
    assert answer.lam_range(lam, val, float("nan"), 1.0) == (1.0, 1.0, 1)


def test_edge_check():
    grid = [1e-3, 1e-2, 1e-1, 1, 10, 100]
    top = answer.edge_check(grid, 100, group="adam+mean")
    assert top["code"] == "grid_edge" and "largest λ" in top["message"]
    assert "--lam 0.001:10000:" in top["message"]  # two decades wider, same density
    bottom = answer.edge_check(grid, 1e-3, group="g")
    assert "smallest λ" in bottom["message"] and "1e-05:100:" in bottom["message"]
    assert answer.edge_check(grid, 1, group="g") is None
    assert "no decay helped" in answer.edge_check([0, 0.1, 1], 0, group="g")["message"]


def test_flat_check():
    w = answer.flat_check(1.0, 1000.0, 4, 10, group="g", best_val=1.0, tol=0.1,
                          tol_word="the 95% CI")
    assert w["code"] == "flat_optimum" and "3.0 decades" in w["message"]
    assert answer.flat_check(1.0, 10.0, 2, 10, group="g", best_val=1.0, tol=0.1,
                             tol_word="the 95% CI") is None
    assert answer.flat_check(1.0, 1.0, 1, 10, group="g", best_val=1.0, tol=0.1,
                             tol_word="x") is None


def test_diverged_few_seeds_and_converged_checks():
    w = answer.diverged_check(["a", "a", "b"], np.array([2, 0, 1]), 30,
                              np.array([45.0, 1.0, 100.0]), np.array([0.1, 0.1, 1.0]))
    assert w["code"] == "diverged" and w["message"].startswith("3 of 30 configurations")
    assert "a: 2 at λ 45, lr 0.1" in w["message"] and "b: 1 at λ 100, lr 1" in w["message"]
    assert answer.diverged_check(["a"], np.array([0]), 3, np.array([1.0]), None) is None
    assert answer.few_seeds_check(2)["code"] == "few_seeds"
    assert answer.few_seeds_check(3) is None and answer.few_seeds_check(1, folds=5) is None
    lam = np.array([0.0, 0.1, 1.0])
    bad = answer.converged_check(lam, np.array([9.0, 1.2, 1.0]), np.array([0.5, 1.0, 1.0]),
                                 group="g")
    assert bad["code"] == "not_converged" and "1 of 2 λ values" in bad["message"]  # λ=0 skipped
    assert answer.converged_check(lam, np.array([9.0, 1.01, 1.0]), np.array([0.5, 1.0, 1.0]),
                                  group="g") is None


def test_old_manifest_warnings_still_read():
    old = ["sgd+mean lr=3 exceeds the full-batch GD stability bound"]
    assert answer.as_warnings(old) == [{"code": "unstable_lr", "message": old[0]}]
    new = [{"code": "grid_edge", "message": "m"}]
    assert answer.merge_warnings(old, new, new) == answer.as_warnings(old) + new
    with pytest.raises(ValueError, match="code"):
        answer.warning("nope", "m")


# ------------------------------------------------------------------------------------------
# end to end
# ------------------------------------------------------------------------------------------


def _sweep(tmp_path, lam: str, name: str, seeds: str = "3"):
    out = tmp_path / name
    res = runner.invoke(app, ["sweep", "--preset", "seed", "--lam", lam, "--seeds", seeds,
                              "--epochs", "300", "--out", str(out), "--no-report", "--no-csv"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    return out, res.output, {w["code"]: w["message"] for w in manifest["warnings"]}


def test_seed_sweep_edge_warning_on_1e2_not_on_1e6(tmp_path):
    out, text, codes = _sweep(tmp_path, "1e-3:1e2:6", "narrow")
    assert "grid_edge" in codes and "largest λ of the grid (100)" in codes["grid_edge"]
    assert "few_seeds" not in codes  # 3 seeds
    assert "not_converged" in codes  # the trained Adam is far from the ridge at λ = 1e-3
    assert "warning (grid_edge)" in text and "answer: adam+mean: best λ = 100" in text
    assert "sklearn Ridge(alpha=5)" in text and "torch.optim.Adam(weight_decay=1)" in text
    assert "± = 95% CI half-width" in text
    sel = pd.read_parquet(out / "selection.parquet")
    assert sel["alpha_best"].iloc[0] == pytest.approx(100 * 10 / 200)  # n * lam / d
    assert (out / "figures" / "validation.png").is_file()  # --no-report keeps the figures
    _, _, wide = _sweep(tmp_path, "1e-3:1e6:10", "wide")
    assert "grid_edge" not in wide


def test_seed_sweep_two_seeds_and_divergence_are_flagged(tmp_path):
    out = tmp_path / "div"
    res = runner.invoke(app, ["sweep", "--preset", "seed", "--pairs", "sgd+mean", "--lr",
                              "0.01,100", "--lam", "1e-3,1", "--seeds", "2", "--epochs", "30",
                              "--out", str(out), "--no-report", "--no-csv"])
    assert res.exit_code == 0, res.output
    codes = {w["code"]: w["message"] for w in
             json.loads((out / "manifest.json").read_text())["warnings"]}
    assert "4 of 8 configurations diverged" in codes["diverged"] and "lr 100" in codes["diverged"]
    assert "only 2 seeds" in codes["few_seeds"]
    assert "unstable_lr" in codes  # the check made before training, in the same list


def test_fit_diabetes_flags_the_bottom_of_the_grid(tmp_path):
    data = tmp_path / "diabetes.csv"
    load_diabetes(as_frame=True).frame.to_csv(data, index=False)
    out = tmp_path / "fit"
    res = runner.invoke(app, ["fit", str(data), "--target", "target", "--epochs", "1000",
                              "--lr", "0.1", "--lam", "1e-3:1e2:8", "--out", str(out),
                              "--no-report"])
    assert res.exit_code == 0, res.output
    codes = {w["code"]: w["message"] for w in
             json.loads((out / "manifest.json").read_text())["warnings"]}
    assert "smallest λ of the grid (0.001)" in codes["grid_edge"]
    assert "n_train = 354" in res.output and "warning (grid_edge)" in res.output
    assert "sklearn Ridge(alpha=" in res.output
