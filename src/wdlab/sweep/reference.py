"""Closed-form references for a sweep: the ridge path on the same draws and validation
rule, and the full-batch GD stability bound checked before training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from wdlab.conventions import COUPLED, penalty_grad_scale
from wdlab.spec import SweepSpec
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


def _mse(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor, coef: torch.Tensor,
         intercept: torch.Tensor) -> torch.Tensor:
    """(L,) weighted mean squared residual of each ridge solution on (X, y) with weights w."""
    r = X @ coef.T + intercept - y[:, None]  # (N, L)
    return (w[:, None] * r * r).sum(0) / w.sum()  # (L,)


def closed_form_frame(spec: SweepSpec, n_dense: int = 241) -> pd.DataFrame | None:
    """Closed-form ridge validation and test errors per lam, averaged over the sweep's draws.

    For each coupled (loss, regularizer) of the grid and each (n_train, noise), the exact
    minimiser of  c_L mean(r^2) + P_lam(w)  (``wdlab.ridge.ridge_path``) on the same training
    samples as the trained models, scored by the same validation rule (holdout samples, the
    split's held-out part, or the mean over folds) and on the test samples. The lam grid is the
    sweep's lams joined with ``n_dense`` log-spaced values over their positive range. None
    when the grid has no coupled regularizer (or decays the bias, which ridge does not).
    """
    from wdlab.ridge import ridge_path

    t = spec.train
    combos = sorted({(loss, reg) for _, reg in t.pair_list() for loss in t.loss if reg in COUPLED})
    if not combos or t.decay_bias:
        return None
    grid = np.asarray(t.lam, dtype=np.float64)
    pos = grid[grid > 0]
    dense = np.geomspace(pos.min(), pos.max(), n_dense) if len(pos) and pos.min() < pos.max() else []
    lams = np.unique(np.concatenate([grid, dense]))  # (L,)
    lam_t = torch.as_tensor(lams)
    fi = t.fit_intercept
    rows = []
    for n_train in spec.data.n_train:
        for noise in spec.data.noise:
            acc = {c: [] for c in combos}
            for seed in spec.data.seeds:  # loop over draws
                draws = unit_draws(spec, n_train, noise, seed)
                for loss, reg in combos:
                    vals, test = [], None
                    for dr in draws:  # 1 model, or folds + full refit
                        keep = dr.w > 0
                        path = ridge_path(dr.X[keep], dr.y[keep], lam_t, loss, reg,
                                          X_test=dr.X_test, y_test=dr.y_test, fit_intercept=fi)
                        if dr.w_val.sum() > 0:
                            vals.append(_mse(dr.X_val, dr.y_val, dr.w_val, path.coef,
                                             path.intercept))
                        test = path.test_mse
                    acc[(loss, reg)].append((torch.stack(vals).mean(0), test))
            for (loss, reg), items in acc.items():
                val = torch.stack([v for v, _ in items]).mean(0).numpy()  # (L,)
                test = torch.stack([te for _, te in items]).mean(0).numpy()  # (L,)
                rows.append(pd.DataFrame({
                    "loss": loss, "regularizer": reg, "n_train": n_train, "noise": noise,
                    "lam": lams, "in_grid": np.isin(lams, grid), "ridge_val_mse": val,
                    "ridge_test_mse": test, "n_seeds": len(items)}))
    return pd.concat(rows, ignore_index=True)
