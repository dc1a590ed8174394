"""Reference tables drawn beside trained results: the closed-form ridge path and theory.

The closed form is read, never computed: every run with a closed form writes
``ridge.parquet`` (test, and for sweeps validation, MSE along lam) and
``ridge_coefficients.parquet`` (the coefficient path on its first draw) when it trains
(``wdlab.experiment.closed_form_tables``, ``wdlab.sweep.reference``). Theory curves are
formulas of the recorded config (``wdlab.exact.theory``). A run without a table gets ``None``
(no overlay); no data is regenerated here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wdlab.conventions import COUPLED


def data_config(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The synthetic-data section of a manifest (``config.data`` or ``spec.data``), if any."""
    for key in ("config", "spec"):
        section = manifest.get(key)
        if isinstance(section, dict) and isinstance(section.get("data"), dict):
            data = section["data"]
            if data.get("kind", "synthetic") in ("synthetic", "linear", None) or "w_star" in data:
                return data
    return None


def ridge_coefficients(run: dict[str, Any]) -> pd.DataFrame | None:
    """The run's closed-form coefficient path (its ``ridge_coefficients.parquet``): columns
    ``lam, feature, coef`` (long form), or None when the run wrote none."""
    from wdlab.store import read_table

    path = run.get("path")
    if path is None or not (Path(path) / "ridge_coefficients.parquet").is_file():
        return None
    table = read_table(Path(path) / "ridge_coefficients")
    return table[["lam", "feature", "coef"]] if len(table) else None


def _signal(data: dict[str, Any], n_features: int) -> float:
    """r^2 = ||w*||^2 for the synthetic w* = w_star * 1."""
    return float(data.get("w_star", 0.01)) ** 2 * n_features


def theory_reference(configs: pd.DataFrame, manifest: dict[str, Any],
                     lams: np.ndarray | None = None) -> pd.DataFrame | None:
    """Asymptotic ridge test MSE (risk + sigma^2) along ``lams`` for each coupled regularizer.

    Uses ``wdlab.exact.theory.ridge_risk`` with gamma = d / (n_train - 1) (the fitted intercept
    centres the design) and lam translated from the group's convention to the theory's
    ``mse+sum``. Only for isotropic synthetic data with one (n_train, n_features); else None.
    Columns ``regularizer, loss, lam, risk``.
    """
    try:
        from wdlab.exact import theory
    except ImportError:  # theory curves are an overlay, not a requirement
        return None
    from wdlab.conventions import translate

    data = data_config(manifest)
    if data is None or not {"n_train", "n_features", "noise", "regularizer", "loss"} <= set(configs):
        return None
    if configs["n_train"].nunique() != 1 or configs["n_features"].nunique() != 1:
        return None
    n, d = int(configs["n_train"].iloc[0]), int(configs["n_features"].iloc[0])
    sigma2 = float(configs["noise"].iloc[0]) ** 2
    n_eff = max(n - 1, 1)
    lams = _lam_grid(configs) if lams is None else np.asarray(lams, dtype=float)
    rows = []
    pairs = configs[["regularizer", "loss"]].drop_duplicates()
    for reg, loss in pairs[pairs["regularizer"].isin(COUPLED)].itertuples(index=False):
        lam_t = translate(lams, f"{loss}+{reg}", theory.THEORY_CONVENTION, n_train=n_eff,
                          n_features=d)
        risk = theory.ridge_risk(lam_t, d / n_eff, _signal(data, d), sigma2) + sigma2
        rows.append(pd.DataFrame({"regularizer": reg, "loss": loss, "lam": lams, "risk": risk}))
    return pd.concat(rows, ignore_index=True) if rows else None


def double_descent_theory(n_features: int, ratios: np.ndarray, *, w_star: float,
                          noise: float) -> pd.DataFrame:
    """Theory curves for the double-descent figure, as test MSE (risk + sigma^2).

    ``ridgeless``: the finite-sample minimum-norm / least-squares risk at n = ratio * d
    (``theory.min_norm_risk`` with n - 1 rows for the intercept; infinite near n = d, dropped);
    ``optimal``: the asymptotic risk at lam* (``theory.optimal_risk``), gamma = d / (n - 1).
    Columns ``ratio, curve, risk``.
    """
    from wdlab.exact import theory

    d, sigma2 = int(n_features), float(noise) ** 2
    r2 = float(w_star) ** 2 * d
    rows = []
    for ratio in np.asarray(ratios, dtype=float):
        n_eff = max(int(round(ratio * d)) - 1, 1)
        rl = theory.min_norm_risk(n_eff, d, r2, sigma2)
        if np.isfinite(rl):
            rows.append({"ratio": ratio, "curve": "ridgeless", "risk": rl + sigma2})
        rows.append({"ratio": ratio, "curve": "optimal",
                     "risk": theory.optimal_risk(d / n_eff, r2, sigma2) + sigma2})
    return pd.DataFrame(rows)


def _lam_grid(configs: pd.DataFrame) -> np.ndarray:
    from wdlab.experiment import lam_grid

    return lam_grid(configs["lam"].to_numpy(np.float64))


def ridge_for(run: dict[str, Any]) -> pd.DataFrame | None:
    """The run's closed-form ridge test MSE along lam (``regularizer, loss, lam, test_mse``).

    The run's own ``ridge.parquet`` (same draws, same validation rule) when it has one
    n_train; None otherwise (nothing is recomputed).
    """
    table = run.get("ridge")
    if table is not None and len(table) and "ridge_test_mse" in table:
        if "n_train" in table and table["n_train"].nunique() > 1:
            return None
        if "noise" in table:
            table = table[table["noise"] == table["noise"].iloc[0]]
        out = table.rename(columns={"ridge_test_mse": "test_mse", "ridge_val_mse": "val_mse"})
        return out[[c for c in ("regularizer", "loss", "lam", "test_mse", "val_mse") if c in out]]
    return None


def exact_double_descent(run: dict[str, Any]) -> pd.DataFrame | None:
    """From a sweep's ``ridge.parquet``: the closed-form test MSE per n_train at the smallest
    lam of the grid and at the best lam (by closed-form validation error, else test).

    Columns ``ratio, curve, test_mse`` with curve in {``exact, smallest λ``, ``exact, best λ``}.
    """
    table, configs = run.get("ridge"), run["configs"]
    if table is None or not len(table) or "n_train" not in table or "n_features" not in configs:
        return None
    d = int(configs["n_features"].iloc[0])
    table = table[table["noise"] == table["noise"].iloc[0]] if "noise" in table else table
    table = table[table["regularizer"] == table["regularizer"].iloc[0]]
    by = "ridge_val_mse" if "ridge_val_mse" in table and table["ridge_val_mse"].notna().any() \
        else "ridge_test_mse"
    rows = []
    for n, part in table.groupby("n_train"):
        grid = part[part["in_grid"]] if "in_grid" in part else part
        small = grid.loc[grid["lam"].idxmin()]
        best = part.loc[part[by].idxmin()]
        rows.append({"ratio": n / d, "curve": "exact, smallest λ", "test_mse": small["ridge_test_mse"]})
        rows.append({"ratio": n / d, "curve": "exact, best λ", "test_mse": best["ridge_test_mse"]})
    return pd.DataFrame(rows)
