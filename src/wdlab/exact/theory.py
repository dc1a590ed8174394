"""Out-of-sample risk of ridge regression under isotropic Gaussian design.

Model: y = x^T w* + eps, x ~ N(0, I_d), eps ~ N(0, sigma^2), r^2 = ||w*||^2, gamma = d / n.
Risk is the excess out-of-sample error of the estimate w_hat (test MSE = risk + sigma^2):

    R(w_hat) = E_x[(x^T (w_hat - w*))^2] = ||w_hat - w*||^2.

lam convention: every lam here is the per-sample one of Dobriban & Wager (2018) and Hastie,
Montanari, Rosset & Tibshirani (2019),

    w_hat = argmin (1/n) ||y - X w||^2 + lam ||w||^2,

i.e. the engine's ``mse+sum`` convention (scikit-learn alpha = n * lam). Convert with
``to_convention`` (which calls ``wdlab.conventions.translate``).

This module is pure: it imports torch (through conventions) and numpy only.
"""

from __future__ import annotations

import numpy as np

from wdlab.conventions import translate

#: The convention of every lam in this module: mean(r^2) + lam ||w||^2.
THEORY_CONVENTION = "mse+sum"


def to_convention(lam, dst: str, *, n_train: int, n_features: int):
    """lam from this module's ``mse+sum`` convention into convention ``dst`` (e.g. ``seed``)."""
    return translate(lam, THEORY_CONVENTION, dst, n_train=n_train, n_features=n_features)


def mp_stieltjes(lam, gamma: float):
    """m(-lam) for the Marchenko-Pastur law of ratio gamma (variance 1), lam > 0.

        m(z) = integral dF_gamma(s) / (s - z),
        m(-lam) = (-(1 - gamma + lam) + sqrt((1 - gamma + lam)^2 + 4 gamma lam)) / (2 gamma lam),

    the root of gamma z m^2 - (1 - gamma - z) m + 1 = 0 with m > 0 (Marchenko & Pastur 1967;
    Bai & Silverstein 2010, Sec. 3.3). F_gamma is the limiting spectrum of X^T X / n.
    """
    lam = np.asarray(lam, dtype=np.float64)
    a = 1.0 - gamma + lam
    disc = np.sqrt(a * a + 4.0 * gamma * lam)
    # 2 / (a + disc) is the same root, written without cancellation when a > 0
    return np.where(a > 0, 2.0 / (a + disc), (disc - a) / (2.0 * gamma * lam))


def mp_stieltjes_deriv(lam, gamma: float):
    """m'(-lam) = integral dF_gamma(s) / (s + lam)^2, by differentiating the quadratic:

        m' = (gamma m^2 + m) / ((1 - gamma + lam) + 2 gamma lam m).
    """
    lam = np.asarray(lam, dtype=np.float64)
    m = mp_stieltjes(lam, gamma)
    return (gamma * m * m + m) / ((1.0 - gamma + lam) + 2.0 * gamma * lam * m)


def ridge_bias_variance(lam, gamma: float, r2: float, sigma2: float):
    """Asymptotic bias and variance of ridge as n, d -> inf with d/n -> gamma, lam > 0.

        B(lam) = r^2 lam^2 m'(-lam),
        V(lam) = sigma^2 gamma (m(-lam) - lam m'(-lam)),

    Dobriban & Wager (2018), Theorem 2.1 with Sigma = I; Hastie, Montanari, Rosset &
    Tibshirani (2019), Theorem 5 / Corollary 5 (isotropic features).

    Args:
        lam: per-sample lam (``mse+sum``), scalar or array, > 0.
        gamma: d / n.
        r2: signal strength ||w*||^2.
        sigma2: noise variance sigma^2.

    Returns:
        (bias, variance), arrays shaped like ``lam``.
    """
    m, dm = mp_stieltjes(lam, gamma), mp_stieltjes_deriv(lam, gamma)
    lam = np.asarray(lam, dtype=np.float64)
    return r2 * lam * lam * dm, sigma2 * gamma * (m - lam * dm)


def ridge_risk(lam, gamma: float, r2: float, sigma2: float):
    """Asymptotic excess risk R(lam) = B(lam) + V(lam) (see ``ridge_bias_variance``)."""
    b, v = ridge_bias_variance(lam, gamma, r2, sigma2)
    return b + v


def optimal_lam(gamma: float, r2: float, sigma2: float, *, convention: str = THEORY_CONVENTION,
                n_train: int | None = None, n_features: int | None = None) -> float:
    """The risk-minimising lam* = sigma^2 gamma / r^2 (= gamma / SNR).

    Dobriban & Wager (2018), Theorem 2.1 (lam* = gamma / alpha^2 with alpha^2 = r^2/sigma^2);
    Hastie et al. (2019), Theorem 6. In the ``mse+sum`` convention unless ``convention`` is
    given, which then needs ``n_train`` and ``n_features``.
    """
    lam = sigma2 * gamma / r2
    if convention == THEORY_CONVENTION:
        return lam
    if n_train is None or n_features is None:
        raise ValueError("n_train: converting lam* to another convention needs n_train and "
                         "n_features")
    return float(to_convention(lam, convention, n_train=n_train, n_features=n_features))


def optimal_risk(gamma: float, r2: float, sigma2: float) -> float:
    """R(lam*) = sigma^2 gamma m(-lam*) (Dobriban & Wager 2018, Theorem 2.1)."""
    return float(sigma2 * gamma * mp_stieltjes(optimal_lam(gamma, r2, sigma2), gamma))


def ridgeless_risk(gamma: float, r2: float, sigma2: float) -> float:
    """lam -> 0+ limit of the asymptotic risk (least squares / minimum-norm interpolation).

        gamma < 1:  sigma^2 gamma / (1 - gamma)
        gamma > 1:  r^2 (1 - 1/gamma) + sigma^2 / (gamma - 1)
        gamma = 1:  inf

    Hastie, Montanari, Rosset & Tibshirani (2019), Theorems 1 and 2 (isotropic case).
    """
    if gamma < 1:
        return sigma2 * gamma / (1.0 - gamma)
    if gamma > 1:
        return r2 * (1.0 - 1.0 / gamma) + sigma2 / (gamma - 1.0)
    return float("inf")


def min_norm_risk(n_train: int, n_features: int, r2: float, sigma2: float) -> float:
    """Finite-sample expected excess risk of least squares / the minimum-norm interpolant.

    For Gaussian design X (n x d, rows N(0, I_d)), no intercept, expectation over X and eps:

        n > d + 1:  sigma^2 d / (n - d - 1)                     (E[(X^T X)^-1] = I/(n-d-1))
        n < d - 1:  r^2 (1 - n/d) + sigma^2 n / (d - n - 1)
        otherwise:  inf

    Breiman & Freedman (1983); Belkin, Hsu & Xu (2020) "Two models of double descent for weak
    features", Theorem 1; Hastie et al. (2019), Sec. 2. With a fitted intercept the weights see
    the centred design, which is Gaussian with n - 1 rows: use ``n_train - 1``.
    """
    n, d = int(n_train), int(n_features)
    if n > d + 1:
        return sigma2 * d / (n - d - 1)
    if n < d - 1:
        return r2 * (1.0 - n / d) + sigma2 * n / (d - n - 1)
    return float("inf")
