"""The scikit-learn face of the nets engine: weight-decay MLPs, and their batched k-fold CV.

``WeightDecayMLPClassifier`` / ``WeightDecayMLPRegressor`` minimise, with ``wdlab.nets.train``,

    sum_n s_n l(f_theta(x_n), y_n) + P_lam(theta_decayed),   s = sample_weight / sum(sample_weight)

(l: cross-entropy on the classes, or ``mse``/``half_mse``; P and ``lam`` in the regularizer's
convention, or the optimizer's decay -- ``decoupled`` is torch.optim.AdamW's
``weight_decay``; ``decay="matrices"`` decays the weights, not the biases). The network starts
at PyTorch's default ``nn.Linear`` init from the seed drawn from ``random_state``, and
``init_coefs_``/``init_intercepts_`` keep that start, so ``MLP.to_module()`` + torch.optim
replays a fit. ``WeightDecayMLPClassifierCV`` / ``WeightDecayMLPRegressorCV`` train every
(lam x fold) network and the full-data refit of every lam as ONE engine call: G = folds + 1
draws of the same rows whose training weights are the fold masks x sample_weight, then pick
lam with ``wdlab.cvfit``'s rules (``min`` or ``1se``).

Names: scikit-learn's ``MLPClassifier`` names where they exist (``hidden_layer_sizes``,
``activation``, ``batch_size``, ``random_state``, ``coefs_`` fan_in x fan_out, ``intercepts_``,
``loss_curve_``, ``n_iter_``), wdlab's for the rest.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from wdlab.config import MAX_EPOCHS, MAX_LR
from wdlab.conventions import DTYPES, REGULARIZERS
from wdlab.cvfit import mean_sem, select
from wdlab.engine import OPTIMIZERS, check_pair
from wdlab.estimator import _check_finite, _check_magnitude, _diverged_error, _seeds
from wdlab.nets import MLP, train
from wdlab.nets.mlp import ACTIVATIONS
from wdlab.nets.program import MLPProgram

__all__ = ["DEFAULT_NET_LAMS", "WeightDecayMLPClassifier", "WeightDecayMLPClassifierCV",
           "WeightDecayMLPRegressor", "WeightDecayMLPRegressorCV"]

#: The CV estimators' lam grid when ``lams=None``: 10 values log-spaced over [1e-4, 1].
DEFAULT_NET_LAMS = tuple(float(v) for v in np.logspace(-4, 0, 10))

_CONSTRAINTS: dict = {
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [StrOptions(set(ACTIVATIONS))],
    "regularizer": [StrOptions(set(REGULARIZERS))],
    "optimizer": [StrOptions(set(OPTIMIZERS))],
    "lr": [Interval(Real, 0, MAX_LR, closed="right")],
    "epochs": [Interval(Integral, 1, MAX_EPOCHS, closed="both")],
    "batch_size": [Interval(Integral, 1, None, closed="left"), None],
    "schedule": [StrOptions({"constant", "cosine", "warmup_cosine"})],
    "decay": [StrOptions({"matrices", "all"})],
    "dtype": [StrOptions(set(DTYPES))],
    "device": [str],
    "random_state": ["random_state"],
}
_REG_CONSTRAINTS = {"loss": [StrOptions({"mse", "half_mse"})]}
_CV_CONSTRAINTS = {"lams": ["array-like", None], "cv": ["cv_object"],
                   "rule": [StrOptions({"min", "1se"})]}


def _hidden(est) -> tuple[int, ...]:
    h = est.hidden_layer_sizes
    h = (h,) if isinstance(h, Integral) else tuple(h)
    if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, Integral) or v < 1 for v in h):
        raise ValueError(f"hidden_layer_sizes: positive integers expected, got {est.hidden_layer_sizes!r}")
    return tuple(int(v) for v in h)


def _check_params(est) -> None:
    for name in ("epochs", "batch_size"):  # bool is an Integral; True is not 1 epoch
        if isinstance(getattr(est, name), (bool, np.bool_)):
            raise ValueError(f"{name}: expected an integer, got {getattr(est, name)!r}")
    est._validate_params()
    check_pair(est.optimizer, est.regularizer)
    _hidden(est)
    from wdlab.devices import check_device

    check_device(est.device, "device")


def _layers(mlp: MLP, theta: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """theta (P,) in state_dict order -> coefs (fan_in x fan_out each), intercepts."""
    views = mlp.layout.views(torch.as_tensor(theta, dtype=torch.float64)[None])
    coefs, icpts = [], []
    for layer in range(mlp.n_layers):
        wn, bn = mlp.layer_names(layer)
        coefs.append(views[wn][0].T.numpy().copy())  # (fan_in, fan_out)
        icpts.append(views[bn][0].numpy().copy())  # (fan_out,)
    return coefs, icpts


def _forward(mlp: MLP, theta: torch.Tensor, X: np.ndarray) -> np.ndarray:
    """(K, n, C) float64 outputs of the K networks theta (K, P) on rows X (n, D)."""
    x = torch.as_tensor(X, dtype=torch.float64)[None]  # (1, n, D)
    with torch.no_grad():
        return MLPProgram(mlp).forward(theta.to(torch.float64), x).numpy()


class _NetBase(BaseEstimator):
    """Parameters, validation, the one engine call and the fitted layers."""

    _classifier = False

    def _net(self, n_features: int, n_out: int) -> MLP:
        return MLP(n_features, _hidden(self), n_out, activation=self.activation)

    def _loss(self) -> str:
        return "cross_entropy" if self._classifier else self.loss

    def _validate(self, X, y, sample_weight):
        _check_params(self)
        y_arr = np.asarray(y) if y is not None else None
        if y_arr is not None and y_arr.dtype.kind in "fc":
            _check_finite(y_arr, "y")
        X, y = validate_data(self, X, y, multi_output=not self._classifier,
                             y_numeric=not self._classifier, ensure_all_finite=False,
                             dtype=np.float64)
        _check_finite(X, "X", getattr(self, "feature_names_in_", None))
        _check_magnitude(X, "X")
        if self._classifier:
            check_classification_targets(y)
            self.classes_, idx = np.unique(y, return_inverse=True)
            target = idx.astype(np.int64)  # (N,) class indices
            n_out = len(self.classes_)
        else:
            target = np.asarray(y, dtype=np.float64)
            _check_finite(target, "y")
            _check_magnitude(target, "y")
            n_out = 1 if target.ndim == 1 else target.shape[1]
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if not sw.sum() > 0:
            raise ValueError("sample_weight: the weights sum to zero")
        return X, y, target, n_out, sw

    def _train(self, X, target, n_out, weights: np.ndarray, lams: np.ndarray, *,
               test=None, record_epochs=None):
        """ONE engine call: G = weights.shape[0] draws of (X, target) x L lams (draw-major)."""
        G = weights.shape[0]
        mlp = self._net(X.shape[1], n_out)
        seed, batch_seed = _seeds(self.random_state)
        tgt = torch.as_tensor(target)
        Xt = torch.tensor(X, dtype=torch.float64)
        extra = {}
        if test is not None:
            extra = dict(X_test=[torch.as_tensor(test[0], dtype=torch.float64)] * G,
                         y_test=[torch.as_tensor(test[1])] * G)
        E = int(self.epochs)
        res = train(mlp, [Xt] * G, [tgt] * G, loss=self._loss(), optimizer=self.optimizer,
                    regularizer=self.regularizer, lam=np.tile(lams, G), lr=float(self.lr),
                    seed=seed, epochs=E, batch_size=None if self.batch_size is None
                    else int(self.batch_size), batch_seed=batch_seed, schedule=self.schedule,
                    decay=self.decay, sample_weight=[torch.as_tensor(w) for w in weights],
                    record_epochs=list(range(1, E + 1)) if record_epochs is None
                    else record_epochs, dtype=DTYPES[self.dtype], device=self.device, **extra)
        return mlp, res

    def _fit_one(self, X, target, n_out, sw):
        """One network at ``lam`` on the validated (X, target); a divergence is one line."""
        mlp, res = self._train(X, target, n_out, sw[None], np.array([float(self.lam)]))
        if bool(res.diverged[0]):
            raise _diverged_error(int(res.diverged_epoch[0]), self.lr)
        self._set_net(mlp, res, 0)
        return self

    def _set_net(self, mlp: MLP, res, k: int) -> None:
        self.net_ = mlp
        self.coefs_, self.intercepts_ = _layers(mlp, res.theta[k].double().numpy())
        self.init_coefs_, self.init_intercepts_ = _layers(mlp, res.theta0[k].double().numpy())
        self.n_layers_ = mlp.n_layers + 1
        self.n_outputs_ = mlp.out_features
        self.n_iter_ = int(self.epochs)
        if len(res.epochs) == int(self.epochs):
            self.loss_curve_ = res.metrics["objective"][:, k].double().numpy()  # (n_iter_,)
            self.loss_ = float(self.loss_curve_[-1])

    def _theta(self) -> torch.Tensor:
        """(1, P) the fitted parameters in state_dict order."""
        parts = []
        for W, b in zip(self.coefs_, self.intercepts_, strict=True):
            parts += [torch.as_tensor(W.T).reshape(-1), torch.as_tensor(b)]
        return torch.cat(parts)[None].to(torch.float64)

    def _outputs(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite=False, dtype=np.float64)
        _check_finite(X, "X", getattr(self, "feature_names_in_", None))
        return _forward(self.net_, self._theta(), X)[0]  # (n, C)


class _ClassifierFace(ClassifierMixin):
    _classifier = True

    def predict_proba(self, X):
        """(n, n_classes) softmax of the network's outputs, columns in ``classes_`` order."""
        z = self._outputs(X)
        z = z - z.max(1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(1, keepdims=True)

    def predict_log_proba(self, X):
        z = self._outputs(X)
        m = z.max(1, keepdims=True)
        return z - m - np.log(np.exp(z - m).sum(1, keepdims=True))

    def predict(self, X):
        """The class of the largest output (``classes_[argmax]``)."""
        z = self._outputs(X)
        return self.classes_[z.argmax(1)]


class _RegressorFace(RegressorMixin):
    def predict(self, X):
        """(n,) or (n, n_targets) network outputs."""
        z = self._outputs(X)
        return z[:, 0] if self.n_outputs_ == 1 and not self._multi else z

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


_DOC_ARGS = """
    Args:
        hidden_layer_sizes: widths of the hidden layers (() is a linear/softmax model).
        activation: ``relu``, ``gelu``, ``tanh``, ``quadratic`` or ``identity``.
        lam: coefficient (>= 0) in the ``regularizer`` convention, or the optimizer's decay.
        regularizer: ``mean``, ``half_sum``, ``sum`` (penalties), ``weight_decay`` (coupled),
            ``decoupled`` (w <- w - lr_t lam w, torch AdamW) or ``independent`` (x eta_t only).
        optimizer: ``adamw`` (decoupled decays only), ``adam`` or ``sgd``.
        lr: base learning rate; epochs: passes over the training set (``n_iter_``).
        batch_size: minibatch size; None = full batch (deterministic).
        schedule: ``constant``, ``cosine`` or ``warmup_cosine``.
        decay: ``matrices`` (weights, not biases) or ``all`` (biases too).
        dtype: ``float64`` or ``float32``; device: torch device.
        random_state: seeds the init and the minibatch order.

    Attributes:
        coefs_, intercepts_: per layer (fan_in, fan_out) and (fan_out,) float64 arrays.
        init_coefs_, init_intercepts_: the starting point (replay in plain PyTorch).
        loss_curve_: (n_iter_,) training objective (data loss + penalty) after each epoch.
        n_iter_, n_layers_, n_outputs_, net_ (the ``wdlab.nets.MLP``), n_features_in_.
"""


class WeightDecayMLPClassifier(_ClassifierFace, _NetBase):
    __doc__ = ("""An MLP classifier trained by the nets engine with weight decay.

        minimise_theta  sum_n s_n CE(softmax(f_theta(x_n)), y_n) + P_lam(theta_decayed)

    over ``len(classes_)`` outputs (two for a binary problem), s = normalised sample_weight.
    """ + _DOC_ARGS + """        classes_: the sorted class labels.
    """)

    _parameter_constraints: dict = {"lam": [Interval(Real, 0, None, closed="left")],
                                    **_CONSTRAINTS}

    def __init__(self, hidden_layer_sizes=(100,), *, activation="relu", lam=0.01,
                 regularizer="decoupled", optimizer="adamw", lr=0.01, epochs=200,
                 batch_size=None, schedule="constant", decay="matrices", dtype="float64",
                 device="cpu", random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.lam = lam
        self.regularizer = regularizer
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.schedule = schedule
        self.decay = decay
        self.dtype = dtype
        self.device = device
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        """Train on (X, y) with optional per-sample weights; returns self."""
        X, y, target, n_out, sw = self._validate(X, y, sample_weight)
        return self._fit_one(X, target, n_out, sw)


class WeightDecayMLPRegressor(_RegressorFace, _NetBase):
    __doc__ = ("""An MLP regressor trained by the nets engine with weight decay.

        minimise_theta  c_L sum_n s_n mean_t (f_theta(x_n)_t - y_nt)^2 + P_lam(theta_decayed)

    (``loss``: c_L = 1 for ``mse``, 1/2 for ``half_mse``, scikit-learn's squared error).
    Like ``MLPRegressor`` the targets are used as given (standardise them for Adam's lr).
    """ + _DOC_ARGS + """        (and ``loss``: ``half_mse`` (default) or ``mse``.)
    """)

    _parameter_constraints: dict = {"lam": [Interval(Real, 0, None, closed="left")],
                                    **_CONSTRAINTS, **_REG_CONSTRAINTS}

    def __init__(self, hidden_layer_sizes=(100,), *, activation="relu", lam=0.01,
                 regularizer="decoupled", optimizer="adamw", loss="half_mse", lr=0.01,
                 epochs=200, batch_size=None, schedule="constant", decay="matrices",
                 dtype="float64", device="cpu", random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.lam = lam
        self.regularizer = regularizer
        self.optimizer = optimizer
        self.loss = loss
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.schedule = schedule
        self.decay = decay
        self.dtype = dtype
        self.device = device
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        """Train on (X, y) with optional per-sample weights; returns self."""
        X, y, target, n_out, sw = self._validate(X, y, sample_weight)
        self._multi = np.ndim(y) == 2
        return self._fit_one(X, target, n_out, sw)


# ------------------------------------------------------------------------------------------
# Batched cross-validation
# ------------------------------------------------------------------------------------------


class _CVBase:
    """k-fold CV over ``lams`` as ONE engine call (folds + refits as G = F + 1 draws)."""

    def _lam_grid(self) -> np.ndarray:
        lams = np.asarray(DEFAULT_NET_LAMS if self.lams is None else self.lams,
                          dtype=np.float64).reshape(-1)
        if lams.size == 0:
            raise ValueError("lams: the grid is empty")
        if not (np.isfinite(lams).all() and (lams >= 0).all()):
            raise ValueError("lams: every lam must be finite and >= 0")
        return lams

    def _fold_errors(self, mlp, res, X, target, splits, L: int) -> tuple[np.ndarray, np.ndarray]:
        """(F, L) held-out error (1 - accuracy, or MSE) and score (accuracy, or -MSE)."""
        F = len(splits)
        err = np.full((F, L), np.nan)
        for f, (_, va) in enumerate(splits):  # loop over folds to score, not over configs
            z = _forward(mlp, res.theta[f * L:(f + 1) * L], X[va])  # (L, n_va, C)
            if self._classifier:
                err[f] = 1.0 - (z.argmax(2) == target[va][None]).mean(1)
            else:
                yv = target[va].reshape(len(va), -1)
                err[f] = ((z - yv[None]) ** 2).mean((1, 2))
        div = res.diverged_epoch.numpy().reshape(F + 1, L)[:F] >= 0  # (F, L)
        err = np.where(div, np.nan, err)
        return err, (1.0 - err) if self._classifier else -err

    def _check_folds(self, target, F: int) -> None:
        if not self._classifier:
            return
        labels, counts = np.unique(target, return_counts=True)
        i = int(np.argmin(counts))
        if counts[i] < F:
            label = self.classes_[labels[i]]
            label = label.item() if isinstance(label, np.generic) else label
            raise ValueError(f"y: class {label!r} has {int(counts[i])} "
                             f"member(s), fewer than the {F} CV folds")

    def fit(self, X, y, sample_weight=None, *, X_test=None, y_test=None, record_epochs=None):
        """Cross-validate every lam, then keep the full-data network of the chosen one.

        ``X_test``/``y_test`` (optional, y_test as class labels) are scored each recorded
        epoch (``net_result_``); ``record_epochs`` (default every epoch) chooses them.
        """
        X, y, target, n_out, sw = self._validate(X, y, sample_weight)
        self._multi = np.ndim(y) == 2
        lams = self._lam_grid()
        cv = check_cv(self.cv, y, classifier=self._classifier)
        n_splits = cv.get_n_splits(X, y)
        if X.shape[0] < n_splits:
            raise ValueError(f"cv: {n_splits} folds need at least {n_splits} rows, got "
                             f"n_samples={X.shape[0]}")
        self._check_folds(target, n_splits)
        splits = list(cv.split(X, y))
        F, N, L = len(splits), X.shape[0], len(lams)
        if F < 2:
            raise ValueError(f"cv: needs at least 2 folds, got {F}")
        weights = np.zeros((F + 1, N))
        for f, (tr, _) in enumerate(splits):  # loop over folds to build masks, not configs
            weights[f, tr] = sw[tr]
        weights[F] = sw
        if not (weights.sum(1) > 0).all():
            raise ValueError("sample_weight: a training fold has zero total weight")
        test = None
        if X_test is not None:
            Xte = np.asarray(X_test, dtype=np.float64)
            if Xte.ndim != 2 or Xte.shape[1] != X.shape[1]:
                raise ValueError(f"X_test: expected shape (n_test, {X.shape[1]})")
            _check_finite(Xte, "X_test")
            if self._classifier:
                yte = np.searchsorted(self.classes_, np.asarray(y_test))
                if not np.array_equal(self.classes_[np.clip(yte, 0, n_out - 1)], np.asarray(y_test)):
                    raise ValueError("y_test: a label not seen in y")
            else:
                yte = np.asarray(y_test, dtype=np.float64)
                _check_finite(yte, "y_test")
            test = (Xte, yte)
        mlp, res = self._train(X, target, n_out, weights, lams, test=test,
                               record_epochs=record_epochs)
        self.net_result_ = res  # K = (F + 1) * L networks, draw-major: k = f * L + i

        err, score = self._fold_errors(mlp, res, X, target, splits, L)
        mean, sem = mean_sem(err)  # (L,) (L,)
        if not np.isfinite(mean).any():
            d = res.diverged_epoch
            raise _diverged_error(int(d[d >= 0].min()), self.lr, "cross-validation: every lam")
        self.lam_min_, self.lam_1se_, i_min, i_1se = select(lams, mean, sem)
        self.best_index_ = i_min if self.rule == "min" else i_1se
        self.lam_ = float(lams[self.best_index_])
        k = F * L + self.best_index_
        if bool(res.diverged[k]):
            raise _diverged_error(int(res.diverged_epoch[k]), self.lr, f"refit at lam={self.lam_:g}")
        self._set_net(mlp, res, k)
        mean_score = np.where(np.isfinite(mean), score.mean(0), np.nan)
        self.best_score_ = float(mean_score[self.best_index_])
        order = np.argsort(-np.where(np.isfinite(mean_score), mean_score, -np.inf), kind="stable")
        rank = np.empty(L, dtype=np.int32)
        rank[order] = np.arange(1, L + 1)
        self.cv_results_ = {"param_lam": lams.copy(), "params": [{"lam": float(v)} for v in lams],
                            **{f"split{f}_test_score": score[f] for f in range(F)},
                            "mean_test_score": mean_score, "std_test_score": score.std(0),
                            "rank_test_score": rank, "mean_test_error": mean,
                            "sem_test_error": sem, "diverged": np.isnan(err).any(0)}
        self.lams_ = lams
        self.n_splits_ = F
        return self


_CV_DOC = """

    Cross-validation: ``cv`` as in scikit-learn (an int is ``StratifiedKFold`` for the
    classifier, ``KFold`` for the regressor, unshuffled, exactly what ``GridSearchCV`` uses);
    the fold error is 1 - accuracy (classifier) or the held-out MSE (regressor); ``rule``
    ``min`` takes the best mean, ``1se`` the largest lam within one standard error of it
    (``wdlab.cvfit.select``). Every fold network and the refit of each lam start from the
    same init as the single estimator with the same ``random_state``; with ``batch_size=None``
    each fold network equals ``WeightDecayMLP*(lam=...)`` fitted on the fold's rows (to float64
    rounding), so the choice is ``GridSearchCV``'s. With minibatches a fold's batches are cut
    from a permutation of all N rows (the held-out rows weigh 0), a different batch draw.

    Attributes (besides the single estimator's, for the chosen lam's refit):
        lam_, lam_min_, lam_1se_, best_index_, best_score_, lams_, n_splits_,
        cv_results_ (``GridSearchCV``-style: split<f>_test_score, mean/std/rank_test_score,
        mean_test_error, sem_test_error, diverged), net_result_ (the engine's ``NetResult``
        of all (F + 1) * L networks, draw-major: fold f's lam i is k = f * L + i, the refits
        f = F).
"""


class WeightDecayMLPClassifierCV(_CVBase, WeightDecayMLPClassifier):
    __doc__ = WeightDecayMLPClassifier.__doc__ + _CV_DOC
    _parameter_constraints: dict = {**_CONSTRAINTS, **_CV_CONSTRAINTS}

    def __init__(self, lams=None, *, cv=5, rule="min", hidden_layer_sizes=(100,),
                 activation="relu", regularizer="decoupled", optimizer="adamw", lr=0.01,
                 epochs=200, batch_size=None, schedule="constant", decay="matrices",
                 dtype="float64", device="cpu", random_state=None):
        self.lams = lams
        self.cv = cv
        self.rule = rule
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.regularizer = regularizer
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.schedule = schedule
        self.decay = decay
        self.dtype = dtype
        self.device = device
        self.random_state = random_state

    fit = _CVBase.fit


class WeightDecayMLPRegressorCV(_CVBase, WeightDecayMLPRegressor):
    __doc__ = WeightDecayMLPRegressor.__doc__ + _CV_DOC
    _parameter_constraints: dict = {**_CONSTRAINTS, **_REG_CONSTRAINTS, **_CV_CONSTRAINTS}

    def __init__(self, lams=None, *, cv=5, rule="min", hidden_layer_sizes=(100,),
                 activation="relu", regularizer="decoupled", optimizer="adamw",
                 loss="half_mse", lr=0.01, epochs=200, batch_size=None, schedule="constant",
                 decay="matrices", dtype="float64", device="cpu", random_state=None):
        self.lams = lams
        self.cv = cv
        self.rule = rule
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.regularizer = regularizer
        self.optimizer = optimizer
        self.loss = loss
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.schedule = schedule
        self.decay = decay
        self.dtype = dtype
        self.device = device
        self.random_state = random_state

    fit = _CVBase.fit
