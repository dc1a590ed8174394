"""The glossary: loss, penalty and decay conventions, in one place.

Objective of every penalty regularizer, for residuals r = Xw + b - y over n samples and
weights w in R^d (the bias b is never penalised unless asked):

    loss  "mse"       L(w) = mean(r^2)          "half_mse"  L(w) = 1/2 mean(r^2)
    lam   "mean"      P(w) = lam * mean(w^2)    (the seed article's)
          "half_sum"  P(w) = lam/2 * ||w||^2    (d2l's from-scratch)
          "sum"       P(w) = lam * ||w||^2

Optimizer decays, whose coefficient is an optimizer's ``weight_decay``:

    "weight_decay"  coupled: g <- g + wd * w before the optimizer (PyTorch SGD/Adam).
                    Equivalent to the penalty "half_sum" with lam = wd.
    "decoupled"     w <- w - lr_t * wd * w beside the optimizer step (torch.optim.AdamW;
                    decay multiplied by the learning rate lr_t = lr * eta_t).
    "independent"   w <- w - eta_t * wd * w (Loshchilov & Hutter 2019, Alg. 1-2; decay
                    multiplied by the schedule multiplier eta_t only, not by lr).

The translator (``translate``, ``conventions_table``, ``sklearn_alpha``) maps a lam between
these pairs and the named conventions of the literature (seed, d2l, sklearn, glmnet, ...).
For softmax models (``wdlab.nets``, hidden=()), ``LOGISTIC_CONVENTIONS`` and
``sklearn_logistic_C`` map a cross-entropy lam to scikit-learn's ``LogisticRegression(C)``.

This module is pure: it imports torch only.
"""

from __future__ import annotations

import math

import torch

LOSSES: tuple[str, ...] = ("mse", "half_mse")
PENALTIES: tuple[str, ...] = ("mean", "half_sum", "sum")
COUPLED: tuple[str, ...] = PENALTIES + ("weight_decay",)
DECOUPLED: tuple[str, ...] = ("decoupled", "independent")
REGULARIZERS: tuple[str, ...] = COUPLED + DECOUPLED

#: The one registry of optimizers: name -> the regularizers it pairs with. ``adamw`` is Adam
#: whose own decay is decoupled: it pairs with ``decoupled`` (= torch.optim.AdamW) or
#: ``independent`` only (``wdlab.optim.registry`` composes each pair into a rule chain).
OPTIMIZERS: dict[str, tuple[str, ...]] = {
    "sgd": REGULARIZERS,
    "adam": REGULARIZERS,
    "adamw": DECOUPLED,
}
#: Every valid (optimizer, regularizer) pair. Tests are parametrized over this list.
PAIRS: tuple[tuple[str, str], ...] = tuple(
    (opt, reg) for opt, regs in OPTIMIZERS.items() for reg in regs
)
#: The engines of the linear family (``wdlab.engine``); ``auto`` picks the fastest that runs.
ENGINES: tuple[str, ...] = ("auto", "eager", "compiled", "triton", "native")
#: the nets engines (``wdlab.nets.train``): eager (batched matmuls / torch.func), native (C++)
NET_ENGINES: tuple[str, ...] = ("auto", "eager", "native")
#: The floating-point precisions a run may train in.
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}


