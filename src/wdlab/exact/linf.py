"""AdamW's exact limit: box-constrained least squares along a weight-decay path.

For each decoupled weight decay lam_k (``torch.optim.AdamW``'s ``weight_decay``), with sample
weights s_i (normalised to sum 1) and an unpenalised, unconstrained intercept b,

    (w_k, b_k) = argmin  sum_i s_i (x_i^T w + b - y_i)^2   subject to  ||w||_inf <= R_k,

    R_k = 1 / lam_k               (``decoupled``: w <- w - lr_t * lam * w, decay x lr)
    R_k = lr / lam_k              (``independent``: w <- w - eta_t * lam * w, decay not x lr)

Xie & Li (ICML 2024, "Implicit Bias of AdamW: l-inf Norm Constrained Optimization",
Theorem 1.1): if full-batch AdamW converges under a non-increasing lr schedule whose partial
sums diverge, its limit is a KKT point of min L(w) s.t. ||w||_inf <= 1/lam; for convex L it
is a constrained minimiser. In the eps -> 0 limit, the fixed point of
w <- w - lr_t (m / (sqrt(v) + eps) + lam w) has m / sqrt(v) = sign(g), so
sign(g_i) = -lam w_i wherever g_i != 0: |w_i| = 1/lam with g_i w_i <= 0 (the box's KKT
conditions). The ``independent`` decay is the same step with lam_eff = lam / lr (base lr;
eta_t multiplies both terms), hence R = lr / lam. A coordinate that is not decayed (the
engine's intercept, unless ``decay_bias``) is never pulled inward, so at the limit its
gradient vanishes: it is a free variable of the KKT system. For least squares the free
intercept is eliminated exactly by weighted centring: b = ybar_s - xbar_s^T w, and w solves

    min  ||A w - c||^2  s.t.  -R <= w <= R,    A = diag(sqrt(s)) (X - 1 xbar_s^T),
                                               c = diag(sqrt(s)) (y - ybar_s),

by the bounded-variable least-squares active-set method of Stark & Parker (1995) in float64,
each free-set solve an exact (minimum-norm) least-squares solve, warm-started along the path.
The result satisfies the KKT conditions to rounding. The loss scale (``mse``/``half_mse``) does
not move the minimiser.

Uniqueness: the fitted values A w (hence the training loss) are unique. w itself is unique
when the columns of the free coordinates are linearly independent at the solution (always for
a tall design of full column rank). Otherwise (wide designs with an inactive or partly active
box) the minimisers form a polytope, and so do the KKT points AdamW may reach from different
initialisations; this module returns the one whose free coordinates are the minimum-norm
least-squares solution given the bound ones, and the distance to it measures convergence only
where the minimiser is unique.

SGD with a decoupled decay has no box: its fixed point is a ridge
(``decoupled_sgd_fixed_point``); ``limit_theta`` gives either, in the engine's layout.

This module is pure: it imports numpy and torch only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

Tensor = torch.Tensor

#: The decays whose limit this module knows, and how the box radius depends on (lam, lr).
LINF_REGULARIZERS: tuple[str, ...] = ("decoupled", "independent")


def _as64(a, name: str) -> np.ndarray:
    """float64 numpy copy; lists of Python floats stay exact (torch.as_tensor would round
    them to float32)."""
    if isinstance(a, torch.Tensor):
        if not (a.is_floating_point() or a.dtype in (torch.int32, torch.int64)):
            raise ValueError(f"{name}: expected a real array, got dtype {a.dtype}")
        return a.detach().to(device="cpu", dtype=torch.float64).numpy()
    arr = np.asarray(a)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{name}: expected a real array, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def linf_radius(lams, regularizer: str = "decoupled", lr=None) -> np.ndarray:
    """(K,) box radius R of the eps -> 0 AdamW limit: 1/lam (decoupled) or lr/lam (independent).

    lam = 0 gives R = inf (no constraint: least squares).
    """
    lam = np.asarray(_as64(lams, "lams"), dtype=np.float64).reshape(-1)  # (K,)
    if not np.isfinite(lam).all() or (lam < 0).any():
        raise ValueError("lams: every weight decay must be finite and >= 0")
    if regularizer == "decoupled":
        scale = np.ones_like(lam)
    elif regularizer == "independent":
        if lr is None:
            raise ValueError("lr: the independent decay's box radius lr/lam needs the base lr")
        scale = np.broadcast_to(np.asarray(_as64(lr, "lr")).reshape(-1), lam.shape).copy()
        if not np.isfinite(scale).all() or (scale <= 0).any():
            raise ValueError("lr: every learning rate must be finite and > 0")
    else:
        raise ValueError(f"regularizer: expected one of {LINF_REGULARIZERS}, got {regularizer!r}")
    with np.errstate(divide="ignore"):
        return np.where(lam > 0, scale / np.where(lam > 0, lam, 1.0), np.inf)  # (K,)


@dataclass(frozen=True)
class LinfPath:
    """Box-constrained least-squares solutions along a decoupled weight-decay path (float64, CPU)."""

    lams: Tensor  # (K,) decoupled weight decay (the optimizer's weight_decay)
    radius: Tensor  # (K,) box radius R: ||w||_inf <= R (inf where lam = 0)
    coef: Tensor  # (K, D)
    intercept: Tensor  # (K,) unconstrained (0 without fit_intercept)
    fitted: Tensor  # (K, N) training predictions X w + b
    train_mse: Tensor  # (K,) sample-weighted mean squared training residual
    n_bound: Tensor  # (K,) int64, coordinates on the box's boundary
    loss: str = "mse"
    regularizer: str = "decoupled"

    @property
    def theta(self) -> Tensor:
        """(K, D + 1) parameters [w, b], the layout of the engine's ``reference=``."""
        return torch.cat([self.coef, self.intercept[:, None]], dim=1)  # (K, D+1)

    def predict(self, X) -> Tensor:
        """(K, N) predictions of every solution on the design ``X`` (N, D)."""
        Xt = torch.as_tensor(_as64(X, "X"))
        if Xt.ndim != 2 or Xt.shape[1] != self.coef.shape[1]:
            raise ValueError(f"X: expected shape (n, {self.coef.shape[1]})")
        return self.coef @ Xt.T + self.intercept[:, None]  # (K, N)


