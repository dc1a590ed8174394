"""What the all-epochs kernels share (``fused``: Triton on CUDA; ``native``: C++ on CPU).

Both run the rule chain as flags (``plan_chain``) and take the run as flat, contiguous
tensors (``kernel_inputs``): the rows of every row set stacked per draw, their targets,
weights and gradient weights, per-configuration hyperparameters, the initial state and
the epoch -> metric-slot table.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch

from wdlab.optim.rules import (
    AddDecayedWeights,
    AddL2,
    AddScheduledDecay,
    ScaleByAdam,
    ScaleByLearningRate,
    TraceMomentum,
)

Tensor = torch.Tensor

#: A configuration diverges when its training MSE is non-finite or exceeds this x its initial
#: MSE (every engine; here, at the bottom of the engine's imports, so no module imports back up).
DIVERGENCE_FACTOR = 1e6


def interpreting() -> bool:
    """True under ``TRITON_INTERPRET=1`` (Triton's CPU interpreter; read when jitting)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


class Plan(tuple):
    """(opt, coupled_scale or None, decoupled, independent, eps): the chain as kernel flags.

    opt: 0 plain SGD, 1 SGD with momentum, 2 Adam.
    """


def plan_chain(chain) -> Plan | None:
    """Map a rule chain onto the kernel's flags, or None when the chain is not covered."""
    rules = list(chain)
    scale = None
    if rules and type(rules[0]) is AddL2:
        scale = rules.pop(0).scale
    opt, eps = 0, 0.0
    if rules and type(rules[0]) is TraceMomentum:
        rules.pop(0)
        opt = 1
    elif rules and type(rules[0]) is ScaleByAdam:
        eps = rules.pop(0).eps
        opt = 2
    decoupled = bool(rules) and type(rules[0]) is AddDecayedWeights
    if decoupled:
        rules.pop(0)
    if not rules or type(rules[0]) is not ScaleByLearningRate:
        return None
    rules.pop(0)
    independent = bool(rules) and type(rules[0]) is AddScheduledDecay
    if independent:
        rules.pop(0)
    if rules or (decoupled and independent):
        return None
    return Plan((opt, scale, decoupled, independent, eps))



class KernelInputs(NamedTuple):
    """One run as the kernels read it; every tensor contiguous, on theta's device and dtype."""

    plan: Plan
    a: Tensor  # (G, NA, D1) rows: train rows, then each eval set's rows
    y: Tensor  # (G, NA) targets
    w: Tensor  # (G, NA) per-set sample weights (each set sums to 1)
    c: Tensor  # (G, NA) loss-gradient weight c_loss * 2 s_n of train rows, 0 elsewhere
    sizes: list[int]  # rows per set; set 0 = train
    bounds: Tensor  # (S + 1,) int32 first row of each set
    lam: Tensor  # (K,)
    l2: Tensor  # (K,) scale * lam as AddL2 forms it (0 without a coupled penalty)
    lr: Tensor  # (K,)
    beta1: Tensor  # (K,)
    beta2: Tensor  # (K,)
    lam_pen: Tensor  # (K,) penalty value scale * lam
    mask: Tensor  # (D1,) decay mask (ones when everything is decayed)
    loss0: Tensor  # (K,)
    theta: Tensor  # (K, D1) a copy, updated in place by the kernel
    m: Tensor  # (K, D1) first moment / momentum (theta itself when unused)
    v: Tensor  # (K, D1) second moment (theta itself when unused)
    alive: Tensor  # (K,) int8 ones
    diverged: Tensor  # (K,) int64, a copy
    slots: Tensor  # (E,) int32 metric slot of each epoch, -1 when not recorded


def as_plan(chain_or_plan) -> Plan | None:
    """A ``Plan`` as is; a rule chain through ``plan_chain``."""
    return chain_or_plan if isinstance(chain_or_plan, Plan) else plan_chain(chain_or_plan)


def kernel_inputs(theta, diverged, C, chain, etas, slot, loss0) -> KernelInputs:
    """Flatten a run (``fast.Consts``, initial state, schedule, recorded epochs) for a kernel.

    ``chain`` is the rule chain or, already mapped once by the dispatch, its ``Plan``."""
    plan = as_plan(chain)
    opt, scale = plan[0], plan[1]
    dev, dt = theta.device, theta.dtype
    G, N, D1 = C.X.shape
    K, E = theta.shape[0], etas.shape[0]
    cont = lambda x: x.to(device=dev, dtype=dt).contiguous()  # noqa: E731
    col = lambda x: cont(x.reshape(K))  # noqa: E731
    a = cont(torch.cat([C.X, C.XT_all[:, :, N:].transpose(1, 2)], 1))  # (G, NA, D1)
    w = cont(torch.cat([wt[:, 0, :] for wt in C.weights], 1))  # (G, NA)
    c = torch.zeros_like(w)
    c[:, :N] = C.coef[:, 0, :]
    sizes = [wt.shape[-1] for wt in C.weights]
    bounds = torch.tensor([0, *torch.tensor(sizes).cumsum(0).tolist()], dtype=torch.int32,
                          device=dev)
    th = theta.contiguous().clone()
    slots = torch.full((E,), -1, dtype=torch.int32)
    for e, i in slot.items():
        if e < E:
            slots[e] = i
    return KernelInputs(
        plan, a, cont(C.y_all[:, 0, :]), w, c, sizes, bounds, col(C.lam),
        col((scale if scale is not None else 0.0) * C.lam), col(C.lr), col(C.beta1),
        col(C.beta2), col(C.lam_pen), torch.ones(D1, device=dev, dtype=dt) if C.mask is None
        else cont(C.mask), col(loss0), th, torch.zeros_like(th) if opt >= 1 else th,
        torch.zeros_like(th) if opt == 2 else th, torch.ones(K, device=dev, dtype=torch.int8),
        diverged.clone().contiguous(), slots.to(dev))
