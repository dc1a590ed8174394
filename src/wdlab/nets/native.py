"""K MLPs trained in one C++ kernel on CPU (the nets engine ``native``).

The kernel (``net_run`` in ``engine/kernels/native.cpp``, built and cached by
``engine.kernels.native_build`` like the linear engine's) computes, for a block of
configurations of one draw held in the lanes of one hardware vector (8 float32 / 4 float64
with AVX2, 16 / 8 with AVX-512; ``engine.kernels.native.lanes``), each step's
forward, data loss, hand-written backward and the rule chain, with the block's parameters,
moments and gradient kept in cache for all the steps of a call:

    z_l = W_l h_{l-1} + b_l,  h_l = act(z_l);  L = sum_n s_n loss(z_L, y_n);
    dW_l = sum_n dz_l h_{l-1}^T,  dz_{l-1} = (W_l^T dz_l) * act'(z_{l-1});
    theta <- theta + chain(grad)      (the chain ``nets.update.ChainUpdate`` runs, as flags)

It runs what ``nets.engine`` runs, the same losses, row shares, batching (the permutations
come from the same generator, in the same order), schedule, divergence rule and metrics;
only the summation order of the matmuls differs, so results agree with the eager program
to rounding (float64: ~1e-15 relative per step) and are bitwise reproducible on one machine
(each block's arithmetic is independent of the thread count and of its neighbours).

On moons (2-16-16-2, n = 200) each weight is read once per 8 rows and each activation
never leaves L1: the batched-matmul program spent more than half its time in MKL's small
``bmm`` calls and most of the rest in per-op overheads.
"""

from __future__ import annotations

import math

import torch

from wdlab.conventions import NET_ENGINES as ENGINES
from wdlab.engine.kernels import native as linear_native
from wdlab.engine.kernels.common import DIVERGENCE_FACTOR, plan_chain
from wdlab.nets.mlp import MLP
from wdlab.optim.schedule import schedule_multiplier

Tensor = torch.Tensor

ACT_CODES = {"identity": 0, "relu": 1, "tanh": 2, "gelu": 3, "quadratic": 4}
#: lane-steps x parameters x rows per kernel call (~0.3-1 s on one core), so Python (Ctrl-C)
#: gets control back regularly whatever the run's size
WORK_PER_CALL = 1 << 30


def covers(model, chain, dtype: torch.dtype, device: torch.device) -> str | None:
    """None when the kernel covers this run, else why not (one line): the linear kernel's
    dtype and rule-chain conditions, plus an MLP description on CPU."""
    if not isinstance(model, MLP):
        return "it runs MLP descriptions only (from_module networks run with torch.func)"
    if device.type != "cpu":
        return "it runs on CPU only"
    if model.n_layers > 62:
        return f"{model.n_layers} layers (the kernel runs up to 62)"
    return linear_native.covers(chain, dtype)


def unavailable(model, chain, dtype: torch.dtype, device: torch.device) -> str | None:
    """None when the kernel can run here (building it if needed), else why not."""
    return covers(model, chain, dtype, device) or linear_native.unavailable(chain, dtype)


#: Per-configuration work (rows of a step x parameters) above which ``auto`` runs native only
#: for full blocks (>= one block of lanes per draw). Below it the eager program's per-op
#: overheads dominate and native wins even for one configuration; above it a half-empty
#: block wastes what batched GEMMs do well. Measured on the 2-core EPYC (AVX2, 8 float32
#: lanes), 1 thread, native / eager speed: moons 2-16-16-2 (71k) 6.4x at K = 1; wine
#: 13-16-3 (37k) 14x at K = 1; digits 64-128-10 full batch (14M) 0.36x at K = 1, 1.0x at
#: K = 4, 2.1x at K = 8; 64-64-10 (6.9M) 0.35x at K = 1, 1.0x at K = 8.
SMALL_WORK = 1 << 20


def resolve(engine: str, model, chain, dtype: torch.dtype, device: torch.device,
            rows: int = 1, per_draw: int = 1):
    """(engine that runs, why the asked one cannot or None).

    ``auto`` is native where the kernel covers the run, a C++ compiler is found and the run
    fills the kernel's blocks well enough (``SMALL_WORK``: ``rows`` per step x parameters
    below it, or ``per_draw`` configurations per data draw >= one block of lanes), else
    eager; ``native`` runs native or falls back to eager with the reason (the caller
    warns); ``eager`` is eager."""
    if engine not in ENGINES:
        raise ValueError(f"engine: unknown name {engine!r}; expected one of {ENGINES}")
    if engine == "eager":
        return "eager", None
    if engine == "auto" and (covers(model, chain, dtype, device) is not None
                             or not linear_native.compiler_present()):
        return "eager", None
    why = unavailable(model, chain, dtype, device)
    if why is not None:
        return "eager", f"native cannot run this: {why}"  # a compiler, but no kernel
    if (engine == "auto" and rows * model.layout.size >= SMALL_WORK
            and per_draw < linear_native.lanes(dtype)):
        return "eager", None
    return "native", None


def _ptr(x: Tensor | None):
    return None if x is None else x.data_ptr()


