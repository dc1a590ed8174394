"""The full-batch epoch as one pure function, run eagerly or under ``torch.compile``.

One epoch of configuration k (draw g), with residuals r = X_g theta_k - y_g at the epoch start:

    metrics_k = [sum_n s_n r_n^2 (train, each eval set), P_k(w), objective, ||w||]
    theta_k <- theta_k + chain(c_loss * 2 X_g^T (s * r))          (only while k is alive)

The residuals of the train rows and of every eval set come from ONE batched matmul against
the concatenated design; all per-set MSEs from one more. The rule chain is the same list of
pure update rules as the eager engine, so ``torch.compile`` fuses the element-wise work
(gradient scaling, moments, decay, update, divergence mask) into a few kernels.

Engines:
    ``eager``     ``engine.eager``: this function in place on fixed buffers (bit for bit
                  for SGD chains; Adam by torch's fused Adam kernel, one pass), or the
                  function as written for a chain no kernel plan maps;
    ``compiled``  ``torch.compile`` of the same function; on CUDA with small K, many epochs
                  are captured in one CUDA graph and replayed;
    ``triton``    every epoch in one Triton kernel that keeps each configuration's theta and
                  optimizer state in registers (``engine.kernels.triton``; CUDA, or Triton's CPU
                  interpreter under ``TRITON_INTERPRET=1``);
    ``native``    every epoch in one C++ kernel that keeps blocks of configurations' state in
                  cache (``engine.kernels.native``; CPU, built once per machine by the system C++
                  compiler);
    ``auto``      on CUDA ``triton`` when Triton imports and the kernel covers the run; on CPU
                  ``native`` when a C++ compiler is present; else ``compiled`` when a compiler
                  is available and the work is large enough to pay for compilation, else
                  ``eager``. Resolved once per run by ``engine.dispatch.resolve``.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import warnings
from typing import NamedTuple

import torch

from wdlab.conventions import ENGINES
from wdlab.engine import eager
from wdlab.engine.kernels.common import DIVERGENCE_FACTOR
from wdlab.engine.observer import _set_mses, full_batch_start, observe, observe_extra
from wdlab.optim.rules import StepContext, apply_chain

Tensor = torch.Tensor

__all__ = ["DIVERGENCE_FACTOR", "ENGINES", "EngineFallbackWarning", "choose_engine",
           "compiler_available", "epoch_step", "observe", "observe_extra", "run_full_batch"]

#: ``auto`` compiles when K * epochs reaches this many configuration-steps (compilation costs
#: seconds; the eager CPU engine runs ~0.5 M configuration-steps/s on two cores).
AUTO_MIN_CONFIG_STEPS = {"cpu": 20_000_000, "cuda": 2_000_000}
#: On CUDA, K * D1 at or below this uses CUDA graphs over blocks of epochs (launch-bound).
GRAPH_MAX_ELEMENTS = 1 << 22
#: Compiled CPU runs form the gradient X^T (s r) inside the fused update when N is at most
#: this (~1.5-2x on 2 cores). On CUDA cuBLAS wins (measured on an H200: 207 vs 116 M/s).
FUSE_GRAD_MAX_N = 64
#: Epochs per captured CUDA graph.
GRAPH_BLOCK = 64


class EngineFallbackWarning(RuntimeWarning):
    """The compiled engine could not run here; the eager engine ran instead."""


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"engine: unknown name {engine!r}; expected one of {ENGINES}")


def compiler_available(device: torch.device) -> bool:
    """True when ``torch.compile`` can generate code for ``device`` (C++ compiler / Triton)."""
    if not hasattr(torch, "compile"):
        return False
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return False
        return True
    if device.type != "cpu":
        return False
    try:
        from torch._inductor import config as inductor_config
        cxx = inductor_config.cpp.cxx[-1] or "g++"
    except (ImportError, AttributeError, IndexError):
        cxx = "g++"
    return shutil.which(cxx) is not None


def native_possible(device: torch.device) -> bool:
    """CPU with a C++ compiler on PATH: ``auto`` picks the native kernel (it covers every
    registered chain, float32 and float64). Cheap: nothing is built here."""
    if device.type != "cpu":
        return False
    from wdlab.engine.kernels import native

    return native.compiler_present()


def choose_engine(engine: str, device: torch.device, K: int, epochs: int, full_batch: bool,
                  triton_ok: bool = False) -> str:
    """The policy of ``auto``: the Triton kernel on CUDA where it covers the run
    (``triton_ok``), the native kernel on CPU where a C++ compiler is present, else compiled
    for full-batch work big enough to amortise compilation. ``engine.dispatch.resolve``
    applies it once per run, with the availability checks."""
    check_engine(engine)
    if engine != "auto":
        return engine
    if full_batch and triton_ok and device.type == "cuda":
        return "triton"
    if full_batch and native_possible(device):
        return "native"
    floor = AUTO_MIN_CONFIG_STEPS.get(device.type, AUTO_MIN_CONFIG_STEPS["cuda"])
    if not full_batch or K * epochs < floor:  # checked first: probing the compiler is slow
        return "eager"
    return "compiled" if compiler_available(device) else "eager"


@contextlib.contextmanager
def flush_denormals(device: torch.device):
    """Flush float32/float64 denormals to zero on CPU for the duration, then restore.

    Adam's second moments decay geometrically and become denormal late in long runs, where
    x87/SSE denormal arithmetic is ~100x slower. ``torch.set_flush_denormal`` is process-wide,
    so the previous state is put back on exit (it cannot be queried, so it is probed).
    """
    if device.type != "cpu":
        yield
        return
    tiny = torch.tensor([1e-39], dtype=torch.float32)  # denormal in float32
    was_flushing = bool((tiny * 1.0 == 0).item())
    changed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed and not was_flushing:
            torch.set_flush_denormal(False)


class Consts(NamedTuple):
    """Tensors shared by every epoch of a full-batch run."""

    X: Tensor  # (G, N, D1) train design
    XT: Tensor  # (G, D1, N)
    y: Tensor  # (G, 1, N)
    coef: Tensor  # (G, 1, N) c_grad * s, the loss-gradient weight of each sample
    XT_all: Tensor  # (G, D1, N_all) train rows, then each eval set's rows
    y_all: Tensor  # (G, 1, N_all)
    weights: tuple  # (G, 1, N_s) per row set: train weights s, then eval weights
    lam: Tensor  # (K, 1)
    lr: Tensor  # (K, 1)
    beta1: Tensor  # (K, 1)
    beta2: Tensor  # (K, 1)
    lam_pen: Tensor  # (K,) penalty value scale * lam
    c_val: float  # data-loss value factor (1 mse, 1/2 half_mse)
    mask: Tensor | None  # (D1,) decay mask, None = all decayed
    n_w: int  # weights without the intercept (D)
    ref: Tensor | None  # (K, D1) closed-form reference, or None
    fuse_grad: bool = False  # gradient as a broadcast sum over samples (fused when compiled)


def epoch_step(theta, states, t, alive, diverged, loss0, epoch, eta, C, chain, record: bool):
    """One full-batch epoch: observe metrics at the epoch start, then one update.

    Args:
        theta: (K, D1) parameters.  states: the chain's state tensors, nested per rule.
        t: (K, 1) step counts.  alive: (K, 1) bool.  diverged: (K,) int64 epoch or -1.
        loss0: (K,) initial train MSE.  epoch: 0-d int64.  eta: 0-d schedule multiplier.
        C: the run's ``Consts``.  chain: the rule chain.
        record: also compute the recorded metrics (else only train MSE, for divergence).

    Returns:
        (theta, states, t, alive, diverged, metrics (S + 3 [+1], K) or None).
    """
    X, XT, y, weights = C.X, C.XT, C.y, C.weights
    G, N, D1 = X.shape
    K = theta.shape[0]
    th3 = theta.view(G, K // G, D1)  # (G, M, D1)
    if record:
        r_all = torch.bmm(th3, C.XT_all) - C.y_all  # (G, M, N_all) train rows first
        mses = _set_mses(r_all, weights, K)  # (K, S) train, eval sets
        r = r_all[:, :, :N]  # (G, M, N)
        mse = mses[:, 0]  # (K,)
    else:
        r = torch.bmm(th3, XT) - y  # (G, M, N)
        mse = ((r * r) * weights[0]).sum(-1).reshape(K)  # (K,)
    bad = ~(mse <= DIVERGENCE_FACTOR * loss0) & alive[:, 0]  # (K,) newly diverged
    diverged = torch.where(bad, epoch, diverged)  # (K,)
    alive = alive & ~bad[:, None]  # (K, 1)
    metrics = None
    if record:
        metrics = observe_extra(theta, mses, C)

    if C.fuse_grad:  # sum over the N samples inside the fused update kernel (compiled only)
        grad = ((r * C.coef)[..., None] * X[:, None]).sum(2).reshape(K, D1)  # (K, D1)
    else:
        grad = torch.bmm(r * C.coef, X).reshape(K, D1)  # (K, D1)
    t = t + alive.to(t.dtype)  # (K, 1)
    ctx = StepContext(C.lam, C.lr * eta, eta, C.beta1, C.beta2, t, C.mask)
    new_theta, states = apply_chain(chain, grad, theta, states, ctx)
    theta = torch.where(alive, new_theta, theta)  # diverged configurations stay frozen
    return theta, states, t, alive, diverged, metrics


@functools.cache
def _compiled_step():
    return torch.compile(epoch_step, dynamic=None)


def _compile_limits():
    """Allow one graph per (chain, record, shape) without Dynamo's silent eager fallback."""
    cfg = torch._dynamo.config
    name = "recompile_limit" if hasattr(cfg, "recompile_limit") else "cache_size_limit"
    return cfg.patch(**{name: 256})


