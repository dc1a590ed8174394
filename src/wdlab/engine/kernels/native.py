"""Every epoch of a full-batch CPU run in one C++ kernel (engine ``native``).

The CPU twin of ``engine.kernels.triton`` (the Triton kernel): the same rule chains, the same
operation order, the same metrics. Configurations are the vector lanes (one hardware vector
per block: 8 float32 or 4 float64 with AVX2, 16 or 8 with AVX-512); a block keeps its theta and optimizer state transposed in a thread-local
buffer for all the epochs of a call, so the run is compute-bound, not memory-bound (see
``native.cpp``). Torch's thread count (``torch.get_num_threads()``) sets the number of
threads, each running a contiguous range of blocks (ctypes releases the GIL); the torch ops
around a run go on one intra-op thread meanwhile (``torch_serial``).

The library is built at first use by ``wdlab.engine.kernels.native_build`` (system C++ compiler, cached per
machine); where that is impossible the caller falls back with a warning.
"""

from __future__ import annotations

import contextlib
import ctypes
from concurrent.futures import ThreadPoolExecutor

import torch

from wdlab.engine.kernels.common import DIVERGENCE_FACTOR, as_plan, kernel_inputs

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
    """None when the kernel covers this run (``chain``: rule chain or its ``Plan``), else the
    reason it does not."""
    if dtype not in (torch.float32, torch.float64):
        return f"dtype {dtype} (the kernel runs float32 and float64)"
    if as_plan(chain) is None:
        return "rule chain " + " -> ".join(type(r).__name__ for r in chain)
    return None


def unavailable(chain, dtype: torch.dtype) -> str | None:
    """None when the kernel can run this chain and dtype here (building it if needed)."""
    why = covers(chain, dtype)
    if why is not None:
        return why
    from wdlab.engine.kernels.native_build import NativeUnavailable, load

    try:
        load()
    except NativeUnavailable as exc:
        return str(exc)
    return None


def compiler_present() -> bool:
    """Cheap check (no build): is there a C++ compiler to build the kernel with?"""
    from wdlab.engine.kernels.native_build import compiler

    return compiler() is not None


def _suffix(dtype: torch.dtype) -> str:
    return "f32" if dtype == torch.float32 else "f64"


def lanes(dtype: torch.dtype) -> int:
    """Configurations per block of both kernels (linear and MLP): one hardware vector of
    ``dtype`` (8 float32 / 4 float64 with AVX2, 16 / 8 with AVX-512)."""
    from wdlab.engine.kernels.native_build import load

    return int(getattr(load(), f"wdlab_native_lanes_{_suffix(dtype)}")())


#: Below this many (configuration x parameter) entries a native run's torch side runs on one
#: thread (``torch_serial``); above it that side's own work outweighs the spin-wait it avoids
#: (2-core Zen 5, 2 threads, K = 10^4 seed configurations: 5.34 vs 5.69 M config-steps/s).
SERIAL_TORCH_ENTRIES = 1 << 20


def torch_serial(entries: int):
    """For a run of fewer than ``SERIAL_TORCH_ENTRIES`` (configuration x parameter) entries,
    the block's torch ops (the run's inputs, first metrics, copies) on one intra-op thread,
    while ``block_runner`` still gives the kernels torch's count (``engine.threads``).

    Torch's OpenMP workers spin-wait for a few milliseconds after every parallel op, on the
    cores the kernel's threads need next: on the 2-core Zen 5 EPYC, K = 10^3 seed
    configurations x 100 epochs with 2 threads spent 16.4-18.5 ms in the kernel call
    (its slowest thread 10.7-12.5 ms) against 9.4-9.6 ms with the torch side on one
    thread (whole call 21.9-24.4 ms -> 14.3-14.9 ms). The kernel's bits do not depend on
    threads; the torch side's small ops (elementwise, short reductions) give the same bits
    on one thread as on torch's count, also with 60,000 rows (tests/test_engine_native.py)."""
    from wdlab.engine.threads import one_thread

    return one_thread(entries < SERIAL_TORCH_ENTRIES, keep_for_kernels=True)


def kernel_threads() -> int:
    """Threads the kernels may use: ``THREADS``, else torch's count (as it was before
    ``torch_serial`` lowered it)."""
    from wdlab.engine.threads import kept_threads

    return THREADS or kept_threads() or torch.get_num_threads()


