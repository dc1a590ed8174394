"""Closed-form ridge for a whole lambda path from one SVD, with exact LOO and GCV.

For each lam_k, in the engine's (loss, penalty) convention,

    (w_k, b_k) = argmin  c_L mean((X w + b - y)^2) + c_P lam_k ||w||^2      (b unpenalised)

is the scikit-learn ridge with alpha_k = n c_P lam_k / c_L (``conventions.sklearn_alpha``).
With the centred design Xc = X - 1 xbar^T = U diag(s) V^T (one thin SVD):

    w_k = V diag(s / (s^2 + alpha_k)) U^T yc,      b_k = ybar - xbar^T w_k,
    H_k = 1/n 11^T + U diag(s^2 / (s^2 + alpha_k)) U^T       (hat matrix, intercept included)
    LOO_k = mean_i ((y_i - yhat_ki) / (1 - H_k,ii))^2          (exact: Allen 1974)
    GCV_k = mean_i (y_i - yhat_ki)^2 / (1 - tr(H_k) / n)^2    (Golub, Heath & Wahba 1979)

Everything after the SVD costs O(K n d). Inputs may be numpy arrays or torch tensors; outputs
are float64 torch tensors on the CPU.

This module is pure: it imports torch only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wdlab.conventions import LOSS_VALUE_SCALE, penalty_value_scale, sklearn_alpha

Tensor = torch.Tensor


def _as64(a, name: str) -> Tensor:
    """``a`` as a float64 CPU tensor. Python floats and lists go straight to float64:
    ``torch.as_tensor(0.1)`` would round them to float32 first (0.1000000015)."""
    t = a if isinstance(a, Tensor) else torch.as_tensor(a)  # numpy: no copy, dtype kept
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"{name}: expected a real array, got dtype {t.dtype}")
    if not isinstance(a, Tensor) and t.dtype != torch.float64:
        t = torch.as_tensor(a, dtype=torch.float64)  # from the Python numbers themselves
    return t.detach().to(device="cpu", dtype=torch.float64)


@dataclass(frozen=True)
class RidgePath:
    """Ridge solutions and their cross-validation errors along a lam path (float64, CPU)."""

    lams: Tensor  # (K,) lam in the (loss, penalty) convention
    alphas: Tensor  # (K,) the same path as scikit-learn's alpha
    coef: Tensor  # (K, D)
    intercept: Tensor  # (K,)
    train_mse: Tensor  # (K,) mean squared training residual
    loo: Tensor  # (K,) exact leave-one-out mean squared error (nan where H_ii = 1)
    gcv: Tensor  # (K,) generalised cross-validation error
    test_mse: Tensor | None  # (K,) mean squared test residual, when test data was given
    loss: str = "mse"
    penalty: str = "mean"

    @property
    def theta(self) -> Tensor:
        """(K, D + 1) parameters [w, b], the layout of the engine's ``reference=``."""
        return torch.cat([self.coef, self.intercept[:, None]], dim=1)  # (K, D+1)

    def best_index(self, criterion: str = "loo") -> int:
        """Index of the lam minimising ``criterion`` (``loo``, ``gcv`` or ``test_mse``).

        Ties go to the first (smallest index) minimiser; nan entries never win.
        """
        values = {"loo": self.loo, "gcv": self.gcv, "test_mse": self.test_mse}.get(criterion)
        if criterion not in ("loo", "gcv", "test_mse"):
            raise ValueError(f"criterion: expected 'loo', 'gcv' or 'test_mse', got {criterion!r}")
        if values is None:
            raise ValueError("criterion: 'test_mse' needs X_test and y_test")
        v = torch.nan_to_num(values, nan=float("inf"))  # (K,)
        return int(torch.argmin(v))


def _nonnull(s: Tensor) -> Tensor:
    """(..., R) mask of the singular values that are not numerically zero."""
    top = s.max(-1, keepdim=True).values.clamp_min(torch.finfo(s.dtype).tiny)  # (..., 1)
    return s > top * max(s.shape[-1], 1) * 1e-13


def _svd_filters(s: Tensor, alphas: Tensor) -> tuple[Tensor, Tensor]:
    """Spectral filters s/(s^2+alpha) and s^2/(s^2+alpha), zero on numerically null s."""
    keep = _nonnull(s)  # (R,)
    s_k = torch.where(keep, s, torch.ones_like(s))  # avoid 0/0 at alpha = 0
    denom = s_k**2 + alphas[:, None]  # (K, R)
    f_coef = torch.where(keep, s_k / denom, torch.zeros_like(denom))  # (K, R)
    f_hat = torch.where(keep, s_k**2 / denom, torch.zeros_like(denom))  # (K, R)
    return f_coef, f_hat


