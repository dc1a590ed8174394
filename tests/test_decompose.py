"""The error decomposition: exact, equal to explicit matrices, and explains the seed's ~190."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from wdlab.data.synthetic import SEED_DATA, init_weights, make_linear, problem_from_datasets
from wdlab.engine import EngineSpec, Hyper, train
from wdlab.exact.decompose import COLUMNS, decompose_error
from wdlab.exact.ridge import ridge_path


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small numpy solves: one BLAS thread avoids oversubscribing the shared cores."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(params=[(40, 8), (10, 30)], ids=["tall", "wide"])
def draw(request):
    n, d = request.param
    return make_linear(d, n, 5, w_star=0.3, bias=0.5, noise=0.2, seed=3)


def _kw(ds):
    return dict(w_star=ds.w_star, b_star=ds.b_star, noise=ds.noise)


def test_columns_add_up_exactly(draw):
    g = torch.Generator().manual_seed(0)
    d = draw.n_features
    w = torch.randn(6, d, generator=g, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    out = decompose_error(w, b, draw.X_train, draw.y_train, w0=w[0], lam=[0.0, 0.1, 1, 3, 10, 0],
                          **_kw(draw))
    direct = ((w - draw.w_star) ** 2).sum(1) + (b - draw.b_star) ** 2 + draw.noise**2
    total = sum(out[c] for c in COLUMNS) + out["noise_var"]
    torch.testing.assert_close(total, direct, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out["test_mse"], direct, rtol=1e-12, atol=1e-12)
    for c in COLUMNS[:4]:
        assert bool((out[c] >= 0).all())


def test_ridge_solution_terms_match_explicit_matrices(draw):
    X, y = draw.X_train.numpy(), draw.y_train.numpy()
    n, d = X.shape
    path = ridge_path(X, y, [0.0, 0.5, 5.0], "mse", "sum")
    out = decompose_error(path.coef, path.intercept, X, y, lam=path.lams, loss="mse",
                          penalty="sum", **_kw(draw))
    Xc = X - X.mean(0)
    eps = y - X @ draw.w_star.numpy() - draw.b_star
    for k, alpha in enumerate(path.alphas.numpy()):
        M = np.linalg.pinv(Xc.T @ Xc + alpha * np.eye(d)) @ Xc.T if alpha else np.linalg.pinv(Xc)
        S = M @ Xc
        bias = S @ draw.w_star.numpy() - draw.w_star.numpy()
        noise = M @ (eps - eps.mean())
        assert out["err_bias"][k].item() == pytest.approx(bias @ bias, rel=1e-8)
        assert out["err_noise"][k].item() == pytest.approx(noise @ noise, rel=1e-8)
        assert out["err_cross"][k].item() == pytest.approx(2 * bias @ noise, rel=1e-6, abs=1e-12)
    assert out["err_init_null"].max().item() < 1e-20  # the ridge answer lives in the row space
    assert out["err_opt"].max().item() < 1e-20


def test_null_space_dimension():
    ds = make_linear(30, 10, 5, seed=4)
    w0 = init_weights(list(range(200)), 30, 1.0, dtype=torch.float64)[:, :30]  # (K, D)
    out = decompose_error(w0, torch.zeros(200), ds.X_train, ds.y_train, w0=w0, **_kw(ds))
    # E ||Q w0||^2 = d - rank(Xc) = 30 - 9 for w0 ~ N(0, I)
    init_null = out["init_null"].numpy()
    se = init_null.std(ddof=1) / np.sqrt(len(init_null))
    assert abs(init_null.mean() - 21.0) < 3 * se
    torch.testing.assert_close(out["err_init_null"], out["init_null"])


def test_seed_gd_keeps_the_init_in_the_null_space():
    """Full-batch GD at lam = 0 on the seed data (d = 200, n = 10) from w0 ~ N(0, I)."""
    ds = make_linear(**SEED_DATA, seed=0)
    K = 8
    theta0 = init_weights(list(range(K)), 200, 1.0, dtype=torch.float64)  # (K, D+1)
    res = train(problem_from_datasets([ds]),
                EngineSpec("sgd", "mean", "mse", epochs=200, dtype=torch.float64),
                Hyper.of(K, lam=0.0, lr=0.01, beta1=0.0), theta0)
    out = decompose_error(res.coef, res.intercept, ds.X_train, ds.y_train, w0=theta0[:, :200],
                          **_kw(ds))
    assert res.metrics["train_mse"][-1].max().item() < 1e-20  # interpolates
    assert out["err_opt"].max().item() < 1e-12  # on the min-norm interpolant's row space part
    # GD never moves w0 off the null space of the uncentred X (numpy oracle) ...
    X = ds.X_train.numpy()
    Q = np.eye(200) - np.linalg.pinv(X) @ X  # (D, D)
    moved = (res.coef.numpy() - theta0[:, :200].numpy()) @ Q
    assert np.abs(moved).max() < 1e-10
    # ... which is the null space of Xc less one direction (xbar's, coupled to the intercept)
    torch.testing.assert_close(out["err_init_null"], out["init_null"], rtol=0.05, atol=0)
    share = out["err_init_null"] / out["test_mse"]
    assert share.min().item() > 0.99  # the init explains the test error
    # ~ ||w0||^2 (1 - (n - 1) / d): 191 on average over inits
    w0n = (theta0[:, :200] ** 2).sum(1)
    torch.testing.assert_close(out["err_init_null"], w0n * (1 - 9 / 200), rtol=0.1, atol=0)
    assert 150 < out["test_mse"].mean().item() < 230


def test_seed_adam_does_not_preserve_the_null_space():
    """The seed's own recipe: Adam lr 0.05, 100 epochs, lam in {0, 3} (``mean``)."""
    ds = make_linear(**SEED_DATA, seed=0)
    theta0 = init_weights([0, 0], 200, 1.0, dtype=torch.float64)
    res = train(problem_from_datasets([ds]),
                EngineSpec("adam", "mean", "mse", epochs=100, dtype=torch.float64),
                Hyper.of(2, lam=[0.0, 3.0], lr=0.05), theta0)
    out = decompose_error(res.coef, res.intercept, ds.X_train, ds.y_train, w0=theta0[:, :200],
                          lam=[0.0, 3.0], **_kw(ds))
    # Adam's per-coordinate scaling moves weight into (and, with the penalty, out of) the null
    # space, so the null part differs from the init's; it still dominates the test error.
    rel_change = (out["err_init_null"] - out["init_null"]).abs() / out["init_null"]
    assert rel_change.min().item() > 0.05
    assert (out["err_init_null"] / out["test_mse"]).min().item() > 0.99