def _lstsq(A: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Minimum-norm least-squares solution of A z = c (rank-revealing, via numpy's SVD)."""
    if A.shape[1] == 0:
        return np.zeros(0)
    return np.linalg.lstsq(A, c, rcond=None)[0]


def _kkt_violation(g: np.ndarray, state: np.ndarray) -> np.ndarray:
    """(D,) how much each coordinate violates the KKT conditions of the box problem.

    g is the gradient A^T (A w - c); state is -1 at the lower bound, +1 at the upper bound,
    0 free. At a lower bound the gradient must be >= 0, at an upper bound <= 0, free: = 0.
    """
    return np.where(state == 0, np.abs(g), g * state)  # (D,) > 0 where violated


def bvls(A: np.ndarray, c: np.ndarray, radius: float, state0: np.ndarray | None = None,
         max_iter: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bounded-variable least squares min ||A w - c||^2 s.t. -R <= w <= R (Stark & Parker 1995).

    Active set: free coordinates solve the least-squares problem with the bound ones fixed
    (minimum-norm); a step that leaves the box stops at the first bound it meets, which joins
    the bound set; at a solution of the free problem, the bound coordinate whose multiplier has
    the wrong sign the most is freed. A freed coordinate that the next solve would push
    straight back out is kept on its bound (Stark & Parker's anti-cycling rule).

    Args:
        A: (M, D) design; c: (M,) targets; radius: R > 0 (inf: plain least squares).
        state0: optional (D,) warm start, -1/0/+1 (lower bound, free, upper bound).
        max_iter: bound on outer iterations (default 10 D + 50).

    Returns:
        w (D,) and its state (D,) int8: -1 at -R, +1 at +R, 0 free.
    """
    M, D = A.shape
    if not np.isfinite(radius) or D == 0:
        return _lstsq(A, c), np.zeros(D, dtype=np.int8)
    R = float(radius)
    state = np.zeros(D, dtype=np.int8) if state0 is None else state0.astype(np.int8).copy()
    scale = max(float(np.abs(A).max(initial=0.0)), 1e-300)
    tol = 1e-12 * scale * (scale * R * max(D, 1) + float(np.abs(c).max(initial=0.0)))

    def solve_free(state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        free = np.flatnonzero(state == 0)
        rhs = c - A[:, state != 0] @ (R * state[state != 0])  # (M,)
        return free, _lstsq(A[:, free], rhs)

    w = R * state.astype(np.float64)
    # Start: solve the free problem from the warm state, then clip into the box.
    free, z = solve_free(state)
    w[free] = np.clip(z, -R, R)
    state[free] = np.where(z <= -R, -1, np.where(z >= R, 1, 0))
    w[state != 0] = R * state[state != 0]
    blocked: set[int] = set()
    n_iter = max_iter or 10 * D + 50
    for _ in range(n_iter):
        # Loop B: move the free coordinates to their free-problem solution, or to the first
        # bound on the way there.
        for _ in range(D + 1):
            free, z = solve_free(state)
            lo, hi = z < -R, z > R
            if not (lo.any() or hi.any()):
                w[free] = z
                break
            x = w[free]
            target = np.where(lo, -R, R)
            out = lo | hi
            step = np.ones_like(z)
            step[out] = (target[out] - x[out]) / (z[out] - x[out])
            i = int(np.argmin(np.where(out, step, np.inf)))
            alpha = float(np.clip(step[i], 0.0, 1.0))
            w[free] = x + alpha * (z - x)
            w[free[i]] = target[i]
            state[free[i]] = -1 if lo[i] else 1
        g = A.T @ (A @ w - c)  # (D,)
        viol = _kkt_violation(g, state)  # (D,)
        viol[state == 0] = 0.0  # the free ones solve their problem (up to rounding)
        viol[list(blocked)] = 0.0
        j = int(np.argmax(viol))
        if viol[j] <= tol:
            break
        # Anti-cycling: free j only if the free problem with j free moves it inward.
        trial = state.copy()
        trial[j] = 0
        free_t, z_t = solve_free(trial)
        zj = z_t[np.searchsorted(free_t, j)]
        if (state[j] < 0 and zj <= -R) or (state[j] > 0 and zj >= R):
            blocked.add(j)
            continue
        blocked.clear()
        state = trial
    else:
        raise RuntimeError(f"bvls: the KKT conditions still fail after {n_iter} iterations "
                           f"(largest violation {viol.max():.3g}, tolerance {tol:.3g})")
    return w, state


def _check_loss(loss: str) -> None:
    if loss not in ("mse", "half_mse"):
        raise ValueError(f"loss: expected 'mse' or 'half_mse', got {loss!r}")


def linf_path(
    X,
    y,
    lams,
    *,
    loss: str = "mse",
    fit_intercept: bool = True,
    sample_weight=None,
    regularizer: str = "decoupled",
    lr=None,
) -> LinfPath:
    """The exact eps -> 0 AdamW limit for every decoupled weight decay lam:

        minimise  sum_i s_i (x_i^T w + b - y_i)^2   s.t.  ||w||_inf <= R(lam),  b free,

    R = 1/lam for ``decoupled`` (torch.optim.AdamW's weight_decay) and lr/lam for
    ``independent``; lam = 0 is least squares (minimum-norm when rank-deficient).
    Xie & Li (ICML 2024), Theorem 1.1; solved by Stark & Parker's BVLS (see module docstring
    for what is returned when the minimiser is not unique).

    Args:
        X: (N, D) training design, numpy or torch.
        y: (N,) training targets.
        lams: (K,) or scalar, each >= 0: the optimizer's decoupled weight decay.
        loss: ``mse`` or ``half_mse`` (the scale does not move the minimiser).
        fit_intercept: learn the unconstrained intercept; else b = 0.
        sample_weight: optional (N,) non-negative weights (the engine's per-sample weights).
        regularizer: ``decoupled`` or ``independent``.
        lr: (K,) or scalar base learning rate, for ``independent``.

    Returns:
        A ``LinfPath`` of float64 CPU tensors, in the order of ``lams``.
    """
    _check_loss(loss)
    Xn, yn = _as64(X, "X"), _as64(y, "y").reshape(-1)
    if Xn.ndim != 2:
        raise ValueError(f"X: expected a 2-d (n_train, n_features) array, got shape {Xn.shape}")
    n, d = Xn.shape
    if yn.shape[0] != n:
        raise ValueError(f"y: expected {n} values to match X, got {yn.shape[0]}")
    if not np.isfinite(Xn).all():
        raise ValueError("X: every value must be finite")
    if not np.isfinite(yn).all():
        raise ValueError("y: every value must be finite")
    if sample_weight is None:
        s = np.full(n, 1.0 / max(n, 1))
    else:
        s = _as64(sample_weight, "sample_weight").reshape(-1)
        if s.shape[0] != n or not np.isfinite(s).all() or (s < 0).any() or s.sum() <= 0:
            raise ValueError(f"sample_weight: expected {n} finite values >= 0 with a positive sum")
        s = s / s.sum()
    lam = _as64(lams, "lams").reshape(-1)  # (K,)
    radius = linf_radius(lam, regularizer, lr)  # (K,)

    if fit_intercept:
        x_mean, y_mean = s @ Xn, float(s @ yn)  # (D,) ()
    else:
        x_mean, y_mean = np.zeros(d), 0.0
    root = np.sqrt(s)[:, None]  # (N, 1)
    A, c = root * (Xn - x_mean), root[:, 0] * (yn - y_mean)  # (N, D) (N,)
    if n > d:  # tall: ||A w - c||^2 = ||R w - Q^T c||^2 + const, a (D, D) problem
        Q, Rm = np.linalg.qr(A)
        A, c = Rm, Q.T @ c  # (D, D) (D,)

    K = lam.shape[0]
    coef = np.zeros((K, d))
    n_bound = np.zeros(K, dtype=np.int64)
    state = None
    for k in np.argsort(-radius, kind="stable"):  # loop over the path, loosest box first
        w, state = bvls(A, c, radius[k], state)
        coef[k], n_bound[k] = w, int((state != 0).sum())
        if not np.isfinite(radius[k]):
            state = None
    intercept = y_mean - coef @ x_mean  # (K,)
    fitted = coef @ Xn.T + intercept[:, None]  # (K, N)
    train_mse = ((fitted - yn) ** 2) @ s  # (K,)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return LinfPath(t(lam), t(radius), t(coef), t(intercept), t(fitted), t(train_mse),
                    t(n_bound), loss, regularizer)


def decoupled_sgd_fixed_point(X, y, weight_decay, *, loss: str = "mse",
                              fit_intercept: bool = True, sample_weight=None) -> Tensor:
    """(K, D1) the exact fixed point of full-batch SGD(W) with a decoupled decay: a ridge.

        c_g * X^T S (X w + b - y) + wd_k * w = 0,   sum_i s_i (x_i^T w + b - y_i) = 0,

    c_g = 2 (``mse``) or 1 (``half_mse``), S = diag(s) with s normalised to sum 1. ``wd_k`` is
    the effective coupled decay (1 - momentum) * lam (``decoupled``) or (1 - momentum) * lam / lr
    (``independent``): at the fixed point the momentum buffer is g / (1 - momentum). With
    wd = 0 on a rank-deficient design the minimum-norm solution (GD's limit from w0 = 0).
    Solved from one SVD of the weighted, centred design. [w, b] with an intercept, else w.
    """
    _check_loss(loss)
    Xn, yn = _as64(X, "X"), _as64(y, "y").reshape(-1)
    n, d = Xn.shape
    s = np.full(n, 1.0 / n) if sample_weight is None else _as64(sample_weight, "sample_weight")
    s = s / s.sum()
    wd = _as64(weight_decay, "weight_decay").reshape(-1)  # (K,)
    if fit_intercept:
        x_mean, y_mean = s @ Xn, float(s @ yn)  # (D,) ()
    else:
        x_mean, y_mean = np.zeros(d), 0.0
    root = np.sqrt(s)[:, None]  # (N, 1)
    A, c = root * (Xn - x_mean), root[:, 0] * (yn - y_mean)  # (N, D) (N,)
    U, sv, Vh = np.linalg.svd(A, full_matrices=False)  # (N, R) (R,) (R, D)
    keep = sv > sv.max(initial=0.0) * max(len(sv), 1) * 1e-13  # (R,) numerically non-null
    c_g = {"mse": 2.0, "half_mse": 1.0}[loss]
    sv_k = np.where(keep, sv, 1.0)
    filt = np.where(keep, c_g * sv_k / (c_g * sv_k**2 + wd[:, None]), 0.0)  # (K, R)
    coef = (filt * (U.T @ c)) @ Vh  # (K, D)
    theta = np.concatenate([coef, (y_mean - coef @ x_mean)[:, None]], 1) if fit_intercept else coef
    return torch.from_numpy(np.ascontiguousarray(theta))  # (K, D1)


def limit_theta(X, y, lams, *, optimizer: str, regularizer: str, lr=None,
                fit_intercept: bool = True, decay_bias: bool = False,
                sample_weight=None, momentum=0.0, loss: str = "mse") -> Tensor | None:
    """(K, D1) where full-batch training with a decoupled decay ends, or None.

    Adam/AdamW: the eps -> 0, lr -> 0 limit, the box-constrained least squares of
    ``linf_path``. SGD: the exact fixed point, a ridge with coupled decay (1 - momentum) * lam
    (``decoupled``) or (1 - momentum) * lam / lr (``independent``),
    ``decoupled_sgd_fixed_point``. The engine's ``reference=`` layout ([w, b] with an
    intercept, else w), for recording ``dist_to_limit``. With ``decay_bias`` the intercept is
    decayed too, so it joins the box or the ridge (the ones column becomes a decayed
    variable). None for a coupled regularizer (its answer is ``wdlab.exact.ridge``).
    """
    if regularizer not in LINF_REGULARIZERS or optimizer not in ("sgd", "adam", "adamw"):
        return None
    Xn = _as64(X, "X")
    if fit_intercept and decay_bias:
        Xn = np.concatenate([Xn, np.ones((Xn.shape[0], 1))], axis=1)  # (N, D+1)
    free_b = fit_intercept and not decay_bias
    if optimizer == "sgd":
        lam = _as64(lams, "lams").reshape(-1)  # (K,)
        wd = (1.0 - np.asarray(_as64(momentum, "momentum")).reshape(-1)) * lam  # (K,)
        if regularizer == "independent":
            wd = wd / linf_radius(np.ones_like(lam), "independent", lr)  # (1 - mu) lam / lr
        return decoupled_sgd_fixed_point(Xn, y, wd, loss=loss, fit_intercept=free_b,
                                         sample_weight=sample_weight)
    path = linf_path(Xn, y, lams, fit_intercept=free_b, sample_weight=sample_weight,
                     regularizer=regularizer, lr=lr)
    return path.theta if free_b else path.coef  # (K, D1)