def check_pair(optimizer: str, regularizer: str) -> None:
    """Raise ``ValueError`` (one line naming the field) unless the pair is in ``PAIRS``."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: unknown name {optimizer!r}; expected one of {tuple(OPTIMIZERS)}")
    if regularizer not in REGULARIZERS:
        raise ValueError(f"regularizer: unknown name {regularizer!r}; expected one of {REGULARIZERS}")
    if regularizer not in OPTIMIZERS[optimizer]:
        raise ValueError(
            f"regularizer: {optimizer!r} pairs only with {OPTIMIZERS[optimizer]}, not {regularizer!r}"
        )


def has_closed_form(regularizer: str, decay_bias: bool = False) -> bool:
    """True when the trained objective's minimiser is a ridge solution (``wdlab.exact.ridge``).

        c_L mean(r^2) + c_P lam ||w||^2,  bias b unpenalised

    holds for the penalties and coupled ``weight_decay`` (``COUPLED``) with ``decay_bias``
    False; the decoupled decays have no objective (their limit is ``wdlab.exact.linf``), and ridge
    never penalises the bias.
    """
    return regularizer in COUPLED and not decay_bias


#: d(data loss)/d(r_i * weight_i) factor: mse -> 2, half_mse -> 1.
LOSS_GRAD_SCALE: dict[str, float] = {"mse": 2.0, "half_mse": 1.0}
#: data loss value factor applied to mean(r^2).
LOSS_VALUE_SCALE: dict[str, float] = {"mse": 1.0, "half_mse": 0.5}


def penalty_grad_scale(regularizer: str, n_decayed: int) -> float:
    """Factor c such that the coupled gradient of the regularizer is c * lam * w.

    Args:
        regularizer: one of ``COUPLED``.
        n_decayed: number of decayed coordinates (d, or d + 1 with a decayed bias).
    """
    if regularizer == "mean":
        return 2.0 / n_decayed
    if regularizer in ("half_sum", "weight_decay"):
        return 1.0
    if regularizer == "sum":
        return 2.0
    raise ValueError(f"regularizer: {regularizer!r} has no coupled gradient")


def penalty_value_scale(regularizer: str, n_decayed: int) -> float:
    """Factor c such that the penalty term in the objective is c * lam * ||w||^2.

    Coupled ``weight_decay`` reports its implied objective (lam/2)||w||^2; the decoupled
    decays have no objective term and report 0.
    """
    if regularizer == "mean":
        return 1.0 / n_decayed
    if regularizer in ("half_sum", "weight_decay"):
        return 0.5
    if regularizer == "sum":
        return 1.0
    if regularizer in DECOUPLED:
        return 0.0
    raise ValueError(f"regularizer: unknown name {regularizer!r}; expected one of {REGULARIZERS}")


def penalty(w: torch.Tensor, lam: torch.Tensor, regularizer: str) -> torch.Tensor:
    """P(w) for a batch of weights.

    Args:
        w: (K, D) decayed weights.
        lam: (K,) coefficients in the regularizer's convention.
    Returns:
        (K,) penalty values.
    """
    return penalty_value_scale(regularizer, w.shape[-1]) * lam * (w * w).sum(-1)  # (K,)


#: One-line statement of each regularizer's term, for titles, tables and reports.
DESCRIPTIONS: dict[str, str] = {
    "mean": "λ·mean(w²)",
    "half_sum": "(λ/2)·‖w‖²",
    "sum": "λ·‖w‖²",
    "weight_decay": "coupled weight_decay λ ≡ (λ/2)·‖w‖²",
    "decoupled": "decoupled decay: w ← w − lr·λ·w",
    "independent": "decay w ← w − η_t·λ·w (not ×lr)",
}


def describe(regularizer: str) -> str:
    """A short formula for the regularizer's term, e.g. ``λ·mean(w²)``."""
    return DESCRIPTIONS.get(regularizer, regularizer)


# ----------------------------------------------------------------------------------------
# The translator between named lambda conventions.
#
# Every coupled convention's objective, up to a positive factor, is the scikit-learn one
#
#     ||r||^2 + alpha ||w||^2,     alpha = n_train * c_P(lam) / c_L,
#
# for a data term c_L * mean(r^2) and a penalty c_P(lam) * ||w||^2, so two conventions have
# the same minimiser exactly when their alphas agree. ``translate`` goes value -> alpha -> value.
# ----------------------------------------------------------------------------------------

#: The decoupled decays, under every name a user may type.
DECOUPLED_NAMES: tuple[str, ...] = ("adamw",) + DECOUPLED

#: Why the decoupled decays have no exact L2 equivalent (one sentence, shown to users).
NO_L2_EQUIVALENT = (
    "decoupled weight decay (AdamW) has no exact L2 equivalent: Adam rescales the gradient "
    "per coordinate by 1/(sqrt(v)+eps) but adds the decay unscaled, so its fixed point solves "
    "grad_i = -wd * w_i * (sqrt(v_i) + eps), not the ridge normal equations; its exact limit "
    "(full batch, lr -> 0, eps -> 0) is instead min loss s.t. ||w||_inf <= 1/wd, the bias free "
    "unless decayed (Xie & Li 2024; 'independent': radius lr/wd; wdlab.linf_path)"
)


