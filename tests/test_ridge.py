"""ridge_path against scikit-learn, brute-force leave-one-out refits and its limits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import Ridge, RidgeCV
from threadpoolctl import threadpool_limits

from wdlab.conventions import CONVENTIONS, translate
from wdlab.exact.ridge import ridge_path


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small numpy solves: one BLAS thread avoids oversubscribing the shared cores."""
    with threadpool_limits(limits=1):
        yield

SHAPES = {"tall": (200, 50), "wide": (10, 200), "wide50": (50, 200)}
LAMS = np.logspace(-4, 3, 8)


def _data(n, d, seed=0, noise=0.5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) + rng.normal(size=d)  # non-centred columns
    y = X @ (rng.normal(size=d) / np.sqrt(d)) + 0.7 + noise * rng.normal(size=n)
    return X, y


def _pair(name):
    """(loss, penalty, lams) for ridge_path reproducing the named convention at LAMS."""
    loss, pen, _ = CONVENTIONS[name]
    if loss is None:  # sklearn alpha = n * lam in mse+sum
        return "mse", "sum", None
    return loss, pen, LAMS


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("name", list(CONVENTIONS))
def test_matches_sklearn_ridge(shape, name):
    n, d = SHAPES[shape]
    X, y = _data(n, d)
    loss, pen, lams = _pair(name)
    if lams is None:
        lams = translate(LAMS, "sklearn", "mse+sum", n_train=n, n_features=d)
    path = ridge_path(X, y, lams, loss, pen)
    alphas = translate(LAMS, name, "sklearn", n_train=n, n_features=d)
    for k, alpha in enumerate(alphas):
        m = Ridge(alpha=alpha, solver="svd").fit(X, y)
        scale = np.abs(m.coef_).max()
        np.testing.assert_allclose(path.coef[k].numpy(), m.coef_, rtol=1e-8, atol=1e-10 * scale)
        np.testing.assert_allclose(path.intercept[k].item(), m.intercept_, rtol=1e-8, atol=1e-12)


def _brute_loo(X, y, alpha):
    """Leave-one-out MSE by n refits of (w, b), each solved by numpy lstsq."""
    n, d = X.shape
    errs = []
    for i in range(n):
        keep = np.arange(n) != i
        A = np.hstack([X[keep], np.ones((n - 1, 1))])
        P = np.hstack([np.sqrt(alpha) * np.eye(d), np.zeros((d, 1))])
        theta, *_ = np.linalg.lstsq(np.vstack([A, P]), np.concatenate([y[keep], np.zeros(d)]),
                                    rcond=None)
        errs.append((X[i] @ theta[:d] + theta[d] - y[i]) ** 2)
    return np.mean(errs)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_loo_equals_brute_force(shape):
    n, d = SHAPES[shape]
    X, y = _data(n, d, seed=1)
    lams = LAMS[::2] if n > 100 else LAMS
    path = ridge_path(X, y, lams, "half_mse", "sum")
    brute = [_brute_loo(X, y, a) for a in path.alphas.numpy()]
    np.testing.assert_allclose(path.loo.numpy(), brute, rtol=1e-8)


def test_gcv_formula():
    X, y = _data(30, 12, seed=2)
    path = ridge_path(X, y, LAMS, "mse", "sum")
    for k, alpha in enumerate(path.alphas.numpy()):
        A = np.hstack([X, np.ones((30, 1))])
        D = np.diag([alpha] * 12 + [0.0])
        H = A @ np.linalg.solve(A.T @ A + D, A.T)
        r = y - H @ y
        gcv = np.mean(r**2) / (1 - np.trace(H) / 30) ** 2
        np.testing.assert_allclose(path.gcv[k].item(), gcv, rtol=1e-8)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_selects_same_lam_as_ridgecv(shape):
    n, d = SHAPES[shape]
    X, y = _data(n, d, seed=4, noise=1.0)
    alphas = np.logspace(-3, 5, 30)
    lams = translate(alphas, "sklearn", "seed", n_train=n, n_features=d)
    path = ridge_path(X, y, lams, "mse", "mean")
    cv = RidgeCV(alphas=alphas).fit(X, y)
    best = path.best_index("loo")
    assert 0 < best < len(lams) - 1, "pick a grid whose optimum is interior"
    assert cv.alpha_ == pytest.approx(alphas[best], rel=1e-12)


