"""Sweeps: grid -> chunk plan -> one engine call per chunk -> tidy tables; resume; progress.

The grid of a ``SweepSpec`` is the product of its axes. Configurations sharing the engine's
static structure (optimizer, regularizer, loss, epochs, batch size, schedule) form a *group*;
a group is a (data unit) x (per-draw configuration) table, where a data unit is one
(n_train, noise, data seed) draw and a per-draw configuration is one (lr, momentum or
beta1, beta2, init_scale, init_seed, lam). Config ids run draw-major through the groups::

    config_id = group.offset + unit * group.n_per_unit + m

A *chunk* is a rectangle of units x per-draw configurations with a contiguous id range; it
is one engine call, with its data draws batched as the engine's G axis (K = G * M). The
plan depends only on the spec (with its resolved ``execution.chunk_size``), so a chunk
computed anywhere (this process, a resumed one, a Ray task) gives the same bits.

``run_chunk(spec, index)`` is the unit of work: it regenerates its data from the seeds and
returns the chunk's tables. ``run_sweep`` drives the chunks through an executor, writes each
chunk atomically (``chunks/00012.curves.parquet``, then ``chunks/00012.configs.parquet``,
whose presence marks the chunk done), and assembles the final tables in chunk order.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from wdlab.conventions import COUPLED, penalty_grad_scale
from wdlab.data import Dataset, make_linear, stack_problem, stream_seed
from wdlab.engine import EngineSpec, Hyper, TrainResult, train
from wdlab.experiment import DTYPES
from wdlab.results import configs_frame, curves_frame
from wdlab.spec import SweepSpec, spec_from_json, split_count

#: Final metrics and curve columns, in table order (dist_to_ridge only when recorded).
METRICS = ("train_mse", "val_mse", "test_mse", "penalty", "objective", "w_norm", "dist_to_ridge")
#: TEST-ONLY hook: SIGKILL this process right after chunk N's files are written.
KILL_AFTER_CHUNK_ENV = "WDLAB_TEST_KILL_AFTER_CHUNK"
CHUNK_DIR = "chunks"
TABLES = ("configs", "curves", "summary", "selection", "ridge")


# ----------------------------------------------------------------------------------------
# The plan
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Group:
    """Configurations sharing the engine's static structure (one ``EngineSpec``)."""

    index: int
    optimizer: str
    regularizer: str
    loss: str
    epochs: int
    batch_size: int  # 0 = full batch
    schedule: str
    offset: int  # first config_id
    n_units: int  # data units (draws) G
    per_draw: dict[str, np.ndarray]  # (M,) each: lr, momentum, beta1, beta2, init_scale, init_seed, lam

    @property
    def n_per_unit(self) -> int:
        return len(self.per_draw["lam"])

    @property
    def n_configs(self) -> int:
        return self.n_units * self.n_per_unit


@dataclass(frozen=True)
class Chunk:
    """Units [u0, u1) x per-draw configurations [m0, m1) of one group: one engine call."""

    index: int
    group: int
    u0: int
    u1: int
    m0: int
    m1: int
    first_id: int  # ids [first_id, first_id + n_configs) when the chunk spans whole units

    @property
    def n_configs(self) -> int:
        return (self.u1 - self.u0) * (self.m1 - self.m0)


@dataclass(frozen=True)
class Plan:
    """The expanded grid and its chunks; a pure function of the (resolved) spec."""

    units: list[tuple[int, float, int]]  # (n_train, noise, data_seed) per data unit
    groups: list[Group]
    chunks: list[Chunk]
    chunk_size: int  # models per engine call, at most
    models_per_config: int  # folds + 1 for kfold, else 1

    @property
    def n_configs(self) -> int:
        return sum(g.n_configs for g in self.groups)

    def to_json(self) -> dict[str, Any]:
        return {
            "n_configs": self.n_configs,
            "n_chunks": len(self.chunks),
            "chunk_size": self.chunk_size,
            "models_per_config": self.models_per_config,
            "n_units": len(self.units),
            "groups": [{"index": g.index, "optimizer": g.optimizer, "regularizer": g.regularizer,
                        "loss": g.loss, "epochs": g.epochs, "batch_size": g.batch_size,
                        "schedule": g.schedule, "offset": g.offset, "n_units": g.n_units,
                        "n_per_unit": g.n_per_unit} for g in self.groups],
            "chunks": [[c.group, c.u0, c.u1, c.m0, c.m1, c.first_id, c.n_configs]
                       for c in self.chunks],
        }

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]


def _per_draw(spec: SweepSpec, optimizer: str) -> dict[str, np.ndarray]:
    """The per-draw axes of one group, lam innermost: lr, m1, beta2, init_scale, init_seed, lam."""
    t = spec.train
    sgd = optimizer == "sgd"
    m1 = t.momentum if sgd else t.beta1
    b2 = (np.nan,) if sgd else t.beta2
    seeds = (-1,) if t.init_seed == "data" else t.init_seed
    axes = [np.asarray(a, dtype=np.float64) for a in (t.lr, m1, b2, t.init_scale)]
    axes += [np.asarray(seeds, dtype=np.int64), np.asarray(t.lam, dtype=np.float64)]
    mesh = np.meshgrid(*[np.arange(len(a)) for a in axes], indexing="ij")
    idx = [m.reshape(-1) for m in mesh]
    lr, m1v, b2v, scale, iseed, lam = (a[i] for a, i in zip(axes, idx, strict=True))
    return {"lr": lr, "momentum": m1v if sgd else np.zeros_like(lr),
            "beta1": np.full_like(lr, np.nan) if sgd else m1v, "beta2": b2v,
            "m1": m1v, "init_scale": scale, "init_seed": iseed, "lam": lam}


