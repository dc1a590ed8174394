"""K linear models trained as one tensor program.

For configuration k on draw g(k), with design X (N, D1) (a ones column for the intercept),
sample weights s (sum 1 over the batch) and residuals r = X theta_k - y:

    objective_k(theta) = c_loss * sum_n s_n r_n^2 + P_k(w)

(c_loss = 1 for ``mse``, 1/2 for ``half_mse``), minimised by the rule chain of
``registry.build_chain``. The loop runs over epochs (and minibatches), never over
configurations; every per-configuration hyperparameter is a (K, 1) tensor.
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from wdlab.conventions import (
    DTYPES,
    LOSS_GRAD_SCALE,
    LOSS_VALUE_SCALE,
    has_closed_form,
    penalty_value_scale,
)
from wdlab.data.synthetic import Problem
from wdlab.engine.dispatch import resolve
from wdlab.engine.fast import (
    DIVERGENCE_FACTOR,
    FUSE_GRAD_MAX_N,
    Consts,
    EngineFallbackWarning,
    check_engine,
    flush_denormals,
    observe_extra,
    run_full_batch,
)
from wdlab.engine.threads import one_thread
from wdlab.optim.registry import build_chain, check_pair
from wdlab.optim.rules import StepContext, apply_chain, init_chain
from wdlab.optim.schedule import schedule_multiplier

Tensor = torch.Tensor



@dataclass(frozen=True)
class EngineSpec:
    """What every configuration of one engine call shares (the static structure)."""

    optimizer: str = "adam"
    regularizer: str = "mean"
    loss: str = "mse"
    epochs: int = 100
    batch_size: int | None = None  # None = full batch
    batch_seed: int = 0
    schedule: str = "constant"  # "constant" or "cosine" (per step, to 0 at the end)
    eps: float = 1e-8
    decay_bias: bool = False
    dtype: torch.dtype = torch.float32
    device: str = "cpu"

    @classmethod
    def from_settings(cls, settings: Any = None, **overrides: Any) -> EngineSpec:
        """The one builder of every run's spec (reproduce, sweep chunks, fit, the estimators).

        Each field is taken from ``overrides``, else from the attribute of that name on
        ``settings`` (a ``TrainConfig``, a sweep spec's ``train``, an estimator), else its
        default; ``dtype`` may be a name of ``conventions.DTYPES``, and ``batch_size`` 0 or
        None is full batch.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"EngineSpec.from_settings: unknown field(s) {unknown}")
        kw = {}
        for f in fields(cls):
            if f.name in overrides:
                kw[f.name] = overrides[f.name]
            elif hasattr(settings, f.name):
                kw[f.name] = getattr(settings, f.name)
        if isinstance(kw.get("dtype"), str):
            kw["dtype"] = DTYPES[kw["dtype"]]
        if "batch_size" in kw:
            kw["batch_size"] = kw["batch_size"] or None
        return cls(**kw)

    def __post_init__(self):
        check_pair(self.optimizer, self.regularizer)
        if self.loss not in LOSS_GRAD_SCALE:
            raise ValueError(f"loss: unknown name {self.loss!r}; expected one of {tuple(LOSS_GRAD_SCALE)}")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule: unknown name {self.schedule!r}; expected 'constant' or 'cosine'")
        if self.epochs < 1:
            raise ValueError(f"epochs: must be >= 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1 or None, got {self.batch_size}")


