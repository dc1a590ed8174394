"""``wdlab reproduce equilibrium``: Kosson, Messmer & Jaggi (ICML 2024), "Rotational
equilibrium: how weight decay balances learning across neural networks" (arXiv 2305.17212).

Their random-walk model for AdamW (torch convention: w <- w - eta (u_t + lam w), u_t
Adam's normalised update) predicts, for a weight vector w of C entries (one neuron's
incoming weights, a row of the weight matrix), after about 1/(eta lam) steps:

    ||w||   -> sqrt(eta C / (2 lam))                         (equilibrium norm)
    angle(w_t, w_{t+1}) -> sqrt(2 eta lam (1 - beta1) / (1 + beta1))   (per step, radians)

Conditions of the model: the vector is scale-invariant (the loss does not depend on ||w||,
as with a normalisation after it, so the gradient is orthogonal to w), successive updates
are uncorrelated (a random walk: stochastic gradients dominated by noise), Adam's update has
E||u||^2 ~ C (each entry of m/sqrt(v) of size ~1), eta lam << 1, and steady state is reached
(t >> 1/(eta lam)).

Ours: a plain ReLU MLP 64 -> 32 -> 10 on a ``digits`` subset, full batch, trained by AdamW
(betas 0.9, 0.999, constant lr) over an lr x lam grid with seeds, as ONE ``wdlab.nets.train``
call, with parameter snapshots (``snapshot_epochs``) at pairs of consecutive steps (full
batch: one step per epoch). From them, per neuron and snapshot: ||w_i|| / prediction and the
angle between w_i(t) and w_i(t+1) / prediction; per (config, layer, step) the median and
the 10-90% spread over neurons, against eta lam t. Where it must fail, and why:

- neither layer is scale-invariant (no normalisation): a ReLU neuron's output scales with
  ||w||, so the gradient has a radial part and the loss, not only the decay, sets the norm;
- full batch: the updates of successive steps are correlated, not a random walk;
- eta lam t < ~3: not yet at equilibrium (the norm still carries its initialisation).

It is not a sweep spec: the nets sweep records per-tensor norms, not parameters, and the
angular update needs parameters at consecutive steps (``nets.train(snapshot_epochs=)``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

NAME = "equilibrium"
SETTING: dict[str, Any] = {
    "hidden": [32], "test_size": 0.8, "lrs": [2.0 ** -8, 2.0 ** -6],
    "lams": [2.0 ** -2, 2.0 ** 0, 2.0 ** 2], "seeds": [0, 1], "epochs": 600,
    "beta1": 0.9, "beta2": 0.999, "points": 12,
}
REDUCED: dict[str, Any] = {"hidden": [8], "lrs": [2.0 ** -6], "lams": [1.0, 4.0],
                           "seeds": [0], "epochs": 30, "points": 4}


def predicted_norm(lr, lam, C) -> np.ndarray:
    """sqrt(lr C / (2 lam)): AdamW's equilibrium norm of a C-entry vector (Kosson et al.)."""
    return np.sqrt(np.asarray(lr, float) * C / (2 * np.asarray(lam, float)))


def predicted_angle(lr, lam, beta1) -> np.ndarray:
    """sqrt(2 lr lam (1 - beta1) / (1 + beta1)) radians per step (Kosson et al.)."""
    b = np.asarray(beta1, float)
    return np.sqrt(2 * np.asarray(lr, float) * np.asarray(lam, float) * (1 - b) / (1 + b))


