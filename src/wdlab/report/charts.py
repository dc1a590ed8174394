"""Plotly figure specs (plain dicts) for the report: validation curve, training curves per
lam (one panel per slider position) and lr x lam heatmaps.

Trace names are built from registry names (optimizer, regularizer) only, never from free
user text, and numbers; the page escapes everything else.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from wdlab.plots import (
    _groups,
    _in_group,
    _ok,
    best_lr_slice,
    group_label,
    mean_band,
    selection_row,
)

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
_BASE = {"margin": {"l": 60, "r": 20, "t": 40, "b": 50}, "hovermode": "closest",
         "legend": {"font": {"size": 11}}, "template": None}


def _name(group: tuple[str, str]) -> str:
    return group_label(*group) if group != ("", "") else "trained"


def validation(configs: pd.DataFrame, selection: pd.DataFrame | None,
               ridge: pd.DataFrame | None, theory: pd.DataFrame | None) -> dict | None:
    """Final test/val MSE against lam > 0 (log-log), mean with 95% error bars over seeds.

    Traces, in order: per group, one per metric (test, val) and one for test at lam = 0 if
    present; per group with a selection row, best lam and (if given) 1-SE lam markers; one per
    coupled regularizer of ``ridge``; one per regularizer of ``theory``.
    """
    ok = _ok(configs)
    if "lam" not in ok or not (ok["lam"] > 0).any():
        return None
    metrics = [m for m in ("test_mse", "val_mse") if m in ok and ok[m].notna().any()]
    traces = []
    pos_lams = ok.loc[ok["lam"] > 0, "lam"]
    span = [float(pos_lams.min()) / 10, float(pos_lams.max()) * 10]  # the overlays' range
    for i, group in enumerate(_groups(ok)):
        color = COLORS[i % len(COLORS)]
        rows = best_lr_slice(_in_group(ok, group), metrics[-1])
        for metric in metrics:
            agg = mean_band(rows[rows["lam"] > 0], "lam", metric)
            word = "test" if metric == "test_mse" else "val"
            traces.append({
                "type": "scatter", "mode": "lines+markers", "name": f"{_name(group)}: {word}",
                "x": agg["lam"].tolist(), "y": agg["mean"].tolist(),
                "error_y": {"type": "data", "array": (agg["hi"] - agg["mean"]).tolist(),
                            "visible": bool((agg["count"] > 1).any()), "thickness": 1},
                "customdata": agg["count"].tolist(),
                "line": {"color": color, "dash": "solid" if word == "test" else "dash"},
                "hovertemplate": f"λ = %{{x:.4g}}<br>{word} MSE = %{{y:.4g}}"
                                 "<br>seeds = %{customdata}<extra></extra>",
            })
        zero = rows.loc[rows["lam"] == 0, "test_mse"].dropna()
        if len(zero):
            traces.append({"type": "scatter", "mode": "lines", "name": f"{_name(group)}: test at λ = 0",
                           "x": span, "y": [float(zero.mean())] * 2,
                           "line": {"color": color, "dash": "dot", "width": 1},
                           "hovertemplate": "λ = 0: test MSE = %{y:.4g}<extra></extra>"})
        s = selection_row(selection, group, rows)
        if s is not None:
            marks = [("best λ", "star", s["best_lam"], s.get("best_test_mse"))]
            if pd.notna(s.get("lam_1se", np.nan)):
                marks.append(("1-SE λ", "diamond", s["lam_1se"], s.get("test_mse_1se")))
            for word, symbol, lam, mse in marks:
                traces.append({"type": "scatter", "mode": "markers",
                               "name": f"{_name(group)}: {word}", "x": [lam], "y": [mse],
                               "marker": {"symbol": symbol, "size": 14, "color": color,
                                          "line": {"color": "black", "width": 1}},
                               "hovertemplate": f"{word} = %{{x:.4g}}<br>test MSE = %{{y:.4g}}"
                                                "<extra></extra>"})
    for ref, col, word, color, dash in ((ridge, "test_mse", "closed-form ridge", "black", "dash"),
                                        (theory, "risk", "theory", "#888", "solid")):
        if ref is None or not len(ref):
            continue
        for reg, part in ref.groupby("regularizer", sort=True):
            part = part[part["lam"] > 0].sort_values("lam")
            traces.append({"type": "scatter", "mode": "lines", "name": f"{word} ({reg})",
                           "x": part["lam"].tolist(), "y": part[col].tolist(),
                           "line": {"color": color, "dash": dash, "width": 1.5},
                           "hovertemplate": f"{word}: λ = %{{x:.4g}}<br>MSE = %{{y:.4g}}"
                                            "<extra></extra>"})
    layout = {**_BASE, "title": {"text": "Validation curve: final MSE against λ"},
              "xaxis": {"type": "log", "title": {"text": "λ (each group in its own convention)"}},
              "yaxis": {"type": "log", "title": {"text": "MSE (data loss, no penalty)"}}}
    return {"data": traces, "layout": layout}


def training(curves: pd.DataFrame, configs: pd.DataFrame) -> dict | None:
    """One panel per distinct lam: mean train and test MSE per epoch of each group at that lam.

    Returns ``{"lams": [...], "panels": [[trace, ...], ...], "layout": {...}}``; the slider
    position i shows ``panels[i]``, whose lam is ``lams[i]`` (exact values of configs.lam).
    """
    ok = _ok(configs)
    if curves is None or not len(curves) or not len(ok):
        return None
    metric = "val_mse" if "val_mse" in ok and ok["val_mse"].notna().any() else "test_mse"
    groups = _groups(ok)
    chosen = {g: best_lr_slice(_in_group(ok, g), metric) for g in groups}
    lams = sorted(ok["lam"].unique().tolist())
    panels = []
    for lam in lams:
        traces = []
        for i, group in enumerate(groups):
            rows = chosen[group]
            ids = rows.loc[rows["lam"] == lam, "config_id"]
            sub = curves[curves["config_id"].isin(ids)]
            if not len(sub):
                continue
            color = COLORS[i % len(COLORS)]
            for m, dash in (("train_mse", "solid"), ("test_mse", "dash")):
                if m not in sub:
                    continue
                agg = sub.groupby("epoch")[m].mean()
                traces.append({"type": "scatter", "mode": "lines",
                               "name": f"{_name(group)}: {m.split('_')[0]}",
                               "x": agg.index.tolist(), "y": agg.tolist(),
                               "line": {"color": color, "dash": dash},
                               "hovertemplate": "epoch %{x}<br>MSE = %{y:.4g}<extra></extra>"})
        panels.append(traces)
    layout = {**_BASE, "title": {"text": "Training curves at the chosen λ (mean over seeds)"},
              "xaxis": {"title": {"text": "epoch"}},
              "yaxis": {"type": "log", "title": {"text": "MSE (data loss, no penalty)"}}}
    return {"lams": lams, "panels": panels, "layout": layout}


def _label(v: float) -> str:
    return "0" if v == 0 else f"{v:.3g}"


def heatmaps(configs: pd.DataFrame, metric: str = "test_mse", top: int = 10) -> list[dict]:
    """One lr x lam heatmap per group (log10 colour, shared range) when both axes vary."""
    if not {"lr", "lam"} <= set(configs) or configs["lr"].nunique() < 2 \
            or configs["lam"].nunique() < 2:
        return []
    groups = _groups(configs)
    grids = {}
    for g in groups:
        part = _in_group(configs, g)
        full = part.groupby(["lam", "lr"]).size().unstack("lr")
        grids[g] = _ok(part).groupby(["lam", "lr"])[metric].mean().unstack("lr").reindex(
            index=full.index, columns=full.columns)
    vals = np.concatenate([g.to_numpy(dtype=float).ravel() for g in grids.values()])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    if not len(vals):
        return []
    zmin, zmax = math.log10(vals.min()), math.log10(vals.max())
    out = []
    for g in groups:
        grid = grids[g]
        z = grid.to_numpy(dtype=float)  # (n_lam, n_lr)
        xs, ys = [_label(v) for v in grid.columns], [_label(v) for v in grid.index]
        logz = np.where(np.isfinite(z) & (z > 0), np.log10(np.where(z > 0, z, 1.0)), np.nan)
        flat = np.where(np.isfinite(z), z, np.inf).ravel()
        best = [k for k in np.argsort(flat, kind="stable")[:top] if np.isfinite(flat[k])]
        bi, bj = np.unravel_index(np.asarray(best, dtype=int), z.shape)
        data = [
            {"type": "heatmap", "x": xs, "y": ys, "z": logz.tolist(), "customdata": z.tolist(),
             "zmin": zmin, "zmax": zmax, "colorscale": "Viridis", "reversescale": True,
             "colorbar": {"title": {"text": "log10 MSE"}},
             "hovertemplate": "lr = %{x}<br>λ = %{y}<br>" + metric.replace("_", " ")
                              + " = %{customdata:.4g}<extra></extra>", "hoverongaps": False},
            {"type": "scatter", "mode": "markers", "name": f"best {len(best)}",
             "x": [xs[j] for j in bj], "y": [ys[i] for i in bi],
             "marker": {"symbol": "circle-open", "size": 12, "color": "red",
                        "line": {"width": 2}}, "hoverinfo": "skip", "showlegend": False},
        ]
        layout = {**_BASE, "title": {"text": _name(g), "font": {"size": 13}},
                  "plot_bgcolor": "#bbb",
                  "xaxis": {"type": "category", "title": {"text": "learning rate"}},
                  "yaxis": {"type": "category", "title": {"text": "λ / weight_decay"}}}
        out.append({"data": data, "layout": layout})
    return out
