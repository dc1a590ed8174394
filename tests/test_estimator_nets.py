"""The MLP estimators against oracles: a plain torch.optim replay of the fit, GridSearchCV over
the single estimator on the same folds, and the float32 rule of tests/oracle.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.preprocessing import StandardScaler

from nets_reference import torch_run
from oracle import assert_f32_close
from wdlab import (
    WeightDecayMLPClassifier,
    WeightDecayMLPClassifierCV,
    WeightDecayMLPRegressor,
    WeightDecayMLPRegressorCV,
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    keep = np.arange(0, len(y), 6)  # 300 rows, every class
    return StandardScaler().fit_transform(X[keep]), y[keep]


def _replay(est, X, y, loss, dtype=torch.float64):
    """The fit replayed in plain PyTorch from init_coefs_: MLP.to_module() trained by
    tests/nets_reference.torch_run (torch.optim, weights decayed, biases not)."""
    net = est.net_.to_module().to(torch.float64)
    state = {}
    for layer, (W, b) in enumerate(zip(est.init_coefs_, est.init_intercepts_, strict=True)):
        state[f"{2 * layer}.weight"] = torch.tensor(W.T)
        state[f"{2 * layer}.bias"] = torch.tensor(b)
    net.load_state_dict(state)
    optimizer = "adam" if est.optimizer == "adamw" else est.optimizer  # adamw: adam+decoupled
    torch_run(net, torch.tensor(X), torch.as_tensor(y), loss=loss, optimizer=optimizer,
              regularizer=est.regularizer, lam=est.lam, lr=est.lr, beta1=0.9, beta2=0.999,
              epochs=est.epochs, dtype=dtype)
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in net.named_parameters() if n.endswith("bias")]
    return [p.detach().double().T.numpy() for p in weights], [p.detach().double().numpy() for p in biases]


@pytest.mark.parametrize("optimizer,regularizer", [("adamw", "decoupled"), ("sgd", "weight_decay"),
                                                   ("adam", "weight_decay")])
def test_classifier_replays_in_torch_optim(digits, optimizer, regularizer):
    X, y = digits
    est = WeightDecayMLPClassifier((12, 7), activation="tanh", lam=0.05, optimizer=optimizer,
                                   regularizer=regularizer, lr=0.02, epochs=25, random_state=3)
    est.fit(X, y)
    assert [c.shape for c in est.coefs_] == [(64, 12), (12, 7), (7, 10)]
    assert [b.shape for b in est.intercepts_] == [(12,), (7,), (10,)]
    W, b = _replay(est, X, np.searchsorted(est.classes_, y), "cross_entropy")
    for a, r in zip(est.coefs_ + est.intercepts_, W + b, strict=True):
        np.testing.assert_allclose(a, r, rtol=0, atol=1e-10)
    assert est.n_iter_ == 25 and est.loss_curve_.shape == (25,)
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    p = est.predict_proba(X)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(est.predict(X), est.classes_[p.argmax(1)])


def test_classifier_float32_held_to_float64(digits):
    X, y = digits
    kw = dict(hidden_layer_sizes=(12,), lam=0.05, lr=0.02, epochs=25, random_state=3)
    e32 = WeightDecayMLPClassifier(dtype="float32", **kw).fit(X, y)
    e64 = WeightDecayMLPClassifier(dtype="float64", **kw).fit(X, y)
    lab = np.searchsorted(e64.classes_, y)
    t32 = _replay(e64, X, lab, "cross_entropy", dtype=torch.float32)
    for i in range(2):
        assert_f32_close(torch.tensor(e32.coefs_[i]), torch.tensor(t32[0][i]),
                         torch.tensor(e64.coefs_[i]), msg=f"coefs_[{i}]")


def test_regressor_replays_in_torch_optim(digits):
    X, _ = digits
    y = X[:, 20] + 0.5 * X[:, 36] ** 2
    Xf = np.delete(X, [20, 36], axis=1)
    est = WeightDecayMLPRegressor((10,), lam=0.1, lr=0.02, epochs=30, random_state=1).fit(Xf, y)
    W, b = _replay(est, Xf, y, "half_mse")
    for a, r in zip(est.coefs_ + est.intercepts_, W + b, strict=True):
        np.testing.assert_allclose(a, r, rtol=0, atol=1e-10)
    assert est.predict(Xf).shape == (len(y),)


LAMS = np.logspace(-3, 0.5, 10)
SMALL = dict(hidden_layer_sizes=(8,), lr=0.03, epochs=15, random_state=0)


@pytest.fixture(scope="module")
def cv_and_grid(digits):
    X, y = digits
    cv = WeightDecayMLPClassifierCV(lams=LAMS, cv=5, **SMALL).fit(X, y)
    grid = GridSearchCV(WeightDecayMLPClassifier(**SMALL), {"lam": list(LAMS)}, cv=5).fit(X, y)
    return cv, grid


def test_cv_equals_gridsearch(digits, cv_and_grid):
    cv, grid = cv_and_grid
    for f in range(5):
        np.testing.assert_allclose(cv.cv_results_[f"split{f}_test_score"],
                                   grid.cv_results_[f"split{f}_test_score"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(cv.cv_results_["mean_test_score"],
                               grid.cv_results_["mean_test_score"], rtol=0, atol=1e-10)
    assert cv.lam_ == grid.best_params_["lam"]
    assert cv.best_index_ == grid.best_index_
    for a, r in zip(cv.coefs_ + cv.intercepts_,
                    grid.best_estimator_.coefs_ + grid.best_estimator_.intercepts_, strict=True):
        np.testing.assert_allclose(a, r, rtol=0, atol=1e-10)


def test_cv_fold_networks_equal_fits_on_the_fold(digits, cv_and_grid):
    """Continuous check behind the accuracies: fold f's network = a fit on fold f's rows."""
    X, y = digits
    cv, _ = cv_and_grid
    tr, _ = list(StratifiedKFold(5).split(X, y))[2]
    i = 4
    alone = WeightDecayMLPClassifier(lam=LAMS[i], **SMALL).fit(X[tr], y[tr])
    k = 2 * len(LAMS) + i
    theta = cv.net_result_.theta[k].numpy()
    mine = np.concatenate([np.concatenate([W.T.ravel(), b]) for W, b in
                           zip(alone.coefs_, alone.intercepts_, strict=True)])
    np.testing.assert_allclose(theta, mine, rtol=0, atol=1e-10)


def test_cv_one_se_rule(digits, cv_and_grid):
    X, y = digits
    cv, _ = cv_and_grid
    one = WeightDecayMLPClassifierCV(lams=LAMS, cv=5, rule="1se", **SMALL).fit(X, y)
    assert one.lam_ == one.lam_1se_ >= one.lam_min_ == cv.lam_
    err, sem = one.cv_results_["mean_test_error"], one.cv_results_["sem_test_error"]
    i = cv.best_index_
    assert err[one.best_index_] <= err[i] + sem[i]
    assert not (err[LAMS > one.lam_] <= err[i] + sem[i]).any()


def test_cv_class_with_fewer_members_than_folds(digits):
    X, y = digits
    y = y.copy()
    y[:3] = 99
    with pytest.raises(ValueError, match="^y: class 99 has 3 member"):
        WeightDecayMLPClassifierCV(lams=[0.1], cv=5, **SMALL).fit(X, y)


def test_regressor_cv_equals_gridsearch(digits):
    X, _ = digits
    y, Xf = X[:, 20], np.delete(X, 20, axis=1)
    lams = [1e-3, 0.3, 3.0]
    cv = WeightDecayMLPRegressorCV(lams=lams, cv=3, **SMALL).fit(Xf, y)
    grid = GridSearchCV(WeightDecayMLPRegressor(**SMALL), {"lam": lams}, cv=3,
                        scoring="neg_mean_squared_error").fit(Xf, y)
    np.testing.assert_allclose(cv.cv_results_["mean_test_score"],
                               grid.cv_results_["mean_test_score"], rtol=1e-10, atol=0)
    assert cv.lam_ == grid.best_params_["lam"]