def train_native(run, theta0: Tensor, hyper, data, test, G: int):
    """Every configuration of a run (``nets.engine._Run``) in the kernel.

    Returns what ``_Run.tile`` returns for all K: (theta (K, P), metrics {name: (R, K)},
    diverged (K,), snapshots (S, K, P))."""
    from wdlab.engine.kernels.native_build import NetArgs, load

    lib = load()
    dt = run.dtype
    model, layout = run.program.mlp, run.layout
    opt, scale, decoupled, independent, eps = plan_chain(run.chain)
    K, P = theta0.shape
    x, tgt = data
    N, D = x.shape[1], x.shape[2]
    M = K // G
    C = model.out_features
    cont = lambda v: None if v is None else v.to(dtype=dt).contiguous()  # noqa: E731
    col = lambda v: v.to(dtype=dt).reshape(K).contiguous()  # noqa: E731
    i64 = lambda v: torch.tensor(v, dtype=torch.int64)  # noqa: E731
    xs = cont(x)
    lab = None if tgt.labels is None else tgt.labels.to(torch.int64).contiguous()
    val = None if tgt.values is None or run.loss == "cross_entropy" else cont(tgt.values)
    wt, per_config = None, 0
    if tgt.weight is not None:
        per_config = int(tgt.weight.ndim == 3)
        wt = cont(tgt.weight.reshape(K, N) if per_config else tgt.weight)
    xt = labt = valt = None
    NT = 0
    if test is not None and test[0].shape[1] > 0:  # an empty test set: NaN rows, as eager
        xt, tt = cont(test[0]), test[1]
        NT = xt.shape[1]
        labt = None if tt.labels is None else tt.labels.to(torch.int64).contiguous()
        valt = None if tt.values is None or run.loss == "cross_entropy" else cont(tt.values)
    B = run.batch_size
    full = B is None or B >= N
    nb = 1 if full else math.ceil(N / B)
    E = run.epochs
    total = E * nb
    eta = torch.tensor([schedule_multiplier(run.schedule, s, total, run.warmup)
                        for s in range(total)], dtype=dt)
    widths = i64(list(model.widths))
    woff = i64([layout.offsets[layout.names.index(model.layer_names(i)[0])]
                for i in range(model.n_layers)])
    boff = i64([-1 if bn is None else layout.offsets[layout.names.index(bn)]
                for bn in (model.layer_names(i)[1] for i in range(model.n_layers))])
    toff = i64([*layout.offsets, layout.size])
    names = run.metric_names(NT > 0)  # the kernel's rows, in its order
    R = len(run.rec)
    met = torch.full((len(names), R, K), float("nan"), dtype=dt)
    slots = torch.full((E + 1,), -1, dtype=torch.int32)
    for i, e in enumerate(run.rec):
        slots[e] = i
    lam = col(hyper.lam)
    theta = theta0.to(dt).contiguous().clone()
    m = torch.zeros_like(theta) if opt >= 1 else theta
    v = torch.zeros_like(theta) if opt == 2 else theta
    loss0 = torch.full((K,), float("nan"), dtype=dt)
    alive = torch.ones(K, dtype=torch.int8)
    diverged = torch.full((K,), -1, dtype=torch.int64)
    mask = run.mask.to(device="cpu", dtype=dt).contiguous()
    keep = [xs, lab, val, wt, xt, labt, valt, widths, woff, boff, toff, eta, slots, met, mask]
    hyp = [col(hyper.lr), col(hyper.beta1), col(hyper.beta2),
           col((scale if scale is not None else 0.0) * lam), col(run.pen_scale * lam)]
    args = NetArgs(
        _ptr(theta), _ptr(m), _ptr(v), _ptr(xs), _ptr(lab), _ptr(val), _ptr(wt), _ptr(xt),
        _ptr(labt), _ptr(valt), None, _ptr(widths), _ptr(woff), _ptr(boff), _ptr(toff),
        _ptr(lam), *(_ptr(h) for h in hyp), _ptr(mask), _ptr(loss0), _ptr(alive),
        _ptr(diverged), _ptr(eta), _ptr(slots), _ptr(met),
        K, M, P, N, NT, D, C, model.n_layers, len(layout.names), 0 if full else int(B), nb,
        R * K, E, 0, 0, ACT_CODES[model.activation], 0 if run.loss == "cross_entropy" else 1,
        int(run.classification), per_config, int(scale is not None), int(decoupled),
        int(independent), float(eps), float(run.smoothing),
        0.5 if run.loss == "half_mse" else 1.0, float(DIVERGENCE_FACTOR))
    kernel = getattr(lib, f"wdlab_native_net_{'f32' if dt == torch.float32 else 'f64'}")
    n_lanes = linear_native.lanes(dt)
    n_blocks = G * -(-M // n_lanes)
    per_epoch = n_blocks * n_lanes * P * (N + NT)  # lane x parameter x row products
    per_call = max(1, min(E, WORK_PER_CALL // per_epoch))
    bounds = sorted({0, E, *range(0, E, per_call), *(e for e in run.snaps if e < E)})
    snap = {e: i for i, e in enumerate(run.snaps)}
    shots = torch.empty((len(run.snaps), K, P), dtype=dt)
    gen = torch.Generator().manual_seed(run.batch_seed)
    with linear_native.block_runner(kernel, args, opt, n_blocks) as (run_range, _):
        for e0, e1 in zip(bounds[:-1], bounds[1:], strict=True):
            if e0 in snap:
                shots[snap[e0]] = theta
            perm = None
            if not full:  # the engine's permutations: every draw's, epoch after epoch
                perm = torch.stack([torch.stack([torch.randperm(N, generator=gen)
                                                 for _ in range(G)]) for _ in range(e0, e1)])
                args.perm = perm.data_ptr()
            args.e0, args.e1 = e0, e1
            run_range(0, n_blocks)
            del perm
    if E in snap:
        shots[snap[E]] = theta
    del keep, hyp  # the kernel read them until here
    metrics = {n: met[i] for i, n in enumerate(names)}
    nan = torch.full((R, K), float("nan"), dtype=dt)
    return theta, {n: metrics.get(n, nan) for n in run.metric_names(test is not None)}, \
        diverged, shots