def compiled_step():
    """The compiled ``epoch_step`` (tests replace this to simulate a compiler failure)."""
    return _compiled_step()


def _eager_args(args):
    """Eagerly, a broadcast-sum gradient would materialise (K, N, D1): use the matmul."""
    C = args[8]
    return args if not C.fuse_grad else (*args[:8], C._replace(fuse_grad=False), *args[9:])


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else ""


class _FirstCallFailed(Exception):
    """The compiled step failed before any epoch ran: the whole run can go to ``engine.eager``."""


class EpochRunner:
    """Runs ``epoch_step`` eagerly or compiled, falling back to eager on a compile failure.

    With ``first_fails=True`` a failure of the very first call raises ``_FirstCallFailed``
    (after the warning), so the caller can run the in-place eager engine instead."""

    def __init__(self, engine: str, device: torch.device, first_fails: bool = False):
        self.engine = engine
        self.device = device
        self.fn = epoch_step if engine == "eager" else compiled_step()
        self.used = engine
        self.first_fails = first_fails

    def __call__(self, *args, record: bool):
        if self.fn is epoch_step:
            return epoch_step(*_eager_args(args), record=record)
        try:
            with _compile_limits():
                out = self.fn(*args, record=record)
        except Exception as exc:  # noqa: BLE001  any compiler/toolchain failure
            warnings.warn(
                f"engine: torch.compile failed on {self.device.type} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); running eager instead",
                EngineFallbackWarning, stacklevel=3)
            self.fn = epoch_step
            self.used = "eager"
            if self.first_fails:
                raise _FirstCallFailed from exc
            return epoch_step(*_eager_args(args), record=record)
        self.first_fails = False
        return out


