"""The eager full-batch engine: ``fast.epoch_step``'s epoch, in place, on fixed buffers.

For configuration k (draw g) each epoch, with r = X_g theta_k - y_g at the epoch start:

    metrics_k (recorded epochs) = ``fast.observe_extra``;  divergence as ``fast.epoch_step``
    u = c_loss * 2 X_g^T (s * r);   u <- chain(u);   theta_k <- theta_k + u   (alive only)

The chain runs as the kernels' flags (``kernels.plan_chain``: [AddL2] -> [TraceMomentum |
ScaleByAdam] -> [AddDecayedWeights] -> ScaleByLearningRate -> [AddScheduledDecay]), each
rule as the SAME element-wise operations, in the same order, as ``optim.rules`` (so for
SGD chains every bit equals ``epoch_step`` run eagerly), but written into five preallocated (K, D1) buffers
(theta, two moments, the update, one scratch) instead of ~20 fresh tensors per epoch, with
per-run constants (1 - beta, the AddL2 coefficient) formed once. Where only the intercept
is undecayed, ``theta * mask`` is not formed: the product is taken on all columns and the
intercept's column is set to the masked product (the same bits, one pass fewer).

Adam (``ScaleByAdam``) runs instead as ``torch._fused_adam_`` (``run_adam``): the moments, the
bias corrections and the update in ONE pass over (theta, gradient, m, v), as
``torch.optim.Adam(fused=True)`` does, in place of the ~13 element-wise passes of the rules.
Its values are not the bits of ``epoch_step`` (the kernel fuses multiply-adds and forms
lr / (1 - beta1^t) in float64); they are held to the float64 run by the same bound as
torch.optim's own float32 error (tests/test_engine_eager.py). Rows are padded to a multiple of
16 columns, so every element runs the kernel's vector path: a configuration's bits do not
depend on the tile, the thread count or the other configurations of the call.
"""

from __future__ import annotations

import torch

from wdlab.engine.kernels.common import DIVERGENCE_FACTOR
from wdlab.engine.observer import _set_mses, observe, observe_extra

Tensor = torch.Tensor


def _intercept_only(mask: Tensor | None) -> bool:
    """True when the decay mask is ones with only the last coordinate 0."""
    return (mask is not None and mask.shape[0] >= 1 and float(mask[-1]) == 0.0
            and bool((mask[:-1] == 1).all()))


class _Decay:
    """out = coef * (theta * mask), as ``coef * rules._decayed(theta)`` computes it."""

    def __init__(self, mask: Tensor | None):
        self.mask = mask
        self.last = _intercept_only(mask)

    def __call__(self, theta: Tensor, coef: Tensor, out: Tensor) -> Tensor:
        if self.mask is None:
            return torch.mul(theta, coef, out=out)  # (K, D1)
        if not self.last:
            torch.mul(theta, self.mask, out=out)
            return out.mul_(coef)
        torch.mul(theta, coef, out=out)  # decayed columns: theta * 1 * coef = theta * coef
        out[:, -1:] = theta[:, -1:].mul(0.0).mul_(coef)  # the intercept: (theta * 0) * coef
        return out

    def square(self, theta: Tensor, out: Tensor) -> Tensor:
        """theta * theta * mask, as ``observe_extra`` forms it."""
        torch.mul(theta, theta, out=out)
        if self.mask is None:
            return out
        if self.last:
            out[:, -1:].mul_(0.0)
            return out
        return out.mul_(self.mask)


