"""Plotly figure specs (plain dicts) for the report: validation curve, training curves per
lam (one panel per slider position), lr x lam heatmaps and the double-descent curve.

Trace names are built from registry names (optimizer, regularizer) only, never from free
user text, and numbers; the page escapes everything else. Every trace of a group carries
``meta`` = the group's index (the page's group selector shows one group at a time) and a
hover text that names its group. Curves are summaries (means over seeds, ``BAND``
percentiles) and decimated to at most ``MAX_POINTS`` points for display; the full data stays
in the parquet tables.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from wdlab import figdata as fd

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
_BASE = {"margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "hovermode": "closest",
         "legend": {"font": {"size": 11}}, "template": None}
#: One style for every chart: test solid, validation dashed, train dotted.
DASH = {"test_mse": "solid", "val_mse": "dash", "train_mse": "dot"}
WORD = {"test_mse": "test", "val_mse": "val", "train_mse": "train"}
#: At most this many points per displayed curve (log-spaced epochs kept; the parquet keeps all).
MAX_POINTS = 120


def _esc(text: object) -> str:
    """Escape a user string for a plotly trace name, title or hover template: plotly renders
    some HTML there (an <a href> in a legend is a live link), so only text goes in."""
    import html

    return html.escape(str(text), quote=True)


def _name(group: tuple[str, str]) -> str:
    return _esc(fd.group_label(*group)) if group != ("", "") else "trained"


def _r(values, digits: int = 5) -> list:
    """Floats rounded to ``digits`` significant digits for the page (NaN -> None)."""
    out = []
    for v in np.asarray(values, dtype=np.float64).tolist():
        out.append(None if not math.isfinite(v) else float(f"{v:.{digits}g}"))
    return out


def decimate(x: np.ndarray, n: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most ``n`` points of the ascending ``x``, log-spaced (first/last kept)."""
    m = len(x)
    if m <= n:
        return np.arange(m)
    pos = np.geomspace(1, m, n) - 1
    return np.unique(np.concatenate([[0], pos.round().astype(int), [m - 1]]))