def triton_unavailable(device: torch.device, chain, dtype: torch.dtype, d1: int) -> str | None:
    """None when the Triton kernel can run this (device, chain or its plan, dtype, width),
    else why not."""
    from wdlab.engine.kernels import triton as fused

    if not fused.available(device):
        if device.type == "cuda":
            return "Triton does not import here"
        return f"no Triton backend for {device.type} (set TRITON_INTERPRET=1 for the interpreter)"
    return fused.covers(chain, dtype, d1)


def _kernel_module(name: str):
    from wdlab.engine.kernels import native
    from wdlab.engine.kernels import triton as fused

    return fused if name == "triton" else native


def run_full_batch(engine, device, theta, states, t, alive, diverged, C, chain, spec, slot, R,
                   plan=None):
    """All epochs of a full-batch run; returns (theta, diverged, engine used, metrics buffer).

    ``engine`` is already resolved (``engine.dispatch``); ``plan`` is the chain's kernel plan
    for ``triton`` and ``native``. A kernel that fails at run time falls back, with a warning,
    to compiled (where a compiler exists) or eager. The metrics buffer is (S + 3 [+1], R, K)
    on the device, filled at the recorded epochs.
    """
    E = spec.epochs
    etas, epochs, loss0, buf = full_batch_start(theta, C, spec, R)
    if engine in ("triton", "native"):  # one kernel for every epoch, or a fallback
        name = engine
        try:
            th, div = _kernel_module(name).run(theta, diverged, C, chain if plan is None else plan,
                                               etas, slot, buf, loss0)
        except Exception as exc:  # noqa: BLE001  any build, launch or allocation failure
            engine = "compiled" if compiler_available(device) else "eager"
            warnings.warn(f"engine: {name} cannot run this: the kernel failed "
                          f"({type(exc).__name__}: {_first_line(exc)}); running {engine} instead",
                          EngineFallbackWarning, stacklevel=3)
        else:
            if E in slot:
                buf[:, slot[E]] = observe(th, C)[0]
            return th, div, name, buf
    if engine == "eager" and plan is not None:  # a kernel's fallback: the in-place engine
        return eager.in_place(theta, diverged, C, plan, etas, epochs, loss0, buf, slot, E)
    runner = EpochRunner(engine, device, first_fails=plan is not None)
    e0 = 0
    if runner.engine == "compiled" and device.type == "cuda" and theta.numel() <= GRAPH_MAX_ELEMENTS:
        theta, states, t, alive, diverged, e0 = run_graphs(
            runner, theta, states, t, alive, diverged, loss0, epochs, etas, C, chain, slot, buf)
    for e in range(e0, E):
        rec = e in slot
        try:
            theta, states, t, alive, diverged, met = runner(
                theta, states, t, alive, diverged, loss0, epochs[e], etas[e], C, chain,
                record=rec)
        except _FirstCallFailed:  # nothing ran yet: the whole run in place, eagerly
            return eager.in_place(theta, diverged, C, plan, etas, epochs, loss0, buf, slot, E)
        if rec:
            buf[:, slot[e]] = met
    if E in slot:
        buf[:, slot[E]] = observe(theta, C)[0]
    return theta, diverged, runner.used, buf