def _pair_objective(loss: str, penalty: str) -> str:
    data = {"mse": "mean(r^2)", "half_mse": "1/2 mean(r^2)"}[loss]
    pen = {
        "mean": "lam * mean(w^2)",
        "half_sum": "lam/2 * ||w||^2",
        "sum": "lam * ||w||^2",
        "weight_decay": "coupled weight_decay=lam (= lam/2 * ||w||^2)",
    }[penalty]
    return f"{data} + {pen}"


#: name -> (loss, penalty, objective). The engine's pairs are named "loss+penalty"; the named
#: conventions of the literature map onto them. "sklearn" is Ridge's alpha (loss/penalty None).
CONVENTIONS: dict[str, tuple[str | None, str | None, str]] = {
    "seed": ("mse", "mean", "mean(r^2) + lam * mean(w^2)  (the seed article)"),
    "d2l": ("half_mse", "half_sum", "1/2 mean(r^2) + lam/2 * ||w||^2  (d2l from scratch)"),
    "d2l_concise": ("mse", "weight_decay",
                    "MSELoss + SGD weight_decay=lam: mean(r^2) + lam/2 * ||w||^2  (d2l concise)"),
    "torch_mse": ("mse", "weight_decay", "mean(r^2), torch coupled weight_decay=lam"),
    "torch_half_mse": ("half_mse", "weight_decay", "1/2 mean(r^2), torch coupled weight_decay=lam"),
    "sklearn": (None, None, "||r||^2 + alpha * ||w||^2  (sklearn Ridge alpha)"),
    "glmnet": ("half_mse", "half_sum",
               "1/(2n) RSS + lam/2 * ||w||^2  (glmnet alpha=0, standardize=FALSE; documented "
               "objective: real glmnet also scales y by s_y, so its lam needs y_scale=s_y)"),
}
for _loss in LOSSES:
    for _pen in COUPLED:
        CONVENTIONS[f"{_loss}+{_pen}"] = (_loss, _pen, _pair_objective(_loss, _pen))
del _loss, _pen


# ----------------------------------------------------------------------------------------
# The logistic (cross-entropy) family: a softmax model with logits W x + b, W (C, d), b never
# penalised, trained on the mean cross-entropy (``wdlab.nets``, hidden=(), decay policy
# "matrices", label smoothing 0):
#
#     mean_i CE_i + c_P lam ||W||_F^2,   c_P = 1/n_decayed (mean, n_decayed = C d),
#                                         1/2 (half_sum, weight_decay), 1 (sum).
#
# scikit-learn >= 1.6 LogisticRegression (lbfgs/newton-cg/newton-cholesky, l1_ratio=0; see the
# note "C * sum(pointwise_loss) + penalty" in sklearn/linear_model/_logistic.py) minimises
#
#     C sum_i CE_i + 1/2 ||W||_F^2      (multinomial, C >= 3 classes; intercept unpenalised).
#
# Both are positive multiples of  sum_i CE_i + a ||W||_F^2, with a = n c_P lam and a = 1/(2C):
# the same minimiser exactly when C = 1 / (2 n c_P lam). Two classes: sklearn fits one vector
# w (class 1's logit w x + b) with C_bin sum_i CE_i + 1/2 ||w||^2. A 2-output softmax's loss
# depends on d = W_1 - W_0 only, and at fixed d its penalty a (||W_0||^2 + ||W_1||^2) is least
# at W_1 = -W_0 = d/2, where it is (a/2) ||d||^2; so d solves sum_i CE_i + (a/2) ||d||^2, i.e.
# C_bin = 1/a = 2C and coef_ = W_1 - W_0, intercept_ = b_1 - b_0.
# ----------------------------------------------------------------------------------------