def validation(configs: pd.DataFrame, selection: pd.DataFrame | None,
               ridge: pd.DataFrame | None, theory: pd.DataFrame | None) -> dict | None:
    """Final test/val MSE against lam > 0 (log-log), mean with ``BAND`` error bars over seeds.

    Traces, in order: per group, one per metric (test, val) and one for test at lam = 0 if
    present; per group with a selection row, best lam and (if given) 1-SE lam markers; one per
    coupled regularizer of ``ridge``; one per regularizer of ``theory``. One legend entry per
    group (``legendgroup``). With fewer than 2 positive lams every lam is a category.
    Returns ``{"data", "layout", "groups"}`` (``groups``: the selector's names).
    """
    ok = fd.ok_rows(configs)
    if "lam" not in ok or not len(ok):
        return None
    metrics = [m for m in ("test_mse", "val_mse") if m in ok and ok[m].notna().any()]
    if not metrics:
        return None
    categorical = fd.few_lams(ok)
    if not categorical and not (ok["lam"] > 0).any():
        return None
    traces, names = [], []
    pos_lams = ok.loc[ok["lam"] > 0, "lam"]
    span = [float(pos_lams.min()) / 10, float(pos_lams.max()) * 10] if len(pos_lams) else [0, 1]
    for i, group in enumerate(fd.group_list(ok)):
        color = COLORS[i % len(COLORS)]
        rows = fd.best_lr_slice(fd.in_group(ok, group), metrics[-1])
        gname = _name(group) + fd.lr_note(rows, ok)
        names.append(gname)
        first = True
        for metric in metrics:
            part = rows if categorical else rows[rows["lam"] > 0]
            agg = fd.mean_band(part, "lam", metric)
            word = WORD[metric]
            x = [f"λ = {v:g}" for v in agg["lam"]] if categorical else _r(agg["lam"])
            traces.append({
                "type": "scatter", "mode": "markers" if categorical else "lines+markers",
                "name": gname, "legendgroup": str(i), "showlegend": first, "meta": i,
                "x": x, "y": _r(agg["mean"]),
                "error_y": {"type": "data", "symmetric": False,
                            "array": _r((agg["hi"] - agg["mean"]).clip(lower=0)),
                            "arrayminus": _r((agg["mean"] - agg["lo"]).clip(lower=0)),
                            "visible": bool((agg["count"] > 1).any()), "thickness": 1},
                "customdata": agg["count"].tolist(),
                "line": {"color": color, "dash": DASH[metric]},
                "marker": {"symbol": "circle" if metric == "test_mse" else "square"},
                "hovertemplate": f"{gname}<br>λ = %{{x}}<br>{word} MSE = %{{y:.4g}}"
                                 "<br>seeds = %{customdata}<extra></extra>",
            })
            first = False
        zero = rows.loc[rows["lam"] == 0, "test_mse"].dropna()
        if len(zero) and not categorical:
            traces.append({"type": "scatter", "mode": "lines", "name": gname,
                           "legendgroup": str(i), "showlegend": False, "meta": i,
                           "x": span, "y": _r([float(zero.mean())] * 2),
                           "line": {"color": color, "dash": "dot", "width": 1},
                           "hovertemplate": f"{gname}<br>λ = 0: test MSE = %{{y:.4g}}"
                                            "<extra></extra>"})
        s = fd.selection_row(selection, group, rows)
        if s is not None and not categorical:
            marks = [("best λ", "star", s["best_lam"], s.get("best_test_mse"))]
            if pd.notna(s.get("lam_1se", np.nan)):
                marks.append(("1-SE λ", "diamond", s["lam_1se"], s.get("test_mse_1se")))
            for word, symbol, lam, mse in marks:
                traces.append({"type": "scatter", "mode": "markers", "name": gname,
                               "legendgroup": str(i), "showlegend": False, "meta": i,
                               "x": _r([lam]), "y": _r([mse]),
                               "marker": {"symbol": symbol, "size": 14, "color": color,
                                          "line": {"color": "black", "width": 1}},
                               "hovertemplate": f"{gname}<br>{word} = %{{x:.4g}}"
                                                "<br>test MSE = %{y:.4g}<extra></extra>"})
    for ref, col, word, color, dash in ((ridge, "test_mse", "closed-form ridge", "black", "dash"),
                                        (theory, "risk", "theory", "#888", "solid")):
        if ref is None or not len(ref) or categorical:
            continue
        for reg, part in ref.groupby("regularizer", sort=True):
            part = part[part["lam"] > 0].sort_values("lam")
            traces.append({"type": "scatter", "mode": "lines", "name": f"{word} ({_esc(reg)})",
                           "meta": -1, "x": _r(part["lam"]), "y": _r(part[col]),
                           "line": {"color": color, "dash": dash, "width": 1.5},
                           "hovertemplate": f"{word} ({_esc(reg)})<br>λ = %{{x:.4g}}<br>"
                                            "test MSE = %{y:.4g}<extra></extra>"})
    title = ("Validation curve: final MSE against λ — solid test, dashed validation, "
             f"★ best λ, ◆ 1-SE λ; {fd.BAND_TEXT}")
    layout = {**_BASE, "title": {"text": title, "font": {"size": 13}},
              "xaxis": {"type": "category" if categorical else "log",
                        "title": {"text": "λ (each group in its own convention)"}},
              "yaxis": {"type": "log", "title": {"text": "MSE (data loss, no penalty)"}}}
    return {"data": traces, "layout": layout, "groups": names}