def ridge_solve(X: Tensor, y: Tensor, w: Tensor, lams: Tensor, loss: str, penalty: str, *,
                fit_intercept: bool = True) -> tuple[Tensor, Tensor]:
    """The weighted ridge minimiser of B problems at once, for every lam (one batched SVD).

        minimise  c_L sum_n s_n (x_n^T w + b - y_n)^2 + c_P lam ||w||^2,   s = w / sum(w),

    i.e. scikit-learn's ``Ridge(alpha).fit(X, y, sample_weight=w)`` with alpha = sum(w) c_P
    lam / c_L (``sklearn_alpha`` with n = the sum of the weights). With the weighted centring
    xbar = s^T X and Xc = diag(sqrt(w)) (X - 1 xbar^T) = U diag(s) V^T:
    coef = V diag(s / (s^2 + alpha)) U^T yc, b = ybar - xbar^T coef. 0/1 weights select samples
    (zero-padded rows of draws with fewer samples).

    Args:
        X: (B, N, D), y: (B, N), w: (B, N) weights >= 0 (sum > 0); float64 tensors.
        lams: (L,) in the (loss, penalty) convention.

    Returns:
        coef (B, L, D) and intercept (B, L).
    """
    B, N, D = X.shape
    n = w.sum(1)  # (B,)
    if fit_intercept:
        x_mean = (w[:, :, None] * X).sum(1) / n[:, None]  # (B, D)
        y_mean = (w * y).sum(1) / n  # (B,)
    else:
        x_mean, y_mean = X.new_zeros(B, D), y.new_zeros(B)
    root = w.sqrt()  # (B, N), = w for 0/1 masks
    Xc = (X - x_mean[:, None, :]) * root[:, :, None]  # (B, N, D) zero-weight rows are zero
    yc = (y - y_mean[:, None]) * root  # (B, N)
    U, s, Vh = torch.linalg.svd(Xc, full_matrices=False)  # (B, N, R) (B, R) (B, R, D)
    alpha = n[:, None] * lams[None, :] * (penalty_value_scale(penalty, D)
                                           / LOSS_VALUE_SCALE[loss])  # (B, L)
    keep = _nonnull(s)  # (B, R)
    s_k = torch.where(keep, s, torch.ones_like(s))  # (B, R)
    f = torch.where(keep[:, None, :], s_k[:, None, :] / (s_k[:, None, :] ** 2 + alpha[:, :, None]),
                    torch.zeros(1, dtype=s.dtype))  # (B, L, R)
    uty = torch.bmm(U.transpose(1, 2), yc[:, :, None])[:, :, 0]  # (B, R)
    coef = torch.bmm(f * uty[:, None, :], Vh)  # (B, L, D)
    intercept = y_mean[:, None] - torch.bmm(coef, x_mean[:, :, None])[:, :, 0]  # (B, L)
    return coef, intercept


def _unweighted(X: Tensor, y: Tensor, lams: Tensor, loss: str, penalty: str,
                fit_intercept: bool) -> tuple[Tensor, ...]:
    """coef (K, D), intercept (K,), residuals (K, N), hat diagonal (K, N), filter (K, R)."""
    n, d = X.shape
    alphas = sklearn_alpha(lams, loss, penalty, n, d)  # (K,)
    if fit_intercept:
        x_mean, y_mean = X.mean(0), y.mean()  # (D,) ()
    else:
        x_mean, y_mean = torch.zeros(d, dtype=X.dtype), torch.zeros((), dtype=X.dtype)
    Xc, yc = X - x_mean, y - y_mean  # (N, D) (N,)
    U, s, Vh = torch.linalg.svd(Xc, full_matrices=False)  # (N, R) (R,) (R, D)
    f_coef, f_hat = _svd_filters(s, alphas)  # (K, R)
    Uty = U.T @ yc  # (R,)
    coef = (f_coef * Uty) @ Vh  # (K, D)
    intercept = y_mean - coef @ x_mean  # (K,)
    fitted = y_mean + (f_hat * Uty) @ U.T  # (K, N)
    h_diag = f_hat @ (U * U).T + (1.0 / n if fit_intercept else 0.0)  # (K, N)
    return coef, intercept, y - fitted, h_diag, f_hat


def _weighted(X: Tensor, y: Tensor, v: Tensor, lams: Tensor, loss: str, penalty: str,
              fit_intercept: bool) -> tuple[Tensor, ...]:
    """As ``_unweighted`` for weights v: the fit is ``ridge_solve``'s, and the hat matrix of
    the rows scaled by sqrt(v) is H = sqrt(v) sqrt(v)^T / sum(v) + U diag(f_hat) U^T."""
    coef, intercept = ridge_solve(X[None], y[None], v[None], lams, loss, penalty,
                                  fit_intercept=fit_intercept)  # (1, K, D) (1, K)
    coef, intercept = coef[0], intercept[0]  # (K, D) (K,)
    s_w = v / v.sum()  # (N,)
    x_mean = s_w @ X if fit_intercept else torch.zeros(X.shape[1], dtype=X.dtype)  # (D,)
    U, s, _ = torch.linalg.svd((X - x_mean) * v.sqrt()[:, None], full_matrices=False)
    alphas = sklearn_alpha(lams, loss, penalty, float(v.sum()), X.shape[1])  # (K,)
    _, f_hat = _svd_filters(s, alphas)  # (K, R)
    h_diag = f_hat @ (U * U).T + (s_w if fit_intercept else 0.0)  # (K, N)
    resid = y - (X @ coef.T + intercept).T  # (K, N)
    return coef, intercept, resid, h_diag, f_hat


