"""Closed-form references for a sweep: the ridge path on the same draws and validation
rule, and the full-batch GD stability bound checked before training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from wdlab.config.schema import SweepSpec
from wdlab.conventions import COUPLED, has_closed_form, penalty_grad_scale
from wdlab.exact.ridge import ridge_solve
from wdlab.experiment import coefficient_path, lam_grid
from wdlab.sweep.draws import draw_unit, unit_draws


def stability_warnings(spec: SweepSpec, max_draws: int = 64) -> list[str]:
    """One line per full-batch SGD (lr, n_train) whose lr exceeds the GD stability bound.

    For the data loss c_L * mean(r^2) the Hessian in theta = [w, b] is 2 c_L X1^T X1 / n
    (X1 with the ones column); L is its largest eigenvalue, maximised over the draws (the
    first ``max_draws`` seeds). Gradient descent with heavy-ball momentum mu on a quadratic
    with curvature L + lam_eff is stable iff lr < 2 (1 + mu) / (L + lam_eff), where lam_eff
    is the regularizer's curvature (c_P * lam for a penalty, lam for coupled/decoupled
    weight_decay; the ``independent`` decay shrinks by lam per step outside lr: bound
    (2 (1 + mu) - lam) / L).
    """
    t, d = spec.train, spec.data
    full = [bs for bs in t.batch_size if bs == 0 or bs >= max(d.n_train)]
    pairs = [(o, r) for o, r in t.pair_list() if o == "sgd"]
    if not pairs or not full:
        return []
    from wdlab.conventions import LOSS_VALUE_SCALE

    lams = np.asarray(t.lam, dtype=np.float64)
    lines = []
    n_dec = d.n_features + int(t.decay_bias)
    for n_train in d.n_train:
        L_max, worst = 0.0, None
        for seed in d.seeds[:max_draws]:  # loop over draws
            ds = draw_unit(spec, n_train, d.noise[0], seed)
            X1 = ds.X_train
            if t.fit_intercept:
                X1 = torch.cat([X1, torch.ones(n_train, 1, dtype=X1.dtype)], 1)  # (N, D1)
            gram = X1 @ X1.T / n_train  # (N, N), same nonzero spectrum as X1^T X1 / n
            L0 = float(torch.linalg.eigvalsh(gram).max())
            if L0 > L_max:
                L_max, worst = L0, seed
        for opt, reg in pairs:
            for loss in t.loss:
                L = 2.0 * LOSS_VALUE_SCALE[loss] * L_max
                if reg in COUPLED:
                    lam_eff = penalty_grad_scale(reg, n_dec) * lams
                else:
                    lam_eff = lams if reg == "decoupled" else np.zeros_like(lams)
                for mu in t.momentum:
                    for lr in t.lr:
                        if reg == "independent":
                            bound = (2 * (1 + mu) - lams) / L
                        else:
                            bound = 2 * (1 + mu) / (L + lam_eff)
                        bad = lr > bound
                        if bad.any():
                            lam_txt = ("every λ" if bad.all() else
                                       f"{int(bad.sum())} of {len(lams)} λ values (λ ≥ {lams[bad].min():g})")
                            lines.append(
                                f"{opt}+{reg} ({loss}) lr={lr:g}"
                                + (f" momentum={mu:g}" if mu else "")
                                + f" exceeds the full-batch GD stability bound 2(1+μ)/(L+λ_eff)"
                                f" = {bound[bad].max():.3g} for {lam_txt}; L = {L:.3g}, largest"
                                f" loss-Hessian eigenvalue over the draws (seed {worst},"
                                f" n_train={n_train}); expect divergence")
    return lines


def _eval_mse(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor, coef: torch.Tensor,
              intercept: torch.Tensor) -> torch.Tensor:
    """(B, L) weighted mean squared residual of each draw's ridge path on (X, y, weights w)."""
    r = torch.bmm(X, coef.transpose(1, 2)) + intercept[:, None, :] - y[:, :, None]  # (B, N, L)
    return (w[:, :, None] * r * r).sum(1) / w.sum(1, keepdim=True).clamp_min(1e-300)  # (B, L)


