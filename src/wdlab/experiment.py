"""config -> data -> engine -> tables, for one experiment (a preset such as the seed's).

The one pipeline builder of every run (``wdlab reproduce``, a sweep's chunks, ``wdlab fit``):
``engine_spec`` (the engine's static spec from a run's settings, the dtype by name through
``conventions.DTYPES``), ``hyper_table`` (the configs table's hyperparameter columns, in one
order), ``run_manifest`` (kind, config, seeds, provenance) and ``run_files`` (the manifest's
file list). ``wdlab.sweep.chunk``/``nets_chunk``, ``wdlab.pipeline`` and ``wdlab.fitrun``
call these; none builds its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from wdlab.config import DataConfig, ExperimentConfig, TrainConfig
from wdlab.conventions import COUPLED, DTYPES, has_closed_form
from wdlab.data.synthetic import Dataset, init_weights, make_linear, problem_from_datasets
from wdlab.engine import EngineSpec, Hyper, TrainResult, train
from wdlab.exact.decompose import COLUMNS as ERROR_COLUMNS
from wdlab.exact.decompose import decompose_error
from wdlab.exact.linf import limit_theta
from wdlab.exact.ridge import ridge_path
from wdlab.results import configs_frame, curves_frame

#: The one builder of an engine spec from a run's settings (``EngineSpec.from_settings``): a
#: field given in ``overrides`` is not read from the settings (a sweep group's optimizer,
#: regularizer, loss, epochs, batch size, schedule); ``dtype`` by name from ``DTYPES``.
engine_spec = EngineSpec.from_settings


def first_moment(cfg: TrainConfig) -> float:
    """What the engine's beta1 slot holds: SGD momentum, or Adam's beta1."""
    return cfg.momentum if cfg.optimizer == "sgd" else cfg.beta1


#: The hyperparameter columns of every configs table, in this order (a run adds its own after).
HYPER_COLUMNS = ("config_id", "optimizer", "regularizer", "loss", "lam", "lr", "momentum",
                 "beta1", "beta2", "epochs", "batch_size", "schedule", "init_scale",
                 "init_seed", "data_seed", "n_train", "n_test", "n_features", "noise",
                 "decay_bias", "dtype")


def hyper_table(columns: dict[str, Any], lead: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per configuration: ``config_id``, then the ``lead`` columns, then the
    ``HYPER_COLUMNS`` present in ``columns``, then the rest in the order given.

    Values are arrays (one per configuration) or scalars (the same for every one); the
    columns are exactly ``columns``, so each pipeline keeps its own set.
    """
    first = ("config_id", *lead)
    order = [*first, *(c for c in HYPER_COLUMNS if c not in first)]
    order = [c for c in order if c in columns] + [c for c in columns if c not in order]
    return pd.DataFrame({c: columns[c] for c in order})


def hyper_columns(train_cfg: TrainConfig, data_cfg: DataConfig, lams, init_seeds) -> pd.DataFrame:
    """One row per configuration with every hyperparameter (the configs table's left part)."""
    lams = np.asarray(lams, dtype=np.float64)
    K = len(lams)
    t, d = train_cfg, data_cfg
    return hyper_table({
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


def run_manifest(kind: str, *, config: dict[str, Any], seeds: dict[str, Any], device: str,
                 **more: Any) -> dict[str, Any]:
    """A run's manifest: kind, the full config, seeds and provenance (``store.provenance``:
    package versions, device, git revision), then ``more`` (status, answer, warnings...)."""
    from wdlab.store import provenance

    return {"kind": kind, "config": config, "seeds": seeds, **more,
            "provenance": provenance(device)}


def run_files(run_dir) -> list[str]:
    """The manifest's ``files``: every file under the run directory, relative, sorted; no
    dotfile or dot-directory (temporaries, locks) and no ``chunks/`` directory."""
    from pathlib import Path

    run_dir = Path(run_dir)
    out = []
    for p in run_dir.rglob("*"):
        parts = p.relative_to(run_dir).parts
        if p.is_file() and "chunks" not in parts and not any(q.startswith(".") for q in parts):
            out.append(str(p.relative_to(run_dir)))
    return sorted(out)


def lam_grid(lams, n: int = 60) -> np.ndarray:
    """A log grid one decade past the positive ``lams`` on both sides (``n`` points)."""
    lams = np.asarray(lams, dtype=np.float64)
    pos = lams[lams > 0]
    lo, hi = (pos.min(), pos.max()) if len(pos) else (1e-3, 1e2)
    return np.logspace(np.log10(lo) - 1, np.log10(hi) + 1, n)


def coefficient_path(X, y, lams, loss: str, regularizer: str, *,
                     fit_intercept: bool = True) -> pd.DataFrame:
    """Closed-form ridge coefficients along ``lams`` (``wdlab.exact.ridge.ridge_path``) on one
    draw, long form: columns ``regularizer, loss, lam, feature, coef``."""
    lams = np.asarray(lams, dtype=np.float64)
    coef = ridge_path(X, y, lams, loss=loss, penalty=regularizer,
                      fit_intercept=fit_intercept).coef.numpy()  # (L, D)
    L, D = coef.shape
    return pd.DataFrame({"regularizer": regularizer, "loss": loss, "lam": np.repeat(lams, D),
                         "feature": np.tile(np.arange(D), L), "coef": coef.reshape(-1)})


@dataclass
class Results:
    """Tables of one run, plus the config that made them."""

    config: dict[str, Any]
    configs: pd.DataFrame
    curves: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)
    ridge: pd.DataFrame | None = None  # the closed form along lam (ridge.parquet), if any
    ridge_coefficients: pd.DataFrame | None = None  # its coefficient path, long form


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
    limit = None if closed else limit_theta(  # decoupled decay: where it ends (wdlab.exact.linf)
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
        **(closed_form_tables(data, t, path) if closed else {}),
    )


def closed_form_tables(data: Dataset, t: TrainConfig, path) -> dict[str, pd.DataFrame]:
    """``ridge`` and ``ridge_coefficients`` of a one-draw run, so that views only read.

    ``ridge``: the exact test MSE (``wdlab.exact.ridge.ridge_path``) at the run's lams (``path``,
    the configs' own ``ridge_test_mse``) and along ``lam_grid`` (a decade past them), in the
    sweep's ``ridge.parquet`` schema (``ridge_val_mse`` is NaN: a reproduce run holds out
    no validation rows). ``ridge_coefficients``: the coefficient path along ``lam_grid``.
    """
    grid = path.lams.double().numpy()  # (L1,) the run's lams
    dense = lam_grid(grid)
    extra = np.setdiff1d(dense, grid)  # (L2,)
    more = ridge_path(data.X_train, data.y_train, extra, loss=t.loss, penalty=t.regularizer,
                      X_test=data.X_test, y_test=data.y_test, fit_intercept=t.fit_intercept)
    lams = np.concatenate([grid, extra])
    order = np.argsort(lams, kind="stable")
    test = np.concatenate([path.test_mse.numpy(), more.test_mse.numpy()])
    ridge = pd.DataFrame({
        "loss": t.loss, "regularizer": t.regularizer, "n_train": data.X_train.shape[0],
        "noise": np.nan if data.noise is None else float(data.noise), "lam": lams[order],
        "in_grid": (np.arange(len(lams)) < len(grid))[order],
        "ridge_val_mse": np.nan, "ridge_test_mse": test[order], "n_seeds": 1})
    coefs = coefficient_path(data.X_train, data.y_train, dense, t.loss, t.regularizer,
                             fit_intercept=t.fit_intercept)
    return {"ridge": ridge, "ridge_coefficients": coefs}


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
