"""The one metric observer of every engine path, and a full-batch run's start.

    metrics_k = [per-set MSEs..., penalty, objective, ||w|| (, ||theta - ref||)]   (S+3[+1], K)

``engine.fast`` (``epoch_step``, the kernels' final epoch), ``engine.eager`` and the
minibatch path of ``engine.core`` all record through ``observe_extra``. Pure torch.
"""

from __future__ import annotations

import torch

from wdlab.optim.schedule import schedule_multiplier

Tensor = torch.Tensor


def _set_mses(r_all, weights, K):
    """Weighted MSE of each row set (train, then eval sets) of the stacked residuals."""
    out, start = [], 0
    for w in weights:  # (G, 1, N_s) each; a handful of sets
        r = r_all[:, :, start:start + w.shape[-1]]  # (G, M, N_s)
        out.append(((r * r) * w).sum(-1).reshape(K))  # (K,)
        start += w.shape[-1]
    return torch.stack(out, 1)  # (K, S)


def observe_extra(theta, mses, C, squares=None):
    """Stack [per-set MSEs..., penalty, objective, w_norm (, dist_to_ridge)] as (S+3[+1], K).

    The one observer of every engine path: w_norm = ||w|| over the weights only (never the
    intercept); penalty = its scale * lam * sum of the decayed coordinates' squares.
    ``squares``: theta * theta * mask already formed (K, D1), else formed here."""
    if squares is None:
        squares = theta * theta if C.mask is None else theta * theta * C.mask  # (K, D1)
    sq = squares.sum(1)  # (K,) decayed
    w_norm = torch.linalg.vector_norm(theta[:, :C.n_w], dim=1)  # (K,) weights, no intercept
    pen = C.lam_pen * sq  # (K,)
    rows = [mses.T, pen[None], (C.c_val * mses[:, 0] + pen)[None], w_norm[None]]
    if C.ref is not None:
        rows.append(torch.linalg.vector_norm(theta - C.ref, dim=1)[None])
    return torch.cat(rows, 0)  # (S + 3 [+1], K)


def observe(theta, C):
    """Metrics of the final parameters, as ``epoch_step`` records them, and the train MSE."""
    G, _, D1 = C.X.shape
    K = theta.shape[0]
    r_all = torch.bmm(theta.view(G, K // G, D1), C.XT_all) - C.y_all  # (G, M, N_all)
    mses = _set_mses(r_all, C.weights, K)  # (K, S)
    return observe_extra(theta, mses, C), mses[:, 0]


def full_batch_start(theta, C, spec, R):
    """(etas (E,), epochs (E + 1,), loss0 (K,), NaN metric buffer (n_met, R, K)) of a run."""
    E, K, dt, device = spec.epochs, theta.shape[0], theta.dtype, theta.device
    eta_host = [schedule_multiplier(spec.schedule, e, E) for e in range(E)]
    etas = torch.tensor(eta_host, dtype=dt, device=device)  # (E,)
    epochs = torch.arange(E + 1, device=device)  # (E + 1,)
    first, loss0 = observe(theta, C)
    buf = torch.full((first.shape[0], R, K), float("nan"), device=device, dtype=dt)
    return etas, epochs, loss0, buf
