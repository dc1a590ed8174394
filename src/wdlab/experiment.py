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
from wdlab.data import init_weights, make_linear, problem_from_datasets
from wdlab.engine import EngineSpec, Hyper, train
from wdlab.results import configs_frame, curves_frame

DTYPES = {"float32": torch.float32, "float64": torch.float64}


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
    result = train(problem, engine_spec(t), hyper, theta0)
    hyp = hyper_columns(t, d, cfg.lams, seeds)
    return Results(
        config=cfg.model_dump(mode="json"),
        configs=configs_frame(hyp, result),
        curves=curves_frame(result, hyp["config_id"].to_numpy()),
    )
