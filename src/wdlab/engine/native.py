"""Every epoch of a full-batch CPU run in one C++ kernel (engine ``native``).

The CPU twin of ``engine.fused`` (the Triton kernel): the same rule chains, the same
operation order, the same metrics. Configurations are the vector lanes (16 float32 or 8
float64 per block); a block keeps its theta and optimizer state transposed in a thread-local
buffer for all the epochs of a call, so the run is compute-bound, not memory-bound (see
``_cpu_kernel.cpp``). Torch's thread count (``torch.get_num_threads()``) sets the number of
threads, each running a contiguous range of blocks (ctypes releases the GIL).

The library is built at first use by ``wdlab._native`` (system C++ compiler, cached per
machine); where that is impossible the caller falls back with a warning.
"""

from __future__ import annotations

import ctypes
from concurrent.futures import ThreadPoolExecutor

import torch

from wdlab.engine.fused import plan_chain

Tensor = torch.Tensor

#: Epochs per kernel call; the state round-trips memory once per call (~nothing at this size).
EPOCHS_PER_CALL = 512
#: Configuration-epochs per call (~0.5 s on one core): blocks are run in groups of about this
#: much work, all epochs of a group before the next, so Python (Ctrl-C) gets control back
#: regularly whatever K is, without extra memory traffic.
WORK_PER_CALL = 1 << 22
#: Threads, each running a contiguous range of blocks; None = ``torch.get_num_threads()``.
THREADS: int | None = None


def covers(chain, dtype: torch.dtype) -> str | None:
    """None when the kernel covers this run, else the reason it does not."""
    if dtype not in (torch.float32, torch.float64):
        return f"dtype {dtype} (the kernel runs float32 and float64)"
    if plan_chain(chain) is None:
        return "rule chain " + " -> ".join(type(r).__name__ for r in chain)
    return None


def unavailable(chain, dtype: torch.dtype) -> str | None:
    """None when the kernel can run this chain and dtype here (building it if needed)."""
    why = covers(chain, dtype)
    if why is not None:
        return why
    from wdlab._native import NativeUnavailable, load

    try:
        load()
    except NativeUnavailable as exc:
        return str(exc)
    return None


def compiler_present() -> bool:
    """Cheap check (no build): is there a C++ compiler to build the kernel with?"""
    from wdlab._native import compiler

    return compiler() is not None


def _ptr(x: Tensor | None) -> int | None:
    return None if x is None else x.data_ptr()


def run(theta, diverged, C, chain, etas, slot, buf, loss0):
    """All epochs of a full-batch CPU run; returns (theta, diverged).

    Args as ``engine.fused.run``: theta (K, D1) initial parameters (not modified), diverged
    (K,) int64, C the run's ``fast.Consts``, chain (``covers`` must accept it), etas (E,),
    slot epoch -> metric slot, buf (n_met, R, K) metric buffer filled at recorded epochs
    < E, loss0 (K,) initial train MSE.
    """
    from wdlab._native import Args, load
    from wdlab.engine.fast import DIVERGENCE_FACTOR

    lib = load()
    opt, scale, decoupled, independent, eps = plan_chain(chain)
    dt = theta.dtype
    suffix = "f32" if dt == torch.float32 else "f64"
    lanes = int(getattr(lib, f"wdlab_native_lanes_{suffix}")())
    kernel = getattr(lib, f"wdlab_native_run_{suffix}")
    G, N, D1 = C.X.shape
    K = theta.shape[0]
    M = K // G
    E = etas.shape[0]
    cont = lambda x: x.to(dtype=dt).contiguous()  # noqa: E731
    a = cont(torch.cat([C.X, C.XT_all[:, :, N:].transpose(1, 2)], 1))  # (G, NA, D1)
    aT = cont(C.XT)  # (G, D1, N)
    NA = a.shape[1]
    y = cont(C.y_all[:, 0, :])  # (G, NA)
    w = cont(torch.cat([wt[:, 0, :] for wt in C.weights], 1))  # (G, NA)
    c = cont(C.coef[:, 0, :])  # (G, N)
    sizes = [wt.shape[-1] for wt in C.weights]
    bounds = torch.tensor([0, *torch.tensor(sizes).cumsum(0).tolist()], dtype=torch.int32)
    col = lambda v: cont(v.reshape(K))  # noqa: E731
    lam = col(C.lam)
    l2 = col((scale if scale is not None else 0.0) * C.lam)  # as AddL2 forms scale * lam
    mask = torch.ones(D1, dtype=dt) if C.mask is None else cont(C.mask)
    ref = None if C.ref is None else cont(C.ref)
    th = theta.contiguous().clone()
    m = torch.zeros_like(th) if opt >= 1 else th
    v = torch.zeros_like(th) if opt == 2 else th
    alive = torch.ones(K, dtype=torch.int8)
    div = diverged.clone().contiguous()
    slots = torch.full((E,), -1, dtype=torch.int32)
    for e, i in slot.items():
        if e < E:
            slots[e] = i
    keep = [a, aT, y, w, c, bounds, lam, l2, mask, ref, th, m, v, alive, div, slots,
            col(C.lr), col(C.beta1), col(C.beta2), col(C.lam_pen), cont(loss0), cont(etas)]
    lr, b1, b2, lampen, l0, eta = keep[-6:]
    if not buf.is_contiguous() or buf.dtype != dt:
        raise ValueError("metric buffer: must be a contiguous tensor of the run's dtype")
    args = Args(
        _ptr(th), _ptr(m), _ptr(v), _ptr(a), _ptr(aT), _ptr(y), _ptr(w), _ptr(c), _ptr(bounds),
        _ptr(lam), _ptr(lr), _ptr(b1), _ptr(b2), _ptr(l2), _ptr(lampen), _ptr(mask), _ptr(ref),
        _ptr(l0), _ptr(alive), _ptr(div), _ptr(eta), _ptr(slots), _ptr(buf),
        K, M, D1, NA, N, len(sizes), C.n_w, buf.shape[1] * K, 0, 0,
        int(scale is not None), int(decoupled), int(independent),
        float(eps), float(C.c_val), float(DIVERGENCE_FACTOR))
    n_blocks = G * -(-M // lanes)
    n_threads = max(1, min(THREADS or torch.get_num_threads(), n_blocks))
    per_call = max(1, min(E, EPOCHS_PER_CALL))
    group = max(n_threads, WORK_PER_CALL // (lanes * per_call))  # blocks per group
    pool = ThreadPoolExecutor(n_threads) if n_threads > 1 else None
    try:
        for g0 in range(0, n_blocks, group):  # block groups, each for all its epochs
            g1 = min(n_blocks, g0 + group)
            cuts = [g0 + (g1 - g0) * i // n_threads for i in range(n_threads + 1)]
            for e0 in range(0, E, per_call):
                args.e0, args.e1 = e0, min(E, e0 + per_call)
                calls = [(ctypes.byref(args), opt, cuts[i], cuts[i + 1])
                         for i in range(n_threads) if cuts[i] < cuts[i + 1]]
                codes = (list(pool.map(lambda x: kernel(*x), calls)) if pool
                         else [kernel(*c) for c in calls])
                if any(codes):
                    raise MemoryError("native kernel: could not allocate its scratch buffer")
    finally:
        if pool is not None:
            pool.shutdown()
    del keep
    return th, div