def training(curves: pd.DataFrame, configs: pd.DataFrame) -> dict | None:
    """One panel per distinct lam: mean train and test MSE per epoch of each group at that lam.

    Returns ``{"lams": [...], "panels": [[trace, ...], ...], "layout": {...}}``; the slider
    position i shows ``panels[i]``, whose lam is ``lams[i]`` (exact values of configs.lam).
    Each curve is decimated to ``MAX_POINTS`` log-spaced epochs.
    """
    ok = fd.ok_rows(configs)
    if curves is None or not len(curves) or not len(ok):
        return None
    metric = "val_mse" if "val_mse" in ok and ok["val_mse"].notna().any() else "test_mse"
    groups = fd.group_list(ok)
    chosen = {g: fd.best_lr_slice(fd.in_group(ok, g), metric) for g in groups}
    lams = sorted(ok["lam"].unique().tolist())
    cols = [m for m in ("train_mse", "test_mse") if m in curves]
    ids = pd.concat([chosen[g][["config_id", "lam"]].assign(_g=i) for i, g in enumerate(groups)])
    sub = curves[["config_id", "epoch", *cols]].merge(ids, on="config_id")
    means = sub.groupby(["_g", "lam", "epoch"], sort=True)[cols].mean()
    panels = []
    for lam in lams:
        traces = []
        for i, group in enumerate(groups):
            try:
                part = means.loc[(i, lam)]
            except KeyError:
                continue
            keep = decimate(part.index.to_numpy())
            part = part.iloc[keep]
            color = COLORS[i % len(COLORS)]
            gname = _name(group) + fd.lr_note(chosen[group], ok)
            for m in cols:
                traces.append({"type": "scatter", "mode": "lines", "name": f"{gname}: {WORD[m]}",
                               "meta": i, "x": part.index.tolist(), "y": _r(part[m]),
                               "line": {"color": color, "dash": DASH[m]},
                               "hovertemplate": f"{gname}<br>epoch %{{x}}<br>{WORD[m]} MSE = "
                                                "%{y:.4g}<extra></extra>"})
        panels.append(traces)
    layout = {**_BASE, "title": {"text": "Training curves at the chosen λ (mean over seeds; "
                                         "dotted train, solid test)", "font": {"size": 13}},
              "xaxis": {"title": {"text": "epoch"}},
              "yaxis": {"type": "log", "title": {"text": "MSE (data loss, no penalty)"}}}
    return {"lams": lams, "panels": panels, "layout": layout}


def _label(v: float) -> str:
    return "0" if v == 0 else f"{v:.3g}"


def heatmaps(configs: pd.DataFrame, metric: str = "test_mse", top: int = 10) -> list[dict]:
    """One lr x lam heatmap per group (log10 colour, shared range clipped as
    ``wdlab.plots.heat_scale``) when both axes vary; circles on the ``top`` cells only when
    ``wdlab.plots.top_cells`` finds them clearly better than the median."""
    if not {"lr", "lam"} <= set(configs) or configs["lr"].nunique() < 2 \
            or configs["lam"].nunique() < 2:
        return []
    groups = fd.group_list(configs)
    grids = {}
    for g in groups:
        part = fd.in_group(configs, g)
        full = part.groupby(["lam", "lr"]).size().unstack("lr")
        grids[g] = fd.ok_rows(part).groupby(["lam", "lr"])[metric].mean().unstack("lr").reindex(
            index=full.index, columns=full.columns)
    vals = np.concatenate([g.to_numpy(dtype=float).ravel() for g in grids.values()])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    if not len(vals):
        return []
    vmin, vmax, clipped = fd.heat_scale(vals)
    zmin, zmax = math.log10(vmin), math.log10(vmax)
    out = []
    for g in groups:
        grid = grids[g]
        z = grid.to_numpy(dtype=float)  # (n_lam, n_lr)
        xs, ys = [_label(v) for v in grid.columns], [_label(v) for v in grid.index]
        logz = np.where(np.isfinite(z) & (z > 0), np.log10(np.where(z > 0, z, 1.0)), np.nan)
        best = fd.top_cells(z, top)
        bi, bj = np.unravel_index(np.asarray(best, dtype=int), z.shape)
        name = _name(g)
        data = [
            {"type": "heatmap", "x": xs, "y": ys, "z": [_r(r, 4) for r in logz],
             "customdata": [_r(r, 4) for r in z],
             "zmin": zmin, "zmax": zmax, "colorscale": "Viridis", "reversescale": True,
             "colorbar": {"title": {"text": "log10 MSE" + (" (clipped)" if clipped else "")}},
             "hovertemplate": f"{name}<br>lr = %{{x}}<br>λ = %{{y}}<br>"
                              + metric.replace("_", " ") + " = %{customdata:.4g}<extra></extra>",
             "hoverongaps": False},
        ]
        if len(best):
            data.append({"type": "scatter", "mode": "markers", "name": f"best {len(best)}",
                         "x": [xs[j] for j in bj], "y": [ys[i] for i in bi],
                         "marker": {"symbol": "circle-open", "size": 12, "color": "red",
                                    "line": {"width": 2}}, "hoverinfo": "skip",
                         "showlegend": False})
        layout = {**_BASE, "title": {"text": name, "font": {"size": 13}, "y": 0.97,
                                     "yanchor": "top"},
                  "margin": {"l": 70, "r": 20, "t": 60, "b": 95},
                  "plot_bgcolor": "#fff",
                  "xaxis": {"type": "category", "tickangle": -60, "automargin": True,
                            "title": {"text": "learning rate", "standoff": 12}},
                  "yaxis": {"type": "category", "automargin": True,
                            "title": {"text": "λ / weight_decay"}}}
        out.append({"data": data, "layout": layout, "clipped": clipped, "circled": len(best) > 0})
    return out


