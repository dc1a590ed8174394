"""Result tables -> matplotlib figures. Never computes results, never calls plt.show()."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from wdlab.conventions import describe

__all__ = ["training_curves"]


def _band(ax, x, ys: np.ndarray, color, label):
    """Mean line, with a 95% band when there are several seeds (rows of ``ys``)."""
    mean = np.nanmean(ys, axis=0)
    (line,) = ax.plot(x, mean, color=color, label=label)
    if ys.shape[0] > 1:
        se = np.nanstd(ys, axis=0, ddof=1) / np.sqrt(ys.shape[0])
        lo = np.maximum(mean - 1.96 * se, np.nanmin(ys, axis=0))
        ax.fill_between(x, lo, mean + 1.96 * se, color=color, alpha=0.2, linewidth=0)
    return line


def training_curves(curves: pd.DataFrame, configs: pd.DataFrame,
                    lams: list[float] | None = None) -> Figure:
    """Semilogy train and test MSE per epoch, one panel per lam.

    Configurations sharing a lam (different seeds) are drawn as a mean line and a 95% band.
    Titles state lam and its convention. Diverged configurations are left out.
    """
    ok = configs[configs["status"] == "ok"]
    chosen = sorted(ok["lam"].unique()) if lams is None else list(lams)
    fig = Figure(figsize=(3.4 * max(len(chosen), 1), 3.2), layout="constrained")
    axes = fig.subplots(1, max(len(chosen), 1), squeeze=False, sharey=True)[0]
    for ax, lam in zip(axes, chosen, strict=False):
        rows = ok[np.isclose(ok["lam"], lam)]
        ids = rows["config_id"].to_numpy()
        sub = curves[curves["config_id"].isin(ids)]
        wide = {m: sub.pivot(index="config_id", columns="epoch", values=m) for m in
                ("train_mse", "test_mse")}
        epochs = wide["train_mse"].columns.to_numpy()
        _band(ax, epochs, wide["train_mse"].to_numpy(), "C0", "train")
        _band(ax, epochs, wide["test_mse"].to_numpy(), "C1", "test")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        reg = rows["regularizer"].iloc[0] if len(rows) else ""
        ax.set_title(f"λ = {lam:g} ({describe(reg)})", fontsize=9)
        ax.legend(loc="best", fontsize=8)
        ax.grid(True, which="both", alpha=0.25)
    axes[0].set_ylabel("MSE (data loss, no penalty)")
    return fig