def ridge_path(
    X,
    y,
    lams,
    loss: str = "mse",
    penalty: str = "mean",
    *,
    X_test=None,
    y_test=None,
    fit_intercept: bool = True,
    sample_weight=None,
) -> RidgePath:
    """The exact ridge minimiser for every lam, from one SVD of the centred training matrix.

        minimise  c_L mean((X w + b - y)^2) + c_P lam ||w||^2   over w and the unpenalised b

    (c_L, c_P as in ``wdlab.conventions``: ``mse``/``half_mse``, ``mean``/``half_sum``/``sum``/
    ``weight_decay``). lam = 0 gives least squares, or the minimum-norm interpolant when
    rank(Xc) < d. LOO uses the intercept-aware hat matrix H = 11^T/n + Xc (Xc^T Xc + alpha)^-1
    Xc^T, so it equals refitting (w, b) without each sample (Allen 1974; Hastie, Tibshirani &
    Friedman 2009, Sec. 7.10; GCV: Golub, Heath & Wahba 1979).

    Args:
        X: (N, D) training design, numpy or torch.
        y: (N,) training targets.
        lams: (K,) or scalar, each >= 0, in the (loss, penalty) convention.
        loss: ``mse`` or ``half_mse``.
        penalty: ``mean``, ``half_sum``, ``sum`` or ``weight_decay`` (coupled, = half_sum).
        X_test: optional (N_te, D) test design.
        y_test: optional (N_te,) test targets.
        fit_intercept: learn the unpenalised intercept (centre X and y); else b = 0.
        sample_weight: optional (N,) weights v >= 0 (sum > 0). The data term becomes
            c_L sum_n s_n r_n^2 with s = v / sum(v), i.e. ``Ridge(alpha).fit(X, y, v)`` with
            alpha = sum(v) c_P lam / c_L, as ``ridge_solve``; ``train_mse`` and ``loo`` are
            then s-weighted means, LOO refits without one sample at the same alpha, and GCV
            uses the weighted hat matrix. Equal weights give the unweighted path.

    Returns:
        A ``RidgePath`` of float64 CPU tensors.
    """
    X, y = _as64(X, "X"), _as64(y, "y").reshape(-1)
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-d (n_train, n_features) array, got shape {tuple(X.shape)}")
    n, d = X.shape
    if y.shape[0] != n:
        raise ValueError(f"y: expected {n} values to match X, got {y.shape[0]}")
    lams_t = _as64(lams, "lams").reshape(-1)  # (K,)
    if not bool(torch.isfinite(lams_t).all()) or bool((lams_t < 0).any()):
        raise ValueError("lams: every lam must be finite and >= 0")
    if sample_weight is None:
        coef, intercept, resid, h_diag, f_hat = _unweighted(X, y, lams_t, loss, penalty,
                                                            fit_intercept)
        mean = lambda r: r.mean(1)  # noqa: E731
        alphas = sklearn_alpha(lams_t, loss, penalty, n, d)  # (K,)
    else:
        v = _as64(sample_weight, "sample_weight").reshape(-1)  # (N,)
        if v.shape[0] != n or not bool(torch.isfinite(v).all()) or bool((v < 0).any()) \
                or not float(v.sum()) > 0:
            raise ValueError(f"sample_weight: expected {n} finite weights >= 0 with a positive sum")
        coef, intercept, resid, h_diag, f_hat = _weighted(X, y, v, lams_t, loss, penalty,
                                                          fit_intercept)
        s_w = v / v.sum()  # (N,)
        mean = lambda r: r @ s_w  # noqa: E731
        alphas = sklearn_alpha(lams_t, loss, penalty, float(v.sum()), d)  # (K,)
    one_minus_h = 1.0 - h_diag  # (K, N)
    # H_ii = 1 (interpolation at alpha = 0): the leave-one-out refit is undefined -> nan
    ok = one_minus_h > 1e-12
    loo_resid = torch.where(ok, resid / torch.where(ok, one_minus_h, 1.0), float("nan"))
    loo = mean(loo_resid**2)  # (K,)
    train_mse = mean(resid**2)  # (K,)
    dof = f_hat.sum(1) + float(fit_intercept)  # (K,) tr(H)
    gcv = train_mse / (1.0 - dof / n) ** 2  # (K,)

    test_mse = None
    if X_test is not None or y_test is not None:
        if X_test is None or y_test is None:
            raise ValueError("X_test: give both X_test and y_test, or neither")
        Xt, yt = _as64(X_test, "X_test"), _as64(y_test, "y_test").reshape(-1)
        if Xt.ndim != 2 or Xt.shape[1] != d or Xt.shape[0] != yt.shape[0]:
            raise ValueError(f"X_test: expected shape (n_test, {d}) matching y_test")
        r_test = Xt @ coef.T + intercept - yt[:, None]  # (N_te, K)
        test_mse = (r_test**2).mean(0)  # (K,)

    return RidgePath(lams_t, alphas, coef, intercept, train_mse, loo, gcv, test_mse,
                     loss, penalty)