def run_graphs(runner, theta, states, t, alive, diverged, loss0, epochs, etas, C, chain, slot,
               buf):
    """CUDA: capture GRAPH_BLOCK epochs of the compiled step in one CUDA graph and replay it.

    Small K is launch-bound; one replay issues every kernel of a block at once. Returns the
    state after the last whole block and the first epoch still to run (0 on failure).
    """
    E = etas.shape[0]
    B = min(GRAPH_BLOCK, E)
    n_blocks = E // B
    if n_blocks < 1:
        return theta, states, t, alive, diverged, 0
    flat, spec_tree = _flatten(states)
    try:
        # warm up (compiles both record variants) on copies, then capture on static buffers
        s_theta, s_t, s_alive, s_div = theta.clone(), t.clone(), alive.clone(), diverged.clone()
        s_states = [x.clone() for x in flat]
        s_epoch = epochs[:B].clone()  # (B,) epochs of the block being replayed
        s_eta = etas[:B].clone()  # (B,)
        s_met = torch.zeros((buf.shape[0], B, buf.shape[2]), device=buf.device, dtype=buf.dtype)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            _block(runner, s_theta.clone(), [x.clone() for x in s_states], spec_tree, s_t,
                   s_alive, s_div, loss0, s_epoch[:2], s_eta[:2], C, chain, s_met, write=False)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            _block(runner, s_theta, s_states, spec_tree, s_t, s_alive, s_div, loss0, s_epoch,
                   s_eta, C, chain, s_met, write=True)
    except Exception as exc:  # noqa: BLE001  capture unsupported here: plain compiled loop
        warnings.warn(f"engine: CUDA graph capture failed ({type(exc).__name__}); "
                      "running the compiled step per epoch", EngineFallbackWarning, stacklevel=3)
        return theta, states, t, alive, diverged, 0
    for b in range(n_blocks):
        lo = b * B
        s_epoch.copy_(epochs[lo:lo + B])
        s_eta.copy_(etas[lo:lo + B])
        graph.replay()
        keep = [(slot[e], e - lo) for e in range(lo, lo + B) if e in slot]
        if keep:
            dst = torch.tensor([k[0] for k in keep], device=buf.device)
            src = torch.tensor([k[1] for k in keep], device=buf.device)
            buf.index_copy_(1, dst, s_met.index_select(1, src))
    states = _unflatten([x.clone() for x in s_states], spec_tree)
    return (s_theta.clone(), states, s_t.clone(), s_alive.clone(), s_div.clone(),
            n_blocks * B)


def _block(runner, theta, flat, spec_tree, t, alive, div, loss0, s_epoch, s_eta, C, chain,
           s_met, write):
    """B epochs on static buffers, every epoch recorded into s_met; results copied back."""
    states = _unflatten(flat, spec_tree)
    th, st, tt, al, dv = theta, states, t, alive, div
    epoch, eta = s_epoch[0].clone(), s_eta[0].clone()  # 0-d, the same inputs every epoch
    for j in range(s_epoch.shape[0]):
        epoch.copy_(s_epoch[j])
        eta.copy_(s_eta[j])
        th, st, tt, al, dv, met = runner(th, st, tt, al, dv, loss0, epoch, eta, C, chain,
                                         record=True)
        s_met[:, j].copy_(met)
    if write:
        theta.copy_(th)
        for dst, src in zip(flat, _flatten(st)[0], strict=True):
            dst.copy_(src)
        t.copy_(tt)
        alive.copy_(al)
        div.copy_(dv)


def _flatten(states):
    return [x for st in states for x in st], [len(st) for st in states]


def _unflatten(flat, spec_tree):
    out, i = [], 0
    for n in spec_tree:
        out.append(tuple(flat[i:i + n]))
        i += n
    return out
