"""Result tables -> matplotlib figures. Never computes results, never calls plt.show().

Every function takes the run directory's tables (``configs``, ``curves``, ``selection``) and
reference tables computed elsewhere (``ridge``: closed-form test MSE along lam; ``theory``:
asymptotic risk), and returns a ``matplotlib.figure.Figure``. Means over seeds with a band
from the 2.5th to the 97.5th percentile of the seeds (asymmetric, always > 0 on log axes;
the seeds' min-max with few seeds) are the only arithmetic done here. Diverged configurations
are always left out (they carry NaN metrics).

One style everywhere: test solid, validation/CV dashed, lam = 0 dotted, closed form black
dashes, theory grey; best lam a star, 1-SE lam a diamond.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, LogLocator, NullFormatter

from wdlab.conventions import describe
from wdlab.figdata import (  # noqa: F401  (re-exported: plots.heat_scale, ... as before)
    BAND,
    BAND_TEXT,
    CLIP_PERCENTILE,
    GROUP_KEYS,
    TOP_MEANINGFUL,
    best_lr_slice,
    few_lams,
    group_label,
    group_list,
    heat_scale,
    in_group,
    lr_note,
    mean_band,
    ok_rows,
    selection_row,
    top_cells,
)

__all__ = [
    "coef_path",
    "double_descent",
    "group_label",
    "lr_lam_heatmaps",
    "norm_path",
    "training_curves",
    "validation_curve",
]

YLABEL = "MSE (data loss, no penalty)"
STYLE = {"test_mse": "-", "val_mse": "--", "train_mse": ":"}


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


class PlainLogFormatter(LogFormatter):
    """Log-axis tick labels as plain text (``10⁻³``, ``2×10⁻²``) on the ticks matplotlib's
    default ``LogFormatterSciNotation`` labels, without its mathtext parser (which was most of
    a sweep's figure drawing time)."""

    def __call__(self, x, pos=None):
        if not super().__call__(x, pos) or x <= 0:
            return ""
        exp = int(np.floor(np.log10(x) + 1e-10))
        coeff = round(x / 10.0 ** exp)
        power = f"10{str(exp).translate(_SUPERSCRIPT)}"
        return power if coeff == 1 else f"{coeff}×{power}"


def light_log_axes(fig: Figure) -> Figure:
    """Every log axis of ``fig`` (colour bars included): minor ticks at 2 and 5 of each
    decade only, and ``PlainLogFormatter`` labels. Same axes and data; about a third less
    drawing time than matplotlib's nine minor ticks with mathtext labels."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "log":
                minor_off = isinstance(axis.get_minor_formatter(), NullFormatter)
                axis.set_minor_locator(LogLocator(10.0, subs=(2.0, 5.0)))
                axis.set_major_formatter(PlainLogFormatter(10.0))
                if not minor_off:
                    axis.set_minor_formatter(PlainLogFormatter(10.0, labelOnlyBase=False))
    return fig

def _band(ax, x, ys: np.ndarray, color, label, linestyle="-"):
    """Mean line, with a 95% band when there are several seeds (rows of ``ys``)."""
    mean = np.nanmean(ys, axis=0)
    (line,) = ax.plot(x, mean, color=color, label=label, linestyle=linestyle)
    if ys.shape[0] > 1:
        lo, hi = np.nanpercentile(ys, BAND, axis=0)
        ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)
    return line


def _fill(ax, agg: pd.DataFrame, x: str, color):
    if (agg["count"] > 1).any():  # percentiles of positive values: > 0 on log axes
        ax.fill_between(agg[x].to_numpy(), agg["lo"].to_numpy(), agg["hi"].to_numpy(),
                        color=color, alpha=0.2, linewidth=0)


def training_curves(curves: pd.DataFrame, configs: pd.DataFrame,
                    lams: list[float] | None = None) -> Figure:
    """Semilogy train and test MSE per epoch, one panel per lam.

    Configurations sharing a lam (different seeds) are drawn as a mean line and a 95% band.
    Titles state lam and its convention. Diverged configurations are left out.
    """
    ok = ok_rows(configs)
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
        _band(ax, epochs, wide["train_mse"].to_numpy(), "C0", "train", STYLE["train_mse"])
        _band(ax, epochs, wide["test_mse"].to_numpy(), "C1", "test", STYLE["test_mse"])
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        reg = rows["regularizer"].iloc[0] if len(rows) else ""
        ax.set_title(f"λ = {lam:g} ({describe(reg)})", fontsize=9)
        ax.legend(loc="best", fontsize=8)
        ax.grid(True, which="both", alpha=0.25)
    axes[0].set_ylabel(YLABEL)
    return light_log_axes(fig)


def validation_curve(configs: pd.DataFrame, *, selection: pd.DataFrame | None = None,
                     ridge: pd.DataFrame | None = None,
                     theory: pd.DataFrame | None = None) -> Figure:
    """Test (solid) and validation (dashed) MSE against lam > 0 on log-log axes.

    One colour per optimizer/regularizer group, mean and ``BAND`` over seeds; when lr was
    swept, the lr with the lowest curve is shown, and said in the legend. lam = 0 is drawn as
    a horizontal dotted line. Overlays: ``ridge`` (columns ``regularizer, lam, test_mse``: the
    closed-form ridge test MSE) in black dashes, ``theory`` (``regularizer, lam, risk``) in
    grey, and from ``selection`` a star at ``best_lam`` and a diamond at ``lam_1se``. With
    fewer than 2 positive lams, every lam (0 included) is a category with its points.
    """
    ok = ok_rows(configs)
    metrics = [m for m in ("test_mse", "val_mse") if m in ok and ok[m].notna().any()]
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    if few_lams(ok):
        return _categorical(fig, ax, ok, metrics)
    for i, group in enumerate(group_list(ok)):
        rows = best_lr_slice(in_group(ok, group), metrics[-1])
        color = f"C{i}"
        name = (group_label(*group) if group != ("", "") else "trained") + lr_note(rows, ok)
        for metric in metrics:
            word = "test" if metric == "test_mse" else "val"
            pos = rows[rows["lam"] > 0]
            agg = mean_band(pos, "lam", metric)
            if len(agg):
                ax.plot(agg["lam"], agg["mean"], STYLE[metric], color=color, marker=".",
                        label=f"{name}: {word}")
                _fill(ax, agg, "lam", color)
            zero = rows.loc[rows["lam"] == 0, metric].dropna()
            if len(zero) and metric == "test_mse":
                ax.axhline(zero.mean(), color=color, linestyle=":", linewidth=1,
                           label=f"{name}: test at λ = 0")
        s = selection_row(selection, group, rows)
        if s is not None:
            ax.plot([s["best_lam"]], [s["best_test_mse"]], "*", color=color, markersize=13,
                    markeredgecolor="k", label=f"best λ = {s['best_lam']:.3g}")
            if pd.notna(s.get("lam_1se", np.nan)):
                ax.plot([s["lam_1se"]], [s["test_mse_1se"]], "D", color=color,
                        markersize=7, markeredgecolor="k", label=f"1-SE λ = {s['lam_1se']:.3g}")
    for ref, col, style, color, word in ((ridge, "test_mse", "--", "k", "closed-form ridge"),
                                         (theory, "risk", "-", "0.55", "theory")):
        if ref is None or not len(ref):
            continue
        for reg, part in ref.groupby("regularizer", sort=True):
            part = part[part["lam"] > 0].sort_values("lam")
            ax.plot(part["lam"], part[col], style, color=color, linewidth=1.3, alpha=0.85,
                    label=f"{word} ({describe(str(reg))})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("λ (each group in its own convention, see legend)")
    ax.set_ylabel(YLABEL)
    ax.set_title(f"Validation curve: final MSE against λ ({BAND_TEXT})", fontsize=9)
    ax.grid(True, which="both", alpha=0.25)
    if len(ax.get_lines()) > 8:  # many groups: the legend goes beside the axes
        fig.set_size_inches(10.5, 4.6)
        ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=7, loc="best")
    return light_log_axes(fig)


def _categorical(fig: Figure, ax, ok: pd.DataFrame, metrics: list[str]) -> Figure:
    """Few lams: each lam (0 included) a category; points with their band, no lines."""
    lams = sorted(ok["lam"].unique()) if "lam" in ok else []
    groups = group_list(ok)
    width = 0.8 / max(len(groups) * len(metrics), 1)
    k = 0
    for i, group in enumerate(groups):
        rows = in_group(ok, group)
        name = group_label(*group) if group != ("", "") else "trained"
        for metric in metrics:
            agg = mean_band(rows, "lam", metric).set_index("lam").reindex(lams)
            x = np.arange(len(lams)) - 0.4 + width * (k + 0.5)
            m = agg["mean"].to_numpy()
            err = np.vstack([m - agg["lo"].to_numpy(), agg["hi"].to_numpy() - m])
            ax.errorbar(x, m, yerr=np.clip(np.nan_to_num(err), 0, None), fmt="o" if metric ==
                        "test_mse" else "s", color=f"C{i}", capsize=3,
                        label=f"{name}: {'test' if metric == 'test_mse' else 'val'}")
            k += 1
    ax.set_xticks(np.arange(len(lams)), [f"λ = {v:g}" for v in lams])
    ax.set_yscale("log")
    ax.set_ylabel(YLABEL)
    ax.set_title(f"Final MSE at each λ (only {len(lams)} λ values; {BAND_TEXT})", fontsize=9)
    ax.grid(True, axis="y", which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="best")
    return light_log_axes(fig)


def norm_path(configs: pd.DataFrame) -> Figure:
    """Final ‖w‖ against lam > 0 (log-log), one line per group, mean and ``BAND`` over seeds
    (at the best lr when lr was swept, said in the legend)."""
    ok = ok_rows(configs)
    fig = Figure(figsize=(5.2, 3.6), layout="constrained")
    ax = fig.subplots()
    for i, group in enumerate(group_list(ok)):
        by = "val_mse" if "val_mse" in ok and ok["val_mse"].notna().any() else "test_mse"
        rows = best_lr_slice(in_group(ok, group), by)  # the lr the validation curve shows
        agg = mean_band(rows[rows["lam"] > 0], "lam", "w_norm")
        name = (group_label(*group) if group != ("", "") else "trained") + lr_note(rows, ok)
        ax.plot(agg["lam"], agg["mean"], marker=".", color=f"C{i}", label=name)
        _fill(ax, agg, "lam", f"C{i}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("λ")
    ax.set_ylabel("‖w‖ (final, trained)")
    ax.set_title(f"Norm path of the trained weights ({BAND_TEXT})", fontsize=9)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7)
    return light_log_axes(fig)


def coef_path(coefs: pd.DataFrame, *, max_lines: int = 12) -> Figure:
    """Closed-form ridge coefficients against lam > 0 (log x): columns ``lam, feature, coef``
    (``wdlab.report.references.ridge_coefficients``; the title says they are not trained).

    All coefficients when there are at most ``max_lines`` features (real data); otherwise an
    evenly spaced sample of ``max_lines`` of them (synthetic data), said in the title.
    """
    pos = coefs[coefs["lam"] > 0]
    feats = list(dict.fromkeys(pos["feature"]))
    shown = feats if len(feats) <= max_lines else [
        feats[int(i)] for i in np.linspace(0, len(feats) - 1, max_lines).round()]
    fig = Figure(figsize=(5.2, 3.6), layout="constrained")
    ax = fig.subplots()
    for j, feat in enumerate(shown):
        part = pos[pos["feature"] == feat].sort_values("lam")
        ax.plot(part["lam"], part["coef"], color=f"C{j % 10}", linewidth=1, label=str(feat))
    ax.axhline(0.0, color="k", linewidth=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("λ")
    ax.set_ylabel("coefficient w_j")
    what = "all" if len(shown) == len(feats) else f"{len(shown)} of {len(feats)}"
    ax.set_title(f"Closed-form ridge coefficient path ({what} coefficients;\nthe exact "
                 "minimiser from w = 0, not the trained weights)", fontsize=8)
    ax.grid(True, which="both", alpha=0.25)
    if len(shown) <= 12:
        ax.legend(fontsize=6, ncol=2)
    return light_log_axes(fig)


def _fmt(v: float) -> str:
    return "0" if v == 0 else f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e")


def lr_lam_heatmaps(configs: pd.DataFrame, metric: str = "test_mse", *, top: int = 10) -> Figure:
    """Final ``metric`` (mean over seeds) over lr x lam, one panel per optimizer/regularizer.

    Shared log colour scale across panels, clipped at ``CLIP_PERCENTILE`` when unconverged
    cells would stretch it (said on the colour bar); cells where every seed diverged are
    hatched grey; the ``top`` best cells of each panel are circled when they are clearly
    better than the median cell (Loshchilov & Hutter 2019, Fig. 2).
    Rows: lam (its own convention per panel, 0 at the bottom); columns: lr.
    """
    fig_groups = group_list(configs)
    rows = {}
    for group in fig_groups:
        part = in_group(configs, group)
        ok = ok_rows(part)
        grid = ok.groupby(["lam", "lr"])[metric].mean().unstack("lr")
        full = part.groupby(["lam", "lr"]).size().unstack("lr")
        rows[group] = grid.reindex(index=full.index, columns=full.columns)
    finite = np.concatenate([g.to_numpy().ravel() for g in rows.values()])
    finite = finite[np.isfinite(finite) & (finite > 0)]
    vmin, vmax, clipped = heat_scale(finite)
    norm = LogNorm(vmin=vmin, vmax=vmax, clip=True) if len(finite) else None
    families = sorted({0 if g[0] == "sgd" else 1 for g in fig_groups})
    layout = [[g for g in fig_groups if (0 if g[0] == "sgd" else 1) == f] for f in families]
    ncols = max(len(r) for r in layout)
    fig = Figure(figsize=(3.6 * ncols + 0.8, 3.3 * len(layout)), layout="constrained")
    axes = fig.subplots(len(layout), ncols, squeeze=False)
    mesh = None
    for r, line in enumerate(layout):
        for c in range(ncols):
            ax = axes[r][c]
            if c >= len(line):
                ax.set_axis_off()
                continue
            grid = rows[line[c]]
            values = grid.to_numpy(dtype=float)  # (n_lam, n_lr)
            ax.set_facecolor("0.8")
            ax.patch.set_hatch("//")
            mesh = ax.pcolormesh(np.ma.masked_invalid(values), cmap="viridis_r", norm=norm)
            best = top_cells(values, top)
            if len(best):
                bi, bj = np.unravel_index(best, values.shape)
                ax.plot(bj + 0.5, bi + 0.5, "o", markerfacecolor="none", markeredgecolor="r",
                        markersize=7, label=f"best {len(best)}")
            ax.set_xticks(np.arange(values.shape[1]) + 0.5, [_fmt(v) for v in grid.columns],
                          rotation=60, fontsize=7)
            ax.set_yticks(np.arange(values.shape[0]) + 0.5, [_fmt(v) for v in grid.index],
                          fontsize=7)
            ax.set_xlabel("learning rate")
            ax.set_ylabel("λ / weight_decay")
            ax.set_title(group_label(*line[c]), fontsize=8, pad=6)
    if mesh is not None:
        clip = f", clipped at the {CLIP_PERCENTILE}th percentile" if clipped else ""
        fig.colorbar(mesh, ax=axes, extend="max" if clipped else "neither",
                     label=f"final {metric.replace('_', ' ')} (mean over seeds; log{clip})")
    return light_log_axes(fig)


def double_descent(configs: pd.DataFrame, theory: pd.DataFrame | None = None, *,
                   exact: pd.DataFrame | None = None, by: str = "val_mse") -> Figure:
    """Test MSE against n_train / n_features for the smallest lam and the best lam per size.

    The best lam at each n_train minimises the mean of ``by`` over seeds (``val_mse``, else
    ``test_mse``). ``theory`` (columns ``ratio, curve, risk``, curve in {``ridgeless``,
    ``optimal``}) is overlaid, and ``exact`` (columns ``ratio, curve, test_mse``: closed-form
    ridge on the same draws) as dotted lines. A vertical line marks n = d (Nakkiran et al. 2021).
    """
    ok = ok_rows(configs).copy()
    by = by if by in ok and ok[by].notna().any() else "test_mse"
    ok["ratio"] = ok["n_train"] / ok["n_features"]
    fig = Figure(figsize=(5.8, 3.9), layout="constrained")
    ax = fig.subplots()
    lam0 = ok["lam"].min()
    small = ok[np.isclose(ok["lam"], lam0)]
    agg = mean_band(small, "ratio", "test_mse")
    ax.plot(agg["ratio"], agg["mean"], "o-", color="C3", markersize=4,
            label=f"trained, λ = {lam0:g}")
    _fill(ax, agg, "ratio", "C3")
    score = ok.groupby(["ratio", "lam"])[by].mean().reset_index()
    best = score.loc[score.groupby("ratio")[by].idxmin(), ["ratio", "lam"]]
    chosen = ok.merge(best, on=["ratio", "lam"])
    agg = mean_band(chosen, "ratio", "test_mse")
    ax.plot(agg["ratio"], agg["mean"], "s-", color="C0", markersize=4,
            label=f"trained, best λ by {by.replace('_mse', '')}")
    _fill(ax, agg, "ratio", "C0")
    if theory is not None and len(theory):
        for curve, color in (("ridgeless", "C3"), ("optimal", "C0")):
            part = theory[theory["curve"] == curve].sort_values("ratio")
            if len(part):
                ax.plot(part["ratio"], part["risk"], "--", color=color, linewidth=1.2,
                        alpha=0.8, label=f"theory, {curve}")
    if exact is not None and len(exact):
        for j, (curve, part) in enumerate(exact.groupby("curve", sort=True)):
            part = part.sort_values("ratio")
            ax.plot(part["ratio"], part["test_mse"], ":", color=f"C{4 + j}", marker="x",
                    markersize=4, linewidth=1.2, label=str(curve))
    ax.axvline(1.0, color="0.4", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10) if ok["ratio"].min() <= t <= ok["ratio"].max()]
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel("n_train / n_features")
    ax.set_ylabel("test " + YLABEL)
    ax.set_title("Double descent: the peak at n = d, and optimal λ removes it", fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7)
    return light_log_axes(fig)


# ------------------------------------------------------------------------------------------
# wdlab fit (linear and --model mlp): the figures of a fit's run directory
# ------------------------------------------------------------------------------------------


def _pair_rows(table, row):
    """The rows of ``table`` of one selection row's optimizer + regularizer pair."""
    return table[(table["optimizer"] == row["optimizer"])
                 & (table["regularizer"] == row["regularizer"])]


def fit_coefficient_paths(coefs, selection, labelled: int = 12):
    """Coefficient paths against lam for a fit's first pair, the ``labelled`` largest
    features (by max |coef|) named, with the CV-min and 1-SE lams marked.

    ``coefs``: long form ``optimizer, regularizer, lam, feature, coef``; ``selection``: the
    fit's selection table (``best_lam``, ``lam_1se``)."""
    from matplotlib.figure import Figure

    first = selection.iloc[0]
    part = _pair_rows(coefs, first)
    wide = part.pivot(index="lam", columns="feature", values="coef")  # (L, D)
    wide = wide[[f for f in dict.fromkeys(part["feature"])]]
    lams = wide.index.to_numpy()
    pos = lams > 0
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.subplots()
    top = wide.abs().max(axis=0).sort_values(ascending=False).index[:labelled]
    for name in wide.columns:
        lab = name in top
        ax.plot(lams[pos], wide[name].to_numpy()[pos], lw=1.4 if lab else 0.6,
                alpha=1.0 if lab else 0.35, color=None if lab else "0.5",
                label=str(name) if lab else None)
    ax.set_xscale("log")
    ax.axhline(0, color="0.3", lw=0.5)
    for lam, style, word in ((first["best_lam"], "-", "CV min"), (first["lam_1se"], "--", "1-SE")):
        ax.axvline(lam, color="k", ls=style, lw=0.8, label=f"{word}: λ = {lam:.3g}")
    ax.set_xlabel(f"λ ({first['regularizer']} convention)")
    ax.set_ylabel("coefficient (target units per feature SD)")
    ax.set_title(f"Coefficient paths: {first['optimizer']} + {first['regularizer']}", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return fig


def fit_cv_curve(configs, selection, ridge=None, *, cv: str = "val_mse",
                 test: str = "test_mse", log_y: bool = True, one_se: bool = True,
                 ylabel: str = "MSE (target units)", title: str | None = None):
    """A fit's k-fold CV curve per pair: ``cv`` (mean +- ``val_sem`` over folds, dashed) and
    ``test`` (solid) against lam, the CV best (star) and, with ``one_se``, the 1-SE lam
    (diamond); with a ``ridge`` table (``ridge_val_mse`` per pair and lam) the closed form's
    CV error dashed in black. Linear fits: MSE; ``--model mlp``: accuracy or MSE."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.subplots()
    for i, row in enumerate(selection.to_dict("records")):
        part = _pair_rows(configs, row)
        part = part[part["lam"] > 0]
        color, name = f"C{i % 10}", f"{row['optimizer']}+{row['regularizer']}"
        ax.errorbar(part["lam"], part[cv], yerr=part["val_sem"], color=color, lw=1.2,
                    ls="--", capsize=2, label=f"{name}: CV")
        ax.plot(part["lam"], part[test], color=color, lw=1.0, ls="-", label=f"{name}: test")
        marks = [(row["best_lam"], "*", 12)] + ([(row["lam_1se"], "D", 6)] if one_se else [])
        for lam, marker, size in marks:
            at = part.loc[part["lam"] == lam, cv]
            if len(at):
                ax.plot([lam], [at.mean()], marker, color=color, markersize=size,
                        markeredgecolor="k")
        if ridge is not None and len(ridge):
            r = _pair_rows(ridge, row)
            r = r[r["lam"] > 0]
            if len(r):
                ax.plot(r["lam"], r["ridge_val_mse"], color="k", lw=0.8, ls="--",
                        label=f"closed form ({row['regularizer']}): CV" if i == 0 else None)
    ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("λ (each regularizer's own convention)")
    ax.set_ylabel(ylabel)
    ax.set_title(title or ("k-fold CV error (dashed, mean ± SE over folds) and test error "
                           "(solid); ★ CV min, ◆ 1-SE"), fontsize=9)
    ax.legend(fontsize=7)
    return fig


def fit_training_curves(curves, configs, selection):
    """Train and test loss (and accuracy, when recorded) over epochs of a fit's first pair
    at its best lam (the full-train refit)."""
    from matplotlib.figure import Figure

    first = selection.iloc[0]
    pair = _pair_rows(configs, first)
    cid = pair[pair["lam"] == first["best_lam"]]["config_id"].iloc[0]
    part = curves[curves["config_id"] == cid]
    acc = "train_accuracy" in part
    fig = Figure(figsize=(9 if acc else 5, 3.6), layout="constrained")
    axes = fig.subplots(1, 2 if acc else 1, squeeze=False)[0]
    panels = [(axes[0], ("train_loss", "test_loss"), "data loss", True)]
    if acc:
        panels.append((axes[1], ("train_accuracy", "test_accuracy"), "accuracy", False))
    for ax, cols, ylabel, log in panels:
        for col, ls in zip(cols, ("-", "--"), strict=True):
            ax.plot(part["epoch"], part[col], ls=ls, label=col.replace("_", " "))
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    fig.suptitle(f"{first['optimizer']} + {first['regularizer']} at λ = {first['best_lam']:.3g}",
                 fontsize=9)
    return fig