def closed_form_frame(spec: SweepSpec, n_dense: int = 121, batch: int = 64) -> pd.DataFrame | None:
    """Closed-form ridge validation and test errors per lam, averaged over the sweep's draws.

    For each coupled (loss, regularizer) of the grid and each (n_train, noise), the exact
    minimiser of  c_L mean(r^2) + P_lam(w)  (``wdlab.exact.ridge.ridge_solve``, = ``ridge_path`` per draw) on
    the same training samples as the trained models, scored by the same validation rule
    (holdout samples, the split's held-out part, or the mean over folds) and on the test
    samples. The lam grid is the sweep's lams joined with ``n_dense`` log-spaced values over
    their positive range. None when the grid has no coupled regularizer (or decays the bias,
    which ridge does not). Draws are solved ``batch`` at a time.
    """
    t = spec.train
    combos = sorted({(loss, reg) for _, reg in t.pair_list() for loss in t.loss
                     if has_closed_form(reg, t.decay_bias)})
    if not combos:
        return None
    grid = np.asarray(t.lam, dtype=np.float64)
    pos = grid[grid > 0]
    dense = np.geomspace(pos.min(), pos.max(), n_dense) if len(pos) and pos.min() < pos.max() else []
    lams = np.unique(np.concatenate([grid, dense]))  # (L,)
    lam_t = torch.as_tensor(lams)
    folds = spec.validation.folds if spec.validation.method == "kfold" else 0
    rows = []
    for n_train in spec.data.n_train:
        for noise in spec.data.noise:
            sums = {c: [torch.zeros(len(lams), dtype=torch.float64)] * 2 for c in combos}
            seeds = list(spec.data.seeds)
            for b0 in range(0, len(seeds), batch):
                draws = [dr for seed in seeds[b0:b0 + batch]  # loop over draws
                         for dr in unit_draws(spec, n_train, noise, seed)]
                c = max(folds + 1, 1)  # models per draw: folds + full, or 1
                st = {k: torch.stack([getattr(dr, k) for dr in draws])
                      for k in ("X", "y", "w", "X_test", "y_test", "X_val", "y_val", "w_val")}
                for loss, reg in combos:
                    coef, icpt = ridge_solve(st["X"], st["y"], st["w"], lam_t, loss, reg,
                                             fit_intercept=t.fit_intercept)
                    val = _eval_mse(st["X_val"], st["y_val"], st["w_val"], coef, icpt)  # (B, L)
                    test = _eval_mse(st["X_test"], st["y_test"], torch.ones_like(st["y_test"]),
                                     coef, icpt)  # (B, L)
                    val = val.reshape(-1, c, len(lams))
                    test = test.reshape(-1, c, len(lams))
                    if folds:  # validation: mean over folds; test: the full refit (last)
                        val, test = val[:, :folds].mean(1), test[:, folds]
                    else:
                        val, test = val[:, 0], test[:, 0]
                    v_sum, t_sum = sums[(loss, reg)]
                    sums[(loss, reg)] = [v_sum + val.sum(0), t_sum + test.sum(0)]
            for (loss, reg), (v_sum, t_sum) in sums.items():
                rows.append(pd.DataFrame({
                    "loss": loss, "regularizer": reg, "n_train": n_train, "noise": noise,
                    "lam": lams, "in_grid": np.isin(lams, grid),
                    "ridge_val_mse": (v_sum / len(seeds)).numpy(),
                    "ridge_test_mse": (t_sum / len(seeds)).numpy(), "n_seeds": len(seeds)}))
    return pd.concat(rows, ignore_index=True)


def closed_form_coefficients(spec: SweepSpec) -> pd.DataFrame | None:
    """``ridge_coefficients.parquet`` of a sweep: the closed-form coefficient path of its
    first coupled (loss, regularizer) on its first data draw, along ``lam_grid`` of the
    grid's lams; None when nothing has a closed form."""
    t, d = spec.train, spec.data
    combos = [(loss, reg) for _, reg in t.pair_list() for loss in t.loss
              if has_closed_form(reg, t.decay_bias)]
    if not combos:
        return None
    ds = draw_unit(spec, d.n_train[0], d.noise[0], d.seeds[0])
    loss, reg = combos[0]
    return coefficient_path(ds.X_train, ds.y_train, lam_grid(t.lam), loss, reg,
                            fit_intercept=t.fit_intercept)
