"""Every epoch of a full-batch run in one Triton kernel (engine ``triton``).

Program p owns configurations k in [p*BK, (p+1)*BK), each on draw g(k) = k // M, and keeps
their rows of theta, m, v (K, D1) in registers for all epochs e0 <= e < e1:

    r_n   = x_{g,n} . theta_k - y_{g,n}                    (n over the train rows, one pass)
    mse_k = sum_n s_n r_n^2;   grad_k = sum_n (c_loss * 2 s_n r_n) x_{g,n}
    alive_k <- alive_k and mse_k <= DIVERGENCE_FACTOR * loss0_k (else diverged_k = e)
    theta_k <- theta_k + chain(grad_k)                        (alive configurations only)

with chain = [AddL2] -> [TraceMomentum | ScaleByAdam] -> [AddDecayedWeights] ->
ScaleByLearningRate -> [AddScheduledDecay], the same rules as ``optim.rules`` in the same
float32 operation order (IEEE division and square root; Adam's beta^t as a float64 running
product rounded to float32, t = e + 1 since a configuration counts steps only while alive and
never revives). On a recorded epoch the program also
writes [mse per row set, penalty, objective, ||w|| (, ||theta - ref||)] at the epoch start.
theta, m and v are read from and written to memory once per launch, not once per epoch.

Runs on CUDA, or in Triton's CPU interpreter when ``TRITON_INTERPRET=1`` (tests).
``triton`` is imported only here, lazily.
"""

from __future__ import annotations

import functools

import torch

from wdlab.engine.kernels.common import (
    DIVERGENCE_FACTOR,
    Plan,
    as_plan,
    interpreting,
    kernel_inputs,
    plan_chain,
)

__all__ = ["Plan", "available", "covers", "interpreting", "plan_chain", "run"]

Tensor = torch.Tensor

#: The kernel keeps a padded row of D1 floats per tensor per warp in registers; wider models
#: would spill, so they run on the other engines.
MAX_D1 = 1024
#: Epochs per launch (bounds one kernel's run time; state round-trips memory between launches).
EPOCHS_PER_LAUNCH = 4096
#: Configurations per program (one warp each). Measured on an H200 at K = 1e6, 100 epochs
#: (benchmarks/results_gpu_h200_triton_tune.json): 2 -> 3.5e8, 4 -> 1.5e8, 8 -> 0.75e8
#: steady config-steps/s.
BLOCK_K = 2


@functools.cache
def _triton_imports() -> bool:
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception:  # noqa: BLE001  missing or broken install
        return False
    return True


def available(device: torch.device) -> bool:
    """True when the kernel can run on ``device``: CUDA with Triton, or the CPU interpreter."""
    if not _triton_imports():
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and interpreting()


def covers(chain, dtype: torch.dtype, d1: int) -> str | None:
    """None when the kernel covers this run (``chain``: rule chain or its ``Plan``), else the
    reason it does not."""
    if dtype != torch.float32:
        return f"dtype {dtype} (the kernel is float32 only)"
    if d1 > MAX_D1:
        return f"{d1} parameters per model (the kernel holds at most {MAX_D1})"
    if as_plan(chain) is None:
        return "rule chain " + " -> ".join(type(r).__name__ for r in chain)
    return None


@functools.cache
def _kernel(interpret: bool):
    """The jitted kernel, built in the current interpreter mode (``triton.jit`` reads it)."""
    import importlib

    from wdlab.engine.kernels import _triton_kernel as mod

    if mod.INTERPRET != interpret:
        mod = importlib.reload(mod)
    return mod.fused_epochs


def run(theta, diverged, C, chain, etas, slot, buf, loss0):
    """All epochs of a full-batch run through the kernel; returns (theta, diverged).

    Args:
        theta: (K, D1) float32 initial parameters (not modified).  diverged: (K,) int64.
        C: the run's ``fast.Consts``.  chain: the rule chain (``covers`` must accept it).
        etas: (E,) schedule multipliers.  slot: epoch -> metric slot.  buf: (n_met, R, K)
        metric buffer, filled at the recorded epochs < E.  loss0: (K,) initial train MSE.
    """
    k = kernel_inputs(theta, diverged, C, chain, etas, slot, loss0)
    opt, scale, decoupled, independent, eps = k.plan
    dev, dt = theta.device, theta.dtype
    G, _, D1 = C.X.shape
    K, E, NA = theta.shape[0], etas.shape[0], k.a.shape[1]
    ref = theta if C.ref is None else C.ref.contiguous()
    eps_t = torch.tensor([eps], device=dev, dtype=dt)
    R = buf.shape[1]
    kernel = _kernel(interpreting())
    grid = (triton_cdiv(K, BLOCK_K),)
    bd = max(32, 1 << (D1 - 1).bit_length())
    for e0 in range(0, E, EPOCHS_PER_LAUNCH):
        kernel[grid](
            k.theta, k.m, k.v, k.a, k.y, k.w, k.c, k.bounds, k.lam, k.lr, k.beta1, k.beta2, k.l2,
            k.lam_pen, k.mask, ref, k.loss0, k.alive, k.diverged, etas, k.slots, eps_t, buf, K,
            K // G, D1, NA, len(k.sizes), C.n_w, R * K, e0, min(E, e0 + EPOCHS_PER_LAUNCH),
            float(C.c_val), float(DIVERGENCE_FACTOR),
            OPT=opt, COUPLED=scale is not None, DECOUPLED=decoupled, INDEPENDENT=independent,
            HAS_REF=C.ref is not None, BK=BLOCK_K, BD=bd, num_warps=BLOCK_K)
    th, div = k.theta, k.diverged
    return th, div


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)