def double_descent(configs: pd.DataFrame, exact: pd.DataFrame | None,
                   theory: pd.DataFrame | None) -> dict | None:
    """Test MSE against n_train / n_features (log-log): trained at the smallest lam and at the
    best lam per size (by validation, else test), with the closed form and theory overlaid."""
    ok = fd.ok_rows(configs)
    if "n_train" not in ok or ok["n_train"].nunique() < 2 or "n_features" not in ok:
        return None
    ok = ok.assign(ratio=ok["n_train"] / ok["n_features"])
    by = "val_mse" if "val_mse" in ok and ok["val_mse"].notna().any() else "test_mse"
    lam0 = ok["lam"].min()
    score = ok.groupby(["ratio", "lam"])[by].mean().reset_index()
    best = score.loc[score.groupby("ratio")[by].idxmin(), ["ratio", "lam"]]
    series = [(f"trained, λ = {lam0:g}", ok[ok["lam"] == lam0], COLORS[3], "solid"),
              (f"trained, best λ by {WORD[by]}", ok.merge(best, on=["ratio", "lam"]), COLORS[0],
               "solid")]
    traces = []
    for name, rows, color, dash in series:
        agg = fd.mean_band(rows, "ratio", "test_mse")
        traces.append({"type": "scatter", "mode": "lines+markers", "name": name,
                       "x": _r(agg["ratio"]), "y": _r(agg["mean"]),
                       "error_y": {"type": "data", "symmetric": False,
                                   "array": _r((agg["hi"] - agg["mean"]).clip(lower=0)),
                                   "arrayminus": _r((agg["mean"] - agg["lo"]).clip(lower=0)),
                                   "thickness": 1},
                       "line": {"color": color, "dash": dash},
                       "hovertemplate": f"{name}<br>n/d = %{{x:.3g}}<br>test MSE = %{{y:.4g}}"
                                        "<extra></extra>"})
    for table, col, style in ((exact, "test_mse", "dot"), (theory, "risk", "dash")):
        if table is None or not len(table):
            continue
        for curve, part in table.groupby("curve", sort=True):
            part = part.sort_values("ratio")
            label = (f"{_esc(curve)} (closed form)" if table is exact else f"theory, {_esc(curve)}")
            traces.append({"type": "scatter", "mode": "lines", "name": label,
                           "x": _r(part["ratio"]), "y": _r(part[col]),
                           "line": {"dash": style, "width": 1.5,
                                    "color": "black" if table is exact else "#888"},
                           "hovertemplate": f"{label}<br>n/d = %{{x:.3g}}<br>test MSE = "
                                            "%{y:.4g}<extra></extra>"})
    layout = {**_BASE, "title": {"text": "Double descent: test MSE against n_train / n_features "
                                         f"(peak at n = d; {fd.BAND_TEXT})", "font": {"size": 13}},
              "shapes": [{"type": "line", "x0": 1, "x1": 1, "yref": "paper", "y0": 0, "y1": 1,
                          "line": {"color": "#666", "dash": "dot", "width": 1}}],
              "xaxis": {"type": "log", "title": {"text": "n_train / n_features"}},
              "yaxis": {"type": "log", "title": {"text": "test MSE"}}}
    return {"data": traces, "layout": layout}
