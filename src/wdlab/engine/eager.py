"""The eager full-batch engine: ``fast.epoch_step``'s arithmetic, in place, on fixed buffers.

For configuration k (draw g) each epoch, with r = X_g theta_k - y_g at the epoch start:

    metrics_k (recorded epochs) = ``fast.observe_extra``;  divergence as ``fast.epoch_step``
    u = c_loss * 2 X_g^T (s * r);   u <- chain(u);   theta_k <- theta_k + u   (alive only)

The chain runs as the kernels' flags (``kernels.plan_chain``: [AddL2] -> [TraceMomentum |
ScaleByAdam] -> [AddDecayedWeights] -> ScaleByLearningRate -> [AddScheduledDecay]), each
rule as the SAME element-wise operations, in the same order, as ``engine.rules`` (so every
bit equals ``epoch_step`` run eagerly), but written into five preallocated (K, D1) buffers
(theta, two moments, the update, one scratch) instead of ~20 fresh tensors per epoch, with
per-run constants (1 - beta, the AddL2 coefficient) formed once. Where only the intercept
is undecayed, ``theta * mask`` is not formed: the product is taken on all columns and the
intercept's column is set to the masked product (the same bits, one pass fewer).
"""

from __future__ import annotations

import torch

from wdlab.engine.fast import _set_mses, full_batch_start, observe, observe_extra
from wdlab.engine.kernels import DIVERGENCE_FACTOR

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
    X, weights = C.X, C.weights
    G, N, D1 = X.shape
    K = theta.shape[0]
    M = K // G
    dt, dev = theta.dtype, theta.device
    decay = _Decay(C.mask)
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
        th3 = theta.view(G, M, D1)
        record = e in slot
        if record:
            torch.bmm(th3, C.XT_all, out=r_all).sub_(C.y_all)  # (G, M, N_all) train first
            mses = _set_mses(r_all, weights, K)  # (K, S)
            r = r_all[:, :, :N]  # (G, M, N)
            mse = mses[:, 0]  # (K,)
        else:
            r = torch.bmm(th3, C.XT, out=r_tr).sub_(C.y)  # (G, M, N)
            mse = ((r * r) * weights[0]).sum(-1).reshape(K)  # (K,)
        bad = ~(mse <= DIVERGENCE_FACTOR * loss0) & alive[:, 0]  # (K,) newly diverged
        if all_alive and not bool(bad.any()):
            pass  # the common case: nothing to mask
        else:
            diverged = torch.where(bad, epochs[e], diverged)  # (K,)
            alive = alive & ~bad[:, None]  # (K, 1)
            all_alive = False
        if record:
            buf[:, slot[e]] = observe_extra(theta, mses, C, decay.square(theta, tmp))

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


def run_full_batch(theta, diverged, C, plan, spec, slot, R):
    """All epochs of a full-batch eager run; returns (theta, diverged, "eager", metrics
    buffer (S + 3 [+1], R, K)), as ``fast.run_full_batch``."""
    etas, epochs, loss0, buf = full_batch_start(theta, C, spec, R)
    theta, diverged = run(theta, diverged, loss0, etas, epochs, C, plan, slot, buf)
    if spec.epochs in slot:
        buf[:, slot[spec.epochs]] = observe(theta, C)[0]
    return theta, diverged, "eager", buf