#: name -> (penalty, objective) for the cross-entropy family; "sklearn-logistic" is C.
LOGISTIC_CONVENTIONS: dict[str, tuple[str | None, str]] = {
    "sklearn-logistic": (None, "C * sum_i CE_i + 1/2 ||W||^2  (sklearn LogisticRegression C)"),
    "cross_entropy+mean": ("mean", "mean CE + lam * mean(W^2)"),
    "cross_entropy+half_sum": ("half_sum", "mean CE + lam/2 * ||W||^2"),
    "cross_entropy+sum": ("sum", "mean CE + lam * ||W||^2"),
    "cross_entropy+weight_decay": ("weight_decay",
                                   "mean CE, torch coupled weight_decay=lam (= lam/2 * ||W||^2)"),
}


def sklearn_logistic_C(lam, regularizer: str, n_train: int, n_decayed: int, *,
                       binary: bool = False):
    """scikit-learn's ``LogisticRegression(C)`` with the same minimiser as wdlab's softmax model.

        mean_i CE_i + c_P lam ||W||_F^2   <=>   C sum_i CE_i + 1/2 ||W||_F^2,
        C = 1 / (2 n_train c_P lam)        (2x that for sklearn's one-vector binary model),

    with c_P = 1/n_decayed (``mean``), 1/2 (``half_sum``, ``weight_decay``) or 1 (``sum``);
    the bias is not penalised (sklearn's intercept is not). Derivation above
    ``LOGISTIC_CONVENTIONS``; lam = 0 gives C = inf (no penalty).

    Args:
        lam: float, numpy array or torch tensor (> 0) in the regularizer's convention.
        regularizer: one of ``COUPLED``.
        n_train: number of training samples n.
        n_decayed: number of decayed entries of W (n_classes * n_features for hidden=()).
        binary: compare with sklearn's two-class model (one coefficient vector, coef_ =
            W[1] - W[0]); its C is twice the multinomial one.

    Returns:
        C, of the same type as ``lam``.
    """
    if regularizer in DECOUPLED_NAMES:
        raise ValueError(f"regularizer: {regularizer!r}: {NO_L2_EQUIVALENT}")
    if regularizer not in COUPLED:
        raise ValueError(f"regularizer: unknown name {regularizer!r}; expected one of {COUPLED}")
    _check_sizes(n_train, n_decayed)
    a_per_lam = float(n_train) * penalty_value_scale(regularizer, int(n_decayed))
    if isinstance(lam, (int, float)) and lam == 0:
        return float("inf")
    return (1.0 if binary else 0.5) / (lam * a_per_lam)


def _logistic_a(value, name: str, n_train: int, n_decayed: int, binary: bool, inverse: bool):
    """a in sum_i CE_i + a ||W||^2 for ``value`` in ``name`` (inverse=True: value from a)."""
    pen = LOGISTIC_CONVENTIONS[name][0]
    if pen is None:  # C = k / a with k = 1 (binary) or 1/2, either way round
        k = 1.0 if binary else 0.5
        return k / value
    per = float(n_train) * penalty_value_scale(pen, int(n_decayed))
    return value / per if inverse else value * per


def _translate_logistic(value, src: str, dst: str, n_train: int, n_features: int,
                        n_classes: int | None):
    if src not in LOGISTIC_CONVENTIONS or dst not in LOGISTIC_CONVENTIONS:
        sq, ce = (src, dst) if dst in LOGISTIC_CONVENTIONS else (dst, src)
        raise ValueError(f"dst: {dst!r}: {sq!r} is a squared-loss convention and {ce!r} a "
                         "cross-entropy one; no lam translates between losses")
    if n_classes is None or isinstance(n_classes, bool) or int(n_classes) < 2:
        raise ValueError(f"n_classes: the cross-entropy conventions need n_classes >= 2, "
                         f"got {n_classes!r}")
    _check_sizes(n_train, n_features)
    n_decayed, binary = int(n_features) * int(n_classes), int(n_classes) == 2
    a = _logistic_a(value, src, n_train, n_decayed, binary, inverse=False)
    return _logistic_a(a, dst, n_train, n_decayed, binary, inverse=True)


