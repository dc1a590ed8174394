"""Batched fitting for the estimators: every (weight set x output x lam) model as ONE engine
call, the k-fold selection rules, and the closed-form references.

Layout of one call: draw g = f * T + t for weight set f (a CV fold, or the full data last) and
output column t; each draw holds the L lams, so K = F' * T * L, draw-major. A weight set's
training weights are its fold mask x sample_weight, so every draw shares the one design X.

This module imports torch, numpy and wdlab's pure modules only (no scikit-learn).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from wdlab.conventions import LOSS_GRAD_SCALE, penalty_grad_scale
from wdlab.data.synthetic import EvalSet, Problem, init_weights
from wdlab.engine import EngineSpec, Hyper, TrainResult, train
from wdlab.exact.ridge import ridge_solve


@dataclass
class BatchFit:
    """One engine call over F' weight sets x T outputs x L lams, reshaped (F', T, L, ...)."""

    result: TrainResult
    lams: np.ndarray  # (L,)
    shape: tuple[int, int, int]  # (F', T, L)
    theta0: np.ndarray  # (K, D1) the initial parameters

    def start(self) -> tuple[np.ndarray, np.ndarray]:
        """(coef (F', T, L, D), intercept (F', T, L)) at initialisation."""
        th = self.theta0.reshape(*self.shape, -1)
        if self.result.fit_intercept:
            return th[..., :-1], th[..., -1]
        return th, np.zeros(self.shape)

    def final(self, metric: str) -> np.ndarray:
        """(F', T, L) value of ``metric`` at the last recorded epoch."""
        return self.result.metrics[metric][-1].double().numpy().reshape(self.shape)

    def curve(self, metric: str) -> np.ndarray:
        """(R, F', T, L) value of ``metric`` at every recorded epoch."""
        return self.result.metrics[metric].double().numpy().reshape(-1, *self.shape)

    @property
    def coef(self) -> np.ndarray:
        return self.result.coef.double().numpy().reshape(*self.shape, -1)  # (F', T, L, D)

    @property
    def intercept(self) -> np.ndarray:
        return self.result.intercept.double().numpy().reshape(self.shape)  # (F', T, L)

    @property
    def diverged_epoch(self) -> np.ndarray:
        return self.result.diverged_epoch.numpy().reshape(self.shape)  # (F', T, L), -1 = never


def engine_spec(est, batch_seed: int = 0) -> EngineSpec:
    """The engine's static spec from an estimator's (validated) parameters."""
    return EngineSpec.from_settings(  # the one builder; sklearn parameters may be numpy scalars
        est, epochs=int(est.epochs),
        batch_size=None if est.batch_size is None else int(est.batch_size),
        batch_seed=int(batch_seed), decay_bias=bool(est.decay_bias))


def compressed_rows(X: torch.Tensor, Y: torch.Tensor, weights: torch.Tensor, fit_intercept: bool):
    """m = D1 + 1 rows per (weight set, output) with the same weighted squared loss as N rows.

    For weight set f (s = weights_f / sum(weights_f)), output t and theta = [w, b]:

        sum_n s_n (x_n w + b - y_nt)^2
            = sum_n s_n ((x_n - xbar) w - (y_nt - ybar_t))^2 + (xbar w + b - ybar_t)^2
            = ||R1 w - z_t||^2 + rho_t^2 + (xbar w + b - ybar_t)^2
            = (1/m) sum_i (c_i theta - z'_i)^2,

    with xbar, ybar the s-weighted means (the cross term vanishes: sum_n s_n (x_n - xbar) =
    0), the thin QR sqrt(s) [X - xbar, Y - ybar] = Q R, R1 = R[:D, :D], z_t = R[:D, D + t],
    rho_t = ||R[D:, D + t]||, and the m = D + 2 rows c = sqrt(m) [[R1, 0], [xbar, 1], [0, 0]],
    z' = sqrt(m) [z_t, ybar_t, rho_t]. Under the engine's uniform weights (1/m each) these
    give the same loss, hence the same gradient, for every theta in exact arithmetic. The
    bias stays the separate (undecayed unless ``decay_bias``) last coordinate, and its
    gradient is the one row xbar w + b - ybar: exactly 0 at the estimator's start b0 = ybar,
    w0 = 0, as in exact arithmetic. Without an intercept, the same with no centring and no
    bias row (m = D + 1). Householder QR squares no entry, so inputs up to
    ``estimator.MAX_ABS_INPUT`` do not overflow here. A set of total weight 0 gives zero rows.

    Args:
        X: (N, D) features (no ones column); Y: (N, T) targets; weights: (F', N) >= 0.
        fit_intercept: centre and add the bias row (theta = [w, b]), or not (theta = w).

    Returns:
        rows (F', T, m, D1), targets (F', T, m) and ybar (F', T) (zeros without intercept;
        the exact values in the bias rows, for the start b0), float64.
    """
    N, D = X.shape
    T = Y.shape[1]
    fi = bool(fit_intercept)
    D1, m = D + fi, D + 1 + fi
    tot = weights.sum(1, keepdim=True)  # (F', 1)
    s = torch.where(tot > 0, weights / tot.clamp_min(1e-300), torch.zeros_like(weights))  # (F', N)
    xbar = s @ X if fi else X.new_zeros(s.shape[0], D)  # (F', D)
    ybar = s @ Y if fi else Y.new_zeros(s.shape[0], T)  # (F', T)
    B = torch.cat([X - xbar[:, None], Y - ybar[:, None]], 2)  # (F', N, D + T)
    B = s.sqrt()[:, :, None] * B
    if N < D + T:  # zero rows change no norm; they make R square
        B = torch.cat([B, B.new_zeros(B.shape[0], D + T - N, D + T)], 1)
    R = torch.linalg.qr(B, mode="r").R  # (F', D + T, D + T)
    root = math.sqrt(m)
    F = B.shape[0]
    rows = B.new_zeros(F, T, m, D1)  # (F', T, m, D1)
    rows[:, :, :D, :D] = (root * R[:, :D, :D])[:, None]
    targets = B.new_zeros(F, T, m)  # (F', T, m)
    targets[:, :, :D] = root * R[:, :D, D:].transpose(1, 2)
    if fi:
        rows[:, :, D, :D] = (root * xbar)[:, None]
        rows[:, :, D, D] = root * (tot > 0).to(B.dtype)  # (F', 1): no bias row for weight 0
        targets[:, :, D] = root * ybar
    targets[:, :, m - 1] = root * torch.linalg.vector_norm(R[:, D:, D:], dim=1)
    return rows, targets, ybar


def fit_batch(X: np.ndarray, Y: np.ndarray, train_weights: np.ndarray, lams, est, *,
              val_weights: np.ndarray | None = None, test: tuple | None = None,
              record_epochs=None, seeds: tuple[int, int] = (0, 0),
              compress: bool = False) -> BatchFit:
    """Train every (weight set f, output t, lam) model as ONE engine call.

    Args:
        X: (N, D) design; Y: (N, T) targets.
        train_weights: (F', N) non-negative sample weights per weight set (fold masks x
            sample_weight); each row must have a positive sum.
        lams: (L,) coefficients in ``est.regularizer``'s convention.
        est: an estimator whose engine parameters are validated.
        val_weights: optional (F', N) weights of the ``val`` eval set (the held-out fold).
        test: optional (X_test (N_te, D), Y_test (N_te, T)) scored as the ``test`` eval set.
        record_epochs: engine ``record_epochs``.
        seeds: (init seed, minibatch seed).
        compress: for a full-batch run whose sets have more than D1 + 1 rows, train and score
            on ``compressed_rows`` (D1 + 1 rows per draw and set) instead of the N rows: the
            same losses, gradients and metrics in exact arithmetic (float64 runs agree to
            rounding, not bitwise), O(D1) instead of O(N) rows per step.

    Returns:
        A ``BatchFit``. The intercept starts at each draw's weighted mean target, w at
        N(0, init_scale^2) (zeros when init_scale = 0).
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    N, D = X.shape
    T = Y.shape[1]
    Fp = train_weights.shape[0]
    lams = np.asarray(lams, dtype=np.float64).reshape(-1)
    L = lams.shape[0]
    G, K = Fp * T, Fp * T * L
    fi = bool(est.fit_intercept)
    D1 = D + int(fi)
    full_batch = est.batch_size is None or int(est.batch_size) >= int((train_weights > 0).sum(1).max())
    shrink = lambda n: compress and full_batch and n > D1 + 1  # noqa: E731

    def design(A: np.ndarray) -> torch.Tensor:  # (n, D1), with the ones column
        A_t = torch.tensor(A, dtype=torch.float64)
        return torch.cat([A_t, torch.ones(A_t.shape[0], 1, dtype=torch.float64)], 1) if fi else A_t

    def per_draw(a: np.ndarray) -> torch.Tensor:  # (F', n) -> (G, n): weight set f for each t
        return torch.tensor(np.repeat(a, T, axis=0), dtype=torch.float64)

    def normalise(w: torch.Tensor) -> torch.Tensor:
        tot = w.sum(1, keepdim=True)
        return torch.where(tot > 0, w / tot.clamp_min(1e-300), w)

    def rows_of(Xn: np.ndarray, Yn: np.ndarray, w: np.ndarray):
        """(X (G, n, D1), y (G, n), weight (G, n), ybar (G,) or None) of one row set: its
        ``compressed_rows`` when that has fewer rows, else the rows themselves."""
        if shrink(Xn.shape[0]):
            Xc, yc, ybar = compressed_rows(torch.tensor(Xn), torch.tensor(Yn), torch.tensor(w), fi)
            m = Xc.shape[2]
            Xc, yc = Xc.expand(Fp, -1, -1, -1), yc.expand(Fp, -1, -1)  # (F', T, m, ...)
            return (Xc.reshape(G, m, D1), yc.reshape(G, m), torch.ones(G, m, dtype=torch.float64),
                    ybar.expand(Fp, -1).reshape(G))
        A = design(Xn)  # (n, D1)
        n = A.shape[0]
        Yg = torch.tensor(np.tile(Yn.T, (Fp, 1)), dtype=torch.float64)  # (G, n): f*T+t <- Y[:, t]
        Wg = per_draw(np.broadcast_to(w, (Fp, n)))  # (G, n)
        return A.expand(G, n, -1), Yg, Wg, None

    Xg, Yg, W, ybar = rows_of(X, Y, train_weights)  # (G, n, D1) (G, n) (G, n) (G,)
    evals = {}
    if val_weights is not None:
        Xv, Yv, Wv, _ = rows_of(X, Y, val_weights)
        evals["val"] = EvalSet(Xv, Yv, normalise(Wv))
    if test is not None:
        Xte, Yte = np.asarray(test[0], dtype=np.float64), np.asarray(test[1], np.float64)
        Xt, Yt, Wt, _ = rows_of(Xte, Yte, np.ones((1, Xte.shape[0])))
        evals["test"] = EvalSet(Xt, Yt, normalise(Wt))
    problem = Problem(Xg, Yg, W, evals, fi)

    spec = engine_spec(est, seeds[1])
    if full_batch:  # the compressed sets' m rows must not be cut into batches either
        spec = replace(spec, batch_size=None)
    theta0 = init_weights([seeds[0]] * K, D, float(est.init_scale), fit_intercept=fi,
                          dtype=torch.float64)  # (K, D1)
    if fi:  # b0 = each draw's weighted mean target (the bias rows' ybar when compressed)
        y_mean = (normalise(W) * Yg).sum(1) if ybar is None else ybar  # (G,)
        theta0[:, -1] = y_mean.repeat_interleave(L)
    first_moment = 0.0 if est.optimizer == "sgd" else 0.9
    hyper = Hyper.of(K, lam=np.tile(lams, G), lr=float(est.lr), beta1=first_moment)
    result = train(problem, spec, hyper, theta0.to(spec.dtype), record_epochs=record_epochs)
    return BatchFit(result, lams, (Fp, T, L), theta0.double().numpy())


#: ``WeightDecayRegressor`` warns when the final objective gradient is above this fraction of
#: the initial one (coupled penalties only: the decoupled decays minimise no objective).
GRADIENT_TOL = 1e-3


def objective_gradient(X, Y, sw, coef, intercept, est) -> np.ndarray:
    """(T,) norm of the gradient of c_L sum_n s_n r_n^2 + P_lam over (w, b), per output.

    Args:
        X: (N, D); Y: (N, T); sw: (N,) sample weights; coef: (T, D); intercept: (T,).
    """
    s = sw / sw.sum()  # (N,)
    r = X @ coef.T + intercept - Y  # (N, T)
    c_l = LOSS_GRAD_SCALE[est.loss]
    g_w = c_l * (X.T @ (s[:, None] * r)).T  # (T, D)
    g_b = c_l * (s @ r)  # (T,)
    n_dec = X.shape[1] + int(bool(est.decay_bias))
    c_p = penalty_grad_scale(est.regularizer, n_dec) * float(est.lam)
    g_w = g_w + c_p * coef
    if est.decay_bias:
        g_b = g_b + c_p * intercept
    sq = (g_w**2).sum(1) + (g_b**2 if est.fit_intercept else 0.0)
    return np.sqrt(sq)  # (T,)


# ------------------------------------------------------------------------------------------
# k-fold selection and the closed-form reference
# ------------------------------------------------------------------------------------------


def mean_sem(fold_mse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F, L) fold errors -> mean and standard error over folds (nan when any fold is nan)."""
    F = fold_mse.shape[0]
    mean = fold_mse.mean(0)  # (L,)
    sem = fold_mse.std(0, ddof=1) / np.sqrt(F) if F > 1 else np.zeros_like(mean)
    return mean, sem


def select(lams: np.ndarray, mean: np.ndarray, sem: np.ndarray):
    """(lam_min, lam_1se, i_min, i_1se); ties go to the first index, nan never wins."""
    score = np.where(np.isfinite(mean), mean, np.inf)
    i_min = int(np.argmin(score))
    ok = score <= score[i_min] + sem[i_min]
    i_1se = int(np.flatnonzero(ok)[np.argmax(lams[ok])])
    return float(lams[i_min]), float(lams[i_1se]), i_min, i_1se


def cv_results(lams, fold_mse, mean, sem, train_mse, diverged) -> dict:
    """``GridSearchCV``-style dict, scores = negative MSE (greater is better)."""
    score = np.where(np.isfinite(mean), -mean, -np.inf)
    order = np.argsort(-score, kind="stable")
    rank = np.empty(len(lams), dtype=np.int32)
    rank[order] = np.arange(1, len(lams) + 1)
    out = {"param_lam": lams.copy(), "params": [{"lam": float(v)} for v in lams]}
    for f in range(fold_mse.shape[0]):
        out[f"split{f}_test_score"] = -fold_mse[f]
    out.update({
        "mean_test_score": -mean, "std_test_score": fold_mse.std(0), "rank_test_score": rank,
        "mean_test_mse": mean, "sem_test_mse": sem, "mean_train_mse": train_mse.mean(0),
        "diverged": diverged,
    })
    return out


def closed_form_fold_mse(X, Y, train_w, val_w, lams, est) -> np.ndarray:
    """(F, L) held-out MSE of the exact minimisers on the same folds.

    Every fold's fit is the weighted closed form ``ridge.ridge_solve`` (= ``ridge_path`` with
    the fold's weights as ``sample_weight``: c_L sum_n s_n r_n^2 + P_lam(w), s = w / sum(w)),
    all folds in one batched solve; with ``decay_bias`` the ones column is an ordinary
    (penalised) feature, as in the engine.
    """
    F, T = train_w.shape[0], Y.shape[1]
    dec = est.fit_intercept and est.decay_bias
    X1 = np.hstack([X, np.ones((X.shape[0], 1))]) if dec else X  # (N, D[+1])
    Xb = torch.as_tensor(X1, dtype=torch.float64).expand(F, *X1.shape)  # (F, N, D[+1])
    w = torch.as_tensor(train_w, dtype=torch.float64)  # (F, N)
    lam_t = torch.as_tensor(np.asarray(lams, dtype=np.float64))  # (L,)
    out = np.zeros((F, len(lams)))
    for t in range(T):  # reference computation: loop over outputs, not configs
        y = torch.as_tensor(Y[:, t], dtype=torch.float64).expand(F, -1)  # (F, N)
        coef, icpt = ridge_solve(Xb, y, w, lam_t, est.loss, est.regularizer,
                                 fit_intercept=est.fit_intercept and not dec)  # (F, L, D) (F, L)
        pred = torch.bmm(Xb, coef.transpose(1, 2)) + icpt[:, None, :]  # (F, N, L)
        r2 = ((pred - y[:, :, None]) ** 2).numpy()  # (F, N, L)
        out += np.einsum("fn,fnl->fl", val_w, r2) / val_w.sum(1, keepdims=True) / T
    return out
