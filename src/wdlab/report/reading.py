"""The plain-language reading of a run, generated from its numbers, and the lr x lam
shape statistics behind it (is the good region a diagonal or separable?)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from wdlab.figdata import best_lr_slice, group_label, group_list, in_group, lr_note, ok_rows


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
    for g in group_list(configs):
        part = in_group(configs, g)
        full = part.groupby(["lam", "lr"]).size()
        mean = ok_rows(part).groupby(["lam", "lr"])[metric].mean().reindex(full.index)
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
        lam_grid = grid.index.to_numpy(float)
        at_edge = best_by_lr.isin([lam_grid.min(), lam_grid.max()]) if len(lam_grid) else []
        rows.append({"edge_lrs": int(np.sum(at_edge)), "n_lrs": int(len(best_by_lr)),"optimizer": g[0], "regularizer": g[1],
                     "best_lr": best["lr"] if best is not None else np.nan,
                     "best_lam": best["lam"] if best is not None else np.nan,
                     "best_mse": best[metric] if best is not None else np.nan,
                     "slope": slope, "top_corr": corr,
                     "n_lr_top": int(cells["lr"].nunique()), "n_lam_top": int(cells["lam"].nunique()),
                     "diverged": int(mean.isna().sum())})
    return pd.DataFrame(rows)


def _group_sentence(ok: pd.DataFrame, group: tuple[str, str], by: str) -> str | None:
    rows = best_lr_slice(in_group(ok, group), by)
    if not len(rows):
        return None
    score = rows.groupby("lam")[list(dict.fromkeys([by, "test_mse"]))].mean()
    best_lam = float(score[by].idxmin())
    best_test = float(score.loc[best_lam, "test_mse"])
    base_lam = float(score.index.min())
    base_test = float(score.loc[base_lam, "test_mse"])
    name = group_label(*group) if group != ("", "") else "this run"
    how = "" if by == "test_mse" else f" (chosen by {by.replace('_mse', '')} error)"
    lr = lr_note(rows, ok)  # the figures' own note: the page never disagrees with them
    edge = ""
    if best_lam == float(score.index.max()) and len(score) > 1:
        edge = " (the largest λ of the grid: the optimum may lie beyond it)"
    if best_lam == base_lam:
        return (f"For {name}{lr}, no λ above {_g(base_lam)} helped: the smallest λ gave the "
                f"lowest{'' if by == 'test_mse' else ' validation'} error, test MSE {_g(base_test)}.")
    change = "cut" if best_test < base_test else "raised"
    return (f"For {name}{lr}, λ = {_g(best_lam)}{edge}{how} {change} the mean test MSE from "
            f"{_g(base_test)} at λ = {_g(base_lam)} to {_g(best_test)}.")


def _where(lams: np.ndarray, values: np.ndarray, rtol: float = 1e-3) -> str:
    """How the minimum of a curve over lams sits: at an edge of the grid, and/or on a flat
    stretch (within ``rtol`` of the minimum over more than a decade); "" if neither."""
    ok = np.isfinite(values)
    lams, values = lams[ok], values[ok]
    if len(lams) < 2:
        return ""
    order = np.argsort(lams)
    lams, values = lams[order], values[order]
    b = int(np.argmin(values))
    bits = []
    if b == len(lams) - 1:
        bits.append("at the largest λ of the grid")
    elif b == 0:
        bits.append("at the smallest λ of the grid")
    near = values <= values[b] * (1 + rtol)
    lo, hi = b, b
    while lo > 0 and near[lo - 1]:
        lo -= 1
    while hi < len(lams) - 1 and near[hi + 1]:
        hi += 1
    if lams[lo] > 0 and lams[hi] / lams[lo] >= 10:
        bits.append(f"on a flat stretch: within {rtol:.1%} of its minimum for λ from "
                    f"{_g(lams[lo])} to {_g(lams[hi])}")
    return " (" + "; ".join(bits) + ")" if bits else ""


def _size_sentence(ok: pd.DataFrame, selection: pd.DataFrame | None) -> str | None:
    """Runs over n_train (double descent): where the smallest-λ test MSE peaks, and what
    choosing λ by validation at each size gives there, trained and in closed form."""
    ratio = ok["n_train"] / ok["n_features"]
    small = ok[ok["lam"] == ok["lam"].min()].assign(ratio=ratio).groupby("ratio")["test_mse"].mean()
    if not len(small):
        return None
    peak = float(small.idxmax())
    text = (f"At the smallest λ ({_g(ok['lam'].min())}) the test MSE peaks at n_train / "
            f"n_features = {_g(peak)} ({_g(small.max())}).")
    if selection is not None and len(selection) and "n_train" in selection:
        n = int(round(peak * float(ok["n_features"].iloc[0])))
        row = selection[selection["n_train"] == n]
        if len(row):
            r = row.iloc[0]
            text += (f" Choosing λ by validation at that size gives test MSE "
                     f"{_g(r['best_test_mse'])} trained (λ = {_g(r['best_lam'])})")
            if np.isfinite(r.get("ridge_test_mse", np.nan)):
                text += (f" and {_g(r['ridge_test_mse'])} for the exact ridge solution "
                         f"(λ = {_g(r['ridge_lam'])}, chosen by the same validation rule)")
            text += "."
    return text


def reading(configs: pd.DataFrame, *, selection: pd.DataFrame | None = None,
            ridge: pd.DataFrame | None = None) -> str:
    """One paragraph, in plain words, of what the numbers in ``configs`` say."""
    ok = ok_rows(configs)
    n, n_ok = len(configs), len(ok)
    out = []
    groups = group_list(ok) if n_ok else []
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
    sizes = "n_train" in ok and ok["n_train"].nunique() > 1 and "n_features" in ok
    if sizes:
        s = _size_sentence(ok, selection)
        return " ".join(out + ([s] if s else []))
    for g in groups[:5]:
        s = _group_sentence(ok, g, by)
        if s:
            out.append(s)
    if selection is not None and len(selection) and "ridge_lam" in selection:
        ridge_rows = selection.dropna(subset=["ridge_lam"]).drop_duplicates(
            ["optimizer", "regularizer"])
        for row in ridge_rows.itertuples(index=False):
            where = ""
            if ridge is not None and len(ridge) and "val_mse" in ridge:
                part = ridge[ridge["regularizer"] == row.regularizer]
                where = _where(part["lam"].to_numpy(float), part["val_mse"].to_numpy(float))
            out.append(f"The closed-form ridge optimum for {group_label(row.optimizer, row.regularizer)}"
                       f", chosen by validation, is λ = {_g(row.ridge_lam)}{where} with test MSE "
                       f"{_g(row.ridge_test_mse)}.")
    elif ridge is not None and len(ridge):
        for reg, part in ridge.groupby("regularizer"):
            best = part.loc[part["test_mse"].idxmin()]
            where = _where(part["lam"].to_numpy(float), part["test_mse"].to_numpy(float))
            out.append(f"The exact ridge solution ({reg} convention) has its lowest test MSE, "
                       f"{_g(best['test_mse'])}, at λ ≈ {_g(best['lam'])}{where}.")
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
            if r.n_lrs and r.edge_lrs >= max(2, r.n_lrs / 2):
                out.append(f"On the lr × λ grid, {group_label(r.optimizer, r.regularizer)} has "
                           f"its best λ at an edge of the λ grid for {r.edge_lrs} of {r.n_lrs} "
                           "learning rates, so the grid cannot show how the best λ depends on "
                           "lr (widen the λ grid).")
            elif np.isfinite(r.slope):
                shape = ("a diagonal (best λ falls as lr grows)" if r.slope <= -0.4 else
                         "a diagonal (best λ grows with lr)" if r.slope >= 0.4 else
                         "separable (best λ barely depends on lr)" if abs(r.slope) < 0.25 else
                         "in between")
                out.append(f"On the lr × λ grid, {group_label(r.optimizer, r.regularizer)} is "
                           f"best at lr = {_g(r.best_lr)}, λ = {_g(r.best_lam)} (test MSE "
                           f"{_g(r.best_mse)}); the slope of log best-λ against log lr is "
                           f"{r.slope:.2f}, {shape}.")
    return " ".join(out)
