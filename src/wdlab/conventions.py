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

This module is pure: it imports torch only.
"""

from __future__ import annotations

import torch

LOSSES: tuple[str, ...] = ("mse", "half_mse")
PENALTIES: tuple[str, ...] = ("mean", "half_sum", "sum")
COUPLED: tuple[str, ...] = PENALTIES + ("weight_decay",)
DECOUPLED: tuple[str, ...] = ("decoupled", "independent")
REGULARIZERS: tuple[str, ...] = COUPLED + DECOUPLED

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
