"""One chunk: spec + index -> engine inputs -> one engine call -> the chunk's tables.

``run_chunk(spec, index)`` is the unit of work of every backend (this process, a resumed
one, a Ray task): it needs only the resolved spec and the index, regenerates its data from
the seeds, makes ONE engine call for the chunk's units x configurations (k-fold: x folds + 1)
and returns plain DataFrames. No file IO.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from wdlab.config.nets import is_nets
from wdlab.config.schema import SweepSpec
from wdlab.conventions import COUPLED, DTYPES, has_closed_form
from wdlab.data.synthetic import init_weights, stack_problem
from wdlab.engine import EngineSpec, Hyper, TrainResult, train
from wdlab.experiment import engine_spec, hyper_table
from wdlab.results import configs_frame, curves_frame, first_divergence
from wdlab.sweep import grid
from wdlab.sweep.draws import ModelDraw, unit_draws
from wdlab.sweep.grid import ChunkResult, as_spec, cached_plan, group_columns
from wdlab.sweep.plan import LINEAR_METRICS, make_plan


@dataclass
class ChunkInputs:
    """Everything one engine call needs, built from the spec alone."""

    spec: SweepSpec
    plan: grid.SweepPlan
    chunk: grid.Chunk
    group: grid.Group
    problem: Any  # wdlab.data.synthetic.Problem, G = units x models_per_config draws
    engine_spec: EngineSpec
    hyper: Hyper  # (K,) per model
    theta0: torch.Tensor  # (K, D1)
    record_epochs: list[int]
    reference: torch.Tensor | None  # (K, D1) ridge solutions (dist_to_ridge) or l-inf limits (dist_to_limit)
    hyper_frame: pd.DataFrame  # one row per configuration of the chunk


def _plan_cached(spec: SweepSpec) -> grid.SweepPlan:
    return cached_plan(spec, make_plan)


def hyper_frame(spec: SweepSpec, plan: grid.SweepPlan, group: grid.Group,
                chunk: grid.Chunk) -> pd.DataFrame:
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
    return hyper_table({
        "config_id": ids, **group_columns(group, pd_, K),
        "init_scale": pd_["init_scale"], "init_seed": init_seed,
        "data_seed": data_seed, "n_train": n_train,
        "n_test": np.full(K, d.n_test, dtype=np.int64),
        "n_features": np.full(K, d.n_features, dtype=np.int64), "noise": noise,
        "decay_bias": np.full(K, t.decay_bias), "dtype": t.dtype,
        "w_star": np.full(K, d.w_star), "bias": np.full(K, d.bias),
        "fit_intercept": np.full(K, t.fit_intercept), "eps": np.full(K, t.eps),
        "batch_seed": np.full(K, t.batch_seed, dtype=np.int64),
        "chunk": np.full(K, chunk.index, dtype=np.int64),
    })


def _ridge_reference(spec: SweepSpec, group: grid.Group, draws: list[ModelDraw],
                     lams: np.ndarray) -> torch.Tensor | None:
    """(n_draws * M, D1) closed-form ridge solution of each model, or None (no closed form).

    One batched solve over the chunk's draws (``wdlab.exact.ridge.ridge_solve``); draws with fewer
    training samples are zero-padded with weight 0.
    """
    from wdlab.exact.ridge import ridge_solve

    if not has_closed_form(group.regularizer, spec.train.decay_bias):
        return None
    N = max(dr.X.shape[0] for dr in draws)
    pad = lambda t: torch.nn.functional.pad(t, (0, 0, 0, N - t.shape[0]) if t.ndim == 2  # noqa: E731
                                            else (0, N - t.shape[0]))
    X = torch.stack([pad(dr.X) for dr in draws])  # (G, N, D)
    y = torch.stack([pad(dr.y) for dr in draws])  # (G, N)
    w = torch.stack([pad(dr.w) for dr in draws])  # (G, N)
    coef, icpt = ridge_solve(X, y, w, torch.as_tensor(lams), group.loss, group.regularizer,
                             fit_intercept=spec.train.fit_intercept)  # (G, M, D) (G, M)
    theta = torch.cat([coef, icpt[..., None]], -1) if spec.train.fit_intercept else coef
    return theta.reshape(-1, theta.shape[-1])  # (G * M, D1)


def _limit_reference(spec: SweepSpec, group: grid.Group, draws: list[ModelDraw],
                     lams: np.ndarray, lrs: np.ndarray,
                     momentum: np.ndarray) -> torch.Tensor | None:
    """(n_draws * M, D1) where each decoupled model ends (``wdlab.exact.linf.limit_theta``), or None."""
    from wdlab.exact.linf import limit_theta

    t = spec.train
    refs = [limit_theta(dr.X, dr.y, lams, optimizer=group.optimizer, regularizer=group.regularizer,
                        lr=lrs, fit_intercept=t.fit_intercept, decay_bias=t.decay_bias,
                        sample_weight=dr.w, momentum=momentum, loss=group.loss)
            for dr in draws]  # loop over draws: one BVLS path (or SVD) each
    return None if refs[0] is None else torch.cat(refs)  # (G * M, D1)


def prepare_chunk(spec: SweepSpec | dict | str, index: int) -> ChunkInputs:
    """Build chunk ``index``'s engine inputs from the (resolved) spec, regenerating its data."""
    spec = as_spec(spec)
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

    theta0 = init_weights(init_seed.tolist(), spec.data.n_features, 1.0,
                          fit_intercept=t.fit_intercept, dtype=torch.float64)  # (K, D1)
    theta0 = (theta0 * torch.as_tensor(scale)[:, None]).to(DTYPES[t.dtype])  # (K, D1)
    tile = lambda v: np.tile(v, n_draws)  # noqa: E731
    hyper = Hyper.of(n_draws * M, lam=tile(per["lam"]), lr=tile(per["lr"]),
                     beta1=tile(per["m1"]), beta2=tile(np.nan_to_num(per["beta2"], nan=0.0)))
    espec = engine_spec(t, optimizer=group.optimizer, regularizer=group.regularizer,
                        loss=group.loss, epochs=group.epochs, batch_size=group.batch_size,
                        schedule=group.schedule)
    reference = None
    if spec.record.dist_to_ridge:
        reference = _ridge_reference(spec, group, draws, per["lam"])
    if spec.record.dist_to_limit and group.regularizer not in COUPLED:
        reference = _limit_reference(spec, group, draws, per["lam"], per["lr"], per["m1"])
    return ChunkInputs(spec, plan, chunk, group, problem, espec, hyper, theta0,
                       spec.record.epochs(group.epochs), reference,
                       hyper_frame(spec, plan, group, chunk))