def test_test_mse_and_theta():
    X, y = _data(40, 10, seed=4)
    Xt, yt = _data(25, 10, seed=5)
    path = ridge_path(torch.as_tensor(X), torch.as_tensor(y), LAMS, X_test=Xt, y_test=yt)
    pred = Xt @ path.coef.numpy().T + path.intercept.numpy()
    np.testing.assert_allclose(path.test_mse.numpy(), ((pred - yt[:, None]) ** 2).mean(0),
                               rtol=1e-12)
    assert path.theta.shape == (len(LAMS), 11) and path.theta.dtype == torch.float64
    assert path.best_index("test_mse") == int(np.argmin(path.test_mse.numpy()))


def test_limit_small_lam_tall_is_least_squares():
    X, y = _data(200, 50, seed=6)
    path = ridge_path(X, y, [0.0, 1e-12])
    A = np.hstack([X, np.ones((200, 1))])
    theta, *_ = np.linalg.lstsq(A, y, rcond=None)
    for k in range(2):
        np.testing.assert_allclose(path.coef[k].numpy(), theta[:50], rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(path.intercept[k].item(), theta[50], rtol=1e-8)


def test_limit_small_lam_wide_is_min_norm_interpolant():
    X, y = _data(10, 200, seed=7)
    path = ridge_path(X, y, [0.0, 1e-12])
    Xc, yc = X - X.mean(0), y - y.mean()
    w = np.linalg.pinv(Xc) @ yc  # minimum-norm w among interpolants with a free intercept
    for k in range(2):
        np.testing.assert_allclose(path.coef[k].numpy(), w, rtol=1e-7, atol=1e-10)
        fit = X @ path.coef[k].numpy() + path.intercept[k].item()
        np.testing.assert_allclose(fit, y, rtol=1e-8, atol=1e-8)
    assert torch.isnan(path.loo[0])  # H_ii = 1: leave-one-out undefined at the interpolant


@pytest.mark.parametrize("shape", list(SHAPES))
def test_limit_huge_lam(shape):
    n, d = SHAPES[shape]
    X, y = _data(n, d, seed=8)
    path = ridge_path(X, y, [1e14])
    assert path.coef.abs().max() < 1e-9
    assert path.intercept[0].item() == pytest.approx(y.mean(), rel=1e-9)


def test_no_intercept_matches_sklearn():
    X, y = _data(10, 200, seed=9)
    path = ridge_path(X, y, LAMS, "mse", "sum", fit_intercept=False)
    for k, alpha in enumerate(path.alphas.numpy()):
        m = Ridge(alpha=alpha, solver="svd", fit_intercept=False).fit(X, y)
        np.testing.assert_allclose(path.coef[k].numpy(), m.coef_, rtol=1e-8,
                                   atol=1e-10 * np.abs(m.coef_).max())
    assert (path.intercept == 0).all()


def test_bad_inputs():
    X, y = _data(10, 5)
    with pytest.raises(ValueError, match="lams"):
        ridge_path(X, y, [-1.0])
    with pytest.raises(ValueError, match="y"):
        ridge_path(X, y[:5], [1.0])
    with pytest.raises(ValueError, match="no exact L2 equivalent"):
        ridge_path(X, y, [1.0], penalty="decoupled")
    with pytest.raises(ValueError, match="criterion"):
        ridge_path(X, y, [1.0]).best_index("test_mse")


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), shape=st.sampled_from([(30, 5), (5, 30), (12, 12)]))
def test_norm_non_increasing_in_lam(seed, shape):
    X, y = _data(*shape, seed=seed)
    path = ridge_path(X, y, np.logspace(-6, 6, 60), "mse", "sum")
    norms = torch.linalg.vector_norm(path.coef, dim=1)
    assert bool((norms[1:] <= norms[:-1] * (1 + 1e-12)).all())


