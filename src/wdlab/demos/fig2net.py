"""``wdlab reproduce adamw-fig2-net``: Loshchilov & Hutter (ICLR 2019) Fig. 2 on a network.

The claim: with coupled L2 (the gradient gets g + lam w) the good region of the lr x lam
grid is a diagonal (best lam falls as lr grows, lr * lam ~ const); decoupled decay
(w <- w - lr_t lam w beside the step) makes lr and lam separable (best lam independent of lr).

Ours: a ReLU MLP 64 -> 32 -> 10 on scikit-learn's ``digits`` (standardised, 25% test, 20% of
the training rows held out for validation), a fixed budget of 30 epochs, cosine
schedule eta_t = (1 + cos(pi t / T)) / 2, minibatches of 128, decay on the weight matrices
only, on two nets sweep specs (they resume and run on Ray):

    sgd   lr = 2^-7 .. 2^0:   sgd+weight_decay (SGD, momentum 0.9, coupled L2 = torch
                               SGD(weight_decay=lam)), sgd+decoupled (SGDW: w <- w - lr_t lam w)
    adam  lr = 2^-11 .. 2^-4:  adam+weight_decay (torch Adam(weight_decay=lam)),
                               adamw+decoupled (torch AdamW(weight_decay=lam))

and lam = 2^-17, 2^-15, .., 2^1 (10 values). With ``normalize=True`` the grid is the paper's
normalised decay: lam = lam_norm * sqrt(b / (B T)), b the batch size, B the training rows,
T the epochs (Loshchilov & Hutter 2019, Sec. 3/App. B.1).

The statistic (``grid_slopes``): per group and seed, on the grid of final test loss, the
least-squares slope of log2(argmin_lam) against log2(lr) over the lr rows: about -1 for a
diagonal lr * lam = const, about 0 for separable; its mean and spread over seeds. Rows whose
optimum lies on the grid edge (``wdlab.answer.edge_check``) are counted and flagged: there
the slope is a bound, not a measurement. The linear preset ``adamw-fig2`` gets the same
statistic (``wdlab.report.reading.heatmap_stats``), so the two stand side by side.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NAME = "adamw-fig2-net"
LAMS = [2.0 ** e for e in range(-17, 2, 2)]  # 10 values, x4 apart
LRS = {"sgd": [2.0 ** e for e in range(-7, 1)], "adam": [2.0 ** e for e in range(-11, -3)]}
PAIRS = {"sgd": ["sgd+weight_decay", "sgd+decoupled", "sgd+independent"],
         "adam": ["adam+weight_decay", "adamw+decoupled", "adamw+independent"]}
BASE: dict[str, Any] = {
    "model": {"family": "mlp", "hidden": [32], "activation": "relu", "decay": "matrices",
              "loss": "cross_entropy", "schedule": "cosine"},
    "data": {"dataset": "digits", "test_size": 0.25, "seeds": 2},
    "train": {"momentum": 0.9, "beta1": 0.9, "beta2": 0.999, "epochs": 30, "batch_size": 128,
              "dtype": "float32"},
    "validation": {"method": "split", "fraction": 0.2},
    "record": {"every": 1},
}
#: The size the tests run: 3 x 3 grids, 2 epochs, 2 seeds.
REDUCED: dict[str, Any] = {"model": {"hidden": [8]}, "train": {"epochs": 2}}
REDUCED_GRID = 3
LABELS = {("sgd", "weight_decay"): "SGD + coupled L2",
          ("sgd", "decoupled"): "SGDW, torch style (w -= lr·λ·w)",
          ("sgd", "independent"): "SGDW, paper (w -= η_t·λ·w)",
          ("adam", "weight_decay"): "Adam + coupled L2",
          ("adamw", "decoupled"): "AdamW, torch (w -= lr·λ·w)",
          ("adamw", "independent"): "AdamW, paper (w -= η_t·λ·w)"}
#: (coupled, decoupled) pairs the reading compares
COMPARE = ((("sgd", "weight_decay"), ("sgd", "decoupled")),
           (("sgd", "weight_decay"), ("sgd", "independent")),
           (("adam", "weight_decay"), ("adamw", "decoupled")),
           (("adam", "weight_decay"), ("adamw", "independent")))
DIAGONAL, SEPARABLE = -0.5, 0.25  # |slope| < SEPARABLE: separable; slope <= DIAGONAL: diagonal


def norm_factor(batch_size: int, n_train: int, epochs: int) -> float:
    """sqrt(b / (B T)): lam = lam_norm * this (Loshchilov & Hutter 2019)."""
    return math.sqrt(batch_size / (n_train * epochs))


def fig2net_specs(*, reduced: bool = False, normalize: bool = False, seeds: int | None = None,
                  **train: Any) -> dict[str, Any]:
    """The two validated sweep specs ``{"sgd": spec, "adam": spec}``; ``train`` overrides
    ``[train]`` keys (epochs, device, dtype)."""
    from wdlab.config.load import build_spec, merge

    out = {}
    for opt in ("sgd", "adam"):
        raw = merge(BASE, REDUCED) if reduced else BASE
        lrs, lams = LRS[opt], LAMS
        if reduced:
            lrs, lams = lrs[::3][:REDUCED_GRID], lams[::3][:REDUCED_GRID]
        over = {k: v for k, v in train.items() if v is not None}
        raw = merge(raw, {"name": f"{NAME}-{opt}", "train": {"pairs": PAIRS[opt], "lr": lrs,
                                                              **over}})
        if seeds is not None:
            raw = merge(raw, {"data": {"seeds": seeds}})
        spec = build_spec(merge(raw, {"train": {"lam": lams}}))
        if normalize:
            from wdlab.config.values import split_count
            from wdlab.nets.datasets import load

            d = load("digits", test_size=raw["data"]["test_size"], seed=0)
            n = d.n_train - split_count(d.n_train, raw["validation"]["fraction"])
            f = norm_factor(raw["train"]["batch_size"], n, raw["train"]["epochs"])
            spec = build_spec(merge(raw, {"train": {"lam": [v * f for v in lams]}}))
        out[opt] = spec
    return out


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.polyfit(x, y, 1)[0]) if len(x) >= 2 and np.ptp(x) > 0 else math.nan


def grid_slopes(configs: pd.DataFrame, metric: str = "test_loss") -> pd.DataFrame:
    """Per (optimizer, regularizer, data_seed): ``slope`` of log2(argmin lam) on log2(lr)
    over the lr rows (a row whose every lam diverged is dropped), ``edge_rows`` (rows whose
    argmin is the smallest or largest lam), ``slope_inner`` (the slope over the other rows,
    NaN with fewer than 2), ``n_rows``, and the best cell (lr, lam, metric)."""
    from wdlab.answer import edge_check

    rows = []
    from wdlab.figdata import ok_rows

    ok = ok_rows(configs)
    for (opt, reg, seed), part in ok.groupby(["optimizer", "regularizer", "data_seed"], sort=True):
        grid = part.pivot_table(index="lam", columns="lr", values=metric, aggfunc="mean")
        grid = grid.dropna(axis=1, how="all")  # (n_lam, n_lr)
        lams = configs["lam"].unique()
        best = grid.idxmin(axis=0)  # lr -> argmin lam
        edge = np.array([edge_check(lams, float(b), group="") is not None for b in best])
        low = best.to_numpy(float) == float(np.min(lams))
        x, y = np.log2(best.index.to_numpy(float)), np.log2(best.to_numpy(float))
        cell = part.loc[part[metric].idxmin()]
        rows.append({"optimizer": opt, "regularizer": reg, "data_seed": int(seed),
                     "slope": _slope(x, y), "slope_inner": _slope(x[~edge], y[~edge]),
                     "edge_rows": int(edge.sum()), "low_edge_rows": int(low.sum()),
                     "n_rows": int(len(best)),
                     "best_lr": float(cell["lr"]), "best_lam": float(cell["lam"]),
                     "best_metric": float(cell[metric])})
    return pd.DataFrame(rows)


def slope_summary(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per group: mean slope over seeds, its min/max and std, edge rows (total), shape word."""
    out = []
    order = {k: i for i, k in enumerate(LABELS)}
    per_seed = per_seed.assign(_o=[order.get(k, 99) for k in zip(per_seed["optimizer"],
                                                                   per_seed["regularizer"],
                                                                   strict=True)])
    for (_, opt, reg), g in per_seed.groupby(["_o", "optimizer", "regularizer"], sort=True):
        s = g["slope"].dropna()
        mean = float(s.mean()) if len(s) else math.nan
        out.append({"optimizer": opt, "regularizer": reg, "label": LABELS.get((opt, reg), reg),
                    "slope": mean, "slope_min": float(s.min()) if len(s) else math.nan,
                    "slope_max": float(s.max()) if len(s) else math.nan,
                    "slope_std": float(s.std(ddof=1)) if len(s) > 1 else math.nan,
                    "slope_inner": float(g["slope_inner"].mean()),  # NaN-skipping mean
                    "seeds": int(len(g)), "edge_rows": int(g["edge_rows"].sum()),
                    "low_edge_rows": int(g["low_edge_rows"].sum()),
                    "rows": int(g["n_rows"].sum()),
                    "shape": ("edge-bound" if g["edge_rows"].sum() > g["n_rows"].sum() / 2
                              else shape_word(mean))})
    return pd.DataFrame(out)


