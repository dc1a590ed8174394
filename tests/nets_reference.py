"""One-network reference loop for the nets oracle: a plain nn.Module trained by torch.optim
(param groups for the decay policy), or by Loshchilov & Hutter's Alg. 2 for `independent`.
It shares no code with wdlab.nets beyond the schedule's formula, restated here."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from wdlab.conventions import penalty_value_scale


def eta(schedule: str, t: int, total: int, warmup: int = 0) -> float:
    if schedule == "constant":
        return 1.0
    if schedule == "warmup_cosine":
        if t < warmup:
            return (t + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (t - warmup) / max(total - warmup, 1)))
    return 0.5 * (1 + math.cos(math.pi * t / total))


def data_loss(out, y, loss, smoothing=0.0):
    if loss == "cross_entropy":
        return F.cross_entropy(out, y, label_smoothing=smoothing)
    if not y.is_floating_point():  # class labels -> one-hot targets
        y = F.one_hot(y, out.shape[1]).to(out.dtype)
    if y.ndim == 1:
        y = y[:, None]
    return (1.0 if loss == "mse" else 0.5) * F.mse_loss(out, y)


def torch_run(module, X, y, *, loss, optimizer, regularizer, lam, lr, beta1, beta2, epochs,
              eps=1e-8, smoothing=0.0, batch_size=None, batch_seed=0, schedule="constant",
              warmup=0, decay="matrices", dtype=torch.float64):
    """Train ``module`` (already holding its initial state) in place; returns the train loss
    at the start of every epoch and at the end, (epochs + 1,) float64."""
    module = module.to(dtype)
    X = X.to(dtype)
    y = y.to(dtype) if y.is_floating_point() else y
    named = list(module.named_parameters())
    pick = (lambda n, p: p.ndim >= 2) if decay == "matrices" else (lambda n, p: True)
    dec = [p for n, p in named if pick(n, p)]
    rest = [p for n, p in named if not pick(n, p)]
    n_dec = sum(p.numel() for p in dec)
    pen = 0.0
    if regularizer in ("mean", "half_sum", "sum"):
        pen = penalty_value_scale(regularizer, n_dec) * lam
    groups = [{"params": dec, "weight_decay": lam if regularizer in ("weight_decay", "decoupled")
               else 0.0}]
    if rest:
        groups.append({"params": rest, "weight_decay": 0.0})
    N = X.shape[0]
    nb = 1 if batch_size is None or batch_size >= N else math.ceil(N / batch_size)
    total = epochs * nb
    opt = None
    if regularizer != "independent":
        if optimizer == "sgd":
            for g in groups:
                g["weight_decay"] = g["weight_decay"] if regularizer == "weight_decay" else 0.0
            opt = torch.optim.SGD(groups, lr=lr, momentum=beta1)
        elif regularizer == "decoupled":
            opt = torch.optim.AdamW(groups, lr=lr, betas=(beta1, beta2), eps=eps)
        else:
            opt = torch.optim.Adam(groups, lr=lr, betas=(beta1, beta2), eps=eps)
        sched = None if schedule == "constant" else torch.optim.lr_scheduler.LambdaLR(
            opt, lambda t: eta(schedule, t, total, warmup))
    state = {"t": 0}
    gen = torch.Generator().manual_seed(batch_seed)
    losses = []
    for _ in range(epochs):
        if nb > 1:
            with torch.no_grad():
                losses.append(data_loss(module(X), y, loss, smoothing).item())
        if nb == 1:
            batches = [torch.arange(N)]
        else:
            perm = torch.randperm(N, generator=gen)
            batches = [perm[i:i + batch_size] for i in range(0, N, batch_size)]
        for idx in batches:
            obj = data_loss(module(X[idx]) if nb > 1 else module(X), y[idx], loss, smoothing)
            if nb == 1:  # full batch: the step's loss is the epoch's
                losses.append(obj.item())
            if pen:
                obj = obj + pen * sum((p * p).sum() for p in dec)
            if opt is not None:
                opt.zero_grad()
                obj.backward()
                if optimizer == "sgd" and regularizer == "decoupled":
                    with torch.no_grad():  # SGD + AdamW-style decay, multiplied by lr_t
                        for p in dec:
                            p.mul_(1 - opt.param_groups[0]["lr"] * lam)
                opt.step()
                if sched is not None:
                    sched.step()
            else:
                _independent_step(named, dec, obj, state, optimizer, lam, lr, beta1, beta2, eps,
                                  eta(schedule, state["t"], total, warmup))
    with torch.no_grad():
        losses.append(data_loss(module(X), y, loss, smoothing).item())
    return torch.tensor(losses, dtype=torch.float64)


def _independent_step(named, dec, obj, st, optimizer, lam, lr, beta1, beta2, eps, eta_t):
    """Loshchilov & Hutter (2019) Alg. 2 (Adam) / Alg. 1 with PyTorch-style momentum (SGD):
    theta <- theta - eta_t * (lr * direction + lam * theta) on decayed tensors."""
    params = [p for _, p in named]
    grads = torch.autograd.grad(obj, params)
    st["t"] += 1
    t = st["t"]
    decayed = {id(p) for p in dec}
    with torch.no_grad():
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if optimizer == "sgd":
                buf = st.get(("b", i))
                buf = g.clone() if buf is None else beta1 * buf + g
                st[("b", i)] = buf
                direction = buf
            else:
                m = st.get(("m", i), torch.zeros_like(p))
                v = st.get(("v", i), torch.zeros_like(p))
                m = beta1 * m + (1 - beta1) * g
                v = beta2 * v + (1 - beta2) * g * g
                st[("m", i)], st[("v", i)] = m, v
                direction = (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt() + eps)
            step = lr * direction + (lam * p if id(p) in decayed else 0.0)
            p.sub_(eta_t * step)