def test_python_numbers_go_straight_to_float64():
    """Lists and Python floats are converted to float64 directly, not through float32
    (``torch.as_tensor([0.1])`` is 0.1000000015): the same path as float64 arrays, bit for bit."""
    X, y = _data(30, 5)
    path = ridge_path(X.tolist(), y.tolist(), [0.1, 0.3], X_test=X[:4].tolist(),
                      y_test=y[:4].tolist())
    assert path.lams.tolist() == [0.1, 0.3]
    ref = ridge_path(X, y, np.array([0.1, 0.3]), X_test=X[:4], y_test=y[:4])
    for name in ("alphas", "coef", "intercept", "train_mse", "loo", "gcv", "test_mse"):
        assert torch.equal(getattr(path, name), getattr(ref, name)), name
    assert ridge_path(X, y, 0.1).lams.item() == 0.1
    with pytest.raises(ValueError, match="lams: expected a real array"):
        ridge_path(X, y, [True, False])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_sample_weight_matches_sklearn_and_brute_force_loo(shape, fit_intercept):
    """Weighted path = sklearn Ridge(alpha(sum v), sample_weight=v) to 1e-10; its LOO refits
    without each sample at the same alpha; zero weights drop rows; equal weights = unweighted."""
    n, d = SHAPES[shape]
    X, y = _data(n, d, seed=4)
    v = np.random.default_rng(5).uniform(0.2, 3.0, size=n)
    v[:3] = 0.0
    path = ridge_path(X, y, LAMS, "mse", "mean", fit_intercept=fit_intercept, sample_weight=v)
    scale = np.abs(path.coef.numpy()).max()
    for k, lam in enumerate(LAMS):
        alpha = translate(lam, "mse+mean", "sklearn", n_train=v.sum(), n_features=d)
        ref = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="svd").fit(X, y, sample_weight=v)
        np.testing.assert_allclose(path.coef[k].numpy(), ref.coef_, rtol=1e-10, atol=1e-10 * scale)
        np.testing.assert_allclose(float(path.intercept[k]), ref.intercept_, rtol=1e-10,
                                   atol=1e-10 * scale)
    assert torch.allclose(path.alphas, torch.as_tensor(
        translate(LAMS, "mse+mean", "sklearn", n_train=v.sum(), n_features=d)), rtol=1e-12)
    kept = ridge_path(X[3:], y[3:], LAMS, "mse", "mean", fit_intercept=fit_intercept,
                      sample_weight=v[3:])
    torch.testing.assert_close(path.coef, kept.coef, rtol=1e-10, atol=1e-10 * scale)
    same = ridge_path(X, y, LAMS, fit_intercept=fit_intercept, sample_weight=np.full(n, 2.5))
    plain = ridge_path(X, y, LAMS, fit_intercept=fit_intercept)
    rtol = 1e-9 if shape == "tall" else 1e-6  # wide, small lam: 1 - H_ii and r_i near 0
    for name in ("coef", "intercept", "train_mse", "loo", "gcv"):
        torch.testing.assert_close(getattr(same, name), getattr(plain, name), rtol=rtol,
                                   atol=1e-12 * float(np.mean(y**2)))
    if shape != "tall":
        return
    s = v / v.sum()
    k = 3
    alpha = float(path.alphas[k])
    loo = 0.0
    for i in range(n):  # brute force: refit without sample i at the same alpha
        m = np.arange(n) != i
        ref = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="svd").fit(
            X[m], y[m], sample_weight=v[m])
        loo += s[i] * (ref.predict(X[i:i + 1])[0] - y[i]) ** 2
    assert float(path.loo[k]) == pytest.approx(loo, rel=1e-9)
    resid = y - (X @ path.coef[k].numpy() + float(path.intercept[k]))
    assert float(path.train_mse[k]) == pytest.approx(float(s @ resid**2), rel=1e-10)


def test_ridge_solve_batches_weighted_problems():
    """ridge_solve over B weighted problems = ridge_path one at a time (the sweep's and the
    estimator's closed forms are this one solve)."""
    from wdlab.exact.ridge import ridge_solve

    rng = np.random.default_rng(6)
    Xs, ys = zip(*[_data(30, 12, seed=s) for s in range(3)], strict=True)
    W = rng.uniform(0.0, 2.0, size=(3, 30))
    W[0, 25:] = 0.0  # a zero-padded draw
    coef, icpt = ridge_solve(*(torch.as_tensor(np.stack(a)) for a in (Xs, ys, W)),
                             torch.as_tensor(LAMS), "half_mse", "sum")  # (3, L, D) (3, L)
    for b in range(3):
        one = ridge_path(Xs[b], ys[b], LAMS, "half_mse", "sum", sample_weight=W[b])
        torch.testing.assert_close(coef[b], one.coef, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(icpt[b], one.intercept, rtol=1e-10, atol=1e-12)