@dataclass(frozen=True)
class Hyper:
    """Per-configuration hyperparameters, each (K,)."""

    lam: Tensor  # coefficient in the regularizer's convention (or the optimizer's weight_decay)
    lr: Tensor  # base learning rate
    beta1: Tensor  # Adam beta1, or SGD momentum
    beta2: Tensor  # Adam beta2 (ignored by SGD)

    @staticmethod
    def of(K: int, lam=0.0, lr=0.05, beta1=0.9, beta2=0.999) -> Hyper:
        """Broadcast scalars or sequences to (K,) float64 tensors."""
        f = lambda v: torch.as_tensor(v, dtype=torch.float64).expand(K).clone()  # noqa: E731
        return Hyper(f(lam), f(lr), f(beta1), f(beta2))

    def validate(self) -> None:
        for name in ("lam", "lr", "beta1", "beta2"):
            v = getattr(self, name)
            if not bool(torch.isfinite(v).all()):
                raise ValueError(f"{name}: must be finite")
        if bool((self.lr <= 0).any()):
            raise ValueError(f"lr: must be > 0, got {self.lr.min().item()!r}")
        if bool((self.lam < 0).any()):
            raise ValueError(f"lam: must be >= 0, got {self.lam.min().item()!r}")
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            if bool(((v < 0) | (v >= 1)).any()):
                raise ValueError(f"{name}: must be in [0, 1)")


@dataclass
class TrainResult:
    """Engine output, on the host (CPU)."""

    epochs: list[int]  # recorded epochs (0 = the initial weights)
    metrics: dict[str, Tensor]  # name -> (R, K): train_mse, <eval>_mse, penalty, objective, w_norm, ...
    theta: Tensor  # (K, D1) final parameters [w, b]
    diverged_epoch: Tensor  # (K,) int64, -1 when the configuration never diverged
    fit_intercept: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def coef(self) -> Tensor:
        return self.theta[:, :-1] if self.fit_intercept else self.theta  # (K, D)

    @property
    def intercept(self) -> Tensor:
        if self.fit_intercept:
            return self.theta[:, -1]
        return torch.zeros(self.theta.shape[0], dtype=self.theta.dtype)


