"""The scikit-learn face: gradient-trained weight-decay regressors.

For every output column t, ``WeightDecayRegressor`` minimises, with the wdlab engine,

    c_L * sum_n s_n (x_n^T w + b - y_nt)^2 + P_lam(w),      s = sample_weight / sum(sample_weight)

(``loss``: c_L = 1 for ``mse``, 1/2 for ``half_mse``; ``regularizer``: ``mean`` lam mean(w^2),
``half_sum`` lam/2 ||w||^2, ``sum`` lam ||w||^2, or an optimizer decay ``weight_decay``
(coupled), ``decoupled`` (AdamW, x lr_t) or ``independent`` (x eta_t only); see
``wdlab.conventions``). ``WeightDecayRegressorCV`` trains every (lam x fold x output) model
and the full-data refit path as ONE engine call (full batch: on each fold's D + 2
``cvfit.compressed_rows``, the same loss and gradient as its N rows), then picks lam by k-fold
CV (optionally the 1-SE rule) and, for the coupled conventions, reports the closed-form choice
of ``ridge_path`` on the same folds. ``WeightDecayRegressor.fit`` trains on the rows themselves.

The batched training, selection rules and closed-form references live in ``wdlab.cvfit``;
this module is their scikit-learn contract (parameters, validation, learned attributes).
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import check_cv
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from wdlab.config import MAX_EPOCHS, MAX_LR, MAX_SCALE
from wdlab.conventions import COUPLED, DTYPES, LOSSES, REGULARIZERS
from wdlab.cvfit import (
    GRADIENT_TOL,
    closed_form_fold_mse,
    cv_results,
    fit_batch,
    mean_sem,
    objective_gradient,
    select,
)
from wdlab.engine import OPTIMIZERS, check_pair

__all__ = ["DEFAULT_LAMS", "WeightDecayRegressor", "WeightDecayRegressorCV"]

#: The CV estimator's lam grid when ``lams=None``: 30 values log-spaced over [1e-3, 1e2].
DEFAULT_LAMS = tuple(float(v) for v in np.logspace(-3, 2, 30))

_ENGINE_CONSTRAINTS: dict = {
    "regularizer": [StrOptions(set(REGULARIZERS))],
    "loss": [StrOptions(set(LOSSES))],
    "optimizer": [StrOptions(set(OPTIMIZERS))],
    "lr": [Interval(Real, 0, MAX_LR, closed="right")],
    "epochs": [Interval(Integral, 1, MAX_EPOCHS, closed="both")],
    "batch_size": [Interval(Integral, 1, None, closed="left"), None],
    "schedule": [StrOptions({"constant", "cosine"})],
    "init_scale": [Interval(Real, 0, MAX_SCALE, closed="both")],
    "fit_intercept": ["boolean"],
    "decay_bias": ["boolean"],
    "dtype": [StrOptions(set(DTYPES))],
    "device": [str],
    "random_state": ["random_state"],
}


# ------------------------------------------------------------------------------------------
# Validation helpers
# ------------------------------------------------------------------------------------------


def _check_finite(A: np.ndarray, name: str, columns=None) -> None:
    """Raise ``ValueError`` naming the first NaN/inf entry's row (0-based) and column."""
    if A.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(A)
    if not bad.any():
        return
    idx = np.argwhere(bad)[0]
    row = int(idx[0])
    kind = "NaN" if np.isnan(A[tuple(idx)]) else "infinity"
    where = f"row {row}"
    if A.ndim == 2:
        col = int(idx[1])
        label = repr(str(columns[col])) if columns is not None else str(col)
        where += f", column {label}"
    raise ValueError(f"Input {name} contains {kind} at {where}")


def _check_device(device: str) -> None:
    from wdlab.devices import check_device

    check_device(device, "device")


#: Largest |value| accepted in X and y: beyond it squares overflow float64 (and the
#: standardised float32 copy underflows to 0: coef_ came out exactly 0 at X * 1e160).
MAX_ABS_INPUT = 1e150


