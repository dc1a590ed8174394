"""Statistics over seeds and model selection: best lam on validation, the 1-SE rule, ridge.

``summarize``: for every group of hyperparameters (all columns but the seeds), the mean,
standard deviation and 95% confidence half-width over its seeds of each metric,

    mean = (1/n) sum_i x_i,   std = sqrt(sum_i (x_i - mean)^2 / (n - 1)),
    ci95 = t_{0.975, n-1} * std / sqrt(n)                     (Student t),

over the configurations that did not diverge (``n_diverged`` counts the others, so no NaN of
a diverged run reaches a mean).

``select``: for every group but lam (an optimizer/regularizer group, with its lr, n_train,
...), the lam with the lowest mean validation error; the largest lam whose mean validation
error is within one standard error of that minimum (the 1-SE rule, Breiman et al. 1984;
Hastie, Tibshirani & Friedman 2009, Sec. 7.10); their test errors; and, for coupled L2 groups,
the closed-form ridge optimum chosen by the same validation rule. Only lams where no seed
diverged are eligible.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wdlab.conventions import COUPLED

#: Per-configuration metrics that are aggregated (those present in the table).
METRICS = ("train_mse", "val_mse", "test_mse", "penalty", "objective", "w_norm", "dist_to_ridge",
           "dist_to_limit", "val_mse_se",
           # nets (wdlab.sweep.nets_chunk)
           "train_loss", "val_loss", "test_loss", "train_accuracy", "val_accuracy",
           "test_accuracy", "val_loss_se", "val_accuracy_se")
#: Columns that are not hyperparameters: ids, seeds, the chunk, outcomes.
NOT_KEYS = frozenset({"config_id", "data_seed", "init_seed", "chunk", "status", "diverged_epoch",
                      "error", *METRICS})
#: Ridge keys: the closed form depends on the data and the (loss, penalty) convention only.
RIDGE_KEYS = ("loss", "regularizer", "n_train", "noise")


def group_keys(configs: pd.DataFrame) -> list[str]:
    """Hyperparameter columns of a configs table: every column but ids, seeds and outcomes."""
    return [c for c in configs.columns if c not in NOT_KEYS]


def t975(dof: np.ndarray) -> np.ndarray:
    """Student t 0.975 quantile for each number of degrees of freedom (nan where dof < 1).

    Integer dof up to 1000 come from a table of ``scipy.stats.t.ppf(0.975, dof)`` (the same
    bits; ``wdlab._t975``), so a sweep imports no scipy; other dof ask scipy.
    """
    from wdlab._t975 import T975

    dof = np.asarray(dof, dtype=np.float64)
    out = np.full(dof.shape, np.nan)
    ok = dof >= 1
    table = ok & (dof <= len(T975)) & (dof == np.floor(dof))
    out[table] = np.asarray(T975)[dof[table].astype(np.int64) - 1]
    rest = ok & ~table
    if rest.any():
        from scipy.stats import t as student_t

        out[rest] = student_t.ppf(0.975, dof[rest])
    return out


def summarize(configs: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and 95% CI over seeds per hyperparameter group (diverged runs excluded).

    Returns one row per group, in order of first appearance (config_id order), with the group
    keys, ``<metric>_mean/_std/_ci95`` for each metric, ``n_seeds`` (configurations in the
    group), ``n_ok`` and ``n_diverged`` (and ``n_failed`` when some chunk failed).
    """
    keys = group_keys(configs)
    metrics = [m for m in METRICS if m in configs.columns]
    ok = (configs["status"] == "ok").to_numpy()
    values = configs[metrics].astype("float64").where(np.repeat(ok[:, None], len(metrics), 1))
    frame = pd.concat([configs[keys], values], axis=1)
    frame["_ok"] = ok.astype(np.int64)
    frame["_div"] = (configs["status"] == "diverged").to_numpy().astype(np.int64)
    frame["_failed"] = (configs["status"] == "failed").to_numpy().astype(np.int64)
    grouped = frame.groupby(keys, dropna=False, sort=False)
    mean = grouped[metrics].mean()
    std = grouped[metrics].std(ddof=1)
    count = grouped[metrics].count()
    out = grouped.size().rename("n_seeds").to_frame()
    for m in metrics:
        n = count[m].to_numpy()
        out[f"{m}_mean"] = mean[m].to_numpy()
        out[f"{m}_std"] = np.where(n >= 2, std[m].to_numpy(), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{m}_ci95"] = t975(n - 1) * out[f"{m}_std"].to_numpy() / np.sqrt(n)
    out["n_ok"] = grouped["_ok"].sum().to_numpy()
    out["n_diverged"] = grouped["_div"].sum().to_numpy()
    if frame["_failed"].any():
        out["n_failed"] = grouped["_failed"].sum().to_numpy()
    out = out.reset_index()
    cols = keys + [c for c in out.columns if c not in keys and c != "n_seeds"] + ["n_seeds"]
    return out[cols]


def _one_se(lam: np.ndarray, val: np.ndarray, se: np.ndarray, test: np.ndarray,
            ok: np.ndarray) -> dict[str, float]:
    """Best and 1-SE lam of one group (lam ascending); ties go to the smaller lam."""
    nan = float("nan")
    res = dict(best_lam=nan, best_val_mse=nan, best_test_mse=nan, lam_1se=nan,
               val_mse_1se=nan, test_mse_1se=nan, oracle_lam=nan, oracle_test_mse=nan)
    idx = np.flatnonzero(ok & np.isfinite(val))
    if not len(idx):
        return res
    b = idx[np.argmin(val[idx])]
    threshold = val[b] + (se[b] if np.isfinite(se[b]) else 0.0)
    within = idx[val[idx] <= threshold]
    s = within[np.argmax(lam[within])]
    t_idx = idx[np.isfinite(test[idx])]
    res.update(best_lam=lam[b], best_val_mse=val[b], best_test_mse=test[b], lam_1se=lam[s],
               val_mse_1se=val[s], test_mse_1se=test[s])
    if len(t_idx):
        o = t_idx[np.argmin(test[t_idx])]
        res.update(oracle_lam=lam[o], oracle_test_mse=test[o])
    return res


#: Selection metrics other than val_mse: (test twin, sign: +1 lower is better, -1 higher).
SELECTION_METRICS = {"val_loss": ("test_loss", 1.0), "val_accuracy": ("test_accuracy", -1.0)}


def select(summary: pd.DataFrame, ridge: pd.DataFrame | None = None,
           metric: str = "val_mse") -> pd.DataFrame:
    """Model selection per group of hyperparameters other than lam, by ``metric``.

    ``metric`` is ``val_mse`` (linear, below), ``val_loss`` (nets, lower is better) or
    ``val_accuracy`` (higher is better): the same rules on ``sign * metric``, the result
    columns named after it (``best_val_loss``, ``best_test_accuracy``, ``val_accuracy_1se``,
    ...; ``selection_metric`` says which).
    """
    if metric == "val_mse":
        return _select_mse(summary, ridge)
    if metric not in SELECTION_METRICS:
        raise ValueError(f"selection.metric: unknown metric {metric!r}")
    test, sign = SELECTION_METRICS[metric]
    proxy = summary.copy()
    for src, dst in ((metric, "val_mse"), (test, "test_mse")):
        for stat in ("mean", "std", "ci95"):
            v = summary[f"{src}_{stat}"] if f"{src}_{stat}" in summary else np.nan
            proxy[f"{dst}_{stat}"] = v * sign if stat == "mean" else v
    se = f"{metric}_se_mean"
    if se in summary:
        proxy["val_mse_se_mean"] = summary[se]
    out = _select_mse(proxy, None)
    word = metric.removeprefix("val_")
    for c in ("best_val_mse", "best_test_mse", "val_mse_1se", "test_mse_1se", "oracle_test_mse"):
        out[c] = out[c] * sign
    out = out.drop(columns=[c for c in out.columns if c.startswith("ridge_")])
    out.columns = [c.replace("_mse", f"_{word}") for c in out.columns]
    out["selection_metric"] = metric
    return out


def _select_mse(summary: pd.DataFrame, ridge: pd.DataFrame | None = None) -> pd.DataFrame:
    """Model selection per group of hyperparameters other than lam.

    Columns: the group keys; ``n_lams``; ``best_lam`` (lowest mean validation MSE),
    ``best_val_mse``, ``best_test_mse`` (+ ``best_test_mse_ci95``); ``lam_1se`` (largest lam
    with mean validation MSE <= best + its standard error over seeds; with one seed, the
    fold standard error of k-fold CV), ``val_mse_1se``, ``test_mse_1se``; ``oracle_lam`` /
    ``oracle_test_mse`` (lowest mean test MSE, for reference, not a selection rule); and for
    coupled L2 groups with a ``ridge`` frame (``wdlab.sweep.closed_form_frame``):
    ``ridge_lam``, ``ridge_val_mse``, ``ridge_test_mse`` (the closed form selected by the
    same validation rule on a fine lam grid) and ``ridge_oracle_lam``, ``ridge_oracle_test_mse``.
    """
    keys = [k for k in summary.columns if k in _summary_keys(summary) and k != "lam"]
    rows = []
    for key, grp in summary.groupby(keys, dropna=False, sort=False):
        grp = grp.sort_values("lam", kind="stable")
        lam = grp["lam"].to_numpy(np.float64)
        val = grp["val_mse_mean"].to_numpy(np.float64)
        n_ok = grp["n_ok"].to_numpy(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            se = grp["val_mse_std"].to_numpy(np.float64) / np.sqrt(n_ok)
        if "val_mse_se_mean" in grp:  # a single seed: fall back to the k-fold standard error
            se = np.where(np.isfinite(se), se, grp["val_mse_se_mean"].to_numpy(np.float64))
        test = grp["test_mse_mean"].to_numpy(np.float64)
        bad = grp["n_diverged"].to_numpy() + (grp["n_failed"].to_numpy() if "n_failed" in grp else 0)
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        row["n_lams"] = len(lam)
        row.update(_one_se(lam, val, se, test, bad == 0))
        ci = grp["test_mse_ci95"].to_numpy(np.float64)
        row["best_test_mse_ci95"] = (float(ci[lam == row["best_lam"]][0])
                                     if np.isfinite(row["best_lam"]) else float("nan"))
        row["n_seeds"] = int(grp["n_seeds"].max())
        row.update(_answer(row, lam, val, se, grp))
        rows.append(row)
    out = pd.DataFrame(rows)
    ridge_cols = ["ridge_lam", "ridge_val_mse", "ridge_test_mse", "ridge_oracle_lam",
                  "ridge_oracle_test_mse"]
    for c in ridge_cols:
        out[c] = np.nan
    if ridge is not None and len(out):
        for i, row in out.iterrows():
            match = ridge
            for k in RIDGE_KEYS:
                match = match[match[k] == row[k]]
            if not len(match):
                continue
            v = match["ridge_val_mse"].to_numpy()
            te = match["ridge_test_mse"].to_numpy()
            lam = match["lam"].to_numpy()
            if np.isfinite(v).any():
                b = int(np.nanargmin(v))
                out.loc[i, ["ridge_lam", "ridge_val_mse", "ridge_test_mse"]] = [lam[b], v[b], te[b]]
            if np.isfinite(te).any():
                o = int(np.nanargmin(te))
                out.loc[i, ["ridge_oracle_lam", "ridge_oracle_test_mse"]] = [lam[o], te[o]]
    return out


def _answer(row: dict, lam: np.ndarray, val: np.ndarray, se: np.ndarray,
            grp: pd.DataFrame) -> dict:
    """The answer columns of one selection row (``wdlab.answer``): the 95% CI of the best
    validation MSE, the lam range it cannot tell apart from the best, and the best and 1-SE
    lam as scikit-learn alpha and torch weight_decay (NaN where no exact translation)."""
    from wdlab.answer import lam_range, translations

    out: dict = {}
    b = np.flatnonzero(lam == row["best_lam"])
    ci = float("nan")
    if len(b):
        ci = float(grp["val_mse_ci95"].to_numpy(np.float64)[b[0]]) if "val_mse_ci95" in grp \
            else float("nan")
        if not np.isfinite(ci) and np.isfinite(se[b[0]]):
            ci = 1.96 * float(se[b[0]])  # one seed: the k-fold standard error
    out["best_val_mse_ci95"] = ci
    ok = np.isfinite(val) & (grp["n_diverged"].to_numpy() == 0)
    lo, hi, count = lam_range(lam, np.where(ok, val, np.nan), ci, row["best_lam"])
    out.update(lam_lo=lo, lam_hi=hi, n_lams_in_range=count)
    conv = {k: row.get(k) for k in ("optimizer", "regularizer", "loss", "n_train",
                                     "n_features", "momentum", "lr")}
    if "hidden" not in row and all(conv.get(k) is not None for k in (  # linear rows only
            "optimizer", "regularizer", "loss", "n_train", "n_features")):
        for lam_key, suffix in (("best_lam", "best"), ("lam_1se", "1se")):
            tr = translations(row[lam_key], optimizer=str(conv["optimizer"]),
                              regularizer=str(conv["regularizer"]), loss=str(conv["loss"]),
                              n_train=int(conv["n_train"]), n_features=int(conv["n_features"]),
                              momentum=float(conv.get("momentum") or 0.0),
                              lr=float(conv["lr"]) if conv.get("lr") is not None else float("nan"))
            out[f"alpha_{suffix}"] = tr["alpha"]
            out[f"torch_weight_decay_{suffix}"] = tr["torch_weight_decay"]
            out["torch_optimizer"] = tr["torch_optimizer"]
    return out


def group_name(row) -> str:
    """``adam+mean`` (and ``lr=…`` etc. when given in ``extra``) naming a selection row."""
    return f"{row['optimizer']}+{row['regularizer']}" if "optimizer" in row else "this run"


#: Hyperparameters that name a selection row in a warning when they vary across rows.
_VARYING = ("loss", "lr", "momentum", "beta1", "beta2", "epochs", "batch_size", "schedule",
            "init_scale", "n_train", "noise")


def _row_labels(sel: pd.DataFrame, best_lr: bool = False) -> list[str]:
    """``adam+mean (n_train=20)``: the pair and the settings that vary within a pair (not
    those, like beta1, that differ only because the optimizer does)."""
    pair = [k for k in ("optimizer", "regularizer") if k in sel]
    varying = [k for k in _VARYING if k in sel and (
        sel.groupby(pair, dropna=False)[k].nunique(dropna=True).max() > 1 if pair
        else sel[k].nunique() > 1)]
    out = []
    for row in sel.to_dict("records"):
        bits = [f"{k}={row[k]:g}" if isinstance(row[k], float) else f"{k}={row[k]}"
                for k in varying if not (isinstance(row[k], float) and np.isnan(row[k]))]
        if best_lr and "lr" in row:
            bits.append(f"at its best lr = {row['lr']:g}")
        out.append(group_name(row) + (f" ({', '.join(bits)})" if bits else ""))
    return out


def best_lr_rows(selection: pd.DataFrame) -> pd.DataFrame:
    """When lr was swept: per group of every other setting, the row of the lr with the lowest
    best validation (else test) MSE -- the row a run's answer recommends."""
    if "lr" not in selection or selection["lr"].nunique() < 2:
        return selection
    key = "best_val_mse" if selection["best_val_mse"].notna().any() else "best_test_mse"
    others = [k for k in selection.columns if k in _GROUP_SETTINGS and k != "lr"]
    order = selection.sort_values(key, kind="stable", na_position="last")
    return order.drop_duplicates(others).sort_index()


#: Settings that make a selection row a different question (lr is chosen among them).
_GROUP_SETTINGS = ("optimizer", "regularizer", "loss", "lr", "epochs", "batch_size",
                   "schedule", "init_scale", "n_train", "noise")


def run_warnings(summary: pd.DataFrame, selection: pd.DataFrame,
                 ridge: pd.DataFrame | None = None, *, lam_flag: str = "--lam",
                 seeds_flag: str = "--seeds", folds: int = 0,
                 max_per_code: int = 4) -> list[dict]:
    """Every ``wdlab.answer`` check on a run's summary and selection tables, as
    ``{"code", "message"}`` dicts for ``manifest.json["warnings"]``.

    Args:
        summary: ``summarize``'s table (one row per hyperparameter group with lam).
        selection: ``select``'s table (with the answer columns).
        ridge: the closed-form frame (``wdlab.sweep.closed_form_frame``) or a fit's ridge
            table (``ridge_val_mse`` per lam); None when there is no closed form.
        folds: k of a k-fold CV whose standard error stands in for seeds (``wdlab fit``).
        max_per_code: at most this many messages of one code (the rest summarised).
    """
    from wdlab.answer import (
        converged_check,
        diverged_check,
        edge_check,
        few_seeds_check,
        flat_check,
        merge_warnings,
        warning,
    )

    found: dict[str, list[dict]] = {}

    def add(w):
        if w is not None:
            found.setdefault(w["code"], []).append(w)

    swept = "lr" in selection and selection["lr"].nunique() > 1
    chosen = best_lr_rows(selection) if len(selection) else selection  # the answered rows
    labels = _row_labels(chosen, best_lr=swept) if len(chosen) else []
    keys = [k for k in _summary_keys(summary) if k != "lam"]
    for label, row in zip(labels, chosen.to_dict("records"), strict=True):
        grp = summary
        for k in keys:
            if k in row and k in grp:
                v = row[k]
                grp = grp[grp[k].isna()] if isinstance(v, float) and np.isnan(v) else grp[grp[k] == v]
        grp = grp.sort_values("lam", kind="stable")
        lam = grp["lam"].to_numpy(np.float64)
        add(edge_check(lam, row.get("best_lam", np.nan), group=label, flag=lam_flag))
        if row.get("n_lams_in_range", 0) and np.isfinite(row.get("best_val_mse_ci95", np.nan)):
            add(flat_check(row["lam_lo"], row["lam_hi"], int(row["n_lams_in_range"]), len(lam),
                           group=label, best_val=row["best_val_mse"],
                           tol=row["best_val_mse_ci95"], tol_word="the 95% CI"))
        if ridge is not None and len(ridge) and row.get("regularizer") in COUPLED:
            ref = ridge
            for k in (*RIDGE_KEYS, "optimizer"):
                if k in ref and k in row:
                    ref = ref[ref[k] == row[k]]
            ref = ref.drop_duplicates("lam").set_index("lam")
            col = "ridge_val_mse" if "val_mse_mean" in grp and grp["val_mse_mean"].notna().any() \
                else "ridge_test_mse"
            if col in ref and len(ref):
                exact = ref[col].reindex(lam).to_numpy(np.float64)
                trained = grp["val_mse_mean" if col == "ridge_val_mse" else "test_mse_mean"]
                dist = grp["dist_to_ridge_mean"].to_numpy() if "dist_to_ridge_mean" in grp else None
                add(converged_check(lam, trained.to_numpy(np.float64), exact, group=label,
                                    metric="validation" if col == "ridge_val_mse" else "test",
                                    dist=dist))
    if len(summary):
        glabel = (summary["optimizer"].astype(str) + "+" + summary["regularizer"].astype(str)
                  if {"optimizer", "regularizer"} <= set(summary) else ["this run"] * len(summary))
        n_div = summary["n_diverged"].to_numpy() if "n_diverged" in summary else np.zeros(len(summary))
        add(diverged_check(list(glabel), n_div, int(summary["n_seeds"].sum()),
                           summary["lam"].to_numpy(np.float64),
                           summary["lr"].to_numpy(np.float64) if "lr" in summary else None))
        add(few_seeds_check(int(summary["n_seeds"].max()), flag=seeds_flag, folds=folds))
    out = []
    for code in ("grid_edge", "flat_optimum", "diverged", "few_seeds", "not_converged"):
        items = found.get(code, [])
        out += items[:max_per_code]
        if len(items) > max_per_code:
            out.append(warning(code, f"… and {len(items) - max_per_code} more groups with the "
                                     f"same {code.replace('_', ' ')} warning (see selection)"))
    return merge_warnings(out)


def _summary_keys(summary: pd.DataFrame) -> list[str]:
    stats = {c for c in summary.columns
             if c.endswith(("_mean", "_std", "_ci95")) or c.startswith("n_")}
    return [c for c in summary.columns if c not in stats or c in ("n_train", "n_test",
                                                                    "n_features")]


def experiment_answer(configs: pd.DataFrame, preset: str = "seed") -> tuple[dict, list[dict]]:
    """The answer and checks of a one-draw experiment (``wdlab reproduce seed``/``d2l``),
    which has no validation split: its best lam is by test MSE (an oracle, said so).

    Returns (a selection-like row for ``wdlab.answer.answer_sentence``, warnings).
    """
    from wdlab.answer import (
        converged_check,
        diverged_check,
        edge_check,
        few_seeds_check,
        merge_warnings,
        translations,
    )

    ok = configs[configs["status"] == "ok"].sort_values("lam", kind="stable")
    first = configs.iloc[0].to_dict()
    name = f"{first.get('optimizer')}+{first.get('regularizer')}"
    row = {k: first.get(k) for k in ("optimizer", "regularizer", "loss", "n_train",
                                     "n_features", "momentum", "lr")}
    found = []
    if len(ok) and ok["test_mse"].notna().any():
        b = ok.loc[ok["test_mse"].idxmin()]
        row.update(best_lam=float(b["lam"]), best_val_mse=float("nan"),
                   best_test_mse=float(b["test_mse"]))
        tr = translations(row["best_lam"], optimizer=str(row["optimizer"]),
                          regularizer=str(row["regularizer"]), loss=str(row["loss"]),
                          n_train=int(row["n_train"]), n_features=int(row["n_features"]),
                          momentum=float(row.get("momentum") or 0.0), lr=float(row["lr"]))
        row.update(alpha_best=tr["alpha"], torch_weight_decay_best=tr["torch_weight_decay"],
                   torch_optimizer=tr["torch_optimizer"])
        found.append(edge_check(configs["lam"].to_numpy(np.float64), row["best_lam"],
                                group=f"{name} (by test MSE; no validation split)",
                                flag=f"wdlab sweep --preset {preset} --lam"))
        if "ridge_test_mse" in ok:
            found.append(converged_check(ok["lam"].to_numpy(np.float64),
                                         ok["test_mse"].to_numpy(np.float64),
                                         ok["ridge_test_mse"].to_numpy(np.float64),
                                         group=name, metric="test"))
    else:
        row["best_lam"] = float("nan")
    div = (configs["status"] != "ok").to_numpy()
    found.append(diverged_check([name] * len(configs), div.astype(float), len(configs),
                                configs["lam"].to_numpy(np.float64),
                                configs["lr"].to_numpy(np.float64) if "lr" in configs else None))
    seeds = configs["init_seed"].nunique() if "init_seed" in configs else 1
    found.append(few_seeds_check(int(seeds), flag=f"wdlab sweep --preset {preset} --seeds"))
    return row, merge_warnings([w for w in found if w is not None])
