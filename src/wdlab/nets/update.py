"""The rule chain of ``optim.registry`` as one in-place update on preallocated buffers.

theta <- theta + chain(grad), for the chains ``engine.kernels.common.plan_chain`` covers:

    [AddL2] -> [TraceMomentum | ScaleByAdam] -> [AddDecayedWeights] -> ScaleByLearningRate
            -> [AddScheduledDecay]

Each rule is the SAME element-wise operations, in the same order, as ``optim.rules``
(so the values equal ``apply_chain`` run eagerly), written into four (K, P) buffers (the
update, one scratch, the two moments) instead of ~20 fresh tensors per step. A chain the
plan does not cover falls back to ``apply_chain`` itself. Frozen (diverged)
configurations keep their parameters: theta_k <- where(alive_k, theta_k + u_k, theta_k).
"""

from __future__ import annotations

import torch

from wdlab.engine.kernels.common import plan_chain
from wdlab.optim.rules import StepContext, apply_chain, init_chain

Tensor = torch.Tensor


class ChainUpdate:
    """One optimizer step of K configurations, in place on theta (K, P)."""

    def __init__(self, chain, theta: Tensor, mask: Tensor | None, lam: Tensor, lr: Tensor,
                 beta1: Tensor, beta2: Tensor):
        self.chain, self.mask = chain, mask
        self.lam, self.lr, self.beta1, self.beta2 = lam, lr, beta1, beta2  # (K, 1) each
        self.plan = plan_chain(chain)
        if self.plan is None:
            self.states = init_chain(chain, theta)
            return
        opt, scale, _, _, _ = self.plan
        self.u = torch.empty_like(theta)  # (K, P) the update, when grad is not contiguous
        self.tmp = torch.empty_like(theta)  # (K, P) scratch
        self.m = torch.zeros_like(theta) if opt >= 1 else None  # momentum / first moment
        self.v = torch.zeros_like(theta) if opt == 2 else None  # second moment
        self.l2 = None if scale is None else scale * lam  # (K, 1) AddL2's coefficient
        self.omb1, self.omb2 = 1.0 - beta1, 1.0 - beta2  # (K, 1)

    def _decay(self, theta: Tensor, coef) -> Tensor:
        """coef * (theta * mask) into the scratch buffer, as ``coef * rules._decayed``."""
        if self.mask is None:
            return torch.mul(theta, coef, out=self.tmp)
        return torch.mul(theta, self.mask, out=self.tmp).mul_(coef)

    def __call__(self, theta: Tensor, grad: Tensor, eta: float, t: Tensor, alive: Tensor,
                 all_alive: bool) -> None:
        """theta <- theta + chain(grad) for the alive rows; grad (K, P) may be overwritten.

        Args:
            eta: the schedule multiplier eta_t of this step (lr_t = lr * eta_t).
            t: (K, 1) 1-based step counts (already incremented for this step).
            alive: (K, 1) bool; all_alive: whether every entry of ``alive`` is True.
        """
        if self.plan is None:
            ctx = StepContext(self.lam, self.lr * eta, eta, self.beta1, self.beta2, t,
                              self.mask)
            new, self.states = apply_chain(self.chain, grad, theta, self.states, ctx)
            theta.copy_(new if all_alive else torch.where(alive, new, theta))
            return
        opt, _, decoupled, independent, eps = self.plan
        tmp, m, v = self.tmp, self.m, self.v
        u = grad if grad.is_contiguous() else self.u.copy_(grad)  # (K, P), overwritten
        if self.l2 is not None:  # AddL2: u + (c lam) * decayed(theta)
            u.add_(self._decay(theta, self.l2))
        d = u
        if opt == 1:  # TraceMomentum: b <- mu b + u; u <- b
            m.mul_(self.beta1).add_(u)
            d = m
        elif opt == 2:  # ScaleByAdam
            m.add_(torch.sub(u, m, out=tmp).mul_(self.omb1))  # m + (1 - b1) (u - m)
            v.mul_(self.beta2).add_(u.mul_(u).mul_(self.omb2))  # b2 v + (1 - b2) u^2
            bc1 = 1.0 - torch.pow(self.beta1, t)  # (K, 1)
            bc2_sqrt = torch.sqrt(1.0 - torch.pow(self.beta2, t))  # (K, 1)
            torch.sqrt(v, out=tmp).div_(bc2_sqrt).add_(eps)  # sqrt(v) / sqrt(bc2) + eps
            torch.div(m, bc1, out=u).div_(tmp)  # (m / bc1) / (...)
        if decoupled:  # AddDecayedWeights: u + lam * decayed(theta)
            d = torch.add(d, self._decay(theta, self.lam), out=u)
        neg_lr = -(self.lr * eta)  # (K, 1) ScaleByLearningRate: -lr_t u
        if d is u:
            u.mul_(neg_lr)
        else:
            torch.mul(d, neg_lr, out=u)
        if independent:  # AddScheduledDecay: u - (eta lam) * decayed(theta)
            u.sub_(self._decay(theta, eta * self.lam))
        if all_alive:
            theta.add_(u)
        else:  # diverged configurations stay frozen
            theta.copy_(torch.where(alive, torch.add(theta, u, out=self.tmp), theta))