def _check_magnitude(A: np.ndarray, name: str) -> None:
    big = np.abs(A) > MAX_ABS_INPUT
    if big.any():
        idx = tuple(int(i) for i in np.argwhere(big)[0])
        where = f"row {idx[0]}" + (f", column {idx[1]}" if len(idx) == 2 else "")
        raise ValueError(f"Input {name} has |value| {abs(A[idx]):.3g} > {MAX_ABS_INPUT:g} at "
                         f"{where}; rescale it")


def _validate_fit_input(est, X, y, sample_weight):
    for name in ("epochs", "batch_size"):  # bool is an Integral; True is not 1 epoch
        if isinstance(getattr(est, name), (bool, np.bool_)):
            raise ValueError(f"{name}: expected an integer, got {getattr(est, name)!r}")
    est._validate_params()
    check_pair(est.optimizer, est.regularizer)
    if est.decay_bias and not est.fit_intercept:
        raise ValueError("decay_bias: needs fit_intercept=True")
    _check_device(est.device)
    y_arr = np.asarray(y) if y is not None else None
    if y_arr is not None and y_arr.dtype.kind in "fc":
        _check_finite(y_arr, "y")
    X, y = validate_data(est, X, y, multi_output=True, y_numeric=True, ensure_all_finite=False,
                         dtype=np.float64)
    _check_finite(X, "X", getattr(est, "feature_names_in_", None))
    _check_finite(np.asarray(y, dtype=np.float64), "y")  # object y: None became NaN
    _check_magnitude(X, "X")
    _check_magnitude(np.asarray(y, dtype=np.float64), "y")
    sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if not sw.sum() > 0:
        raise ValueError("sample_weight: the weights sum to zero")
    Y = np.asarray(y, dtype=np.float64).reshape(X.shape[0], -1)  # (N, T)
    return X, y, Y, sw


def _diverged_error(epoch: int, lr: float, what: str = "training") -> ValueError:
    return ValueError(f"{what} diverged at epoch {epoch} (lr={lr:g}); try a smaller lr")


def _seeds(random_state) -> tuple[int, int]:
    rng = check_random_state(random_state)
    return int(rng.randint(np.iinfo(np.int32).max)), int(rng.randint(np.iinfo(np.int32).max))


class _WeightDecayBase(RegressorMixin, BaseEstimator):
    """Shared predict and tags: a linear model with coef_ (D,) or (T, D) and intercept_."""

    def predict(self, X):
        """Predictions X coef^T + intercept, float64, (n,) or (n, T)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite=False, dtype=np.float64)
        _check_finite(X, "X", getattr(self, "feature_names_in_", None))
        return X @ np.asarray(self.coef_).T + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _set_linear(self, coef: np.ndarray, intercept: np.ndarray, y) -> None:
        """coef (T, D), intercept (T,) -> sklearn's shapes (D,)/float for a 1-d y."""
        if np.ndim(y) == 1:
            self.coef_, self.intercept_ = coef[0].copy(), float(intercept[0])
        else:
            self.coef_, self.intercept_ = coef.copy(), intercept.copy()


# ------------------------------------------------------------------------------------------
# The estimators
# ------------------------------------------------------------------------------------------