def _check_name(name: str, field: str) -> None:
    if name in DECOUPLED_NAMES:
        raise ValueError(f"{field}: {name!r}: {NO_L2_EQUIVALENT}")
    if name not in CONVENTIONS and name not in LOGISTIC_CONVENTIONS:
        raise ValueError(
            f"{field}: unknown convention {name!r}; expected one of "
            f"{tuple(CONVENTIONS) + tuple(LOGISTIC_CONVENTIONS) + DECOUPLED_NAMES}"
        )


def _check_value(value) -> None:
    """A lam or weight_decay to translate: finite and >= 0 (inf would come out inf or NaN)."""
    t = value if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float64)
    if not bool((torch.isfinite(t) & (t >= 0)).all()):
        shown = repr(value) if t.numel() == 1 else f"an array of {t.numel()} values"
        raise ValueError(f"value: every lam must be finite and >= 0, got {shown[:40]}")


def _check_sizes(n_train: float, n_features: int) -> None:
    """n_train is a real n > 0 (with sample weights, n = sum of the weights); n_features >= 1."""
    if isinstance(n_train, bool) or not math.isfinite(float(n_train)) or float(n_train) <= 0:
        raise ValueError(f"n_train: must be a finite number > 0, got {n_train!r}")
    if int(n_features) < 1:
        raise ValueError(f"n_features: must be >= 1, got {n_features!r}")


