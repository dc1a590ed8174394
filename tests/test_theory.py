"""Asymptotic ridge risk against quadrature of the Marchenko-Pastur law and Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate, optimize

from wdlab.conventions import translate
from wdlab.exact.ridge import ridge_path
from wdlab.exact.theory import (
    min_norm_risk,
    mp_stieltjes,
    mp_stieltjes_deriv,
    optimal_lam,
    optimal_risk,
    ridge_risk,
    ridgeless_risk,
    to_convention,
)


def _mp_moment(lam, gamma, power):
    """integral dF_gamma(s) / (s + lam)^power by quadrature of the MP density (+ atom at 0)."""
    lo, hi = (1 - np.sqrt(gamma)) ** 2, (1 + np.sqrt(gamma)) ** 2
    dens = lambda s: np.sqrt((hi - s) * (s - lo)) / (2 * np.pi * gamma * s)  # noqa: E731
    atom = max(0.0, 1 - 1 / gamma)
    val = integrate.quad(lambda s: dens(s) / (s + lam) ** power, lo, hi, epsabs=1e-13)[0]
    return val + atom / lam**power


@pytest.mark.parametrize("gamma", [0.3, 0.5, 2.0, 4.0])
@pytest.mark.parametrize("lam", [0.01, 0.1, 1.0, 10.0])
def test_stieltjes_matches_quadrature(gamma, lam):
    assert mp_stieltjes(lam, gamma) == pytest.approx(_mp_moment(lam, gamma, 1), rel=1e-8)
    assert mp_stieltjes_deriv(lam, gamma) == pytest.approx(_mp_moment(lam, gamma, 2), rel=1e-7)


@pytest.mark.parametrize("gamma", [0.2, 0.5, 2.0, 5.0])
@pytest.mark.parametrize(("r2", "sigma2"), [(1.0, 1.0), (0.02, 1e-4), (3.0, 0.5)])
def test_optimal_lam_minimises_risk(gamma, r2, sigma2):
    res = optimize.minimize_scalar(lambda t: ridge_risk(np.exp(t), gamma, r2, sigma2),
                                   bounds=(-20, 20), method="bounded",
                                   options={"xatol": 1e-10})
    assert np.exp(res.x) == pytest.approx(optimal_lam(gamma, r2, sigma2), rel=1e-4)
    lam_star = optimal_lam(gamma, r2, sigma2)
    assert optimal_risk(gamma, r2, sigma2) == pytest.approx(
        float(ridge_risk(lam_star, gamma, r2, sigma2)), rel=1e-10)


@pytest.mark.parametrize("gamma", [0.25, 0.5, 2.0, 4.0])
def test_ridgeless_limit(gamma):
    assert float(ridge_risk(1e-9, gamma, 2.0, 0.5)) == pytest.approx(
        ridgeless_risk(gamma, 2.0, 0.5), rel=1e-6)
    assert ridgeless_risk(1.0, 2.0, 0.5) == float("inf")


def test_optimal_lam_in_other_conventions():
    # the seed problem: d=200, n=10, w*=0.01 (r^2 = 0.02), sigma=0.01
    lam = optimal_lam(20.0, 0.02, 1e-4)
    assert lam == pytest.approx(0.1)
    seed = optimal_lam(20.0, 0.02, 1e-4, convention="seed", n_train=10, n_features=200)
    assert seed == pytest.approx(translate(0.1, "mse+sum", "seed", n_train=10, n_features=200))
    assert seed == pytest.approx(20.0)
    assert to_convention(0.1, "sklearn", n_train=10, n_features=200) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="n_train"):
        optimal_lam(20.0, 0.02, 1e-4, convention="seed")


def _mc_ridge_risk(n, d, lams, draws, r2=1.0, sigma2=1.0, seed=0):
    """||w_hat - w*||^2 for each draw and lam (mse+sum lam), by Cholesky solves.

    Solved in the smaller of the two Gram matrices: (X^T X + n lam) w = X^T y, or
    w = X^T (X X^T + n lam)^-1 y. Returns (draws, K).
    """
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(draws, n, d, generator=gen, dtype=torch.float64)  # (G, N, D)
    w_star = torch.full((d,), np.sqrt(r2 / d), dtype=torch.float64)  # (D,)
    y = X @ w_star + np.sqrt(sigma2) * torch.randn(draws, n, generator=gen, dtype=torch.float64)
    tall = n >= d
    G = X.mT @ X if tall else X @ X.mT  # (G, D, D) or (G, N, N)
    eye = torch.eye(G.shape[-1], dtype=torch.float64)
    out = []
    for lam in lams:  # a handful of lam values; each solve is batched over the draws
        L = torch.linalg.cholesky(G + n * lam * eye)
        if tall:
            w = torch.cholesky_solve((X.mT @ y[..., None]), L)[..., 0]  # (G, D)
        else:
            w = (X.mT @ torch.cholesky_solve(y[..., None], L))[..., 0]  # (G, D)
        out.append(((w - w_star) ** 2).sum(-1))
    return torch.stack(out, 1).numpy()  # (G, K)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_theory_matches_monte_carlo(gamma):
    d, draws, r2, sigma2 = 400, 50, 1.0, 1.0
    n = int(d / gamma)
    lam_star = optimal_lam(gamma, r2, sigma2)
    lams = lam_star * 2.0 ** np.arange(-3, 4)  # factor-2 grid, lam*/8 .. 8 lam*
    risk = _mc_ridge_risk(n, d, lams, draws, r2, sigma2)  # (G, K)
    mean, se = risk.mean(0), risk.std(0, ddof=1) / np.sqrt(draws)
    theory = ridge_risk(lams, gamma, r2, sigma2)
    for k in (0, 2, 3, 4, 6):  # 5 lam values: lam*/8, lam*/2, lam*, 2 lam*, 8 lam*
        assert abs(mean[k] - theory[k]) <= 3 * se[k], (lams[k], mean[k], theory[k], se[k])
    best = lams[int(np.argmin(mean))]
    assert lam_star / 2 <= best <= 2 * lam_star


@pytest.mark.parametrize(("n", "d"), [(30, 60), (90, 60)])
def test_min_norm_finite_sample(n, d):
    draws, r2, sigma2 = 400, 1.0, 0.25
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(draws, n, d, generator=gen, dtype=torch.float64)  # (G, N, D)
    w_star = torch.full((d,), np.sqrt(r2 / d), dtype=torch.float64)  # (D,)
    y = X @ w_star + np.sqrt(sigma2) * torch.randn(draws, n, generator=gen, dtype=torch.float64)
    if n > d:  # least squares: (X^T X) w = X^T y
        w = torch.cholesky_solve(X.mT @ y[..., None], torch.linalg.cholesky(X.mT @ X))[..., 0]
    else:  # minimum-norm interpolant: w = X^T (X X^T)^-1 y
        L = torch.linalg.cholesky(X @ X.mT)  # (G, N, N)
        w = (X.mT @ torch.cholesky_solve(y[..., None], L))[..., 0]  # (G, D)
    risk = ((w - w_star) ** 2).sum(-1).numpy()
    se = risk.std(ddof=1) / np.sqrt(draws)
    assert abs(risk.mean() - min_norm_risk(n, d, r2, sigma2)) <= 3 * se
    # ridge_path at lam = 0 without an intercept gives the same estimate
    path = ridge_path(X[0], y[0], [0.0], fit_intercept=False)
    torch.testing.assert_close(path.coef[0], w[0], rtol=1e-8, atol=1e-10)