def _batch_ids(valid: Tensor, perm: Tensor, batch_size: int) -> Tensor:
    """Minibatch index of each sample for one epoch; -1 for absent samples.

    Each draw's valid samples, taken in the order of ``perm``, are cut into batches of
    ``batch_size``. With no padding this is exactly ``perm[b*B:(b+1)*B]``.
    """
    vp = valid[:, perm].to(torch.int64)  # (G, N) valid mask in permuted order
    rank_p = vp.cumsum(1) - 1  # (G, N) rank among valid samples, permuted order
    rank = torch.empty_like(rank_p)
    rank[:, perm] = rank_p
    return torch.where(valid, rank // batch_size, torch.full_like(rank, -1))  # (G, N)


#: CPU cache tile: the compiled step's per-configuration state (theta, two moments, the
#: gradient and a temporary: ~6 rows of D1 floats) is kept under this many bytes per tile,
#: so a tile stays in cache for all its epochs (temporal blocking).
CPU_TILE_BYTES = 8 * 2**20


def _cpu_tile(problem: Problem, spec: EngineSpec, K: int, resolved: str,
              full_batch: bool, workers: int) -> int | None:
    """Configurations per cache tile, or None when the run is not tiled (``workers``: the
    threads that run tiles side by side, ``_tile_workers``).

    CPU full-batch runs are tiled: they are memory-bound once the state falls out of cache
    (measured on 2 EPYC cores, K = 1e5, compiled: 0.65M config-steps/s untiled, 2.1M tiled;
    eager: 0.18M untiled).
    """
    if torch.device(spec.device).type != "cpu" or not full_batch:
        return None
    if resolved not in ("eager", "compiled"):
        return None
    D1 = problem.X.shape[2]
    itemsize = torch.empty((), dtype=spec.dtype).element_size()
    tile = max(64, CPU_TILE_BYTES // (6 * D1 * itemsize))
    if workers > 1:  # at least one tile per thread, each a multiple of 64 configurations
        tile = min(tile, max(64, -(-K // (64 * workers)) * 64))
    return tile if K > tile else None


#: Fewest (configuration x parameter) entries per thread for eager work to be shared
#: between threads. Below it the threads' many small ops cost more than they share
#: (2 EPYC cores, seed problem D1 = 201, 2 torch threads: K = 1e3 in two tiles ran at
#: 0.69-0.93M config-steps/s, on one thread 1.4M; K = 1e4 in two tiles 1.34-1.64M against
#: 1.21-1.26M on one thread).
MIN_ENTRIES_PER_THREAD = 2048 * 201


def _tile_workers(resolved: str, K: int, D1: int) -> int:
    """Threads that run eager tiles side by side: torch's intra-op thread count (each tile
    then runs on one thread; the compiled engine's tiles run one after another), at most
    one per ``MIN_ENTRIES_PER_THREAD`` entries and per tile of 64 configurations."""
    if resolved != "eager":
        return 1
    return max(1, min(torch.get_num_threads(), K * D1 // MIN_ENTRIES_PER_THREAD, -(-K // 64)))


def _small_eager(resolved: str, dev: torch.device, full_batch: bool, K: int, D1: int) -> bool:
    """A CPU eager run too small to share between threads: it runs on one thread."""
    return (resolved == "eager" and dev.type == "cpu" and full_batch
            and K * D1 < 2 * MIN_ENTRIES_PER_THREAD)


def _native_serial(resolved: str, entries: int):
    """A small native run (``dispatch.resolve`` gives native to full-batch CPU runs only): its
    torch ops on one thread, its kernel on torch's count (``kernels.native.torch_serial``)."""
    if resolved != "native":
        return nullcontext()
    from wdlab.engine.kernels.native import torch_serial

    return torch_serial(entries)


def _map_tiles(fn, ranges, workers: int) -> list:
    """``[fn(r) for r in ranges]``, on ``workers`` threads of one intra-op thread each when
    there are several tiles (torch ops release the GIL). Each tile's bits do not depend on
    the thread that runs it; torch's thread count is restored afterwards."""
    if workers <= 1 or len(ranges) < 2:
        return [fn(r) for r in ranges]
    threads = torch.get_num_threads()

    def job(r):
        torch.set_num_threads(1)  # this worker's intra-op pool: one thread per tile
        return fn(r)

    try:
        with ThreadPoolExecutor(min(workers, len(ranges))) as pool:
            return list(pool.map(job, ranges))
    finally:
        torch.set_num_threads(threads)


def _tile_ranges(G: int, M: int, tile: int) -> list[tuple[int, int, int, int]]:
    """(first draw, last draw + 1, first config, last config + 1) per tile; each tile is a
    contiguous range of the draw-major configuration axis."""
    if M >= tile:
        return [(g, g + 1, g * M + m, g * M + min(M, m + tile))
                for g in range(G) for m in range(0, M, tile)]
    per = max(1, tile // M)
    return [(g, min(G, g + per), g * M, min(G, g + per) * M) for g in range(0, G, per)]


def _is_full_batch(problem: Problem, spec: EngineSpec) -> bool:
    """One batch per epoch: no batch size, or one at least the largest draw's sample count."""
    return spec.batch_size is None or spec.batch_size >= int((problem.weight > 0).sum(1).max())


def _decay(problem: Problem, spec: EngineSpec, dev, dt):
    """(decay mask (D1,) or None = every coordinate decayed, number of decayed coordinates)."""
    D1 = problem.X.shape[2]
    if problem.fit_intercept and not spec.decay_bias:
        mask = torch.ones(D1, device=dev, dtype=dt)
        mask[-1] = 0.0
        return mask, D1 - 1
    return None, D1


def _chain(problem: Problem, spec: EngineSpec, hyper: Hyper):
    """The run's rule chain (``registry.build_chain``)."""
    n_decayed = _decay(problem, spec, "cpu", spec.dtype)[1]
    return build_chain(
        spec.optimizer, spec.regularizer, n_decayed=max(n_decayed, 1), eps=spec.eps,
        momentum=bool((hyper.beta1 != 0).any()) or spec.optimizer != "sgd",
    )


def train(
    problem: Problem,
    spec: EngineSpec,
    hyper: Hyper,
    theta0: Tensor,
    *,
    record_epochs: list[int] | None = None,
    reference: Tensor | None = None,
    engine: str = "auto",
) -> TrainResult:
    """Train K configurations on G draws as one tensor program.

    Args:
        problem: G stacked draws; configurations are laid out draw-major (K % G == 0).
        spec: the static structure shared by all K configurations.
        hyper: per-configuration hyperparameters, each (K,).
        theta0: (K, D1) initial parameters.
        record_epochs: epochs whose metrics are kept (0 = before training); default all.
        reference: optional (K, D1) closed-form solutions; records ``dist_to_ridge``.
        engine: ``"eager"`` (in-place torch ops, ``engine.eager``), ``"compiled"``
            (``torch.compile`` of the full-batch epoch; falls back to eager with an
            ``EngineFallbackWarning`` where it cannot compile), ``"triton"`` (all epochs in
            one fused Triton kernel, ``engine.kernels.triton``), ``"native"`` (all epochs in one C++
            kernel on CPU, ``engine.kernels.native``) or ``"auto"``. The engine is resolved once per
            call (``engine.dispatch.resolve``); a kernel that cannot run falls back to
            compiled or eager with an ``EngineFallbackWarning``. Minibatch runs always run
            eagerly.

    On CPU, a full-batch eager or compiled run whose state would not fit in cache is cut
    into contiguous cache tiles of configurations, each trained for all its epochs in turn
    (``CPU_TILE_BYTES``); with several torch threads, eager runs are cut into at least one
    tile per thread and the tiles run side by side, one thread each. Configurations never
    interact, and no tile is under 64 configurations, so this changes only speed (tested
    bit for bit for the eager engine; compiled tiles are held to the oracle).

    Returns:
        A ``TrainResult`` with metrics copied to the host once, at the end;
        ``extra["engine"]`` names the engine that ran.
    """
    check_engine(engine)
    hyper.validate()
    G, K = problem.n_draws, theta0.shape[0]
    if K % G:
        raise ValueError(f"configurations: K={K} is not a multiple of the {G} data draws")
    full_batch = _is_full_batch(problem, spec)
    chain = _chain(problem, spec, hyper)
    dev = torch.device(spec.device)
    used, why_not, plan = resolve(engine, dev, K, spec.epochs, full_batch, chain, spec.dtype,
                                  problem.X.shape[2])
    if why_not is not None and full_batch:
        warnings.warn(f"engine: {why_not}; running {used} instead", EngineFallbackWarning,
                      stacklevel=2)
    D1 = problem.X.shape[2]
    workers = _tile_workers(used, K, D1)
    tile = _cpu_tile(problem, spec, K, used, full_batch, workers)
    run = lambda prob, hyp, th0, ref: _train(  # noqa: E731
        prob, spec, hyp, th0, chain, used, plan, full_batch, record_epochs=record_epochs,
        reference=ref)
    small = _small_eager(used, dev, full_batch, K, D1)  # faster on one thread (tiny ops)
    if tile is None:
        with one_thread(small), _native_serial(used, K * D1):
            return run(problem, hyper, theta0, reference)
    def one(rng):  # one cache tile of configurations, all its epochs
        g0, g1, a, b = rng
        sub = Hyper(hyper.lam[a:b], hyper.lr[a:b], hyper.beta1[a:b], hyper.beta2[a:b])
        return run(problem.draws(g0, g1), sub, theta0[a:b],
                   None if reference is None else reference[a:b])

    with one_thread(small):
        parts = _map_tiles(one, _tile_ranges(G, K // G, tile), workers)
    first = parts[0]
    return TrainResult(
        first.epochs,
        {n: torch.cat([p.metrics[n] for p in parts], 1) for n in first.metrics},  # (R, K)
        torch.cat([p.theta for p in parts]),  # (K, D1)
        torch.cat([p.diverged_epoch for p in parts]),  # (K,)
        first.fit_intercept,
        {"engine": first.extra["engine"], "tiles": len(parts), "tile": tile},
    )


def _train(problem: Problem, spec: EngineSpec, hyper: Hyper, theta0: Tensor, chain, used: str,
           plan, full_batch: bool, *, record_epochs: list[int] | None,
           reference: Tensor | None) -> TrainResult:
    """One engine call on one tile (or the whole run), with the engine already resolved."""
    dev, dt = torch.device(spec.device), spec.dtype
    P = problem.to(dt, dev)
    G, N, D1 = P.X.shape
    K = theta0.shape[0]
    if theta0.shape[1] != D1:
        raise ValueError(f"theta0: expected {D1} columns, got {theta0.shape[1]}")
    E = spec.epochs
    rec = sorted(set(range(E + 1) if record_epochs is None else record_epochs))
    if rec and (rec[0] < 0 or rec[-1] > E):
        raise ValueError(f"record_epochs: must lie in [0, {E}]")
    slot = {e: i for i, e in enumerate(rec)}

    col = lambda v: v.to(device=dev, dtype=dt).reshape(K, 1)  # noqa: E731
    lam, lr, beta1, beta2 = col(hyper.lam), col(hyper.lr), col(hyper.beta1), col(hyper.beta2)
    fi = problem.fit_intercept
    decay_mask, n_decayed = _decay(problem, spec, dev, dt)
    pen_scale = penalty_value_scale(spec.regularizer, max(n_decayed, 1))
    c_grad = LOSS_GRAD_SCALE[spec.loss]
    c_val = LOSS_VALUE_SCALE[spec.loss]

    X, XT, y = P.X, P.X.transpose(1, 2).contiguous(), P.y[:, None, :]  # (G,N,D1) (G,D1,N) (G,1,N)
    w_full = P.weight / P.weight.sum(1, keepdim=True).clamp_min(torch.finfo(dt).tiny)  # (G, N)
    evals = {k: (e.X.transpose(1, 2).contiguous(), e.y[:, None, :], e.weight[:, None, :])
             for k, e in P.evals.items()}
    ref = None if reference is None else reference.to(device=dev, dtype=dt)
    consts = Consts(
        X, XT, y, (c_grad * w_full)[:, None, :],
        torch.cat([XT, *[e[0] for e in evals.values()]], 2),  # (G, D1, N_all)
        torch.cat([y, *[e[1] for e in evals.values()]], 2),  # (G, 1, N_all)
        (w_full[:, None, :], *[e[2] for e in evals.values()]),  # (G, 1, N_s) each
        lam, lr, beta1, beta2, pen_scale * lam[:, 0], c_val, decay_mask,
        D1 - int(fi), ref,
        fuse_grad=used == "compiled" and dev.type == "cpu" and N <= FUSE_GRAD_MAX_N)

    theta = theta0.to(device=dev, dtype=dt).clone()  # (K, D1)
    states = init_chain(chain, theta)
    t = torch.zeros(K, 1, device=dev, dtype=dt)  # per-config step count
    alive = torch.ones(K, 1, device=dev, dtype=torch.bool)
    diverged = torch.full((K,), -1, device=dev, dtype=torch.int64)
    names = ["train_mse", *[f"{k}_mse" for k in evals], "penalty", "objective", "w_norm"]
    if ref is not None:
        names.append("dist_to_ridge")
    if full_batch:  # eager with a kernel plan runs in place there (engine.eager.in_place)
        with flush_denormals(dev):
            theta, diverged, used, stacked = run_full_batch(
                used, dev, theta, states, t, alive, diverged, consts, chain, spec, slot,
                len(rec), plan)
    else:
        theta, diverged, stacked = _run_minibatch(P, spec, consts, list(evals.values()), chain,
                                                  theta, states, t, alive, diverged, slot,
                                                  len(rec))
    stacked = stacked.cpu()  # (n_metrics, R, K): the one host copy
    host = dict(zip(names, stacked.unbind(0), strict=True))  # contiguous (R, K) views
    return TrainResult(rec, host, theta.cpu(), diverged.cpu(), fi, {"engine": used})


def _run_minibatch(P: Problem, spec: EngineSpec, C: Consts, evals, chain, theta, states, t,
                   alive, diverged, slot, R):
    """Every epoch of a minibatch run, eagerly; returns (theta, diverged, metrics buffer).

    Metrics are observed at the epoch start, as in the full-batch engines, by the same
    observer (``fast.observe_extra``); the train MSE comes from the epoch's first residuals.
    """
    dev, dt = theta.device, theta.dtype
    G, N, D1 = C.X.shape
    K = theta.shape[0]
    M = K // G
    B = spec.batch_size
    valid = P.weight > 0  # (G, N)
    w_col = C.weights[0][:, 0, :, None]  # (G, N, 1) normalised train weights
    c_grad = LOSS_GRAD_SCALE[spec.loss]
    n_met = len(C.weights) + 3 + int(C.ref is not None)
    buf = torch.full((n_met, R, K), float("nan"), device=dev, dtype=dt)  # (n_met, R, K)
    loss0 = None

    def residual(th: Tensor, XT_: Tensor, y_: Tensor) -> Tensor:
        return torch.bmm(th.view(G, M, D1), XT_) - y_  # (G, M, N)

    def observe_epoch(epoch: int, r: Tensor) -> None:
        nonlocal loss0, alive
        mse = torch.bmm(r * r, w_col).reshape(K)  # (K,)
        if loss0 is None:
            loss0 = mse.clone()
        bad = ~(mse <= DIVERGENCE_FACTOR * loss0) & alive[:, 0]  # (K,) newly diverged
        diverged.masked_fill_(bad, epoch)
        alive = alive & ~bad[:, None]
        if epoch not in slot:
            return
        mses = [mse]
        for XTe, ye, we in evals:
            re = residual(theta, XTe, ye)  # (G, M, N_e)
            mses.append(((re * re) * we).sum(-1).reshape(K))
        buf[:, slot[epoch]] = observe_extra(theta, torch.stack(mses, 1), C)  # (S + 3 [+1], K)

    def step(r: Tensor, s: Tensor, eta: float, active: Tensor | None) -> None:
        nonlocal theta, states, t
        grad = torch.bmm(r * (c_grad * s[:, None, :]), C.X).reshape(K, D1)  # (K, D1)
        live = alive if active is None else alive & active
        t = t + live.to(dt)
        ctx = StepContext(C.lam, C.lr * eta, eta, C.beta1, C.beta2, t, C.mask)
        new_theta, new_states = apply_chain(chain, grad, theta, states, ctx)
        theta = torch.where(live, new_theta, theta)
        if active is None:
            states = new_states
        else:  # ragged minibatches: configurations with an empty batch skip the step
            states = [tuple(torch.where(live, a, b) for a, b in zip(sn, so, strict=True))
                      for sn, so in zip(new_states, states, strict=True)]

    gen = torch.Generator().manual_seed(int(spec.batch_seed))
    n_batches = math.ceil(int(valid.sum(1).max()) / B)
    total = spec.epochs * n_batches
    for epoch in range(spec.epochs):
        r = residual(theta, C.XT, C.y)  # (G, M, N)
        observe_epoch(epoch, r)
        perm = torch.randperm(N, generator=gen).to(dev)
        bid = _batch_ids(valid, perm, B)  # (G, N)
        for b in range(n_batches):
            wb = P.weight * (bid == b)  # (G, N)
            tot = wb.sum(1, keepdim=True)  # (G, 1)
            s = wb / tot.clamp_min(torch.finfo(dt).tiny)
            active = (tot > 0).expand(G, M).reshape(K, 1)
            ragged = not bool(active.all())
            if b:
                r = residual(theta, C.XT, C.y)
            step(r, s, schedule_multiplier(spec.schedule, epoch * n_batches + b, total),
                 active if ragged else None)
    observe_epoch(spec.epochs, residual(theta, C.XT, C.y))
    return theta, diverged, buf


#: True when the regularizer's fixed point is a ridge solution (the glossary's predicate).
supports_closed_form = has_closed_form
