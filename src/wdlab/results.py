"""Engine output -> tidy tables (pandas). The results layer: no training, no IO."""

from __future__ import annotations

import numpy as np
import pandas as pd

from wdlab.engine import TrainResult

#: Metrics recorded per epoch, in table order (extra eval sets and dist_to_ridge follow).
BASE_METRICS = ("train_mse", "test_mse", "penalty", "objective", "w_norm")


def metric_names(result: TrainResult) -> list[str]:
    names = [m for m in BASE_METRICS if m in result.metrics]
    return names + [m for m in result.metrics if m not in names]


def curves_frame(result: TrainResult, config_ids: np.ndarray | list[int]) -> pd.DataFrame:
    """Long form: one row per (config_id, recorded epoch).

    Rows of a diverged configuration stop at the epoch it diverged (exclusive), so no
    non-finite value reaches a curve.
    """
    ids = np.asarray(config_ids, dtype=np.int64)
    epochs = np.asarray(result.epochs, dtype=np.int64)
    R, K = len(epochs), len(ids)
    frame = {"config_id": np.repeat(ids, R), "epoch": np.tile(epochs, K)}
    for name in metric_names(result):
        frame[name] = result.metrics[name].to("cpu").double().numpy().T.reshape(-1)
    return cut_at_divergence(pd.DataFrame(frame), result.diverged_epoch.numpy(), R)


def cut_at_divergence(curves: pd.DataFrame, diverged_epoch, R: int) -> pd.DataFrame:
    """Long-form curves without the rows at and after each configuration's divergence.

    Keeps row (k, epoch) iff ``diverged_epoch[k] < 0`` or ``epoch < diverged_epoch[k]``, so no
    non-finite value reaches a curve. The one divergence cut of every curves table (sweep
    chunks, linear and nets; ``wdlab fit``, linear and MLP).

    Args:
        curves: R rows per configuration, config-major, with an ``epoch`` column.
        diverged_epoch: (K,) the epoch each configuration diverged at, -1 = never.
        R: recorded epochs per configuration.

    Returns:
        ``curves`` itself when no configuration diverged, else the kept rows, index reset.
    """
    div = np.asarray(diverged_epoch)  # (K,)
    if not (div >= 0).any():
        return curves
    cut = np.repeat(np.where(div >= 0, div, np.iinfo(np.int64).max), R)  # (K * R,)
    return curves[curves["epoch"].to_numpy() < cut].reset_index(drop=True)


def first_divergence(diverged_epoch: np.ndarray, axis: int) -> np.ndarray:
    """The earliest epoch at which any model along ``axis`` diverged, -1 where none did.

    A configuration trained as several models (k-fold: one per fold plus the refit)
    diverged at the first of their divergence epochs.

    Args:
        diverged_epoch: int64 divergence epochs, -1 = never, e.g. (U, folds + 1, M).
        axis: the models' axis, reduced away.

    Returns:
        int64 array of ``diverged_epoch``'s shape without ``axis``, -1 = never.
    """
    big = np.iinfo(np.int64).max
    first = np.where(diverged_epoch >= 0, diverged_epoch, big).min(axis)
    return np.where(first == big, -1, first).astype(np.int64)


def final_metrics(result: TrainResult) -> dict[str, np.ndarray]:
    """Metrics at the last recorded epoch, (K,) each; NaN for diverged configurations."""
    ok = result.diverged_epoch.numpy() < 0
    out = {}
    for name in metric_names(result):
        v = result.metrics[name][-1].to("cpu").double().numpy()
        out[name] = np.where(ok, v, np.nan)
    return out


def configs_frame(hyper: pd.DataFrame, result: TrainResult) -> pd.DataFrame:
    """One row per configuration: its hyperparameters, status and final metrics."""
    df = hyper.reset_index(drop=True).copy()
    div = result.diverged_epoch.numpy()
    df["status"] = np.where(div >= 0, "diverged", "ok")
    df["diverged_epoch"] = pd.array(np.where(div >= 0, div, -1), dtype="int64")
    if "engine" in result.extra:  # which engine trained it (auto resolves per machine)
        df["engine"] = str(result.extra["engine"])
    for name, values in final_metrics(result).items():
        df[name] = values
    return df