def _epoch_start(theta, e, C, slot, buf, scratch, decay, limit, alive, all_alive, diverged,
                 epochs):
    """The epoch start: residuals r = X theta - y (every row set at recorded epochs, which
    are observed into ``buf``), then divergence (train MSE non-finite or above ``limit``).

    Returns (train residuals (G, M, N), alive (K, 1), all_alive, diverged (K,))."""
    r_all, r_tr, tmp = scratch
    G, N, D1 = C.X.shape
    K = theta.shape[0]
    th3 = theta.view(G, K // G, D1)
    record = e in slot
    if record:
        torch.bmm(th3, C.XT_all, out=r_all).sub_(C.y_all)  # (G, M, N_all) train first
        mses = _set_mses(r_all, C.weights, K)  # (K, S)
        r = r_all[:, :, :N]  # (G, M, N)
        mse = mses[:, 0]  # (K,)
    else:
        r = torch.bmm(th3, C.XT, out=r_tr).sub_(C.y)  # (G, M, N)
        mse = ((r * r) * C.weights[0]).sum(-1).reshape(K)  # (K,)
    bad = ~(mse <= limit) & alive[:, 0]  # (K,) newly diverged
    if not (all_alive and not bool(bad.any())):  # else the common case: nothing to mask
        diverged = torch.where(bad, epochs[e], diverged)  # (K,)
        alive = alive & ~bad[:, None]  # (K, 1)
        all_alive = False
    if record:
        buf[:, slot[e]] = observe_extra(theta, mses, C, decay.square(theta, tmp))
    return r, alive, all_alive, diverged


def _setup(theta, C):
    """(X, G, N, D1, K, M, dtype, device, decay) of a full-batch run: X (G, N, D1), K
    configurations, M = K / G per data draw."""
    X = C.X
    G, N, D1 = X.shape
    K = theta.shape[0]
    return X, G, N, D1, K, K // G, theta.dtype, theta.device, _Decay(C.mask)


def run(theta, diverged, loss0, etas, epochs, C, plan, slot, buf):
    """Every epoch of a full-batch run, in place; returns (theta, diverged).

    Args:
        theta: (K, D1) parameters, updated in place.  diverged: (K,) int64.
        loss0: (K,) initial train MSE.  etas: (E,) schedule multipliers.
        epochs: (E + 1,) int64 epoch numbers.  C: the run's ``fast.Consts``.
        plan: the chain's ``kernels.Plan``.  slot: epoch -> metric slot.
        buf: (n_met, R, K) metric buffer, filled at the recorded epochs < E.
    """
    opt, scale, decoupled, independent, eps = plan
    X, G, N, D1, K, M, dt, dev, decay = _setup(theta, C)
    u = torch.empty_like(theta)  # (K, D1) the update direction
    tmp = torch.empty_like(theta)  # (K, D1) scratch
    m = torch.zeros_like(theta) if opt >= 1 else None  # first moment / momentum buffer
    v = torch.zeros_like(theta) if opt == 2 else None  # second moment
    r_all = torch.empty(G, M, C.XT_all.shape[2], device=dev, dtype=dt)  # (G, M, N_all)
    r_tr = torch.empty(G, M, N, device=dev, dtype=dt)  # (G, M, N)
    u3 = u.view(G, M, D1)
    t = torch.zeros(K, 1, device=dev, dtype=dt)  # (K, 1) per-config step count
    alive = torch.ones(K, 1, device=dev, dtype=torch.bool)
    all_alive = True
    l2 = None if scale is None else scale * C.lam  # (K, 1) AddL2's coefficient
    omb1 = 1.0 - C.beta1  # (K, 1)
    omb2 = 1.0 - C.beta2  # (K, 1)
    for e in range(etas.shape[0]):
        r, alive, all_alive, diverged = _epoch_start(
            theta, e, C, slot, buf, (r_all, r_tr, tmp), decay, DIVERGENCE_FACTOR * loss0, alive, all_alive,
            diverged, epochs)

        torch.bmm(r * C.coef, X, out=u3)  # (G, M, D1) the data-loss gradient
        t.add_(alive.to(dt))  # (K, 1)
        eta = etas[e]
        if l2 is not None:  # AddL2: u + (c lam) * decayed(theta)
            u.add_(decay(theta, l2, tmp))
        d = u
        if opt == 1:  # TraceMomentum: b <- mu b + u; u <- b
            m.mul_(C.beta1).add_(u)
            d = m
        elif opt == 2:  # ScaleByAdam
            m.add_(torch.sub(u, m, out=tmp).mul_(omb1))  # m + (1 - b1) (u - m)
            v.mul_(C.beta2).add_(u.mul_(u).mul_(omb2))  # b2 v + (1 - b2) u^2
            bc1 = 1.0 - torch.pow(C.beta1, t)  # (K, 1)
            bc2_sqrt = torch.sqrt(1.0 - torch.pow(C.beta2, t))  # (K, 1)
            torch.sqrt(v, out=tmp).div_(bc2_sqrt).add_(eps)  # sqrt(v) / sqrt(bc2) + eps
            torch.div(m, bc1, out=u).div_(tmp)  # (m / bc1) / (...)
        if decoupled:  # AddDecayedWeights: u + lam * decayed(theta)
            d = torch.add(d, decay(theta, C.lam, tmp), out=u)
        neg_lr = -(C.lr * eta)  # (K, 1) ScaleByLearningRate: -lr_t u
        d = torch.mul(d, neg_lr, out=u) if d is not u else u.mul_(neg_lr)
        if independent:  # AddScheduledDecay: u - (eta lam) * decayed(theta)
            u.sub_(decay(theta, eta * C.lam, tmp))
        if all_alive:
            theta.add_(u)
        else:  # diverged configurations stay frozen
            theta.copy_(torch.where(alive, torch.add(theta, u, out=tmp), theta))
    return theta, diverged


#: Padded row width (elements): every row of the fused Adam's buffers is whole vectors of the
#: kernel (16 float32 with AVX-512, 8 float64), so no element takes its scalar tail path.
PAD = 16


def fused_adam_available(device: torch.device) -> bool:
    """True where ``torch._fused_adam_`` runs (CPU and CUDA in torch >= 2.4)."""
    return hasattr(torch, "_fused_adam_") and device.type in ("cpu", "cuda")


def _groups(C) -> list[tuple[int, int, float, float, float]]:
    """(first row, last row + 1, lr, beta1, beta2) of each run of consecutive configurations
    sharing lr, beta1 and beta2: the fused kernel takes them as scalars."""
    hp = torch.cat([C.lr, C.beta1, C.beta2], 1).cpu()  # (K, 3)
    K = hp.shape[0]
    cut = [0, *((hp[1:] != hp[:-1]).any(1).nonzero()[:, 0] + 1).tolist(), K]
    return [(a, b, *map(float, hp[a].tolist())) for a, b in zip(cut, cut[1:], strict=False)]


def run_adam(theta, diverged, loss0, etas, epochs, C, plan, slot, buf):
    """Every epoch of a full-batch Adam run, the update by ``torch._fused_adam_``; returns
    (theta, diverged). Arguments as ``run``; ``plan[0]`` is 2 (Adam).

    Per epoch: observe and divergence as ``run``; g = c_loss 2 X^T (s r) [+ (c lam) *
    decayed(theta)] (AddL2); then the fused Adam step theta <- theta - lr_t m_hat / (sqrt(v_hat)
    + eps), one call per run of configurations sharing (lr, beta1, beta2); then the decoupled
    (lr_t lam) or independent (eta_t lam) decay of the epoch-start weights is subtracted.
    """
    _, scale, decoupled, independent, eps = plan
    X, G, N, D1, K, M, dt, dev, decay = _setup(theta, C)
    Dp = -(-D1 // PAD) * PAD
    pad = lambda: torch.zeros(K, Dp, device=dev, dtype=dt)  # noqa: E731
    P, Gp, Mp, Vp = pad(), pad(), pad(), pad()  # (K, Dp) theta, gradient, m, v; pads stay 0
    P[:, :D1] = theta
    th, g = P[:, :D1], Gp[:, :D1]  # (K, D1) views
    u = torch.empty(K, D1, device=dev, dtype=dt)  # (K, D1) the data-loss gradient
    tmp = torch.empty_like(u)  # (K, D1) scratch
    keep = None  # (K, D1) epoch-start theta, once a configuration has diverged
    r_all = torch.empty(G, M, C.XT_all.shape[2], device=dev, dtype=dt)  # (G, M, N_all)
    r_tr = torch.empty(G, M, N, device=dev, dtype=dt)  # (G, M, N)
    u3 = u.view(G, M, D1)
    alive = torch.ones(K, 1, device=dev, dtype=torch.bool)
    all_alive = True
    l2 = None if scale is None else scale * C.lam  # (K, 1) AddL2's coefficient
    limit = DIVERGENCE_FACTOR * loss0  # (K,)
    step = torch.zeros((), device=dev, dtype=torch.float32)  # Adam's t (every live config)
    calls = [([P[a:b]], [Gp[a:b]], [Mp[a:b]], [Vp[a:b]], lr, b1, b2)
             for a, b, lr, b1, b2 in _groups(C)]
    eta_host = etas.tolist()
    for e in range(etas.shape[0]):
        r, alive, all_alive, diverged = _epoch_start(
            th, e, C, slot, buf, (r_all, r_tr, tmp), decay, limit, alive, all_alive,
            diverged, epochs)

        torch.bmm(r * C.coef, X, out=u3)  # (G, M, D1) the data-loss gradient
        if l2 is not None:  # AddL2: u + (c lam) * decayed(theta)
            torch.add(u, decay(th, l2, tmp), out=g)
        else:
            g.copy_(u)
        eta = eta_host[e]
        if not all_alive:
            keep = th.clone() if keep is None else keep.copy_(th)
        if decoupled or independent:  # the decay of the epoch-start weights, lr_t or eta_t
            coef = (C.lr * etas[e]) * C.lam if decoupled else etas[e] * C.lam  # (K, 1)
            decay(th, coef, tmp)
        step.add_(1.0)
        for p, gr, m, v, lr, b1, b2 in calls:
            torch._fused_adam_(p, gr, m, v, [], [step], lr=lr * eta, beta1=b1, beta2=b2,
                               weight_decay=0.0, eps=eps, amsgrad=False, maximize=False)
        if decoupled or independent:
            th.sub_(tmp)
        if not all_alive:  # diverged configurations stay frozen
            th.copy_(torch.where(alive, th, keep))
    theta.copy_(th)
    return theta, diverged


def in_place(theta, diverged, C, plan, etas, epochs, loss0, buf, slot, E):
    """The run in place from its start (``observer.full_batch_start``), as
    ``fast.run_full_batch`` returns: (theta, diverged, "eager", metrics buffer)."""
    go = run_adam if plan[0] == 2 and fused_adam_available(theta.device) else run
    theta, diverged = go(theta, diverged, loss0, etas, epochs, C, plan, slot, buf)
    if E in slot:
        buf[:, slot[E]] = observe(theta, C)[0]
    return theta, diverged, "eager", buf