def shape_word(slope: float) -> str:
    if not math.isfinite(slope):
        return "undetermined"
    if slope <= DIAGONAL:
        return "diagonal"
    if abs(slope) < SEPARABLE:
        return "separable"
    if slope >= -DIAGONAL:
        return "rising (best λ grows with lr)"
    return "in between"


def linear_summary(configs: pd.DataFrame) -> pd.DataFrame:
    """The linear preset's statistic: ``heatmap_stats`` (log10 slope = log2 slope) per group."""
    from wdlab.report.reading import heatmap_stats

    st = heatmap_stats(configs, "test_mse")
    st["label"] = [LABELS.get((o, r), f"{o}+{r}") for o, r in zip(st["optimizer"], st["regularizer"], strict=True)]
    st["shape"] = [shape_word(s) for s in st["slope"]]
    return st[["optimizer", "regularizer", "label", "slope", "edge_lrs", "n_lrs", "shape"]]


def reading(net: pd.DataFrame, linear: pd.DataFrame | None, meta: dict) -> list[str]:
    """The plain-language reading, generated from the two summaries."""
    paras = []
    bits = []
    for r in net.itertuples():
        spread = (f"seeds {r.slope_min:+.2f} to {r.slope_max:+.2f}" if r.seeds > 1
                  else "one seed")
        inner = (f", {r.slope_inner:+.2f} over the rows off the edge"
                 if math.isfinite(r.slope_inner) else "")
        bits.append(f"{r.label} {r.slope:+.2f} ({spread}; {r.edge_rows}/{r.rows} lr rows with "
                    f"the optimum on the λ grid's edge{inner}) → {r.shape}")
    paras.append(f"On the MLP ({meta['setting']}), the slope of log₂ best λ against log₂ lr "
                 f"(−1 = diagonal, 0 = separable) is: " + "; ".join(bits) + ".")
    by = {(r.optimizer, r.regularizer): r for r in net.itertuples()}
    verdict = []
    for ck, dk in COMPARE:
        if ck not in by or dk not in by:
            continue
        c, d = by[ck], by[dk]
        if c.shape == "diagonal" and d.shape == "separable":
            verdict.append(f"{c.label} vs {d.label}: the paper's picture appears (diagonal "
                           f"coupled, separable decoupled)")
        else:
            verdict.append(f"{c.label} vs {d.label}: the paper's picture does NOT appear "
                           f"cleanly (coupled {c.shape}, decoupled {d.shape})")
    paras.append("; ".join(verdict) + ".")
    edge = int(net["edge_rows"].sum())
    if edge:
        low = int(net["low_edge_rows"].sum())
        paras.append(f"{edge} of {int(net['rows'].sum())} (lr row, seed) optima sit at the "
                     f"smallest or largest λ of the grid ({low} at the smallest: there no decay "
                     f"helped within the {meta['steps']}-step budget), so the slope over all "
                     f"rows is partly set by the grid; the slope over the rows off the edge is "
                     f"the measurement.")
    if linear is not None and len(linear):
        lin = "; ".join(f"{r.label} {r.slope:+.2f} → {r.shape}" for r in linear.itertuples())
        paras.append(f"The linear preset adamw-fig2 (least squares, full batch) gives: {lin}. "
                     f"The two differ in kind: in the linear model coupled L2 and decoupled "
                     f"decay of SGD differ only by the momentum factor, while the net adds "
                     f"minibatch noise, a cosine schedule and a non-convex loss.")
    return paras