@contextlib.contextmanager
def block_runner(kernel, args, opt: int, n_blocks: int):
    """Yields (run_range, n_threads): ``run_range(b0, b1)`` runs blocks [b0, b1) of ``args``
    (a ctypes structure the kernel reads) with one contiguous range per thread, at most
    ``kernel_threads()`` threads (ctypes releases the GIL); a kernel's non-zero return
    code raises (1: its scratch memory; else the code)."""
    n_threads = max(1, min(kernel_threads(), n_blocks))
    pool = ThreadPoolExecutor(n_threads) if n_threads > 1 else None

    def run_range(b0: int, b1: int) -> None:
        cuts = [b0 + (b1 - b0) * i // n_threads for i in range(n_threads + 1)]
        calls = [(ctypes.byref(args), opt, cuts[i], cuts[i + 1])
                 for i in range(n_threads) if cuts[i] < cuts[i + 1]]
        codes = (list(pool.map(lambda c: kernel(*c), calls)) if pool
                 else [kernel(*c) for c in calls])
        if 1 in codes:
            raise MemoryError("native kernel: could not allocate its scratch buffer")
        if any(codes):
            raise RuntimeError(f"native kernel: returned error code {max(codes)}")

    try:
        yield run_range, n_threads
    finally:
        if pool is not None:
            pool.shutdown()


def run(theta, diverged, C, chain, etas, slot, buf, loss0):
    """All epochs of a full-batch CPU run; returns (theta, diverged).

    Args as ``engine.kernels.triton.run``: theta (K, D1) initial parameters (not modified), diverged
    (K,) int64, C the run's ``fast.Consts``, chain (``covers`` must accept it), etas (E,),
    slot epoch -> metric slot, buf (n_met, R, K) metric buffer filled at recorded epochs
    < E, loss0 (K,) initial train MSE.
    """
    from wdlab.engine.kernels.native_build import Args, load

    lib = load()
    if not buf.is_contiguous() or buf.dtype != theta.dtype:
        raise ValueError("metric buffer: must be a contiguous tensor of the run's dtype")
    k = kernel_inputs(theta, diverged, C, chain, etas, slot, loss0)
    opt, scale, decoupled, independent, eps = k.plan
    n_lanes = lanes(theta.dtype)
    kernel = getattr(lib, f"wdlab_native_run_{_suffix(theta.dtype)}")
    G, N, D1 = C.X.shape
    K, E, NA = theta.shape[0], etas.shape[0], k.a.shape[1]
    M = K // G
    aT = C.XT.to(theta.dtype).contiguous()  # (G, D1, N) train rows, for the gradient
    c = k.c[:, :N].contiguous()  # (G, N)
    ref = None if C.ref is None else C.ref.to(theta.dtype).contiguous()
    eta = etas.contiguous()
    p = lambda x: None if x is None else x.data_ptr()  # noqa: E731
    args = Args(
        p(k.theta), p(k.m), p(k.v), p(k.a), p(aT), p(k.y), p(k.w), p(c), p(k.bounds), p(k.lam),
        p(k.lr), p(k.beta1), p(k.beta2), p(k.l2), p(k.lam_pen), p(k.mask), p(ref), p(k.loss0),
        p(k.alive), p(k.diverged), p(eta), p(k.slots), p(buf),
        K, M, D1, NA, N, len(k.sizes), C.n_w, buf.shape[1] * K, 0, 0,
        int(scale is not None), int(decoupled), int(independent),
        float(eps), float(C.c_val), float(DIVERGENCE_FACTOR))
    n_blocks = G * -(-M // n_lanes)
    per_call = max(1, min(E, EPOCHS_PER_CALL))
    with block_runner(kernel, args, opt, n_blocks) as (run_range, n_threads):
        group = max(n_threads, WORK_PER_CALL // (n_lanes * per_call))  # blocks per group
        for g0 in range(0, n_blocks, group):  # block groups, each for all its epochs
            for e0 in range(0, E, per_call):
                args.e0, args.e1 = e0, min(E, e0 + per_call)
                run_range(g0, min(n_blocks, g0 + group))
    return k.theta, k.diverged  # aT, c, ref, eta stay alive until here: the kernel reads them
