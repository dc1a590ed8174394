"""The plain-language reading of a run, generated from its numbers, and the lr x lam
shape statistics behind it (is the good region a diagonal or separable?)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from wdlab.plots import _groups, _in_group, _ok, best_lr_slice, group_label


def _g(v: float) -> str:
    return f"{v:.3g}"


def heatmap_stats(configs: pd.DataFrame, metric: str = "test_mse", top: int = 10) -> pd.DataFrame:
    """Per optimizer/regularizer group, the shape of the good region over lr x lam.

    Columns: ``best_lr, best_lam, best_mse``; ``slope``: least-squares slope of log10(argmin
    lam) on log10(lr) over the lrs whose best lam is > 0 (about -1 for a diagonal valley
    lr*lam = const, about 0 when the best lam does not depend on lr, i.e. separable);
    ``top_corr``: correlation of log lr and log lam over the ``top`` best cells with lam > 0;
    ``n_lr_top``/``n_lam_top``: distinct lr/lam among them; ``diverged``: cells where every
    seed diverged.
    """
    rows = []
    for g in _groups(configs):
        part = _in_group(configs, g)
        full = part.groupby(["lam", "lr"]).size()
        mean = _ok(part).groupby(["lam", "lr"])[metric].mean().reindex(full.index)
        grid = mean.unstack("lr")  # (n_lam, n_lr)
        best_by_lr = grid.dropna(axis=1, how="all").idxmin(axis=0)  # lr -> argmin lam
        pos = best_by_lr[best_by_lr > 0]
        slope = np.nan
        if len(pos) >= 3:
            x, y = np.log10(pos.index.to_numpy(float)), np.log10(pos.to_numpy(float))
            slope = float(np.polyfit(x, y, 1)[0]) if np.ptp(x) > 0 else np.nan
        cells = mean.dropna().sort_values().iloc[:top].reset_index()
        cp = cells[cells["lam"] > 0]
        corr = np.nan
        if len(cp) >= 3 and cp["lam"].nunique() > 1 and cp["lr"].nunique() > 1:
            corr = float(np.corrcoef(np.log10(cp["lr"]), np.log10(cp["lam"]))[0, 1])
        best = cells.iloc[0] if len(cells) else None
        rows.append({"optimizer": g[0], "regularizer": g[1],
                     "best_lr": best["lr"] if best is not None else np.nan,
                     "best_lam": best["lam"] if best is not None else np.nan,
                     "best_mse": best[metric] if best is not None else np.nan,
                     "slope": slope, "top_corr": corr,
                     "n_lr_top": int(cells["lr"].nunique()), "n_lam_top": int(cells["lam"].nunique()),
                     "diverged": int(mean.isna().sum())})
    return pd.DataFrame(rows)


def _group_sentence(ok: pd.DataFrame, group: tuple[str, str], by: str) -> str | None:
    rows = best_lr_slice(_in_group(ok, group), by)
    if not len(rows):
        return None
    score = rows.groupby("lam")[list(dict.fromkeys([by, "test_mse"]))].mean()
    best_lam = float(score[by].idxmin())
    best_test = float(score.loc[best_lam, "test_mse"])
    base_lam = float(score.index.min())
    base_test = float(score.loc[base_lam, "test_mse"])
    name = group_label(*group) if group != ("", "") else "this run"
    how = "" if by == "test_mse" else f" (chosen by {by.replace('_mse', '')} error)"
    lr = f" at lr = {_g(rows['lr'].iloc[0])}" if "lr" in ok and ok["lr"].nunique() > 1 else ""
    if best_lam == base_lam:
        return (f"For {name}{lr}, no λ above {_g(base_lam)} helped: the smallest λ gave the "
                f"lowest{'' if by == 'test_mse' else ' validation'} error, test MSE {_g(base_test)}.")
    change = "cut" if best_test < base_test else "raised"
    return (f"For {name}{lr}, λ = {_g(best_lam)}{how} {change} the mean test MSE from "
            f"{_g(base_test)} at λ = {_g(base_lam)} to {_g(best_test)}.")


def reading(configs: pd.DataFrame, *, selection: pd.DataFrame | None = None,
            ridge: pd.DataFrame | None = None) -> str:
    """One paragraph, in plain words, of what the numbers in ``configs`` say."""
    ok = _ok(configs)
    n, n_ok = len(configs), len(ok)
    out = []
    groups = _groups(ok) if n_ok else []
    head = f"This run trained {n} configuration{'s' if n != 1 else ''}"
    if len(groups) > 1:
        head += f" in {len(groups)} optimizer/regularizer groups"
    head += "."
    if n - n_ok:
        head += f" {n - n_ok} diverged and are left out of every average"
        if "lr" in configs:
            bad = configs.loc[configs["status"] != "ok", "lr"]
            head += f" (lr from {_g(bad.min())} to {_g(bad.max())})"
        head += "."
    out.append(head)
    if not n_ok:
        return " ".join(out + ["No configuration finished, so there is nothing to compare."])
    by = "val_mse" if "val_mse" in ok and ok["val_mse"].notna().any() else "test_mse"
    for g in groups[:5]:
        s = _group_sentence(ok, g, by)
        if s:
            out.append(s)
    if selection is not None and len(selection) and "ridge_lam" in selection:
        ridge_rows = selection.dropna(subset=["ridge_lam"]).drop_duplicates(
            ["optimizer", "regularizer"])
        for row in ridge_rows.itertuples(index=False):
            out.append(f"The closed-form ridge optimum for {group_label(row.optimizer, row.regularizer)}"
                       f" is λ = {_g(row.ridge_lam)} with test MSE {_g(row.ridge_test_mse)}.")
    elif ridge is not None and len(ridge):
        for reg, part in ridge.groupby("regularizer"):
            best = part.loc[part["test_mse"].idxmin()]
            out.append(f"The exact ridge solution ({reg} convention) is best at λ ≈ "
                       f"{_g(best['lam'])}, test MSE {_g(best['test_mse'])}.")
    if {"n_train", "n_features", "init_scale"} <= set(ok) and ok["n_train"].nunique() == 1:
        n_tr, d = int(ok["n_train"].iloc[0]), int(ok["n_features"].iloc[0])
        scale = float(ok["init_scale"].iloc[0])
        zero = ok.loc[ok["lam"] == ok["lam"].min(), "test_mse"].mean()
        if n_tr < d and scale > 0:
            left = scale**2 * (d - n_tr)
            share = ("about the whole" if left >= 0.8 * zero else
                     "most" if left >= 0.5 * zero else "part")
            out.append(
                f"With n_train = {n_tr} < n_features = {d}, gradient steps never move the part of "
                f"the initial weights in the null space of the training matrix; its expected "
                f"contribution to test MSE is init_scale²·(d − n) = {_g(left)}, {share} of the "
                f"test MSE {_g(zero)} at λ = {_g(ok['lam'].min())}. Only decay shrinks it.")
    if "lr" in configs and configs["lr"].nunique() > 1 and configs["lam"].nunique() > 1:
        stats = heatmap_stats(configs)
        for r in stats.itertuples(index=False):
            if np.isfinite(r.slope):
                shape = ("a diagonal (best λ falls as lr grows)" if r.slope <= -0.4 else
                         "a diagonal (best λ grows with lr)" if r.slope >= 0.4 else
                         "separable (best λ barely depends on lr)" if abs(r.slope) < 0.25 else
                         "in between")
                out.append(f"On the lr × λ grid, {group_label(r.optimizer, r.regularizer)} is "
                           f"best at lr = {_g(r.best_lr)}, λ = {_g(r.best_lam)} (test MSE "
                           f"{_g(r.best_mse)}); the slope of log best-λ against log lr is "
                           f"{r.slope:.2f}, {shape}.")
    return " ".join(out)
