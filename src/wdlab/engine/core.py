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
from dataclasses import dataclass, field

import torch

from wdlab.conventions import DECOUPLED, LOSS_GRAD_SCALE, LOSS_VALUE_SCALE, penalty_value_scale
from wdlab.data import Problem
from wdlab.engine.fast import (
    DIVERGENCE_FACTOR,
    FUSE_GRAD_MAX_N,
    Consts,
    check_engine,
    choose_engine,
    flush_denormals,
    run_full_batch,
    triton_unavailable,
)
from wdlab.engine.registry import build_chain, check_pair
from wdlab.engine.rules import StepContext, apply_chain, init_chain
from wdlab.engine.schedule import schedule_multiplier

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


def _cpu_tile(problem: Problem, spec: EngineSpec, K: int, resolved: str) -> int | None:
    """Configurations per cache tile, or None when the run is not tiled.

    CPU full-batch runs are tiled: they are memory-bound once the state falls out of cache
    (measured on 2 EPYC cores, K = 1e5, compiled: 0.65M config-steps/s untiled, 2.1M tiled;
    eager: 0.18M untiled).
    """
    dev = torch.device(spec.device)
    n_max = int((problem.weight > 0).sum(1).max())
    full_batch = spec.batch_size is None or spec.batch_size >= n_max
    if dev.type != "cpu" or not full_batch:
        return None
    if resolved not in ("eager", "compiled"):
        return None
    D1 = problem.X.shape[2]
    itemsize = torch.empty((), dtype=spec.dtype).element_size()
    tile = max(64, CPU_TILE_BYTES // (6 * D1 * itemsize))
    return tile if K > tile else None


def _tile_ranges(G: int, M: int, tile: int) -> list[tuple[int, int, int, int]]:
    """(first draw, last draw + 1, first config, last config + 1) per tile; each tile is a
    contiguous range of the draw-major configuration axis."""
    if M >= tile:
        return [(g, g + 1, g * M + m, g * M + min(M, m + tile))
                for g in range(G) for m in range(0, M, tile)]
    per = max(1, tile // M)
    return [(g, min(G, g + per), g * M, min(G, g + per) * M) for g in range(0, G, per)]


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

    On CPU, a full-batch run whose state would not fit in cache is cut into
    contiguous cache tiles of configurations, each trained for all its epochs in turn
    (``CPU_TILE_BYTES``); configurations never interact, so this changes only speed.
    See ``_train`` for the arguments.
    """
    check_engine(engine)
    G, K = problem.n_draws, theta0.shape[0]
    if K % G:
        raise ValueError(f"configurations: K={K} is not a multiple of the {G} data draws")
    resolved = choose_engine(engine, torch.device(spec.device), K, spec.epochs, True)
    tile = _cpu_tile(problem, spec, K, resolved)
    if tile is None:
        return _train(problem, spec, hyper, theta0, record_epochs=record_epochs,
                      reference=reference, engine=engine)
    hyper.validate()
    parts = []
    for g0, g1, a, b in _tile_ranges(G, K // G, tile):  # loop over cache tiles of configs
        sub = Hyper(hyper.lam[a:b], hyper.lr[a:b], hyper.beta1[a:b], hyper.beta2[a:b])
        parts.append(_train(problem.draws(g0, g1), spec, sub, theta0[a:b],
                            record_epochs=record_epochs,
                            reference=None if reference is None else reference[a:b],
                            engine=resolved))
    first = parts[0]
    return TrainResult(
        first.epochs,
        {n: torch.cat([p.metrics[n] for p in parts], 1) for n in first.metrics},  # (R, K)
        torch.cat([p.theta for p in parts]),  # (K, D1)
        torch.cat([p.diverged_epoch for p in parts]),  # (K,)
        first.fit_intercept,
        {"engine": first.extra["engine"], "tiles": len(parts), "tile": tile},
    )


def _train(
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
        engine: ``"eager"``, ``"compiled"`` (``torch.compile`` of the full-batch epoch; falls
            back to eager with an ``EngineFallbackWarning`` where it cannot compile),
            ``"triton"`` (all epochs in one fused Triton kernel, ``engine.fused``; falls back
            to compiled or eager with an ``EngineFallbackWarning`` where it cannot run),
            ``"native"`` (all epochs in one C++ kernel on CPU, ``engine.native``; falls back
            likewise where no C++ compiler can build it) or ``"auto"`` (triton on CUDA where
            it covers the run, native on CPU where a C++ compiler is present, else compiled
            when available and the run is large; see ``engine.fast``). Minibatch runs always
            run eagerly.

    Returns:
        A ``TrainResult`` with metrics copied to the host once, at the end;
        ``extra["engine"]`` names the engine that ran.
    """
    check_engine(engine)
    hyper.validate()
    dev, dt = torch.device(spec.device), spec.dtype
    P = problem.to(dt, dev)
    G, N, D1 = P.X.shape
    K = theta0.shape[0]
    if K % G:
        raise ValueError(f"configurations: K={K} is not a multiple of the {G} data draws")
    M = K // G
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
    decay_mask = None
    n_decayed = D1
    if fi and not spec.decay_bias:
        decay_mask = torch.ones(D1, device=dev, dtype=dt)
        decay_mask[-1] = 0.0
        n_decayed = D1 - 1
    chain = build_chain(
        spec.optimizer, spec.regularizer, n_decayed=max(n_decayed, 1), eps=spec.eps,
        momentum=bool((hyper.beta1 != 0).any()) or spec.optimizer != "sgd",
    )
    pen_scale = penalty_value_scale(spec.regularizer, max(n_decayed, 1))
    c_grad = LOSS_GRAD_SCALE[spec.loss]
    c_val = LOSS_VALUE_SCALE[spec.loss]

    X, XT, y = P.X, P.X.transpose(1, 2).contiguous(), P.y[:, None, :]  # (G,N,D1) (G,D1,N) (G,1,N)
    valid = P.weight > 0  # (G, N)
    w_full = P.weight / P.weight.sum(1, keepdim=True).clamp_min(torch.finfo(dt).tiny)  # (G, N)
    evals = {k: (e.X.transpose(1, 2).contiguous(), e.y[:, None, :], e.weight[:, None, :])
             for k, e in P.evals.items()}
    ref = None if reference is None else reference.to(device=dev, dtype=dt)

    theta = theta0.to(device=dev, dtype=dt).clone()  # (K, D1)
    states = init_chain(chain, theta)
    t = torch.zeros(K, 1, device=dev, dtype=dt)  # per-config step count
    alive = torch.ones(K, 1, device=dev, dtype=torch.bool)
    diverged = torch.full((K,), -1, device=dev, dtype=torch.int64)
    names = ["train_mse", *[f"{k}_mse" for k in evals], "penalty", "objective", "w_norm"]
    if ref is not None:
        names.append("dist_to_ridge")
    B = spec.batch_size
    full_batch = B is None or B >= int(valid.sum(1).max())
    if full_batch:
        triton_ok = engine == "auto" and dev.type == "cuda" and triton_unavailable(
            dev, chain, dt, D1) is None
        used = choose_engine(engine, dev, K, E, True, triton_ok)
        consts = Consts(
            X, XT, y, (c_grad * w_full)[:, None, :],
            torch.cat([XT, *[e[0] for e in evals.values()]], 2),  # (G, D1, N_all)
            torch.cat([y, *[e[1] for e in evals.values()]], 2),  # (G, 1, N_all)
            (w_full[:, None, :], *[e[2] for e in evals.values()]),  # (G, 1, N_s) each
            lam, lr, beta1, beta2, pen_scale * lam[:, 0], c_val, decay_mask,
            D1 - int(fi), ref, fuse_grad=used == "compiled" and dev.type == "cpu" and N <= FUSE_GRAD_MAX_N)
        with flush_denormals(dev):
            theta, diverged, used, stacked = run_full_batch(
                used, dev, theta, states, t, alive, diverged, consts, chain, spec, slot, len(rec))
        stacked = stacked.cpu()  # (n_metrics, R, K): the one host copy
        host = dict(zip(names, stacked.unbind(0), strict=True))  # contiguous (R, K) views
        return TrainResult(rec, host, theta.cpu(), diverged.cpu(), fi, {"engine": used})
    loss0 = None
    buf = {n: torch.full((len(rec), K), float("nan"), device=dev, dtype=dt) for n in names}

    def residual(th: Tensor, XT_: Tensor, y_: Tensor) -> Tensor:
        return torch.bmm(th.view(G, M, D1), XT_) - y_  # (G, M, N)

    def observe(epoch: int, r: Tensor) -> None:
        nonlocal loss0, alive
        mse = torch.bmm(r * r, w_full[:, :, None]).reshape(K)  # (K,)
        if loss0 is None:
            loss0 = mse.clone()
        bad = ~(mse <= DIVERGENCE_FACTOR * loss0) & alive[:, 0]  # (K,) newly diverged
        diverged.masked_fill_(bad, epoch)
        alive = alive & ~bad[:, None]
        if epoch not in slot:
            return
        i = slot[epoch]
        w = theta if decay_mask is None else theta[:, :-1]  # (K, D)
        wd = theta if decay_mask is None else theta * decay_mask  # decayed coords
        pen = pen_scale * lam[:, 0] * (wd * wd).sum(1)  # (K,)
        buf["train_mse"][i] = mse
        for k, (XTe, ye, we) in evals.items():
            re = residual(theta, XTe, ye)  # (G, M, N_e)
            buf[f"{k}_mse"][i] = ((re * re) * we).sum(-1).reshape(K)
        buf["penalty"][i] = pen
        buf["objective"][i] = c_val * mse + pen
        buf["w_norm"][i] = torch.linalg.vector_norm(w if fi else theta, dim=1)
        if ref is not None:
            buf["dist_to_ridge"][i] = torch.linalg.vector_norm(theta - ref, dim=1)

    def step(r: Tensor, s: Tensor, eta: float, active: Tensor | None) -> None:
        nonlocal theta, states, t
        grad = torch.bmm(r * (c_grad * s[:, None, :]), X).reshape(K, D1)  # (K, D1)
        live = alive if active is None else alive & active
        t = t + live.to(dt)
        ctx = StepContext(lam, lr * eta, eta, beta1, beta2, t, decay_mask)
        new_theta, new_states = apply_chain(chain, grad, theta, states, ctx)
        theta = torch.where(live, new_theta, theta)
        if active is None:
            states = new_states
        else:  # ragged minibatches: configurations with an empty batch skip the step
            states = [tuple(torch.where(live, a, b) for a, b in zip(sn, so, strict=True))
                      for sn, so in zip(new_states, states, strict=True)]

    gen = torch.Generator().manual_seed(int(spec.batch_seed))
    n_batches = 1 if full_batch else math.ceil(int(valid.sum(1).max()) / B)
    total = E * n_batches
    for epoch in range(E):
        r = residual(theta, XT, y)  # (G, M, N)
        observe(epoch, r)
        if full_batch:
            step(r, w_full, schedule_multiplier(spec.schedule, epoch, total), None)
            continue
        perm = torch.randperm(N, generator=gen).to(dev)
        bid = _batch_ids(valid, perm, B)  # (G, N)
        for b in range(n_batches):
            wb = P.weight * (bid == b)  # (G, N)
            tot = wb.sum(1, keepdim=True)  # (G, 1)
            s = wb / tot.clamp_min(torch.finfo(dt).tiny)
            active = (tot > 0).expand(G, M).reshape(K, 1)
            ragged = not bool(active.all())
            if b:
                r = residual(theta, XT, y)
            step(r, s, schedule_multiplier(spec.schedule, epoch * n_batches + b, total),
                 active if ragged else None)
    observe(E, residual(theta, XT, y))

    host = {n: v.cpu() for n, v in buf.items()}
    return TrainResult(rec, host, theta.cpu(), diverged.cpu(), fi, {"engine": "eager"})


def supports_closed_form(regularizer: str) -> bool:
    """True when the regularizer's fixed point is a ridge solution (penalty or coupled wd)."""
    return regularizer not in DECOUPLED