def fig2net_figure(configs: pd.DataFrame, top: int = 10):
    """2 x 3 heatmaps of the mean final test error (%) over lr x lam; top-10 cells circled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    from wdlab.figdata import ok_rows

    ok = ok_rows(configs)
    for ax, (opt, reg) in zip(axes.ravel(), LABELS, strict=True):
        part = ok[(ok["optimizer"] == opt) & (ok["regularizer"] == reg)]
        ax.set_title(LABELS[(opt, reg)], fontsize=10)
        if part.empty:
            ax.set_axis_off()
            continue
        err = 100 * (1 - part.pivot_table(index="lam", columns="lr", values="test_accuracy",
                                          aggfunc="mean"))  # (n_lam, n_lr)
        im = ax.imshow(err.to_numpy(), origin="lower", cmap="viridis_r", aspect="auto",
                       vmin=float(np.nanmin(err.to_numpy())),
                       vmax=min(float(np.nanmax(err.to_numpy())), 60.0))
        flat = err.stack().sort_values().iloc[:top]
        li = {v: i for i, v in enumerate(err.index)}
        ci = {v: j for j, v in enumerate(err.columns)}
        for (lam, lr), _ in flat.items():
            ax.scatter(ci[lr], li[lam], s=160, facecolors="none", edgecolors="white", lw=1.5)
        ax.set_xticks(range(len(err.columns)), [f"{math.log2(v):.0f}" for v in err.columns],
                      fontsize=8)
        ax.set_yticks(range(len(err.index)), [f"{math.log2(v):.1f}" for v in err.index],
                      fontsize=8)
        ax.set_xlabel("log₂ lr", fontsize=9)
        ax.set_ylabel("log₂ λ", fontsize=9)
        fig.colorbar(im, ax=ax, label="test error %")
    fig.suptitle("MLP on digits, cosine, minibatch: test error over lr × λ (top-10 circled)",
                 fontsize=11)
    fig.tight_layout()
    return fig


def write_fig2net_views(out: Path | str, *, linear_dir: Path | str | None = None) -> dict:
    """From the finished sub-runs ``out/sgd`` and ``out/adam`` (and ``out/linear``): the tables
    fig2net_slopes (per seed) and fig2net_summary, figures/fig2net.png, fig2net.html and
    fig2net.json (the reading and the numbers)."""

    from wdlab.demos.page import figure_png, page, section, write_tables
    from wdlab.report.html import esc
    from wdlab.store import read_table, write_json, write_table, write_text

    out = Path(out)
    configs = pd.concat([read_table(out / o / "configs") for o in ("sgd", "adam")],
                        ignore_index=True)
    per_seed = grid_slopes(configs)
    net = slope_summary(per_seed)
    linear = None
    lin_dir = Path(linear_dir) if linear_dir is not None else out / "linear"
    if (lin_dir / "configs.parquet").is_file():
        linear = linear_summary(read_table(lin_dir / "configs"))
        write_table(out / "fig2net_linear", linear)
    c0 = configs.iloc[0]
    n, bs, epochs = int(c0["n_train"]), int(c0["batch_size"]), int(c0["epochs"])
    steps = epochs * math.ceil(n / (bs or n))
    meta = {"steps": steps,
            "setting": (f"hidden {c0['hidden']}, {n} training rows, {epochs} epochs of "
                        f"batches of {bs} = {steps} steps, cosine, "
                        f"{int(configs['data_seed'].nunique())} seeds")}
    paras = reading(net, linear, meta)
    write_tables(out, {"fig2net_slopes": per_seed, "fig2net_summary": net})
    png = figure_png(fig2net_figure(configs), out / "figures" / "fig2net.png")
    rows = "".join(f"<tr><td>{esc(r.label)}</td><td>{r.slope:+.2f}</td><td>{r.slope_min:+.2f}"
                   f" … {r.slope_max:+.2f}</td><td>{r.edge_rows}/{r.rows}</td>"
                   f"<td>{esc(r.shape)}</td></tr>" for r in net.itertuples())
    body = section("fig2net", "Loshchilov & Hutter Fig. 2 on an MLP", paras=paras,
                   head=("optimizer", "slope log₂ best λ vs log₂ lr", "over seeds",
                         "edge rows", "shape"),
                   rows=rows, png=png, alt="test error heatmaps")
    write_text(out / f"{NAME}.html", page("wdlab adamw-fig2-net", body))
    result = {"reading": paras, "setting": meta["setting"],
              "net": net.replace({np.nan: None}).to_dict("records"),
              "linear": None if linear is None else linear.replace({np.nan: None}).to_dict("records")}
    write_json(out / f"{NAME}.json", result)
    return result


def run_fig2net(*, out: Path | str | None = None, force: bool = False, report: bool = True,
                reduced: bool = False, normalize: bool = False, linear: bool = True,
                seeds: int | None = None, **train: Any) -> Path:
    """Run the two nets sweeps (``out/sgd``, ``out/adam``), the linear preset (``out/linear``,
    with ``linear``), their reports (with ``report``) and the fig2net views in ``out``."""
    from wdlab.demos.figures import run_preset
    from wdlab.pipeline import finish_views, refresh_files
    from wdlab.store import default_run_dir
    from wdlab.sweep import run_sweep

    out = Path(out) if out is not None else default_run_dir(NAME)
    specs = fig2net_specs(reduced=reduced, normalize=normalize, seeds=seeds, **train)
    for opt, spec in specs.items():
        path = Path(run_sweep(spec, out / opt, force=force, report=False))
        if report:  # the nets report page; without it, no linear static figures
            finish_views(path, report=True)
        else:
            refresh_files(path)
    if linear:
        run_preset("adamw-fig2", out=out / "linear", force=force, report=False, reduced=reduced,
                   device=train.get("device"))
    write_fig2net_views(out)
    return out