class WeightDecayRegressor(_WeightDecayBase):
    """Linear regression trained by gradient steps with weight decay (the wdlab engine).

        minimise_{w, b}  c_L * sum_n s_n (x_n^T w + b - y_n)^2 + P_lam(w)

    per output column, with s = sample_weight / sum(sample_weight), trained for ``epochs``
    passes by ``optimizer`` from w0 ~ N(0, init_scale^2) and b0 = the weighted mean target.
    With a coupled ``regularizer`` and enough epochs the answer is the ridge solution
    ``Ridge(alpha=wdlab.conventions.sklearn_alpha(lam, loss, regularizer, n_train, n_features))``.

    Args:
        lam: coefficient (>= 0) in the ``regularizer``'s convention, or the optimizer's decay.
        regularizer: ``mean``, ``half_sum``, ``sum`` (penalties), ``weight_decay`` (coupled),
            ``decoupled`` (w <- w - lr_t lam w, torch AdamW) or ``independent``
            (w <- w - eta_t lam w, Loshchilov & Hutter 2019).
        loss: ``mse`` (mean squared residual) or ``half_mse`` (half of it).
        optimizer: ``adam``, ``sgd`` (no momentum) or ``adamw`` (decoupled decays only).
        lr: base learning rate. Adam moves each coordinate by about lr per step, so the
            default (0.1 for 1000 epochs) suits standardised X and y; a ``ConvergenceWarning``
            says when the objective gradient stays above 1e-3 of its initial size.
        epochs: passes over the training set (``n_iter_``).
        batch_size: minibatch size; None = full batch (deterministic).
        schedule: learning-rate multiplier eta_t, ``cosine`` (to 0, default: lets Adam settle
            on the exact minimiser) or ``constant``.
        init_scale: std of the normal initialisation of w; 0 gives zeros.
        fit_intercept: learn the (unpenalised unless ``decay_bias``) intercept b.
        decay_bias: apply the regularizer (penalty or decay) to b too.
        dtype: ``float64`` (default, scikit-learn precision) or ``float32``.
        device: torch device, ``cpu`` or ``cuda[:N]``.
        random_state: seeds w0 and the minibatch order.

    Attributes:
        coef_: (n_features,) or (n_targets, n_features).
        intercept_: float or (n_targets,).
        n_iter_: epochs run.
        loss_curve_: (n_iter_,) training objective (data loss + penalty, mean over outputs)
            after each epoch.
        n_features_in_, feature_names_in_: as in scikit-learn.

    Raises:
        ValueError: on bad parameters or data, and when training diverges (names the epoch).
    """

    _parameter_constraints: dict = {"lam": [Interval(Real, 0, None, closed="left")],
                                    **_ENGINE_CONSTRAINTS}

    def __init__(self, lam=1.0, *, regularizer="mean", loss="mse", optimizer="adam", lr=0.1,
                 epochs=1000, batch_size=None, schedule="cosine", init_scale=0.0,
                 fit_intercept=True, decay_bias=False, dtype="float64", device="cpu",
                 random_state=None):
        self.lam = lam
        self.regularizer = regularizer
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.schedule = schedule
        self.init_scale = init_scale
        self.fit_intercept = fit_intercept
        self.decay_bias = decay_bias
        self.dtype = dtype
        self.device = device
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        """Train on (X, y) with optional per-sample weights; returns self."""
        X, y, Y, sw = _validate_fit_input(self, X, y, sample_weight)
        E = int(self.epochs)
        fit = fit_batch(X, Y, sw[None, :], [float(self.lam)], self,
                        record_epochs=list(range(1, E + 1)), seeds=_seeds(self.random_state))
        div = fit.diverged_epoch[0, :, 0]  # (T,)
        if (div >= 0).any():
            raise _diverged_error(int(div[div >= 0].min()), self.lr)
        coef, icpt = fit.coef[0, :, 0], fit.intercept[0, :, 0]  # (T, D) (T,)
        if self.regularizer in COUPLED:
            c0, b0 = fit.start()
            g_end = objective_gradient(X, Y, sw, coef, icpt, self)  # (T,)
            g_start = objective_gradient(X, Y, sw, c0[0, :, 0], b0[0, :, 0], self)  # (T,)
            if (g_end > GRADIENT_TOL * g_start).any():
                warnings.warn(
                    f"WeightDecayRegressor did not converge in {E} epochs (objective gradient "
                    f"{float((g_end / g_start).max()):.1e} of its initial size); raise epochs or "
                    "lr, or standardize X and y", ConvergenceWarning, stacklevel=2)
        self._set_linear(coef, icpt, y)
        self.n_iter_ = E
        self.loss_curve_ = fit.curve("objective")[:, 0, :, 0].mean(1)  # (E,)
        return self


