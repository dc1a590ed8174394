"""One-model reference loops: torch.optim (with param groups so the bias is not decayed),
and a plain loop written from Loshchilov & Hutter's Algorithm 2 for fully decoupled decay."""

from __future__ import annotations

import math

import torch

from wdlab.conventions import COUPLED, penalty_grad_scale


def _eta(schedule: str, t: int, total: int) -> float:
    return 1.0 if schedule == "constant" else 0.5 * (1 + math.cos(math.pi * t / total))


def _batches(n: int, batch_size: int | None, gen: torch.Generator):
    if batch_size is None or batch_size >= n:
        return [torch.arange(n)]
    perm = torch.randperm(n, generator=gen)
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]


def single_run(X, y, theta0, *, optimizer, regularizer, loss, lam, lr, beta1, beta2, eps=1e-8,
               epochs=50, batch_size=None, batch_seed=0, schedule="constant", dtype=torch.float64):
    """Train one model; returns (final theta (D+1,), train mse per epoch 0..E)."""
    X, y = X.to(dtype), y.to(dtype)
    n, d = X.shape
    w = theta0[:d].clone().to(dtype).requires_grad_(True)
    b = theta0[d:].clone().to(dtype).requires_grad_(True)
    c_loss = 1.0 if loss == "mse" else 0.5
    nb = 1 if batch_size is None or batch_size >= n else math.ceil(n / batch_size)
    total = epochs * nb
    pen = 0.0
    if regularizer in ("mean", "half_sum", "sum"):
        pen = penalty_grad_scale(regularizer, d) / 2 * lam  # P(w) = pen * ||w||^2
    wd = lam if regularizer == "weight_decay" else 0.0
    groups = [{"params": [w], "weight_decay": wd}, {"params": [b], "weight_decay": 0.0}]
    opt = None
    if regularizer in COUPLED or regularizer == "decoupled":
        if optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=lr, momentum=beta1)
        elif regularizer == "decoupled":
            groups[0]["weight_decay"] = lam
            opt = torch.optim.AdamW(groups, lr=lr, betas=(beta1, beta2), eps=eps)
        else:
            opt = torch.optim.Adam(groups, lr=lr, betas=(beta1, beta2), eps=eps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: _eta(schedule, t, total))
    gen = torch.Generator().manual_seed(batch_seed)
    mses = []
    state = {"t": 0, "buf": None, "m": None, "v": None}
    for _epoch in range(epochs):
        with torch.no_grad():
            mses.append(((X @ w + b - y) ** 2).mean().item())
        for idx in _batches(n, batch_size, gen):
            r = X[idx] @ w + b - y[idx]
            objective = c_loss * (r * r).mean() + pen * (w * w).sum()
            if opt is not None:
                opt.zero_grad()
                objective.backward()
                if optimizer == "sgd" and regularizer == "decoupled":
                    with torch.no_grad():  # SGD + AdamW-style decay, multiplied by lr_t
                        w.mul_(1 - opt.param_groups[0]["lr"] * lam)
                opt.step()
                sched.step()
            else:
                _independent_step(w, b, objective, state, optimizer, lam, lr, beta1, beta2,
                                  eps, _eta(schedule, state["t"], total))
    with torch.no_grad():
        mses.append(((X @ w + b - y) ** 2).mean().item())
    return torch.cat([w.detach(), b.detach()]), torch.tensor(mses, dtype=torch.float64)


def _independent_step(w, b, objective, st, optimizer, lam, lr, beta1, beta2, eps, eta):
    """Loshchilov & Hutter (2019) Alg. 2 (Adam) / Alg. 1 with PyTorch-style momentum (SGD):
    theta <- theta - eta_t * (lr * direction + lam * theta), bias not decayed."""
    gw, gb = torch.autograd.grad(objective, [w, b])
    g = torch.cat([gw, gb])
    theta = torch.cat([w.detach(), b.detach()])
    mask = torch.ones_like(theta)
    mask[-1] = 0
    st["t"] += 1
    t = st["t"]
    if optimizer == "sgd":
        st["buf"] = g.clone() if st["buf"] is None else beta1 * st["buf"] + g
        direction = st["buf"]
    else:
        st["m"] = (1 - beta1) * g if st["m"] is None else beta1 * st["m"] + (1 - beta1) * g
        st["v"] = (1 - beta2) * g * g if st["v"] is None else beta2 * st["v"] + (1 - beta2) * g * g
        mhat = st["m"] / (1 - beta1**t)
        vhat = st["v"] / (1 - beta2**t)
        direction = mhat / (vhat.sqrt() + eps)
    new = theta - eta * (lr * direction + lam * theta * mask)
    with torch.no_grad():
        w.copy_(new[:-1])
        b.copy_(new[-1:])


def assert_matches_single_runs(X, y, res, hyper, theta0, *, rtol: float, **run_kw) -> None:
    """Each of the K configurations of the batched ``res`` equals its one-model run.

    theta to ``rtol`` (relative to the largest coefficient), the per-epoch train MSE to
    ``10 * rtol``. ``res`` is one ``TrainResult`` or a list of them (several engines checked
    against one set of reference runs). ``run_kw`` goes to ``single_run`` (optimizer,
    regularizer, loss, epochs, dtype, batch_size, batch_seed, schedule).
    """
    results = res if isinstance(res, list | tuple) else [res]
    for k in range(theta0.shape[0]):
        ref_theta, ref_mse = single_run(
            X, y, theta0[k].double(), lam=hyper.lam[k].item(), lr=hyper.lr[k].item(),
            beta1=hyper.beta1[k].item(), beta2=hyper.beta2[k].item(), **run_kw)
        scale = ref_theta.abs().max().item()
        for r in results:
            msg = f"engine {r.extra.get('engine')}, configuration {k}"
            torch.testing.assert_close(r.theta[k].double(), ref_theta.double(), rtol=rtol,
                                       atol=rtol * scale, msg=msg)
            torch.testing.assert_close(r.metrics["train_mse"][:, k].double(), ref_mse,
                                       rtol=10 * rtol, atol=rtol * ref_mse.max().item(),
                                       msg=msg)