def row_angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle (radians) between matching rows of a and b: (..., n, C) -> (..., n)."""
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-300)
    return torch.arccos(cos.clamp(-1.0, 1.0))


def snapshot_pairs(epochs: int, points: int) -> list[int]:
    """Log-spaced steps t in [1, epochs - 1]; the snapshots are t and t + 1."""
    ts = np.unique(np.round(np.geomspace(1, epochs - 1, points)).astype(int))
    return [int(t) for t in ts]


def measure(snaps: torch.Tensor, snap_epochs: list[int], layout, configs: pd.DataFrame,
            beta1: float) -> pd.DataFrame:
    """Per (config, layer, step t): median and 10/90% quantiles over the layer's neurons of
    ||w_i(t)|| / predicted_norm and angle(w_i(t), w_i(t+1)) / predicted_angle.

    snaps: (S, K, P) parameters after ``snap_epochs``; configs: K rows with lr, lam."""
    index = {e: i for i, e in enumerate(snap_epochs)}
    rows = []
    lr, lam = configs["lr"].to_numpy(float), configs["lam"].to_numpy(float)
    for name in layout.names:
        if not name.endswith("weight"):
            continue
        for t in [e for e in snap_epochs if e + 1 in index]:
            w0 = layout.view(snaps[index[t]], name).double()  # (K, n, C)
            w1 = layout.view(snaps[index[t + 1]], name).double()  # (K, n, C)
            C = w0.shape[-1]
            norm = w0.norm(dim=-1).numpy() / predicted_norm(lr, lam, C)[:, None]  # (K, n)
            ang = row_angles(w0, w1).numpy() / predicted_angle(lr, lam, beta1)[:, None]  # (K, n)
            for k in range(len(configs)):
                rows.append({"config": k, "lr": lr[k], "lam": lam[k],
                             "seed": int(configs["seed"].iloc[k]), "layer": name, "C": C,
                             "step": t, "lr_lam_t": lr[k] * lam[k] * t,
                             "norm_ratio": float(np.median(norm[k])),
                             "norm_p10": float(np.quantile(norm[k], 0.1)),
                             "norm_p90": float(np.quantile(norm[k], 0.9)),
                             "angle_ratio": float(np.median(ang[k])),
                             "angle_p10": float(np.quantile(ang[k], 0.1)),
                             "angle_p90": float(np.quantile(ang[k], 0.9))})
    return pd.DataFrame(rows)


def summary(measured: pd.DataFrame, settled: float = 3.0) -> pd.DataFrame:
    """Per layer, over the configs whose last measured step has lr lam t >= ``settled``:
    the median over configs of the medians, and the range of the 10-90% neuron spreads."""
    last = measured[measured["step"] == measured["step"].max()]
    out = []
    for layer, g in last.groupby("layer", sort=False):
        s = g[g["lr_lam_t"] >= settled]
        out.append({"layer": layer, "C": int(g["C"].iloc[0]), "configs": len(g),
                    "settled": len(s),
                    "norm_ratio": float(s["norm_ratio"].median()) if len(s) else math.nan,
                    "norm_lo": float(s["norm_p10"].min()) if len(s) else math.nan,
                    "norm_hi": float(s["norm_p90"].max()) if len(s) else math.nan,
                    "angle_ratio": float(s["angle_ratio"].median()) if len(s) else math.nan,
                    "angle_lo": float(s["angle_p10"].min()) if len(s) else math.nan,
                    "angle_hi": float(s["angle_p90"].max()) if len(s) else math.nan,
                    "unsettled_norm_ratio": float(g[g["lr_lam_t"] < settled]["norm_ratio"].median())
                    if (g["lr_lam_t"] < settled).any() else math.nan})
    return pd.DataFrame(out)


def _within(v: float, tol: float = 0.25) -> bool:
    return math.isfinite(v) and abs(v - 1) <= tol


def reading(summ: pd.DataFrame, meta: dict) -> list[str]:
    """The plain-language reading, generated from ``summary``."""
    paras = [f"{meta['setting']} Ratios are measured / predicted (1 = the paper's equilibrium),"
             f" median over configurations with lr·λ·t ≥ 3 at the last measured step "
             f"t = {meta['last']}, [10%–90% of neurons]."]
    for r in summ.itertuples():
        if not r.settled:
            paras.append(f"Layer {r.layer} (C = {r.C}): no configuration reached lr·λ·t ≥ 3; "
                         f"the prediction is not yet testable there.")
            continue
        ok_n, ok_a = _within(r.norm_ratio), _within(r.angle_ratio)
        s = (f"Layer {r.layer} (C = {r.C}, {r.settled}/{r.configs} settled): ‖w‖ ratio "
             f"{r.norm_ratio:.2f} [{r.norm_lo:.2f}–{r.norm_hi:.2f}], angular update ratio "
             f"{r.angle_ratio:.2f} [{r.angle_lo:.2f}–{r.angle_hi:.2f}]: the norm "
             f"{'matches within 25%' if ok_n else 'does NOT match'}, the angle "
             f"{'matches within 25%' if ok_a else 'does NOT match'}.")
        if math.isfinite(r.unsettled_norm_ratio):
            s += (f" Configurations with lr·λ·t < 3 sit at {r.unsettled_norm_ratio:.2f}: not "
                  f"yet at equilibrium.")
        paras.append(s)
    if not all(_within(r.norm_ratio) and _within(r.angle_ratio) for r in summ.itertuples()
               if r.settled):
        paras.append("Where it fails, the model's conditions fail: this plain ReLU MLP has no "
                     "normalisation, so no weight vector is scale-invariant (the loss gradient "
                     "has a radial part that pulls the norm away from the decay-update balance),"
                     " and full-batch updates are correlated from step to step rather than a "
                     "random walk; the output layer, whose scale sets the logits, is the least "
                     "scale-invariant of all.")
    small = [r for r in summ.itertuples() if r.settled and r.angle_ratio < 0.5]
    if small:
        paras.append(f"The angular updates are {1 / max(r.angle_ratio for r in small):.0f}× or "
                     f"more below the prediction in {len(small)} layer(s): the model assumes "
                     f"‖u‖² ≈ C per step (Adam entries of size ~1 from noisy gradients); with "
                     f"full-batch gradients that shrink as the loss converges the steps are far "
                     f"smaller."
                     + (" Yet the norms sit above the prediction: the balance that sets them is "
                        "not decay vs random-walk growth but decay vs the radial part of the loss"
                        " gradient, which a layer that is not scale-invariant has."
                        if all(r.norm_ratio > 1 for r in small) else ""))
    return paras


def equilibrium_figure(measured: pd.DataFrame):
    """Median ratio over neurons vs lr lam t, per layer (colour) and config; 1 = prediction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, layer in enumerate(measured["layer"].unique()):
        for k, g in measured[measured["layer"] == layer].groupby("config"):
            g = g.sort_values("step")
            kw = {"color": colors[j % len(colors)], "lw": 1, "alpha": 0.7,
                  "label": layer if k == 0 else None}
            axes[0].plot(g["lr_lam_t"], g["norm_ratio"], **kw)
            axes[1].plot(g["lr_lam_t"], g["angle_ratio"], **kw)
    for ax, what in zip(axes, ("‖w_i‖ / √(lr·C/(2λ))",
                               "angle per step / √(2·lr·λ·(1−β₁)/(1+β₁))"), strict=True):
        ax.axhline(1.0, color="k", ls=":")
        ax.axvline(1.0, color="grey", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("lr·λ·t (steps in units of 1/(lr·λ))")
        ax.set_ylabel(what + " (median neuron)", fontsize=8)
        ax.legend(fontsize=8)
    fig.suptitle("Rotational equilibrium under AdamW: measured / predicted, one line per "
                 "(lr, λ, seed)", fontsize=10)
    fig.tight_layout()
    return fig


def run_equilibrium(*, out: Path | str | None = None, force: bool = False, report: bool = True,
                    reduced: bool = False, epochs: int | None = None, device: str = "cpu",
                    dtype: str = "float32", **_: Any) -> Path:
    """Train the grid as one nets.train call, measure, and write the run directory: the
    ``equilibrium_steps`` and ``equilibrium`` tables, figures/equilibrium.png,
    equilibrium.html, equilibrium.json and manifest.json (provenance)."""

    from wdlab.demos.page import figure_png, page, section, write_tables
    from wdlab.nets import MLP, train
    from wdlab.nets.datasets import load
    from wdlab.report.html import esc
    from wdlab.store import (
        RunDir,
        default_run_dir,
        provenance,
        write_json,
        write_text,
    )

    s = {**SETTING, **(REDUCED if reduced else {})}
    if epochs is not None:
        if int(epochs) < 3:
            raise ValueError(f"epochs: equilibrium needs at least 3 steps, got {epochs}")
        s["epochs"] = int(epochs)
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype!r}")
    path = Path(out) if out is not None else default_run_dir(NAME)
    run = RunDir(path, force=force)  # refuses a completed run before training
    run.create()
    d = load("digits", test_size=s["test_size"], seed=0)
    grid = [(lr, lam, seed) for lr in s["lrs"] for lam in s["lams"] for seed in s["seeds"]]
    configs = pd.DataFrame(grid, columns=["lr", "lam", "seed"])
    pairs = snapshot_pairs(s["epochs"], s["points"])
    snaps = sorted({e for t in pairs for e in (t, t + 1)})
    model = MLP(d.X_train.shape[1], s["hidden"], d.n_classes)
    res = train(model, d.X_train, d.y_train, X_test=d.X_test, y_test=d.y_test,
                optimizer="adamw", regularizer="decoupled", lam=configs["lam"].tolist(),
                lr=configs["lr"].tolist(), beta1=s["beta1"], beta2=s["beta2"],
                seed=configs["seed"].tolist(), epochs=s["epochs"], batch_size=None,
                snapshot_epochs=snaps, record_epochs=[0, s["epochs"]],
                dtype=getattr(torch, dtype), device=device)
    measured = measure(res.extra["snapshots"], res.extra["snapshot_epochs"], res.layout, configs,
                       s["beta1"])
    summ = summary(measured)
    configs["test_accuracy"] = res.final("test_accuracy").numpy()
    meta = {"last": int(measured["step"].max()),
            "setting": (f"ReLU MLP 64 → {s['hidden']} → 10 on {d.n_train} digits rows, full "
                        f"batch, AdamW betas ({s['beta1']}, {s['beta2']}), {s['epochs']} steps, "
                        f"lr ∈ {{{', '.join(f'{v:g}' for v in s['lrs'])}}} × λ ∈ "
                        f"{{{', '.join(f'{v:g}' for v in s['lams'])}}} × {len(s['seeds'])} seeds;"
                        f" final test accuracy {configs['test_accuracy'].min():.3f}–"
                        f"{configs['test_accuracy'].max():.3f}.")}
    paras = reading(summ, meta)
    write_tables(path, {"equilibrium_configs": configs, "equilibrium_steps": measured,
                        "equilibrium": summ})
    png = figure_png(equilibrium_figure(measured), path / "figures" / "equilibrium.png")
    rows = "".join(f"<tr><td>{esc(r.layer)}</td><td>{r.C}</td><td>{r.settled}/{r.configs}</td>"
                   f"<td>{r.norm_ratio:.3g} [{r.norm_lo:.3g}–{r.norm_hi:.3g}]</td>"
                   f"<td>{r.angle_ratio:.3g} [{r.angle_lo:.3g}–{r.angle_hi:.3g}]</td></tr>"
                   for r in summ.itertuples())
    if report:
        body = section("equilibrium", "Rotational equilibrium (Kosson et al. 2024)",
                       paras=paras, head=("layer", "C", "settled", "‖w‖ ratio", "angle ratio"),
                       rows=rows, png=png, alt="measured over predicted")
        write_text(path / f"{NAME}.html", page("wdlab equilibrium", body))
    result = {"reading": paras, "setting": meta["setting"],
              "summary": summ.replace({np.nan: None}).to_dict("records")}
    write_json(path / f"{NAME}.json", result)
    run.manifest({"kind": "reproduce", "status": "complete", "config": {"name": NAME, **s},
                  "provenance": provenance(device),
                  "files": sorted(str(p.relative_to(path)) for p in path.rglob("*")
                                  if p.is_file() and not p.name.startswith("."))})
    return path
