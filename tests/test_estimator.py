"""WeightDecayRegressor(CV) against oracles: sklearn Ridge, GridSearchCV, ridge_path."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold, validation_curve
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import wdlab.cvfit as cvfit_module
from wdlab import WeightDecayRegressor, WeightDecayRegressorCV
from wdlab.conventions import sklearn_alpha
from wdlab.cvfit import compressed_rows, objective_gradient
from wdlab.data.synthetic import make_linear

#: Adam with a cosine schedule settles on the exact minimiser of a standardised problem.
CONVERGED = dict(optimizer="adam", dtype="float64", lr=2.0, epochs=3000, schedule="cosine")


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def wide():
    d = make_linear(100, 30, 10, w_star=0.3, bias=0.5, noise=0.1, seed=3)
    return d.X_train.numpy(), d.y_train.numpy()


def _ridge(X, y, lam, loss="mse", penalty="mean", sample_weight=None):
    n = X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
    alpha = sklearn_alpha(lam, loss, penalty, n, X.shape[1])
    return Ridge(alpha=alpha).fit(X, y, sample_weight=sample_weight)


def _assert_same_model(model, ref, rtol=1e-5):
    scale = np.max(np.abs(ref.coef_))
    assert_allclose(model.coef_, ref.coef_, rtol=rtol, atol=rtol * 1e-3 * scale)
    assert_allclose(model.intercept_, ref.intercept_, rtol=rtol, atol=rtol * 1e-3 * scale)


@pytest.mark.parametrize(("lam", "loss", "regularizer"), [
    (0.5, "mse", "mean"), (3.0, "mse", "mean"), (0.05, "half_mse", "sum"),
    (0.1, "mse", "weight_decay"),
])
def test_matches_ridge_on_diabetes(diabetes, lam, loss, regularizer):
    X, y = diabetes
    model = WeightDecayRegressor(lam=lam, loss=loss, regularizer=regularizer, **CONVERGED).fit(X, y)
    _assert_same_model(model, _ridge(X, y, lam, loss, regularizer))


@pytest.mark.parametrize("lam", [1.0, 10.0])
def test_matches_ridge_on_wide_problem(wide, lam):
    X, y = wide
    assert X.shape[0] < X.shape[1]
    model = WeightDecayRegressor(lam=lam, **{**CONVERGED, "lr": 0.3}).fit(X, y)
    _assert_same_model(model, _ridge(X, y, lam))


def test_sample_weight_is_a_weighted_mean_loss(diabetes):
    X, y = diabetes
    sw = np.random.default_rng(0).integers(0, 4, size=len(y)).astype(float)
    model = WeightDecayRegressor(lam=0.5, **CONVERGED).fit(X, y, sample_weight=sw)
    _assert_same_model(model, _ridge(X, y, 0.5, sample_weight=sw))


def test_multi_output_is_one_model_per_column(diabetes):
    X, y = diabetes
    Y = np.column_stack([y, -2.0 * y + 7.0, X[:, 0] * 3.0])
    kw = dict(lam=0.5, lr=0.3, epochs=200, init_scale=0.1, random_state=0)
    model = WeightDecayRegressor(**kw).fit(X, Y)
    assert model.coef_.shape == (3, X.shape[1]) and model.intercept_.shape == (3,)
    assert model.predict(X).shape == (len(y), 3)
    for t in range(3):  # the same trajectory as fitting each column alone
        alone = WeightDecayRegressor(**kw).fit(X, Y[:, t])
        assert_allclose(model.coef_[t], alone.coef_, rtol=1e-10, atol=1e-12)
        assert_allclose(model.intercept_[t], alone.intercept_, rtol=1e-10)


def test_learned_attributes(diabetes):
    X, y = diabetes
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    model = WeightDecayRegressor(lam=0.5, lr=0.1, epochs=300).fit(df, y)
    assert model.n_iter_ == 300 and model.loss_curve_.shape == (300,)
    assert model.loss_curve_[-1] < model.loss_curve_[0]
    assert list(model.feature_names_in_) == list(df.columns) and model.n_features_in_ == 10
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(df.iloc[:, :5])
    plain = WeightDecayRegressor(lr=0.1, epochs=5).fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but .* is expecting 10 features"):
        plain.predict(X[:, :5])


def test_nan_error_names_row_and_column(diabetes):
    X, y = diabetes
    df = pd.DataFrame(X[:20], columns=[f"f{i}" for i in range(X.shape[1])])
    df.iloc[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"Input X contains NaN at row 3, column 'f2'"):
        WeightDecayRegressor().fit(df, y[:20])
    yy = y[:20].copy()
    yy[5] = np.inf
    with pytest.raises(ValueError, match=r"Input y contains infinity at row 5"):
        WeightDecayRegressor().fit(X[:20], yy)


def test_divergence_names_the_epoch(diabetes):
    X, y = diabetes
    with pytest.raises(ValueError, match=r"diverged at epoch \d+ .*smaller lr"):
        WeightDecayRegressor(optimizer="sgd", lr=50.0, epochs=50).fit(X, y)


def test_bad_pair_is_rejected_at_fit_not_init(diabetes):
    X, y = diabetes
    model = WeightDecayRegressor(optimizer="adamw", regularizer="mean")  # __init__ stores only
    with pytest.raises(ValueError, match="regularizer"):
        model.fit(X, y)
    with pytest.raises(ValueError, match="device"):
        WeightDecayRegressor(device="tpu").fit(X, y)


def test_grid_search_and_validation_curve_agree_with_cv(diabetes):
    X, y = diabetes
    lams = [0.01, 0.3, 3.0, 30.0]
    base = WeightDecayRegressor(lr=0.5, epochs=300)
    folds = KFold(3)
    gs = GridSearchCV(base, {"lam": lams}, cv=folds, scoring="neg_mean_squared_error").fit(X, y)
    cv = WeightDecayRegressorCV(lams=lams, cv=folds, lr=0.5, epochs=300).fit(X, y)
    # the batched CV trains exactly GridSearchCV's models, as one engine call
    assert_allclose(cv.cv_results_["mean_test_score"], gs.cv_results_["mean_test_score"],
                    rtol=1e-9)
    assert cv.lam_ == gs.best_params_["lam"]
    assert_allclose(cv.coef_, gs.best_estimator_.coef_, rtol=1e-9, atol=1e-9)
    # unweighted and standardised, the refit's bias gradient x_bar w + b - y_bar is rounding
    # noise g (|g| <= 8 u max|y| per step, u = 2^-53) that Adam turns into steps of up to
    # lr |g| / eps: the compressed rows and the N rows differ there by at most that per epoch
    noise = 300 * 0.5 * 8 * 2.0**-53 * np.abs(y).max() / 1e-8
    assert_allclose(cv.intercept_, gs.best_estimator_.intercept_, rtol=0, atol=noise)
    train_scores, val_scores = validation_curve(base, X, y, param_name="lam", param_range=lams,
                                                cv=folds, scoring="neg_mean_squared_error")
    assert val_scores.shape == (4, 3)
    assert_allclose(val_scores.mean(1), gs.cv_results_["mean_test_score"], rtol=1e-9)


def test_pipeline(diabetes):
    X, y = load_diabetes(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), WeightDecayRegressor(lam=0.5, **CONVERGED))
    pipe.fit(X, y)
    Xs = StandardScaler().fit_transform(X)
    assert_allclose(pipe.predict(X), _ridge(Xs, y, 0.5).predict(Xs), rtol=1e-6)


def test_cv_is_one_engine_call_of_every_lam_and_fold(diabetes, monkeypatch):
    X, y = diabetes
    calls = []
    real = cvfit_module.train

    def counting(problem, spec, hyper, theta0, **kw):
        calls.append((problem.n_draws, theta0.shape[0], problem.X.shape[1],
                      problem.evals["val"].X.shape[1]))
        return real(problem, spec, hyper, theta0, **kw)

    monkeypatch.setattr(cvfit_module, "train", counting)
    lams = np.logspace(-3, 2, 30)
    cv = WeightDecayRegressorCV(lams=lams, cv=5, **CONVERGED).fit(X, y)
    # 5 folds + the full-data refit path, 30 lams each, on D + 2 compressed rows per set
    assert calls == [(6, 6 * 30, X.shape[1] + 2, X.shape[1] + 2)]
    assert cv.coef_path_.shape == (30, X.shape[1])
    # converged: the CV curve is the closed-form one on the same folds
    res = cv.cv_results_
    assert_allclose(res["mean_test_mse"], res["ridge_mean_test_mse"], rtol=1e-8)
    assert cv.lam_ == cv.ridge_lam_ and cv.lam_1se_ == cv.ridge_lam_1se_
    assert cv.lam_ == lams[cv.best_index_]
    # the refit is the full-data model of lam_
    _assert_same_model(cv, _ridge(X, y, cv.lam_))


def test_one_standard_error_rule(diabetes):
    X, y = diabetes
    lams = np.logspace(-2, 2.5, 12)
    kw = dict(lams=lams, cv=KFold(5, shuffle=True, random_state=0), lr=0.5, epochs=300)
    best = WeightDecayRegressorCV(**kw).fit(X, y)
    one_se = WeightDecayRegressorCV(rule="1se", **kw).fit(X, y)
    res = best.cv_results_
    i = int(np.argmin(res["mean_test_mse"]))
    within = res["mean_test_mse"] <= res["mean_test_mse"][i] + res["sem_test_mse"][i]
    assert best.lam_ == lams[i] == one_se.lam_min_
    assert one_se.lam_ == one_se.lam_1se_ == lams[within].max() >= best.lam_
    assert res["rank_test_score"][i] == 1
    assert_allclose(res["sem_test_mse"],
                    np.std([res[f"split{f}_test_score"] for f in range(5)], 0, ddof=1)
                    / np.sqrt(5))


@pytest.mark.parametrize("kw", [dict(decay_bias=True), dict(fit_intercept=False),
                                dict(regularizer="sum", loss="half_mse")])
def test_cv_closed_form_follows_the_conventions(diabetes, kw):
    X, y = diabetes
    sw = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
    cv = WeightDecayRegressorCV(lams=[0.01, 0.1, 1.0], cv=3, **CONVERGED, **kw)
    cv.fit(X, y - 150.0, sample_weight=sw)
    res = cv.cv_results_
    assert_allclose(res["mean_test_mse"], res["ridge_mean_test_mse"], rtol=1e-6)


def test_cv_decoupled_has_no_closed_form(diabetes):
    X, y = diabetes
    cv = WeightDecayRegressorCV(lams=[0.0, 0.01, 0.1], cv=3, optimizer="adamw",
                                regularizer="decoupled", lr=0.1, epochs=200).fit(X, y)
    assert cv.ridge_lam_ is None and "ridge_mean_test_mse" not in cv.cv_results_
    assert cv.lam_ in (0.0, 0.01, 0.1)


def test_cv_multi_output_and_minibatch(diabetes):
    X, y = diabetes
    Y = np.column_stack([y, 0.5 * y])
    cv = WeightDecayRegressorCV(lams=[0.1, 1.0], cv=3, lr=0.1, epochs=50, batch_size=64,
                                random_state=0).fit(X, Y)
    assert cv.coef_.shape == (2, 10) and cv.coef_path_.shape == (2, 2, 10)
    again = WeightDecayRegressorCV(lams=[0.1, 1.0], cv=3, lr=0.1, epochs=50, batch_size=64,
                                   random_state=0).fit(X, Y)
    assert_allclose(cv.coef_, again.coef_, rtol=0, atol=0)  # seeded minibatches: reproducible


def test_convergence_warning_only_when_not_converged(diabetes):
    X, y = diabetes
    with pytest.warns(ConvergenceWarning, match="did not converge in 50 epochs"):
        WeightDecayRegressor(lam=0.5, lr=0.01, epochs=50).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = WeightDecayRegressor(lam=0.5, **CONVERGED).fit(X, y)
    grad = objective_gradient(X, y[:, None], np.ones(len(y)), model.coef_[None],
                              np.array([model.intercept_]), model)
    assert grad[0] < 1e-8  # the oracle of the warning: the exact objective gradient


def _loss_and_grad(A, y, s, theta):
    """sum_n s_n (a_n theta - y_n)^2 and its gradient, in numpy (the oracle)."""
    r = A @ theta - y  # (n,)
    return float(s @ r**2), 2.0 * A.T @ (s * r)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("n", [40, 5])  # tall, and fewer rows than D + T
def test_compressed_rows_keep_every_loss_and_gradient(fit_intercept, n):
    """(1/m) sum_i (c_i theta - z_i)^2 = sum_n s_n (a_n theta - y_n)^2 for any theta, per
    weight set (zeros, an all-zero set) and output; the bias row is exactly 0 at b0 = ybar."""
    rng = np.random.default_rng(0)
    D, T = 4, 3
    X = rng.normal(size=(n, D)) * [1.0, 10.0, 0.1, 1.0] + 3.0
    Y = rng.normal(size=(n, T)) * 5.0 + 100.0
    W = rng.uniform(0.0, 2.0, size=(3, n))
    W[0, : n // 2] = 0.0  # a fold mask
    W[2] = 0.0  # total weight 0: a zero loss
    rows, z, ybar = (t.numpy() for t in compressed_rows(torch.tensor(X), torch.tensor(Y),
                                                         torch.tensor(W), fit_intercept))
    D1 = D + int(fit_intercept)
    m = D1 + 1
    assert rows.shape == (3, T, m, D1) and z.shape == (3, T, m) and ybar.shape == (3, T)
    A = np.hstack([X, np.ones((n, 1))]) if fit_intercept else X
    for f in range(3):
        s = W[f] / W[f].sum() if W[f].sum() > 0 else W[f]
        for t in range(T):
            for theta in rng.normal(size=(4, D1)) * 3.0:
                want, g_want = _loss_and_grad(A, Y[:, t], s, theta)
                got, g_got = _loss_and_grad(rows[f, t], z[f, t], np.full(m, 1.0 / m), theta)
                assert_allclose(got, want, rtol=1e-12, atol=1e-12)
                assert_allclose(g_got, g_want, rtol=1e-10, atol=1e-10 * np.abs(g_want).max())
            if fit_intercept and f < 2:
                assert_allclose(ybar[f, t], s @ Y[:, t], rtol=1e-14)
                start = np.r_[np.zeros(D), ybar[f, t]]
                assert rows[f, t, D] @ start - z[f, t, D] == 0.0  # exact: no first bias step


@pytest.mark.parametrize("kw", [dict(optimizer="sgd", regularizer="half_sum", lr=0.05),
                                dict(lr=0.3), dict(decay_bias=True, lr=0.3),
                                dict(optimizer="adamw", regularizer="decoupled", lr=0.1)])
def test_cv_on_compressed_rows_is_the_run_on_the_rows(diabetes, monkeypatch, kw):
    """The CV on compressed rows against the same engine call on the N rows (float64, 150
    epochs, sample weights, two outputs): the same trajectories to rounding."""
    X, y = diabetes
    Y = np.column_stack([y, X[:, 2] * 3.0 - 1.0])
    sw = np.random.default_rng(2).uniform(0.5, 2.0, size=len(y))
    args = dict(lams=[0.003, 0.1, 3.0], cv=4, epochs=150, init_scale=0.1, random_state=0, **kw)
    fast = WeightDecayRegressorCV(**args).fit(X, Y, sample_weight=sw)
    real = cvfit_module.fit_batch
    monkeypatch.setattr("wdlab.estimator.fit_batch",
                        lambda *a, **k: real(*a, **{**k, "compress": False}))
    rows = WeightDecayRegressorCV(**args).fit(X, Y, sample_weight=sw)
    for key in ("mean_test_mse", "mean_train_mse"):
        assert_allclose(fast.cv_results_[key], rows.cv_results_[key], rtol=1e-10)
    assert fast.lam_ == rows.lam_
    assert_allclose(fast.coef_path_, rows.coef_path_, rtol=1e-10, atol=1e-10)
    assert_allclose(fast.intercept_path_, rows.intercept_path_, rtol=1e-10)


def test_cv_float32_on_compressed_rows_is_no_worse_than_on_the_rows(diabetes, monkeypatch):
    """float32 CV on compressed rows held to the float64 run by the float32 run on the N rows
    (whose error is the engine's own float32 error): within 4x of it."""
    X, y = diabetes
    args = dict(lams=[0.01, 0.3, 10.0], cv=3, epochs=200, lr=0.5)
    exact = WeightDecayRegressorCV(**args).fit(X, y)
    fast = WeightDecayRegressorCV(dtype="float32", **args).fit(X, y)
    real = cvfit_module.fit_batch
    monkeypatch.setattr("wdlab.estimator.fit_batch",
                        lambda *a, **k: real(*a, **{**k, "compress": False}))
    rows = WeightDecayRegressorCV(dtype="float32", **args).fit(X, y)
    ulp = np.finfo(np.float32).eps
    for attr in ("coef_path_", "intercept_path_"):
        want = getattr(exact, attr)
        err_fast = np.abs(getattr(fast, attr) - want).max()
        err_rows = np.abs(getattr(rows, attr) - want).max()
        assert err_fast <= 4 * err_rows + 8 * ulp * np.abs(want).max(), attr
    score = lambda m: m.cv_results_["mean_test_mse"]  # noqa: E731
    err_fast = np.abs(score(fast) / score(exact) - 1).max()
    assert err_fast <= 4 * np.abs(score(rows) / score(exact) - 1).max() + 8 * ulp


def test_cv_full_batch_on_compressed_rows_stays_full_batch(diabetes, monkeypatch):
    """A batch size at least every set's weighted row count is full batch on the rows; the
    compressed sets (D + 2 = 12 rows here, more than the batch size 11) must stay full batch
    too, not be cut into minibatches of the synthetic rows."""
    X, y = diabetes
    sw = np.zeros(len(y))
    sw[np.random.default_rng(3).choice(len(y), 10, replace=False)] = 1.0  # 10 weighted rows
    args = dict(lams=[0.003, 0.1, 3.0], cv=3, epochs=100, init_scale=0.1, random_state=0,
                batch_size=11, optimizer="sgd", regularizer="half_sum", lr=0.05)
    fast = WeightDecayRegressorCV(**args).fit(X, y, sample_weight=sw)
    real = cvfit_module.fit_batch
    monkeypatch.setattr("wdlab.estimator.fit_batch",
                        lambda *a, **k: real(*a, **{**k, "compress": False}))
    rows = WeightDecayRegressorCV(**args).fit(X, y, sample_weight=sw)
    for key in ("mean_test_mse", "mean_train_mse"):
        assert_allclose(fast.cv_results_[key], rows.cv_results_[key], rtol=1e-10)
    assert_allclose(fast.coef_path_, rows.coef_path_, rtol=1e-10, atol=1e-10)
