"""config -> data -> engine -> tables, for one experiment (a preset such as the seed's).

Sweeps (``wdlab.sweep``) reuse ``engine_spec`` and ``hyper_columns`` to stay consistent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from wdlab.config import DataConfig, ExperimentConfig, TrainConfig
from wdlab.conventions import COUPLED, DTYPES, has_closed_form
from wdlab.data import Dataset, init_weights, make_linear, problem_from_datasets
from wdlab.decompose import COLUMNS as ERROR_COLUMNS
from wdlab.decompose import decompose_error
from wdlab.engine import EngineSpec, Hyper, TrainResult, train
from wdlab.linf import limit_theta
from wdlab.results import configs_frame, curves_frame
from wdlab.ridge import ridge_path


def engine_spec(cfg: TrainConfig, **overrides: Any) -> EngineSpec:
    """The engine's static spec for a training config."""
    kw = dict(
        optimizer=cfg.optimizer, regularizer=cfg.regularizer, loss=cfg.loss, epochs=cfg.epochs,
        batch_size=cfg.batch_size, batch_seed=cfg.batch_seed, schedule=cfg.schedule,
        eps=cfg.eps, decay_bias=cfg.decay_bias, dtype=DTYPES[cfg.dtype], device=cfg.device,
    )
    kw.update(overrides)
    return EngineSpec(**kw)


def first_moment(cfg: TrainConfig) -> float:
    """What the engine's beta1 slot holds: SGD momentum, or Adam's beta1."""
    return cfg.momentum if cfg.optimizer == "sgd" else cfg.beta1


def hyper_columns(train_cfg: TrainConfig, data_cfg: DataConfig, lams, init_seeds) -> pd.DataFrame:
    """One row per configuration with every hyperparameter (the configs table's left part)."""
    lams = np.asarray(lams, dtype=np.float64)
    K = len(lams)
    t, d = train_cfg, data_cfg
    return pd.DataFrame({
        "config_id": np.arange(K, dtype=np.int64),
        "optimizer": t.optimizer, "regularizer": t.regularizer, "loss": t.loss,
        "lam": lams, "lr": t.lr,
        "momentum": t.momentum if t.optimizer == "sgd" else 0.0,
        "beta1": t.beta1 if t.optimizer != "sgd" else np.nan,
        "beta2": t.beta2 if t.optimizer != "sgd" else np.nan,
        "epochs": t.epochs, "batch_size": t.batch_size or 0, "schedule": t.schedule,
        "init_scale": t.init_scale, "init_seed": np.asarray(init_seeds, dtype=np.int64),
        "data_seed": d.seed, "n_train": d.n_train, "n_test": d.n_test,
        "n_features": d.n_features, "noise": d.noise, "decay_bias": t.decay_bias,
        "dtype": t.dtype,
    })


@dataclass
class Results:
    """Tables of one run, plus the config that made them."""

    config: dict[str, Any]
    configs: pd.DataFrame
    curves: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)


def run_experiment(cfg: ExperimentConfig) -> Results:
    """Train every lam of ``cfg`` on one data draw, as one engine call."""
    d, t = cfg.data, cfg.train
    data = make_linear(d.n_features, d.n_train, d.n_test, w_star=d.w_star, bias=d.bias,
                       noise=d.noise, seed=d.seed)
    problem = problem_from_datasets([data], fit_intercept=t.fit_intercept)
    K = len(cfg.lams)
    seeds = [cfg.init_seed] * K
    theta0 = init_weights(seeds, d.n_features, t.init_scale, fit_intercept=t.fit_intercept,
                          dtype=DTYPES[t.dtype])
    hyper = Hyper.of(K, lam=list(cfg.lams), lr=t.lr, beta1=first_moment(t), beta2=t.beta2)
    closed = has_closed_form(t.regularizer, t.decay_bias)
    path = None
    if closed:  # the exact answer at every lam, for dist_to_ridge and ridge_test_mse
        path = ridge_path(data.X_train, data.y_train, list(cfg.lams), loss=t.loss,
                          penalty=t.regularizer, X_test=data.X_test, y_test=data.y_test,
                          fit_intercept=t.fit_intercept)
    limit = None if closed else limit_theta(  # decoupled decay: where it ends (wdlab.linf)
        data.X_train, data.y_train, list(cfg.lams), optimizer=t.optimizer,
        regularizer=t.regularizer, lr=t.lr, fit_intercept=t.fit_intercept, decay_bias=t.decay_bias,
        momentum=first_moment(t) if t.optimizer == "sgd" else 0.0, loss=t.loss)
    result = train(problem, engine_spec(t), hyper, theta0,
                   reference=limit if path is None else _reference_theta(path, t))
    if limit is not None:  # the engine calls any reference distance dist_to_ridge
        result.metrics["dist_to_limit"] = result.metrics.pop("dist_to_ridge")
    hyp = hyper_columns(t, d, cfg.lams, seeds)
    configs = configs_frame(hyp, result)
    configs["ridge_test_mse"] = np.nan if path is None else path.test_mse.numpy()
    for name, values in error_split(result, data, t, cfg.lams, theta0).items():
        configs[name] = values
    return Results(
        config=cfg.model_dump(mode="json"),
        configs=configs,
        curves=curves_frame(result, hyp["config_id"].to_numpy()),
    )


def _reference_theta(path, t: TrainConfig) -> torch.Tensor:
    return path.theta if t.fit_intercept else path.coef  # (K, D1)


def error_split(result: TrainResult, data: Dataset, t: TrainConfig, lams,
                theta0: torch.Tensor) -> dict[str, np.ndarray]:
    """Columns of ``decompose_error`` for every configuration (NaN where diverged).

    ``pop_test_mse`` is the population test MSE ||w - w*||^2 + (b - b*)^2 + sigma^2 on fresh
    isotropic inputs, which the ``err_*`` columns and sigma^2 add up to exactly. A decoupled
    decay has no ridge twin, so its split uses the lam = 0 (least-squares) reference.
    """
    lam = np.asarray(lams, dtype=np.float64) if t.regularizer in COUPLED else 0.0
    w0 = theta0[:, :-1] if t.fit_intercept else theta0
    split = decompose_error(
        result.coef.double(), result.intercept.double(), data.X_train, data.y_train,
        w_star=data.w_star, b_star=data.b_star if t.fit_intercept else 0.0, noise=data.noise,
        w0=w0.double(), lam=torch.as_tensor(lam), loss=t.loss,
        penalty=t.regularizer if t.regularizer in COUPLED else "mean",
        fit_intercept=t.fit_intercept,
    )
    ok = result.diverged_epoch.numpy() < 0
    cols = {name: split[name].numpy() for name in ERROR_COLUMNS}
    cols["pop_test_mse"] = split["test_mse"].numpy()
    return {k: np.where(ok, v, np.nan) for k, v in cols.items()}