def _split_even(n: int, size: int) -> list[tuple[int, int]]:
    """[0, n) cut into ceil(n / size) near-equal consecutive ranges."""
    parts = max(1, math.ceil(n / max(size, 1)))
    step = math.ceil(n / parts)
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def make_plan(spec: SweepSpec) -> Plan:
    """Expand the grid and cut it into chunks of at most ``execution.chunk_size`` models."""
    C = spec.execution.chunk_size
    if C is None:
        raise ValueError("execution.chunk_size: resolve the spec first (resolve_spec)")
    d, t = spec.data, spec.train
    units = [(n, s_noise, seed) for n in d.n_train for s_noise in d.noise for seed in d.seeds]
    mpc = spec.validation.folds + 1 if spec.validation.method == "kfold" else 1
    groups: list[Group] = []
    chunks: list[Chunk] = []
    offset = 0
    for opt, reg in t.pair_list():
        for loss in t.loss:
            for epochs in t.epochs:
                for bs in t.batch_size:
                    for sched in t.schedule:
                        g = Group(len(groups), opt, reg, loss, epochs, bs, sched, offset,
                                  len(units), _per_draw(spec, opt))
                        groups.append(g)
                        M = g.n_per_unit
                        if M * mpc <= C:
                            for u0, u1 in _split_even(g.n_units, C // (M * mpc)):
                                chunks.append(Chunk(len(chunks), g.index, u0, u1, 0, M,
                                                    offset + u0 * M))
                        else:
                            for u in range(g.n_units):
                                for m0, m1 in _split_even(M, max(1, C // mpc)):
                                    chunks.append(Chunk(len(chunks), g.index, u, u + 1, m0, m1,
                                                        offset + u * M + m0))
                        offset += g.n_configs
    return Plan(units, groups, chunks, C, mpc)


def _record_rows(spec: SweepSpec) -> int:
    return max(len(spec.record.epochs(e)) for e in spec.train.epochs)


def bytes_per_config(spec: SweepSpec) -> tuple[int, int]:
    """Estimated (device, host) bytes one configuration needs inside a chunk.

    Device: parameters, optimizer state and temporaries (~16 (K, D1) rows), residuals and
    the metric buffers. Host: the curve rows as float64 through torch, numpy, pandas and
    parquet (~4 copies), and the configs row.
    """
    d = spec.data
    D1 = d.n_features + int(spec.train.fit_intercept)
    n_tr = max(d.n_train)
    n_ev = d.n_test + (spec.n_val if spec.validation.method == "holdout" else n_tr)
    item = torch.tensor([], dtype=DTYPES[spec.train.dtype]).element_size()
    R, n_metrics = _record_rows(spec), len(METRICS)
    mpc = spec.validation.folds + 1 if spec.validation.method == "kfold" else 1
    device = item * (16 * D1 + 6 * n_tr + 3 * n_ev + R * n_metrics) * mpc
    host = R * (n_metrics + 2) * 8 * 4 + 600
    return device, host


#: Largest chunk on CPU: beyond this the per-model speed no longer improves (bench_sweep.py),
#: and smaller chunks keep progress and resume fine-grained.
CPU_MAX_CHUNK = 16384
GPU_MAX_CHUNK = 1 << 20


def auto_chunk_size(spec: SweepSpec) -> int:
    """Models per engine call that fit the memory budget (``execution.memory_gb`` or auto).

    Auto budget: a quarter of the available host memory (at most 2 GiB) for the host side,
    and on CUDA half the free device memory for the device side.
    """
    dev_b, host_b = bytes_per_config(spec)
    avail = _available_host_bytes()
    if spec.execution.memory_gb is not None:
        budget = spec.execution.memory_gb * 2**30
        host_budget = dev_budget = budget
    else:
        host_budget = min(2 * 2**30, avail // 4)
        dev_budget = host_budget
        if spec.train.device.startswith("cuda") and torch.cuda.is_available():
            free, _ = torch.cuda.mem_get_info(torch.device(spec.train.device))
            dev_budget = free // 2
    cap = GPU_MAX_CHUNK if spec.train.device.startswith("cuda") else CPU_MAX_CHUNK
    if spec.train.device == "cpu":  # device and host memory are the same memory
        n = int(min(host_budget, dev_budget) // (dev_b + host_b))
    else:
        n = int(min(dev_budget // dev_b, host_budget // host_b))
    return max(1, min(n, cap))


def _available_host_bytes() -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 8 * 2**30


def resolve_spec(spec: SweepSpec) -> SweepSpec:
    """The spec with a concrete ``execution.chunk_size`` (sized to this machine's memory).

    The resolved spec is what the manifest stores and what ``run_chunk`` takes, so every
    process that runs a chunk of a sweep agrees on the plan.
    """
    if spec.execution.chunk_size is not None:
        return spec
    ex = spec.execution.replace(chunk_size=auto_chunk_size(spec))
    return spec.replace(execution=ex.model_dump())


# ----------------------------------------------------------------------------------------
# Data: regenerated from seeds, on separate streams
# ----------------------------------------------------------------------------------------

def draw_unit(spec: SweepSpec, n_train: int, noise: float, seed: int) -> Dataset:
    """One data draw (``make_linear``): the same numbers as ``wdlab reproduce`` for that seed."""
    d = spec.data
    return make_linear(d.n_features, n_train, d.n_test, w_star=d.w_star, bias=d.bias,
                       noise=noise, seed=seed)


def holdout_draw(spec: SweepSpec, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_val`` fresh validation samples of draw ``seed`` from the same distribution.

    Drawn on the ``val`` stream, so the training and test samples are those of
    ``make_linear(seed)`` unchanged. Returns X (n_val, D) and y (n_val,), float64.
    """
    d = spec.data
    gen = torch.Generator().manual_seed(stream_seed(seed, f"val{spec.validation.seed}"))
    X = torch.randn(spec.n_val, d.n_features, generator=gen, dtype=torch.float64)  # (N_v, D)
    eps = torch.randn(spec.n_val, generator=gen, dtype=torch.float64) * noise  # (N_v,)
    y = X @ torch.full((d.n_features,), float(d.w_star), dtype=torch.float64) + d.bias + eps
    return X, y


def fold_ids(spec: SweepSpec, n_train: int, seed: int) -> torch.Tensor:
    """(n_train,) fold index of each training sample: seeded, balanced (kfold) or 0/1 (split).

    split: 1 marks the ``split_count`` held-out samples; kfold: sample perm[i] is in fold i % k.
    """
    v = spec.validation
    gen = torch.Generator().manual_seed(stream_seed(seed, f"{v.method}{v.seed}"))
    perm = torch.randperm(n_train, generator=gen)  # (N,)
    ids = torch.empty(n_train, dtype=torch.int64)
    if v.method == "split":
        held = split_count(n_train, v.fraction)
        ids[perm] = (torch.arange(n_train) < held).to(torch.int64)
    else:
        ids[perm] = torch.arange(n_train) % v.folds
    return ids


@dataclass(frozen=True)
class ModelDraw:
    """One training set of a unit with its eval sets (a draw of the engine's G axis)."""

    X: torch.Tensor  # (N, D) training design (all n_train samples)
    y: torch.Tensor  # (N,)
    w: torch.Tensor  # (N,) 1 = trains, 0 = held out
    X_test: torch.Tensor
    y_test: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    w_val: torch.Tensor  # (N_v,) 1 = scored as validation


def unit_draws(spec: SweepSpec, n_train: int, noise: float, seed: int) -> list[ModelDraw]:
    """The models one data unit trains: 1 (holdout, split) or folds + 1 (kfold, full last)."""
    ds = draw_unit(spec, n_train, noise, seed)
    ones = torch.ones(n_train, dtype=torch.float64)
    method = spec.validation.method
    if method == "holdout":
        Xv, yv = holdout_draw(spec, noise, seed)
        return [ModelDraw(ds.X_train, ds.y_train, ones, ds.X_test, ds.y_test, Xv, yv,
                          torch.ones(len(yv), dtype=torch.float64))]
    ids = fold_ids(spec, n_train, seed)
    if method == "split":
        held = (ids == 1).to(torch.float64)
        return [ModelDraw(ds.X_train, ds.y_train, 1 - held, ds.X_test, ds.y_test, ds.X_train,
                          ds.y_train, held)]
    out = []
    for f in range(spec.validation.folds):
        held = (ids == f).to(torch.float64)
        out.append(ModelDraw(ds.X_train, ds.y_train, 1 - held, ds.X_test, ds.y_test,
                             ds.X_train, ds.y_train, held))
    out.append(ModelDraw(ds.X_train, ds.y_train, ones, ds.X_test, ds.y_test, ds.X_train,
                         ds.y_train, torch.zeros(n_train, dtype=torch.float64)))
    return out


# ----------------------------------------------------------------------------------------
# One chunk: inputs -> engine -> tables
# ----------------------------------------------------------------------------------------

@dataclass
class ChunkInputs:
    """Everything one engine call needs, built from the spec alone."""

    spec: SweepSpec
    plan: Plan
    chunk: Chunk
    group: Group
    problem: Any  # wdlab.data.Problem, G = units x models_per_config draws
    engine_spec: EngineSpec
    hyper: Hyper  # (K,) per model
    theta0: torch.Tensor  # (K, D1)
    record_epochs: list[int]
    reference: torch.Tensor | None  # (K, D1) ridge solutions, when recording dist_to_ridge
    hyper_frame: pd.DataFrame  # one row per configuration of the chunk


@dataclass
class ChunkResult:
    """A chunk's tables: configs (one row per configuration) and curves (long form)."""

    index: int
    configs: pd.DataFrame
    curves: pd.DataFrame
    seconds: float = 0.0


def _plan_cached(spec: SweepSpec) -> Plan:
    key = spec.model_dump_json()
    hit = _PLANS.get(key)
    if hit is None:
        hit = make_plan(spec)
        _PLANS.clear()
        _PLANS[key] = hit
    return hit


_PLANS: dict[str, Plan] = {}


def _as_spec(spec: SweepSpec | dict | str) -> SweepSpec:
    return spec if isinstance(spec, SweepSpec) else spec_from_json(spec)


def _hyper_frame(spec: SweepSpec, plan: Plan, group: Group, chunk: Chunk) -> pd.DataFrame:
    """Hyperparameter columns of the chunk's configurations, unit-major (config_id order)."""
    U, M = chunk.u1 - chunk.u0, chunk.m1 - chunk.m0
    d, t = spec.data, spec.train
    units = plan.units[chunk.u0:chunk.u1]
    n_train = np.repeat(np.array([u[0] for u in units], dtype=np.int64), M)
    noise = np.repeat(np.array([u[1] for u in units], dtype=np.float64), M)
    data_seed = np.repeat(np.array([u[2] for u in units], dtype=np.int64), M)
    pd_ = {k: np.tile(v[chunk.m0:chunk.m1], U) for k, v in group.per_draw.items()}
    init_seed = np.where(pd_["init_seed"] < 0, data_seed, pd_["init_seed"]).astype(np.int64)
    ids = (group.offset + np.repeat(np.arange(chunk.u0, chunk.u1), M) * group.n_per_unit
           + np.tile(np.arange(chunk.m0, chunk.m1), U)).astype(np.int64)
    K = U * M
    return pd.DataFrame({
        "config_id": ids,
        "optimizer": group.optimizer, "regularizer": group.regularizer, "loss": group.loss,
        "lam": pd_["lam"], "lr": pd_["lr"], "momentum": pd_["momentum"],
        "beta1": pd_["beta1"], "beta2": pd_["beta2"],
        "epochs": np.full(K, group.epochs, dtype=np.int64),
        "batch_size": np.full(K, group.batch_size, dtype=np.int64),
        "schedule": group.schedule, "init_scale": pd_["init_scale"], "init_seed": init_seed,
        "data_seed": data_seed, "n_train": n_train,
        "n_test": np.full(K, d.n_test, dtype=np.int64),
        "n_features": np.full(K, d.n_features, dtype=np.int64), "noise": noise,
        "decay_bias": np.full(K, t.decay_bias), "dtype": t.dtype,
        "w_star": np.full(K, d.w_star), "bias": np.full(K, d.bias),
        "fit_intercept": np.full(K, t.fit_intercept), "eps": np.full(K, t.eps),
        "batch_seed": np.full(K, t.batch_seed, dtype=np.int64),
        "chunk": np.full(K, chunk.index, dtype=np.int64),
    })


def _ridge_reference(spec: SweepSpec, group: Group, draws: list[ModelDraw],
                     lams: np.ndarray) -> torch.Tensor | None:
    """(n_draws * M, D1) closed-form solutions for each model, or None (no closed form)."""
    from wdlab.ridge import ridge_path

    if group.regularizer not in COUPLED or spec.train.decay_bias:
        return None
    fi = spec.train.fit_intercept
    out = []
    for dr in draws:  # loop over data draws, not configurations
        keep = dr.w > 0
        path = ridge_path(dr.X[keep], dr.y[keep], torch.as_tensor(lams), group.loss,
                          group.regularizer, fit_intercept=fi)
        out.append(path.theta if fi else path.coef)  # (M, D1)
    return torch.cat(out, dim=0)


def prepare_chunk(spec: SweepSpec | dict | str, index: int) -> ChunkInputs:
    """Build chunk ``index``'s engine inputs from the (resolved) spec, regenerating its data."""
    spec = _as_spec(spec)
    plan = _plan_cached(spec)
    if not 0 <= index < len(plan.chunks):
        raise ValueError(f"chunk: index {index} out of range [0, {len(plan.chunks)})")
    chunk = plan.chunks[index]
    group = plan.groups[chunk.group]
    t = spec.train
    draws: list[ModelDraw] = []
    for n_train, noise, seed in plan.units[chunk.u0:chunk.u1]:  # loop over draws
        draws.extend(unit_draws(spec, n_train, noise, seed))
    problem = stack_problem(
        [(dr.X, dr.y, dr.w) for dr in draws],
        {"test": [(dr.X_test, dr.y_test) for dr in draws],
         "val": [(dr.X_val, dr.y_val, dr.w_val) for dr in draws]},
        fit_intercept=t.fit_intercept,
    )
    n_draws, M = len(draws), chunk.m1 - chunk.m0
    per = {k: v[chunk.m0:chunk.m1] for k, v in group.per_draw.items()}
    unit_seeds = np.repeat(np.array([u[2] for u in plan.units[chunk.u0:chunk.u1]]),
                           plan.models_per_config)  # (n_draws,)
    init_seed = np.where(per["init_seed"][None, :] < 0, unit_seeds[:, None],
                         per["init_seed"][None, :]).reshape(-1)  # (K,)
    scale = np.tile(per["init_scale"], n_draws)  # (K,)
    from wdlab.data import init_weights

    theta0 = init_weights(init_seed.tolist(), spec.data.n_features, 1.0,
                          fit_intercept=t.fit_intercept, dtype=torch.float64)  # (K, D1)
    theta0 = (theta0 * torch.as_tensor(scale)[:, None]).to(DTYPES[t.dtype])  # (K, D1)
    tile = lambda v: np.tile(v, n_draws)  # noqa: E731
    hyper = Hyper.of(n_draws * M, lam=tile(per["lam"]), lr=tile(per["lr"]),
                     beta1=tile(per["m1"]), beta2=tile(np.nan_to_num(per["beta2"], nan=0.0)))
    espec = EngineSpec(
        optimizer=group.optimizer, regularizer=group.regularizer, loss=group.loss,
        epochs=group.epochs, batch_size=group.batch_size or None, batch_seed=t.batch_seed,
        schedule=group.schedule, eps=t.eps, decay_bias=t.decay_bias, dtype=DTYPES[t.dtype],
        device=t.device)
    reference = None
    if spec.record.dist_to_ridge:
        reference = _ridge_reference(spec, group, draws, per["lam"])
    return ChunkInputs(spec, plan, chunk, group, problem, espec, hyper, theta0,
                       spec.record.epochs(group.epochs), reference,
                       _hyper_frame(spec, plan, group, chunk))


def execute_chunk(inputs: ChunkInputs) -> TrainResult:
    """The chunk's one engine call."""
    kw: dict[str, Any] = {}
    engine = inputs.spec.execution.engine
    if engine != "auto":
        kw["engine"] = engine
    return train(inputs.problem, inputs.engine_spec, inputs.hyper, inputs.theta0,
                 record_epochs=inputs.record_epochs, reference=inputs.reference, **kw)


def _reduce(inputs: ChunkInputs, result: TrainResult) -> tuple[TrainResult, np.ndarray | None]:
    """Model-level metrics -> configuration-level (kfold: full model + mean fold val error)."""
    spec = inputs.spec
    names = [m for m in METRICS if m in result.metrics]
    if spec.record.dist_to_ridge and "dist_to_ridge" not in names:
        names.append("dist_to_ridge")
    R = len(result.epochs)
    U = inputs.chunk.u1 - inputs.chunk.u0
    M = inputs.chunk.m1 - inputs.chunk.m0
    c = inputs.plan.models_per_config
    metrics: dict[str, torch.Tensor] = {}
    nan = torch.full((R, U * M), float("nan"), dtype=torch.float64)
    if c == 1:
        for n in names:
            metrics[n] = result.metrics[n].double() if n in result.metrics else nan
        return TrainResult(result.epochs, metrics, result.theta, result.diverged_epoch,
                           result.fit_intercept), None
    k = c - 1
    for n in names:
        if n not in result.metrics:
            metrics[n] = nan
            continue
        v = result.metrics[n].double().reshape(R, U, c, M)  # (R, U, folds+1, M)
        metrics[n] = (v[:, :, :k].mean(2) if n == "val_mse" else v[:, :, k]).reshape(R, U * M)
    folds_val = result.metrics["val_mse"][-1].double().reshape(U, c, M)[:, :k]  # (U, k, M)
    val_se = (folds_val.std(1, unbiased=True) / math.sqrt(k)).reshape(U * M).numpy()
    div = result.diverged_epoch.reshape(U, c, M)  # (U, folds+1, M)
    big = torch.iinfo(torch.int64).max
    first = torch.where(div >= 0, div, torch.full_like(div, big)).min(1).values  # (U, M)
    diverged = torch.where(first == big, torch.full_like(first, -1), first).reshape(U * M)
    theta = result.theta.reshape(U, c, M, -1)[:, k].reshape(U * M, -1)
    return TrainResult(result.epochs, metrics, theta, diverged, result.fit_intercept), val_se


def chunk_tables(inputs: ChunkInputs, result: TrainResult, seconds: float = 0.0) -> ChunkResult:
    """Engine output -> the chunk's configs and curves tables (columns in ``METRICS`` order)."""
    reduced, val_se = _reduce(inputs, result)
    hyp = inputs.hyper_frame
    configs = configs_frame(hyp, reduced)
    curves = curves_frame(reduced, hyp["config_id"].to_numpy())
    order = [m for m in METRICS if m in reduced.metrics]
    head = [c for c in configs.columns if c not in order]
    configs = configs[head + order]
    if val_se is not None:
        configs["val_mse_se"] = np.where(configs["status"] == "ok", val_se, np.nan)
    curves = curves[["config_id", "epoch", *order]]
    return ChunkResult(inputs.chunk.index, configs, curves, seconds)


def run_chunk(spec: SweepSpec | dict | str, index: int) -> ChunkResult:
    """Run chunk ``index`` of a resolved sweep spec and return its tables. No file IO.

    The unit of work of every backend: data are regenerated from the seeds inside, so a
    remote worker needs only the spec (a ``SweepSpec``, its ``model_dump()`` or JSON) and
    the index. The result's tables are plain pandas DataFrames.
    """
    start = time.perf_counter()
    inputs = prepare_chunk(spec, index)
    result = execute_chunk(inputs)
    return chunk_tables(inputs, result, time.perf_counter() - start)


# ----------------------------------------------------------------------------------------
# Chunk files
# ----------------------------------------------------------------------------------------

def chunk_path(run_dir: Path | str, index: int, table: str) -> Path:
    """``chunks/00012.configs.parquet`` (or ``.curves.parquet``, ``.failed.json``)."""
    ext = "json" if table == "failed" else "parquet"
    return Path(run_dir) / CHUNK_DIR / f"{index:05d}.{table}.{ext}"


def chunk_done(run_dir: Path | str, index: int) -> bool:
    """A chunk is done iff both of its table files exist (configs is written last)."""
    return (chunk_path(run_dir, index, "configs").exists()
            and chunk_path(run_dir, index, "curves").exists())


def write_chunk(run_dir: Path | str, result: ChunkResult) -> None:
    """Write a finished chunk atomically: curves first, then configs (the done marker)."""
    from wdlab.store import write_table

    write_table(chunk_path(run_dir, result.index, "curves"), result.curves, csv=False)
    write_table(chunk_path(run_dir, result.index, "configs"), result.configs, csv=False)
    with contextlib.suppress(FileNotFoundError):
        chunk_path(run_dir, result.index, "failed").unlink()


def write_chunk_failure(run_dir: Path | str, index: int, error: str) -> None:
    """Mark chunk ``index`` as failed for good (a remote backend's final error)."""
    from wdlab.store import write_json

    write_json(chunk_path(run_dir, index, "failed"), {"chunk": index, "error": str(error)})


def chunk_failure(run_dir: Path | str, index: int) -> str | None:
    path = chunk_path(run_dir, index, "failed")
    if not path.exists():
        return None
    from wdlab.store import read_json

    return str(read_json(path).get("error", "failed"))


def failed_chunk_configs(spec: SweepSpec, index: int, error: str) -> pd.DataFrame:
    """Configs rows of a failed chunk: its hyperparameters, status ``failed``, NaN metrics."""
    spec = _as_spec(spec)
    plan = _plan_cached(spec)
    chunk = plan.chunks[index]
    df = _hyper_frame(spec, plan, plan.groups[chunk.group], chunk)
    df["status"] = "failed"
    df["diverged_epoch"] = np.full(len(df), -1, dtype=np.int64)
    for m in _metric_columns(spec):
        df[m] = np.nan
    if spec.validation.method == "kfold":
        df["val_mse_se"] = np.nan
    df["error"] = str(error)
    return df


def _metric_columns(spec: SweepSpec) -> list[str]:
    return [m for m in METRICS if m != "dist_to_ridge" or spec.record.dist_to_ridge]


def _clean_temporaries(run_dir: Path) -> None:
    """Remove the temporary files of writes a kill interrupted (they never have a real name)."""
    for folder in (run_dir, run_dir / CHUNK_DIR):
        if folder.is_dir():
            for p in folder.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    p.unlink()


# ----------------------------------------------------------------------------------------
# Executors and events
# ----------------------------------------------------------------------------------------

@dataclass
class ChunkFailure:
    """A chunk an executor gave up on (after its own retries)."""

    index: int
    error: str


#: An executor runs the given chunks of a resolved spec and yields each as it finishes:
#: a ``ChunkResult``, or a ``ChunkFailure`` for a chunk that failed for good.
Executor = Callable[[SweepSpec, list[int]], Iterable["ChunkResult | ChunkFailure"]]


def local_executor(spec: SweepSpec, indices: list[int]) -> Iterator[ChunkResult]:
    """Run chunks one after another in this process (errors propagate)."""
    for i in indices:
        yield run_chunk(spec, i)


@dataclass
class SweepEvent:
    """Progress of a sweep, sent to the ``on_event`` callback (the library draws no UI).

    kind: ``start`` (plan made; ``configs_done`` counts chunks already on disk), ``warning``
    (``message``), ``chunk`` (a chunk finished), ``failed`` (a chunk failed), ``assemble``,
    ``done`` (``message`` = run directory) or ``note``.
    """

    kind: str
    configs_done: int = 0
    configs_total: int = 0
    chunks_done: int = 0
    chunks_total: int = 0
    message: str = ""
    chunk: int | None = None
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------
# Warnings: full-batch GD stability
# ----------------------------------------------------------------------------------------

def stability_warnings(spec: SweepSpec, max_draws: int = 64) -> list[str]:
    """One line per full-batch SGD (lr, n_train) whose lr exceeds the GD stability bound.

    For the data loss c_L * mean(r^2) the Hessian in theta = [w, b] is 2 c_L X1^T X1 / n
    (X1 with the ones column); L is its largest eigenvalue, maximised over the draws (the
    first ``max_draws`` seeds). Gradient descent with heavy-ball momentum mu on a quadratic
    with curvature L + lam_eff is stable iff lr < 2 (1 + mu) / (L + lam_eff), where lam_eff
    is the regularizer's curvature (c_P * lam for a penalty, lam for coupled/decoupled
    weight_decay; the ``independent`` decay shrinks by lam per step outside lr: bound
    (2 (1 + mu) - lam) / L).
    """
    t, d = spec.train, spec.data
    full = [bs for bs in t.batch_size if bs == 0 or bs >= max(d.n_train)]
    pairs = [(o, r) for o, r in t.pair_list() if o == "sgd"]
    if not pairs or not full:
        return []
    from wdlab.conventions import LOSS_VALUE_SCALE

    lams = np.asarray(t.lam, dtype=np.float64)
    lines = []
    n_dec = d.n_features + int(t.decay_bias)
    for n_train in d.n_train:
        L_max, worst = 0.0, None
        for seed in d.seeds[:max_draws]:  # loop over draws
            ds = draw_unit(spec, n_train, d.noise[0], seed)
            X1 = ds.X_train
            if t.fit_intercept:
                X1 = torch.cat([X1, torch.ones(n_train, 1, dtype=X1.dtype)], 1)  # (N, D1)
            gram = X1 @ X1.T / n_train  # (N, N), same nonzero spectrum as X1^T X1 / n
            L0 = float(torch.linalg.eigvalsh(gram).max())
            if L0 > L_max:
                L_max, worst = L0, seed
        for opt, reg in pairs:
            for loss in t.loss:
                L = 2.0 * LOSS_VALUE_SCALE[loss] * L_max
                if reg in COUPLED:
                    lam_eff = penalty_grad_scale(reg, n_dec) * lams
                else:
                    lam_eff = lams if reg == "decoupled" else np.zeros_like(lams)
                for mu in t.momentum:
                    for lr in t.lr:
                        if reg == "independent":
                            bound = (2 * (1 + mu) - lams) / L
                        else:
                            bound = 2 * (1 + mu) / (L + lam_eff)
                        bad = lr > bound
                        if bad.any():
                            lam_txt = ("every λ" if bad.all() else
                                       f"{int(bad.sum())} of {len(lams)} λ values (λ ≥ {lams[bad].min():g})")
                            lines.append(
                                f"{opt}+{reg} ({loss}) lr={lr:g}"
                                + (f" momentum={mu:g}" if mu else "")
                                + f" exceeds the full-batch GD stability bound 2(1+μ)/(L+λ_eff)"
                                f" = {bound[bad].max():.3g} for {lam_txt}; L = {L:.3g}, largest"
                                f" loss-Hessian eigenvalue over the draws (seed {worst},"
                                f" n_train={n_train}); expect divergence")
    return lines


# ----------------------------------------------------------------------------------------
# The driver
# ----------------------------------------------------------------------------------------

def _seeds_record(spec: SweepSpec) -> dict[str, Any]:
    t, v = spec.train, spec.validation
    return {"data_seeds": list(spec.data.seeds),
            "init_seeds": "data" if t.init_seed == "data" else list(t.init_seed),
            "batch_seed": t.batch_seed, "validation_seed": v.seed,
            "streams": "data: stream 'data', init: 'init', holdout: 'val<seed>', "
                       "split/kfold: '<method><seed>' (wdlab.data.stream_seed)"}


def _emit(on_event, event: SweepEvent) -> None:
    if on_event is not None:
        on_event(event)


def _check_out(path: Path, force: bool) -> None:
    """Refuse to start over a completed or unfinished run unless ``force``."""
    from wdlab.store import MANIFEST, read_json

    manifest = path / MANIFEST
    if not manifest.exists() or force:
        return
    status = read_json(manifest).get("status")
    if status == "complete":
        raise FileExistsError(f"--out: {path} already holds a completed run; pass --force to overwrite")
    raise FileExistsError(f"--out: {path} holds an unfinished run (status {status!r}); "
                          f"pass --resume {path} to continue it or --force to start over")


def _clear_run(path: Path) -> None:
    """Remove a previous run's files (known names only) before a forced restart."""
    from wdlab.store import MANIFEST

    chunks = path / CHUNK_DIR
    if chunks.is_dir():
        for p in chunks.iterdir():
            if p.suffix in (".parquet", ".json", ".tmp"):
                p.unlink()
        with contextlib.suppress(OSError):
            chunks.rmdir()
    names = [MANIFEST, "report.html"] + [f"{t}.{e}" for t in TABLES for e in ("parquet", "csv")]
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (path / name).unlink()


def run_sweep(
    spec: SweepSpec,
    out: Path | str | None = None,
    *,
    force: bool = False,
    csv: bool = True,
    report: bool = True,
    executor: Executor | None = None,
    on_event: Callable[[SweepEvent], None] | None = None,
    keep_chunks: bool = False,
) -> Path:
    """Run a sweep into a run directory and return it.

    Everything that can fail on the spec fails before anything is written. A completed
    (or unfinished) run in ``out`` is refused unless ``force``.
    """
    from wdlab.store import default_run_dir

    spec = resolve_spec(spec)
    plan = make_plan(spec)
    warnings = stability_warnings(spec)
    path = Path(out) if out is not None else default_run_dir(f"sweep-{spec.name}")
    _check_out(path, force)
    if force:
        _clear_run(path)
    manifest = _new_manifest(spec, plan, warnings, csv)
    from wdlab.store import RunDir

    run = RunDir(path, force=True, csv=csv).create()
    run.manifest(manifest)
    for line in warnings:
        _emit(on_event, SweepEvent("warning", message=line))
    return _drive(run.path, spec, plan, manifest, executor=executor, on_event=on_event,
                  report=report, keep_chunks=keep_chunks)


def resume_sweep(
    run_dir: Path | str,
    *,
    csv: bool | None = None,
    report: bool = True,
    executor: Executor | None = None,
    on_event: Callable[[SweepEvent], None] | None = None,
    keep_chunks: bool = False,
) -> Path:
    """Finish an interrupted sweep from its manifest; a completed run is left as it is."""
    from wdlab.store import MANIFEST, read_json, write_json

    path = Path(run_dir)
    if not (path / MANIFEST).exists():
        raise FileNotFoundError(f"--resume: {path} has no {MANIFEST}; nothing to resume "
                                f"(start the sweep again without --resume)")
    manifest = read_json(path / MANIFEST)
    if manifest.get("kind") != "sweep":
        raise ValueError(f"--resume: {path} is not a sweep run (kind {manifest.get('kind')!r})")
    if manifest.get("status") == "complete":
        _emit(on_event, SweepEvent("note", message=f"{path} is already complete; nothing to do"))
        return path
    spec = spec_from_json(manifest["spec"])
    plan = make_plan(spec)
    if plan.fingerprint() != manifest["plan"]["fingerprint"]:
        raise ValueError(f"--resume: the chunk plan of {path} differs from this wdlab's "
                         f"({manifest['plan']['fingerprint']} vs {plan.fingerprint()}); "
                         f"rerun with --force")
    if csv is not None:
        manifest["csv"] = csv
    from wdlab.store import provenance

    manifest.setdefault("resumed", []).append(provenance(spec.train.device))
    write_json(path / MANIFEST, manifest)
    for line in manifest.get("warnings", []):
        _emit(on_event, SweepEvent("warning", message=line))
    return _drive(path, spec, plan, manifest, executor=executor, on_event=on_event,
                  report=report, keep_chunks=keep_chunks)


def _new_manifest(spec: SweepSpec, plan: Plan, warnings: list[str], csv: bool) -> dict:
    from wdlab.store import provenance

    return {"kind": "sweep", "status": "running", "spec": spec.model_dump(mode="json"),
            "seeds": _seeds_record(spec), "provenance": provenance(spec.train.device),
            "plan": {**plan.to_json(), "fingerprint": plan.fingerprint()},
            "warnings": warnings, "csv": csv}


def _drive(path: Path, spec: SweepSpec, plan: Plan, manifest: dict, *, executor, on_event,
           report: bool, keep_chunks: bool) -> Path:
    from wdlab.store import MANIFEST, write_json

    _clean_temporaries(path)
    total = plan.n_configs
    done = [i for i in range(len(plan.chunks)) if chunk_done(path, i)]
    pending = [i for i in range(len(plan.chunks)) if not chunk_done(path, i)]
    configs_done = sum(plan.chunks[i].n_configs for i in done)
    _emit(on_event, SweepEvent("start", configs_done, total, len(done), len(plan.chunks)))
    kill_after = os.environ.get(KILL_AFTER_CHUNK_ENV)
    start = time.perf_counter()
    n_run, failed = 0, []
    for item in (executor or local_executor)(spec, pending):
        if isinstance(item, ChunkFailure):
            write_chunk_failure(path, item.index, item.error)
            failed.append(item.index)
            _emit(on_event, SweepEvent("failed", configs_done, total, len(done), len(plan.chunks),
                                       message=item.error, chunk=item.index))
            continue
        write_chunk(path, item)
        done.append(item.index)
        n_run += plan.chunks[item.index].n_configs
        configs_done += plan.chunks[item.index].n_configs
        _emit(on_event, SweepEvent("chunk", configs_done, total, len(done), len(plan.chunks),
                                   chunk=item.index, extra={"seconds": item.seconds}))
        if kill_after is not None and str(item.index) == kill_after:  # TEST-ONLY hook
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
    elapsed = time.perf_counter() - start
    _emit(on_event, SweepEvent("assemble", configs_done, total, len(done), len(plan.chunks)))
    failures = {i: chunk_failure(path, i) for i in range(len(plan.chunks))
                if not chunk_done(path, i)}
    csv = bool(manifest.get("csv", True))
    assemble(path, spec, plan, failures, csv=csv)
    status = "complete" if not failures else "incomplete"
    manifest.update({
        "status": status,
        "timing": {"seconds_this_process": round(elapsed, 3), "configs_this_process": n_run,
                   "configs_per_second": round(n_run / elapsed, 1) if elapsed > 0 else None},
        "failed_chunks": sorted(failures),
    })
    manifest["files"] = _files(path)
    write_json(path / MANIFEST, manifest)
    if status == "complete" and not keep_chunks:
        _remove_chunks(path)
    if report:
        _write_report(path, on_event)
        manifest["files"] = _files(path)
        write_json(path / MANIFEST, manifest)
    _emit(on_event, SweepEvent("done", configs_done, total, len(done), len(plan.chunks),
                               message=str(path), extra={"status": status,
                                                         "failed": sorted(failures)}))
    return path


def _files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")
                  if p.is_file() and not p.name.startswith(".") and CHUNK_DIR not in p.parts)


def _remove_chunks(path: Path) -> None:
    chunks = path / CHUNK_DIR
    if chunks.is_dir():
        for p in chunks.iterdir():
            with contextlib.suppress(OSError):
                p.unlink()
        with contextlib.suppress(OSError):
            chunks.rmdir()


def _write_report(path: Path, on_event) -> None:
    try:
        from wdlab.report import write_report  # type: ignore[attr-defined]
    except ImportError:
        return
    try:
        write_report(path)
    except Exception as exc:  # the run is complete; a report failure must not undo it
        _emit(on_event, SweepEvent("warning", message=f"report: not written ({exc})"))


# ----------------------------------------------------------------------------------------
# Assembly: chunk files -> final tables, summary, selection
# ----------------------------------------------------------------------------------------

def _chunk_parts(path: Path, spec: SweepSpec, plan: Plan, table: str,
                 failures: dict[int, str | None]) -> Iterator[pd.DataFrame]:
    """Each chunk's table in chunk order (= config_id order); failed chunks as failed rows."""
    import pyarrow.parquet as pq

    any_failed = bool(failures)
    for i in range(len(plan.chunks)):
        if i in failures:
            if table == "configs":
                yield failed_chunk_configs(spec, i, failures[i] or "not run")
            continue
        df = pq.read_table(chunk_path(path, i, table)).to_pandas()
        if table == "configs" and any_failed:
            df["error"] = ""
        yield df


def assemble(path: Path, spec: SweepSpec, plan: Plan, failures: dict[int, str | None],
             *, csv: bool = True) -> None:
    """Write configs, curves, summary and selection from the chunk files, in chunk order."""
    from wdlab.selection import select, summarize
    from wdlab.store import write_table, write_table_stream

    empty = pd.DataFrame({c: pd.Series(dtype="int64" if c in ("config_id", "epoch") else "float64")
                          for c in ["config_id", "epoch", *_metric_columns(spec)]})
    write_table_stream(path / "curves.parquet",
                       _or_default(_chunk_parts(path, spec, plan, "curves", failures), empty),
                       csv=csv)
    write_table_stream(path / "configs.parquet", _chunk_parts(path, spec, plan, "configs", failures),
                       csv=csv)
    configs = pd.read_parquet(path / "configs.parquet")
    summary = summarize(configs)
    write_table(path / "summary.parquet", summary, csv=csv)
    ridge = closed_form_frame(spec)
    if ridge is not None:
        write_table(path / "ridge.parquet", ridge, csv=False)
    write_table(path / "selection.parquet", select(summary, ridge), csv=csv)


def _or_default(parts: Iterator[pd.DataFrame], default: pd.DataFrame) -> Iterator[pd.DataFrame]:
    """``parts``, or ``[default]`` when there are none (every chunk failed)."""
    first = next(parts, None)
    if first is None:
        yield default
        return
    yield first
    yield from parts


def _mse(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor, coef: torch.Tensor,
         intercept: torch.Tensor) -> torch.Tensor:
    """(L,) weighted mean squared residual of each ridge solution on (X, y) with weights w."""
    r = X @ coef.T + intercept - y[:, None]  # (N, L)
    return (w[:, None] * r * r).sum(0) / w.sum()  # (L,)


def closed_form_frame(spec: SweepSpec, n_dense: int = 241) -> pd.DataFrame | None:
    """Closed-form ridge validation and test errors per lam, averaged over the sweep's draws.

    For each coupled (loss, regularizer) of the grid and each (n_train, noise), the exact
    minimiser of  c_L mean(r^2) + P_lam(w)  (``wdlab.ridge.ridge_path``) on the same training
    samples as the trained models, scored by the same validation rule (holdout samples, the
    split's held-out part, or the mean over folds) and on the test samples. The lam grid is the
    sweep's lams joined with ``n_dense`` log-spaced values over their positive range. None
    when the grid has no coupled regularizer (or decays the bias, which ridge does not).
    """
    from wdlab.ridge import ridge_path

    t = spec.train
    combos = sorted({(loss, reg) for _, reg in t.pair_list() for loss in t.loss if reg in COUPLED})
    if not combos or t.decay_bias:
        return None
    grid = np.asarray(t.lam, dtype=np.float64)
    pos = grid[grid > 0]
    dense = np.geomspace(pos.min(), pos.max(), n_dense) if len(pos) and pos.min() < pos.max() else []
    lams = np.unique(np.concatenate([grid, dense]))  # (L,)
    lam_t = torch.as_tensor(lams)
    fi = t.fit_intercept
    rows = []
    for n_train in spec.data.n_train:
        for noise in spec.data.noise:
            acc = {c: [] for c in combos}
            for seed in spec.data.seeds:  # loop over draws
                draws = unit_draws(spec, n_train, noise, seed)
                for loss, reg in combos:
                    vals, test = [], None
                    for dr in draws:  # 1 model, or folds + full refit
                        keep = dr.w > 0
                        path = ridge_path(dr.X[keep], dr.y[keep], lam_t, loss, reg,
                                          X_test=dr.X_test, y_test=dr.y_test, fit_intercept=fi)
                        if dr.w_val.sum() > 0:
                            vals.append(_mse(dr.X_val, dr.y_val, dr.w_val, path.coef,
                                             path.intercept))
                        test = path.test_mse
                    acc[(loss, reg)].append((torch.stack(vals).mean(0), test))
            for (loss, reg), items in acc.items():
                val = torch.stack([v for v, _ in items]).mean(0).numpy()  # (L,)
                test = torch.stack([te for _, te in items]).mean(0).numpy()  # (L,)
                rows.append(pd.DataFrame({
                    "loss": loss, "regularizer": reg, "n_train": n_train, "noise": noise,
                    "lam": lams, "in_grid": np.isin(lams, grid), "ridge_val_mse": val,
                    "ridge_test_mse": test, "n_seeds": len(items)}))
    return pd.concat(rows, ignore_index=True)