def test_python_numbers_go_straight_to_float64(draw):
    """Python floats and lists (as experiment.py passes) are exact float64 inputs: an
    intercept 1e-4 from b* gives err_intercept = (b - b*)^2 to 1e-12, not float32's 0.1%."""
    d = draw.n_features
    w = (draw.w_star + 0.01).tolist()  # (D,) a list of Python floats
    b = float(draw.b_star) + 1e-4
    out = decompose_error(w, b, draw.X_train.tolist(), draw.y_train.tolist(), lam=0.3,
                          w_star=draw.w_star.tolist(), b_star=float(draw.b_star),
                          noise=draw.noise, w0=[0.5] * d)
    assert out["err_intercept"].item() == pytest.approx((b - float(draw.b_star)) ** 2, rel=1e-12)
    ref = decompose_error(torch.tensor([w], dtype=torch.float64),
                          torch.tensor([b], dtype=torch.float64), draw.X_train, draw.y_train,
                          lam=torch.tensor([0.3], dtype=torch.float64), w_star=draw.w_star,
                          b_star=float(draw.b_star), noise=draw.noise,
                          w0=torch.full((d,), 0.5, dtype=torch.float64))
    for name, v in ref.items():
        torch.testing.assert_close(out[name], v, rtol=1e-12, atol=1e-15, msg=name)
