"""What every view of a sweep computes from its records: the groups, the rows that count,
the best-lr slice, the seed bands and the heatmap scale. The matplotlib figures
(``wdlab.plots``), the plotly charts (``wdlab.report.charts``) and the reading
(``wdlab.report.reading``) all use these, so a figure and the page never disagree. Pure
numpy/pandas: a report imports no matplotlib.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wdlab.conventions import describe

__all__ = [
    "BAND", "BAND_TEXT", "CLIP_PERCENTILE", "GROUP_KEYS", "best_lr_slice", "few_lams",
    "group_label", "group_list", "heat_scale", "in_group", "lr_note", "mean_band", "ok_rows",
    "selection_row", "TOP_MEANINGFUL", "top_cells",
]

#: Columns naming an optimizer/regularizer group (one curve, one heatmap panel).
GROUP_KEYS = ("optimizer", "regularizer")
#: Display order of groups: SGD before Adam, coupled before decoupled.
_ORDER = {"sgd": 0, "adam": 1, "adamw": 2, "weight_decay": 0, "mean": 0, "half_sum": 0,
          "sum": 0, "decoupled": 1, "independent": 2}

#: The band drawn around every mean over seeds (percentiles of the seeds' values).
BAND = (2.5, 97.5)
BAND_TEXT = "band: 2.5–97.5th percentile over seeds"

def group_label(optimizer: str, regularizer: str) -> str:
    """``'Adam + (λ/2)·‖w‖²'``-style name of an optimizer/regularizer group."""
    opt = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}.get(str(optimizer), str(optimizer))
    return f"{opt} + {describe(str(regularizer))}"


def ok_rows(configs: pd.DataFrame) -> pd.DataFrame:
    """The configurations that did not diverge (status ``ok``; all rows without a status)."""
    if "status" in configs:
        return configs[configs["status"] == "ok"]
    return configs


def group_list(df: pd.DataFrame) -> list[tuple[str, str]]:
    """The (optimizer, regularizer) groups of ``df`` in display order (SGD before Adam,
    coupled before decoupled); ``[("", "")]`` when the table has no group columns."""
    keys = [k for k in GROUP_KEYS if k in df]
    if len(keys) < 2:
        return [("", "")]
    pairs = df[list(GROUP_KEYS)].drop_duplicates().itertuples(index=False)
    return sorted(((str(o), str(r)) for o, r in pairs),
                  key=lambda g: (_ORDER.get(g[0], 9), _ORDER.get(g[1], 9), g))


def in_group(df: pd.DataFrame, group: tuple[str, str]) -> pd.DataFrame:
    """The rows of ``df`` in ``group`` (every row for the ``("", "")`` group)."""
    if group == ("", "") or not set(GROUP_KEYS) <= set(df.columns):
        return df
    return df[(df["optimizer"] == group[0]) & (df["regularizer"] == group[1])]


def mean_band(df: pd.DataFrame, by: str | list[str], metric: str) -> pd.DataFrame:
    """Mean of ``metric`` per ``by``, with ``lo``/``hi`` the ``BAND`` percentiles of the seeds
    (asymmetric, inside the seeds' range, so positive for positive metrics; = mean for one)."""
    g = df.dropna(subset=[metric]).groupby(by)[metric]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["lo"] = g.quantile(BAND[0] / 100).to_numpy()
    out["hi"] = g.quantile(BAND[1] / 100).to_numpy()
    return out


def lr_note(rows: pd.DataFrame, ok: pd.DataFrame) -> str:
    """`` at lr = 0.01 (best lr)`` when lr was swept and ``rows`` is one lr slice, else ""."""
    if "lr" in ok and ok["lr"].nunique() > 1 and "lr" in rows and rows["lr"].nunique() == 1:
        return f" at lr = {rows['lr'].iloc[0]:.3g} (best lr)"
    return ""

def best_lr_slice(ok: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows at the learning rate whose best mean ``metric`` over lam is lowest.

    Sweeps over lr x lam show their validation curve at that lr (every row if lr is fixed).
    """
    if "lr" not in ok or ok["lr"].nunique() <= 1 or metric not in ok:
        return ok
    means = ok.groupby(["lr", "lam"])[metric].mean().groupby("lr").min()
    if means.isna().all():
        return ok
    return ok[np.isclose(ok["lr"], means.idxmin())]


def selection_row(selection: pd.DataFrame | None, group: tuple[str, str],
                  rows: pd.DataFrame) -> pd.Series | None:
    """The selection row of ``group`` matching the lr shown in ``rows`` (sweeps select per
    group of every other hyperparameter); None when there is none."""
    if selection is None or not len(selection) or "best_lam" not in selection:
        return None
    sel = in_group(selection, group)
    if "lr" in sel and "lr" in rows and len(rows) and rows["lr"].nunique() == 1:
        sel = sel[np.isclose(sel["lr"], rows["lr"].iloc[0])]
    if not len(sel):
        return None
    key = "best_val_mse" if "best_val_mse" in sel else "best_test_mse"
    return sel.loc[sel[key].idxmin()] if sel[key].notna().any() else sel.iloc[0]


def few_lams(ok: pd.DataFrame) -> bool:
    """True when a log lam axis would show a single dot: fewer than 2 positive lams."""
    return "lam" not in ok or ok.loc[ok["lam"] > 0, "lam"].nunique() < 2

#: Heatmap colours stop at this percentile of the finite cells, so unconverged cells
#: (often orders of magnitude worse) do not paint the whole good region one colour.
CLIP_PERCENTILE = 60
#: Circle the best cells only when the worst of them is at most this fraction of the median
#: cell (a flat grid, e.g. every cell ~100 MSE, gets no circles).
TOP_MEANINGFUL = 0.8


def heat_scale(values: np.ndarray) -> tuple[float, float, bool]:
    """(vmin, vmax, clipped) of a log colour scale over the finite positive ``values``:
    vmax is the ``CLIP_PERCENTILE``th percentile when the largest value is more than 10x it."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    if not len(v):
        return 1.0, 10.0, False
    lo, hi, cap = float(v.min()), float(v.max()), float(np.percentile(v, CLIP_PERCENTILE))
    if hi > 10 * cap and cap > lo:
        return lo, cap, True
    return lo, hi if hi > lo else lo * 1.01, False


def top_cells(values: np.ndarray, top: int) -> np.ndarray:
    """Flat indices of the ``top`` lowest finite cells, or none when they are not clearly
    better than the rest (their worst > ``TOP_MEANINGFUL`` x the median finite cell)."""
    flat = np.where(np.isfinite(values), values, np.inf).ravel()
    best = np.argsort(flat, kind="stable")[:top]
    best = best[np.isfinite(flat[best])]
    finite = flat[np.isfinite(flat)]
    if not len(best) or len(finite) <= top or flat[best].max() > TOP_MEANINGFUL * np.median(finite):
        return best[:0]
    return best