class WeightDecayRegressorCV(_WeightDecayBase):
    """``WeightDecayRegressor`` with lam chosen by k-fold cross-validation, like ``RidgeCV``.

        lam_min = argmin_lam CV(lam),   CV(lam) = mean_f mean_{n in fold f} (yhat_f(x_n) - y_n)^2
        lam_1se = the largest lam with CV(lam) <= CV(lam_min) + SE(lam_min)      (Hastie et al.)

    where yhat_f is trained without fold f (sample weights weigh both the training loss and
    the held-out mean). Every (lam, fold, output) model and the full-data model of every lam
    (the refit, ``coef_path_``) are trained as ONE engine call; full batch, each fold and each
    held-out set is represented by its D + 2 ``wdlab.cvfit.compressed_rows`` (a centred thin
    QR: the same loss, gradient and MSE for every (w, b) in exact arithmetic), so a step costs
    O(D^2) per model instead of O(N D). Float64 runs agree with training on the N rows to
    rounding, not bitwise.

    Args:
        lams: the lam grid (in the ``regularizer``'s convention); None = ``DEFAULT_LAMS``, 30 values
            log-spaced over [1e-3, 1e2].
        cv: number of folds (``KFold``, no shuffle), a CV splitter or an iterable of splits.
        rule: ``min`` (the lowest mean CV error) or ``1se`` (the one-standard-error rule).
        Other arguments: as ``WeightDecayRegressor``.

    Attributes:
        lam_: the chosen lam; best_index_: its index in ``lams``.
        lam_min_, lam_1se_: the choices of both rules.
        cv_results_: dict of arrays, one entry per lam, as ``GridSearchCV``'s: ``param_lam``,
            ``params``, ``split{f}_test_score`` / ``mean_test_score`` / ``std_test_score`` /
            ``rank_test_score`` (negative MSE), ``mean_test_mse``, ``sem_test_mse``,
            ``mean_train_mse``, ``diverged``, and ``ridge_mean_test_mse`` (closed form on the
            same folds) for the coupled penalties.
        coef_path_, intercept_path_: the full-data models of every lam, (L, [T,] D) / (L, [T]).
        ridge_lam_, ridge_lam_1se_: the closed-form k-fold CV choices (None for the
            decoupled decays, which have no ridge equivalent).
        coef_, intercept_, n_iter_, n_features_in_, feature_names_in_.
    """

    _parameter_constraints: dict = {
        "lams": ["array-like", None],
        "cv": ["cv_object"],
        "rule": [StrOptions({"min", "1se"})],
        **_ENGINE_CONSTRAINTS,
    }

    def __init__(self, lams=None, *, cv=5, rule="min", regularizer="mean", loss="mse",
                 optimizer="adam", lr=0.1, epochs=1000, batch_size=None, schedule="cosine",
                 init_scale=0.0, fit_intercept=True, decay_bias=False, dtype="float64",
                 device="cpu", random_state=None):
        self.lams = lams
        self.cv = cv
        self.rule = rule
        self.regularizer = regularizer
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.schedule = schedule
        self.init_scale = init_scale
        self.fit_intercept = fit_intercept
        self.decay_bias = decay_bias
        self.dtype = dtype
        self.device = device
        self.random_state = random_state

    def _lam_grid(self) -> np.ndarray:
        lams = np.asarray(DEFAULT_LAMS if self.lams is None else self.lams, dtype=np.float64)
        lams = lams.reshape(-1)
        if lams.size == 0:
            raise ValueError("lams: the grid is empty")
        if not (np.isfinite(lams).all() and (lams >= 0).all()):
            raise ValueError("lams: every lam must be finite and >= 0")
        return lams

    def fit(self, X, y, sample_weight=None, *, X_test=None, y_test=None, record_epochs=None):
        """Cross-validate every lam, then keep the full-data model of the chosen one.

        ``X_test``/``y_test`` (optional) are scored as the engine's ``test`` eval set and
        ``record_epochs`` (default: the last) chooses the epochs kept in ``batch_fit_``.
        """
        X, y, Y, sw = _validate_fit_input(self, X, y, sample_weight)
        lams = self._lam_grid()
        splits = list(check_cv(self.cv).split(X, Y))
        F, N = len(splits), X.shape[0]
        if F < 2:
            raise ValueError(f"cv: needs at least 2 folds, got {F}")
        train_w, val_w = np.zeros((F + 1, N)), np.zeros((F + 1, N))
        for f, (tr, va) in enumerate(splits):  # loop over folds to build masks, not configs
            train_w[f, tr], val_w[f, va] = sw[tr], sw[va]
        train_w[F] = sw
        if not (train_w.sum(1) > 0).all():
            raise ValueError("sample_weight: a training fold has zero total weight")
        empty = np.flatnonzero(~(val_w[:F].sum(1) > 0))
        if len(empty):
            raise ValueError(f"sample_weight: every test row of CV fold {int(empty[0])} has zero "
                             "weight, so the fold cannot score a lam; use fewer folds or give "
                             "those rows weight")
        E = int(self.epochs)
        test = None
        if X_test is not None:  # scored each recorded epoch (``wdlab fit``'s test split)
            Xte = np.asarray(X_test, dtype=np.float64)
            Yte = np.asarray(y_test, dtype=np.float64)
            if Xte.ndim != 2 or Xte.shape[1] != X.shape[1] or Yte.size != Xte.shape[0] * Y.shape[1]:
                raise ValueError(f"X_test: expected shape (n_test, {X.shape[1]}) with a matching y_test")
            _check_finite(Xte, "X_test")
            _check_finite(Yte, "y_test")
            test = (Xte, Yte.reshape(Xte.shape[0], -1))
        fit = fit_batch(X, Y, train_w, lams, self, val_weights=val_w, test=test, compress=True,
                        record_epochs=[E] if record_epochs is None else record_epochs,
                        seeds=_seeds(self.random_state))
        self.batch_fit_ = fit

        div = fit.diverged_epoch  # (F+1, T, L)
        fold_mse = fit.final("val_mse").mean(1)[:F]  # (F, L), mean over outputs
        fold_mse = np.where((div[:F] >= 0).any(1), np.nan, fold_mse)
        fold_mse = np.where((val_w[:F].sum(1) > 0)[:, None], fold_mse, np.nan)
        mean, sem = mean_sem(fold_mse)  # (L,) (L,)
        if not np.isfinite(mean).any():
            raise _diverged_error(int(div[div >= 0].min()), self.lr, "cross-validation: every lam")
        self.lam_min_, self.lam_1se_, i_min, i_1se = select(lams, mean, sem)
        self.best_index_ = i_min if self.rule == "min" else i_1se
        self.lam_ = float(lams[self.best_index_])
        if (div[F, :, self.best_index_] >= 0).any():
            raise _diverged_error(int(div[F, :, self.best_index_].max()), self.lr,
                                  f"refit at lam={self.lam_:g}")

        coef = fit.coef[F]  # (T, L, D)
        icpt = fit.intercept[F]  # (T, L)
        one = np.ndim(y) == 1
        self.coef_path_ = coef[0] if one else coef.transpose(1, 0, 2)  # (L, D) or (L, T, D)
        self.intercept_path_ = icpt[0] if one else icpt.T  # (L,) or (L, T)
        self._set_linear(coef[:, self.best_index_], icpt[:, self.best_index_], y)
        self.n_iter_ = E

        train_mse = fit.final("train_mse").mean(1)[:F]  # (F, L)
        self.cv_results_ = cv_results(lams, fold_mse, mean, sem, train_mse, (div[:F] >= 0).any((0, 1)))
        self.ridge_lam_ = self.ridge_lam_1se_ = None
        if self.regularizer in COUPLED:
            r_fold = closed_form_fold_mse(X, Y, train_w[:F], val_w[:F], lams, self)  # (F, L)
            r_mean, r_sem = mean_sem(r_fold)
            self.ridge_lam_, self.ridge_lam_1se_, _, _ = select(lams, r_mean, r_sem)
            self.cv_results_["ridge_mean_test_mse"] = r_mean
            self.cv_results_["ridge_sem_test_mse"] = r_sem
        return self