def execute_chunk(inputs: ChunkInputs) -> TrainResult:
    """The chunk's one engine call."""
    kw: dict[str, Any] = {}
    engine = inputs.spec.execution.engine
    if engine != "auto":
        kw["engine"] = engine
    result = train(inputs.problem, inputs.engine_spec, inputs.hyper, inputs.theta0,
                   record_epochs=inputs.record_epochs, reference=inputs.reference, **kw)
    if inputs.group.regularizer not in COUPLED and "dist_to_ridge" in result.metrics:
        result.metrics["dist_to_limit"] = result.metrics.pop("dist_to_ridge")  # a decoupled limit
    return result


def _reduce(inputs: ChunkInputs, result: TrainResult) -> tuple[TrainResult, np.ndarray | None]:
    """Model-level metrics -> configuration-level (kfold: full model + mean fold val error)."""
    spec = inputs.spec
    names = [m for m in LINEAR_METRICS if m in result.metrics]
    if spec.record.dist_to_ridge and "dist_to_ridge" not in names:
        names.append("dist_to_ridge")
    if spec.record.dist_to_limit and "dist_to_limit" not in names:
        names.append("dist_to_limit")
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
                           result.fit_intercept, dict(result.extra)), None
    k = c - 1
    for n in names:
        if n not in result.metrics:
            metrics[n] = nan
            continue
        v = result.metrics[n].double().reshape(R, U, c, M)  # (R, U, folds+1, M)
        metrics[n] = (v[:, :, :k].mean(2) if n == "val_mse" else v[:, :, k]).reshape(R, U * M)
    folds_val = result.metrics["val_mse"][-1].double().reshape(U, c, M)[:, :k]  # (U, k, M)
    val_se = (folds_val.std(1, unbiased=True) / math.sqrt(k)).reshape(U * M).numpy()
    div = result.diverged_epoch.numpy().reshape(U, c, M)  # (U, folds+1, M)
    diverged = torch.from_numpy(first_divergence(div, axis=1).reshape(U * M))  # (U * M,)
    theta = result.theta.reshape(U, c, M, -1)[:, k].reshape(U * M, -1)
    return (TrainResult(result.epochs, metrics, theta, diverged, result.fit_intercept,
                        dict(result.extra)), val_se)


def chunk_tables(inputs: ChunkInputs, result: TrainResult, seconds: float = 0.0) -> ChunkResult:
    """Engine output -> the chunk's configs and curves tables (columns in ``LINEAR_METRICS`` order)."""
    reduced, val_se = _reduce(inputs, result)
    hyp = inputs.hyper_frame
    configs = configs_frame(hyp, reduced)
    curves = curves_frame(reduced, hyp["config_id"].to_numpy())
    order = [m for m in LINEAR_METRICS if m in reduced.metrics]
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
    spec = as_spec(spec)
    if is_nets(spec):
        from wdlab.sweep.nets_chunk import run_nets_chunk

        return run_nets_chunk(spec, index)
    start = time.perf_counter()
    inputs = prepare_chunk(spec, index)
    result = execute_chunk(inputs)
    return chunk_tables(inputs, result, time.perf_counter() - start)


def failed_chunk_configs(spec: SweepSpec, index: int, error: str) -> pd.DataFrame:
    """Configs rows of a failed chunk: its hyperparameters, status ``failed``, NaN metrics."""
    spec = as_spec(spec)
    if is_nets(spec):
        from wdlab.sweep.nets_chunk import failed_nets_configs

        return failed_nets_configs(spec, index, error)
    plan = _plan_cached(spec)
    chunk = plan.chunks[index]
    df = hyper_frame(spec, plan, plan.groups[chunk.group], chunk)
    df["status"] = "failed"
    df["diverged_epoch"] = np.full(len(df), -1, dtype=np.int64)
    df["engine"] = None  # never trained
    for m in metric_columns(spec):
        df[m] = np.nan
    if spec.validation.method == "kfold":
        df["val_mse_se"] = np.nan
    df["error"] = str(error)
    return df


def metric_columns(spec: SweepSpec) -> list[str]:
    if is_nets(spec):
        from wdlab.sweep.nets_chunk import curve_columns

        return curve_columns(spec)
    flags = {"dist_to_ridge": spec.record.dist_to_ridge, "dist_to_limit": spec.record.dist_to_limit}
    return [m for m in LINEAR_METRICS if flags.get(m, True)]
