"""Where the test error of a trained linear model comes from: an exact additive split.

Synthetic data y = X w* + b* + eps with isotropic test inputs x ~ N(0, I), so the population
test MSE of (w, b) is ||w - w*||^2 + (b - b*)^2 + sigma^2. Let Xc = X - 1 xbar^T be the centred
training matrix, P its row-space projector and Q = I - P its null-space projector. The ridge
solution at the model's own alpha (``conventions.sklearn_alpha``) is linear in the data,

    w_alpha = S w* + M eps,   S = (Xc^T Xc + alpha)^+ Xc^T Xc,   M = (Xc^T Xc + alpha)^+ Xc^T,

so the weight error splits exactly into four vectors,

    w - w* = Q w                 init_null: weights in the null space of Xc. The data gradient
                                            X^T r never has a component there, so gradient
                                            descent at lam = 0 keeps the initial Q w0 for ever
           + (P w - w_alpha)     opt:       row-space distance to the exact ridge answer
           + (S w* - w*)         bias:      shrinkage (S - I) P w* plus the unseen signal -Q w*
           + M eps               noise:     the fitted label noise (its realisation)

whose squared norms are the ``err_*`` columns; the inner products between them are reported
together as ``err_cross`` (never hidden), and the intercept as ``err_intercept``:

    test_mse = err_init_null + err_opt + err_bias + err_noise + err_cross + err_intercept + sigma^2

Hastie, Montanari, Rosset & Tibshirani (2019), Sec. 2, give the same bias/variance split for
the min-norm interpolant; the null-space term is why a random initialisation adds
||Q w0||^2 ~ ||w0||^2 (1 - (n-1)/d) to the test error of interpolating gradient descent.

This module is pure: it imports torch only.
"""

from __future__ import annotations

import torch

from wdlab.conventions import sklearn_alpha
from wdlab.exact.ridge import _as64, _nonnull, _svd_filters

Tensor = torch.Tensor

#: The additive columns, in the order they are documented.
COLUMNS: tuple[str, ...] = (
    "err_init_null", "err_opt", "err_bias", "err_noise", "err_cross", "err_intercept",
)


def decompose_error(
    w,
    b,
    X,
    y,
    *,
    w_star,
    b_star: float,
    noise: float,
    w0=None,
    lam=0.0,
    loss: str = "mse",
    penalty: str = "mean",
    fit_intercept: bool = True,
) -> dict[str, Tensor]:
    """Split the population test MSE of trained models into exact additive parts.

        test_mse = ||w - w*||^2 + (b - b*)^2 + sigma^2
                 = err_init_null + err_opt + err_bias + err_noise + err_cross
                   + err_intercept + sigma^2

    (see the module docstring for each term). The reference ridge uses the models' own lam in
    the (loss, penalty) convention; for a decoupled decay pass lam = 0 and read ``err_opt``.

    Args:
        w: (K, D) or (D,) trained weights.
        b: (K,) or scalar trained intercepts.
        X: (N, D) training design.
        y: (N,) training targets (the realised noise is y - X w* - b*).
        w_star: (D,) true weights.
        b_star: true intercept.
        noise: label noise standard deviation sigma.
        w0: optional (K, D) or (D,) initial weights; adds ``init_null`` = ||Q w0||^2.
        lam: scalar or (K,) regularisation of the models, >= 0.
        loss, penalty: lam's convention (``wdlab.conventions``).
        fit_intercept: whether the models learned an intercept (centre X); else b* must be
            absorbed by the caller and b = 0.

    Returns:
        Dict of (K,) float64 tensors: the ``COLUMNS``, ``excess`` (= their sum),
        ``test_mse`` (= excess + sigma^2), ``noise_var`` (= sigma^2) and, given w0,
        ``init_null``.
    """
    W = _as64(w, "w")
    W = W[None] if W.ndim == 1 else W  # (K, D)
    K, d = W.shape
    X, y = _as64(X, "X"), _as64(y, "y").reshape(-1)  # (N, D) (N,)
    n = X.shape[0]
    if X.shape[1] != d:
        raise ValueError(f"w: expected {X.shape[1]} columns to match X, got {d}")
    bias = _as64(b, "b").reshape(-1).expand(K)  # (K,)
    w_star_t = _as64(w_star, "w_star").reshape(-1)  # (D,)
    lam_t = _as64(lam, "lam").reshape(-1).expand(K)  # (K,)
    alphas = sklearn_alpha(lam_t, loss, penalty, n, d)  # (K,)

    eps = y - X @ w_star_t - float(b_star)  # (N,) realised label noise
    Xc, eps_c = (X - X.mean(0), eps - eps.mean()) if fit_intercept else (X, eps)
    U, s, Vh = torch.linalg.svd(Xc, full_matrices=False)  # (N, R) (R,) (R, D)
    f_coef, f_hat = _svd_filters(s, alphas)  # (K, R)
    Vr = Vh[_nonnull(s)]  # (R', D) orthonormal basis of the row space of Xc

    def row(v: Tensor) -> Tensor:
        return (v @ Vr.T) @ Vr  # (K, D) projection onto the row space of Xc

    Pw = row(W)  # (K, D)
    a_null = W - Pw  # (K, D)
    w_alpha = (f_hat * (Vh @ w_star_t)) @ Vh + (f_coef * (U.T @ eps_c)) @ Vh  # (K, D)
    g_opt = Pw - w_alpha  # (K, D)
    bias_vec = (f_hat * (Vh @ w_star_t)) @ Vh - w_star_t  # (K, D) = S w* - w*
    noise_vec = (f_coef * (U.T @ eps_c)) @ Vh  # (K, D) = M eps

    sq = lambda v: (v * v).sum(-1)  # noqa: E731
    err_w = sq(W - w_star_t)  # (K,)
    out = {
        "err_init_null": sq(a_null),
        "err_opt": sq(g_opt),
        "err_bias": sq(bias_vec),
        "err_noise": sq(noise_vec),
    }
    out["err_cross"] = err_w - sum(out.values())
    out["err_intercept"] = (bias - float(b_star)) ** 2
    out["excess"] = err_w + out["err_intercept"]
    out["noise_var"] = torch.full((K,), float(noise) ** 2, dtype=torch.float64)
    out["test_mse"] = out["excess"] + out["noise_var"]
    if w0 is not None:
        W0 = _as64(w0, "w0")
        W0 = (W0[None] if W0.ndim == 1 else W0).expand(K, d)  # (K, D)
        out["init_null"] = sq(W0 - row(W0))
    return out