def sklearn_alpha(lam, loss: str, penalty: str, n_train: float, n_features: int):
    """scikit-learn's ``Ridge(alpha)`` with the same minimiser as the engine's objective.

        c_L mean(r^2) + c_P lam ||w||^2   <=>   ||r||^2 + alpha ||w||^2,
        alpha = n_train * c_P * lam / c_L,

    with c_L = 1 (``mse``) or 1/2 (``half_mse``) and c_P = 1/n_features (``mean``),
    1/2 (``half_sum``, ``weight_decay``) or 1 (``sum``).

    Args:
        lam: float, numpy array or torch tensor, in the (loss, penalty) convention.
        loss: one of ``LOSSES``.
        penalty: one of ``COUPLED``.
        n_train: number of training samples n, a real n > 0 (with sample weights, n is
            the sum of the weights: scikit-learn's loss is then sum_i w_i r_i^2).
        n_features: number of (penalised) features d.

    Returns:
        alpha, of the same type as ``lam``.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss: unknown name {loss!r}; expected one of {LOSSES}")
    if penalty in DECOUPLED_NAMES:
        raise ValueError(f"penalty: {penalty!r}: {NO_L2_EQUIVALENT}")
    if penalty not in COUPLED:
        raise ValueError(f"penalty: unknown name {penalty!r}; expected one of {COUPLED}")
    _check_sizes(n_train, n_features)
    c_p = penalty_value_scale(penalty, int(n_features))
    return lam * (float(n_train) * c_p / LOSS_VALUE_SCALE[loss])


def _check_y_scale(y_scale) -> None:
    if y_scale is not None and (isinstance(y_scale, bool) or not math.isfinite(float(y_scale))
                                or float(y_scale) <= 0):
        raise ValueError(f"y_scale: must be a finite number > 0 (glmnet's s_y), got {y_scale!r}")


def _alpha_per_unit(name: str, n_train: float, n_features: int, y_scale=None) -> float:
    loss, pen, _ = CONVENTIONS[name]
    if loss is None:
        return 1.0
    alpha = sklearn_alpha(1.0, loss, pen, n_train, n_features)
    if name == "glmnet" and y_scale is not None:  # glmnet fits y / s_y with lam / s_y
        alpha /= float(y_scale)
    return alpha


def translate(value, src: str, dst: str, *, n_train: float, n_features: int,
              n_classes: int | None = None, y_scale: float | None = None):
    """The value in convention ``dst`` whose objective has the same minimiser as ``value`` in ``src``.

    Both objectives are positive multiples of ||r||^2 + alpha ||w||^2 (see ``sklearn_alpha``),
    so translate(v, a, b) = v * alpha_a(1) / alpha_b(1). Named conventions (``CONVENTIONS``):

        seed            mean(r^2) + lam mean(w^2)
        d2l, glmnet     1/2 mean(r^2) + lam/2 ||w||^2  (glmnet: alpha=0, standardize=FALSE;
                        glmnet's documented objective, see y_scale for real glmnet's lam)
        d2l_concise     MSELoss + SGD weight_decay: mean(r^2) + wd/2 ||w||^2
        torch_mse       mean(r^2) with coupled weight_decay (= d2l_concise)
        torch_half_mse  1/2 mean(r^2) with coupled weight_decay (= d2l)
        sklearn         ||r||^2 + alpha ||w||^2
        <loss>+<penalty> the engine's pairs, e.g. ``mse+mean`` (= seed), ``half_mse+half_sum``

    and, for softmax models (n_classes needed; ``LOGISTIC_CONVENTIONS``, ``sklearn_logistic_C``):

        cross_entropy+<penalty>  mean CE + penalty on W (n_decayed = n_classes * n_features)
        sklearn-logistic         LogisticRegression's C: C sum CE + 1/2 ||W||^2 (C ~ 1/lam)

    ``adamw``/``decoupled``/``independent`` raise ``ValueError``: decoupled decay has no exact
    L2 equivalent (Loshchilov & Hutter 2019, Sec. 2).

    Args:
        value: float, numpy array or torch tensor (>= 0) in convention ``src``.
        src, dst: convention names.
        n_train: number of training samples n, a real n > 0 (the sum of the sample weights
            when there are weights).
        n_features: number of penalised features d (used by the ``mean`` penalty).
        n_classes: number of classes (softmax outputs), for the cross-entropy conventions.
        y_scale: for ``glmnet`` only: s_y, the population standard deviation of y. glmnet's
            gaussian family standardises y internally whatever ``standardize`` says (it fits
            y / s_y with lam / s_y and rescales), so a lam printed by real glmnet means
            alpha = n lam / s_y. None (default): glmnet's documented objective, alpha = n lam.

    Returns:
        The translated value, of the same type as ``value``.
    """
    _check_name(src, "src")
    _check_name(dst, "dst")
    _check_value(value)
    if src in LOGISTIC_CONVENTIONS or dst in LOGISTIC_CONVENTIONS:
        return _translate_logistic(value, src, dst, n_train, n_features, n_classes)
    _check_sizes(n_train, n_features)
    _check_y_scale(y_scale)
    factor = (_alpha_per_unit(src, n_train, n_features, y_scale)
              / _alpha_per_unit(dst, n_train, n_features, y_scale))
    return value * factor


def conventions_table(value: float, src: str, n_train: float, n_features: int,
                      n_classes: int | None = None, y_scale: float | None = None) -> list[dict]:
    """``value`` in ``src`` translated to every known convention of its loss, one row each.

    A cross-entropy ``src`` (``LOGISTIC_CONVENTIONS``, needs ``n_classes``) lists the
    cross-entropy conventions; any other lists ``CONVENTIONS``; both end with the decoupled rows.
    ``y_scale``: glmnet's s_y for the glmnet row (see ``translate``).

    Returns:
        A list of dicts with keys ``name``, ``objective``, ``value`` (float, or None for the
        decoupled decays) and ``note`` ("" or "no exact equivalent").
    """
    _check_name(src, "src")
    rows = []
    family = ({k: v[-1] for k, v in LOGISTIC_CONVENTIONS.items()} if src in LOGISTIC_CONVENTIONS
              else {k: v[-1] for k, v in CONVENTIONS.items()})
    for name, objective in family.items():
        v = float(translate(float(value), src, name, n_train=n_train, n_features=n_features,
                            n_classes=n_classes, y_scale=y_scale))
        rows.append({"name": name, "objective": objective, "value": v, "note": ""})
    decoupled = {
        "adamw": "torch.optim.AdamW weight_decay: w <- w - lr_t * wd * w beside Adam "
                 "(limit: min loss s.t. ||w||_inf <= 1/wd)",
        "decoupled": "w <- w - lr_t * wd * w beside the optimizer step",
        "independent": "w <- w - eta_t * wd * w (Loshchilov & Hutter 2019, Alg. 2)",
    }
    for name in DECOUPLED_NAMES:
        rows.append({"name": name, "objective": decoupled[name], "value": None,
                     "note": "no exact equivalent"})
    return rows
