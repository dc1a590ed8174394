"""Small update rules; an optimizer is a chain of them (optax style).

Every rule maps an update direction ``u`` (K, D1) to a new one, given the parameters
``theta`` (K, D1), its own state and a per-step context. The chain starts from the data-loss
gradient and its result is added to theta: theta <- theta + chain(grad).

All rules are pure tensor functions (no in-place mutation of their inputs), so a chain can
be traced by ``torch.compile``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Tensor = torch.Tensor


@dataclass(frozen=True)
class StepContext:
    """Per-step values, broadcastable against (K, D1)."""

    lam: Tensor  # (K, 1) regularization coefficient in the regularizer's convention
    lr: Tensor  # (K, 1) lr_t = lr * eta_t, the scheduled learning rate
    eta: Tensor | float  # schedule multiplier eta_t (1.0 for a constant schedule)
    beta1: Tensor  # (K, 1) Adam beta1, or SGD momentum
    beta2: Tensor  # (K, 1) Adam beta2
    t: Tensor  # (K, 1) 1-based step count (float), per configuration
    decay_mask: Tensor | None  # (D1,) 1 on decayed coordinates, None = all decayed


class Rule:
    """Base rule: stateless identity."""

    def init(self, theta: Tensor) -> tuple[Tensor, ...]:
        return ()

    def __call__(self, u: Tensor, theta: Tensor, state: tuple[Tensor, ...], ctx: StepContext):
        return u, state


def _decayed(theta: Tensor, ctx: StepContext) -> Tensor:
    return theta if ctx.decay_mask is None else theta * ctx.decay_mask  # (K, D1)


class AddL2(Rule):
    """Coupled L2: u <- u + c * lam * theta (masked). Gradient of a penalty, or PyTorch's
    coupled ``weight_decay``; the optimizer that follows scales it (decay multiplied by lr
    through the optimizer, and rescaled by Adam's moments).
    """

    def __init__(self, scale: float):
        self.scale = float(scale)  # c: 2/d for "mean", 1 for "half_sum"/"weight_decay", 2 for "sum"

    def __call__(self, u, theta, state, ctx):
        return u + (self.scale * ctx.lam) * _decayed(theta, ctx), state


class TraceMomentum(Rule):
    """Heavy-ball momentum, PyTorch semantics (dampening 0): b <- mu * b + u; u <- b.

    With b0 = 0 the first step gives b1 = u, exactly as ``torch.optim.SGD``.
    """

    def init(self, theta):
        return (torch.zeros_like(theta),)

    def __call__(self, u, theta, state, ctx):
        buf = ctx.beta1 * state[0] + u  # (K, D1)
        return buf, (buf,)


class ScaleByAdam(Rule):
    """Adam's direction (Kingma & Ba 2015), as ``torch.optim.Adam`` computes it:

    m <- b1 m + (1-b1) u;  v <- b2 v + (1-b2) u^2;
    u <- (m / (1 - b1^t)) / (sqrt(v) / sqrt(1 - b2^t) + eps).
    """

    def __init__(self, eps: float):
        self.eps = float(eps)

    def init(self, theta):
        return (torch.zeros_like(theta), torch.zeros_like(theta))

    def __call__(self, u, theta, state, ctx):
        m, v = state
        m = m + (1.0 - ctx.beta1) * (u - m)  # (K, D1), lerp as torch does
        v = ctx.beta2 * v + (1.0 - ctx.beta2) * (u * u)  # (K, D1)
        bc1 = 1.0 - torch.pow(ctx.beta1, ctx.t)  # (K, 1)
        bc2_sqrt = torch.sqrt(1.0 - torch.pow(ctx.beta2, ctx.t))  # (K, 1)
        direction = (m / bc1) / (torch.sqrt(v) / bc2_sqrt + self.eps)  # (K, D1)
        return direction, (m, v)


class AddDecayedWeights(Rule):
    """Decoupled decay before lr scaling: u <- u + wd * theta (masked).

    Followed by ``ScaleByLearningRate`` the decay is multiplied by lr_t, as in
    ``torch.optim.AdamW`` (and optax ``adamw``).
    """

    def __call__(self, u, theta, state, ctx):
        return u + ctx.lam * _decayed(theta, ctx), state


class ScaleByLearningRate(Rule):
    """u <- -lr_t * u, with lr_t = lr * eta_t."""

    def __call__(self, u, theta, state, ctx):
        return -ctx.lr * u, state


class AddScheduledDecay(Rule):
    """Fully decoupled decay after lr scaling: u <- u - eta_t * wd * theta (masked).

    Loshchilov & Hutter (2019), Alg. 2 line 12: the decay is multiplied by the schedule
    multiplier eta_t only, NOT by the base learning rate.
    """

    def __call__(self, u, theta, state, ctx):
        return u - (ctx.eta * ctx.lam) * _decayed(theta, ctx), state


def init_chain(chain: list[Rule], theta: Tensor) -> list[tuple[Tensor, ...]]:
    return [rule.init(theta) for rule in chain]


def apply_chain(chain: list[Rule], grad: Tensor, theta: Tensor, states, ctx: StepContext):
    """Run the chain; returns (new theta, new states)."""
    u = grad
    new_states = []
    for rule, st in zip(chain, states, strict=True):
        u, st = rule(u, theta, st, ctx)
        new_states.append(st)
    return theta + u, new_states
