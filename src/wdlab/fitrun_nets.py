"""``wdlab fit --model mlp``'s library half: user table -> task -> split -> batched k-fold CV
of MLPs per optimizer/regularizer pair -> tables, figures and a run directory.

The task is classification when the target column is not numeric (strings, categories,
booleans), or holds integers with at most ``MAX_CLASSES`` distinct values (and at least
one repeated value); otherwise regression; ``--task`` overrides it (a non-integer target
with ``--task classification`` is an error). For each pair, every (lam x fold) network and
the full-train refit of every lam are ONE nets engine call (``WeightDecayMLPClassifierCV`` /
``WeightDecayMLPRegressorCV``). With ``standardize`` the features (and, for regression, the
target) are standardised with training-split statistics, as in the linear ``wdlab fit``;
regression errors are reported in the target's own units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from wdlab.config import shown
from wdlab.data.tables import UserTable, prepare
from wdlab.fitrun import CURVE_POINTS, FitOptions, FitResults, _r2, split
from wdlab.results import cut_at_divergence

#: Integer targets with at most this many distinct values are class labels.
MAX_CLASSES = 20
TASKS = ("auto", "classification", "regression")


@dataclass
class NetFitOptions(FitOptions):
    """The linear fit's options plus the network and the task."""

    hidden: tuple[int, ...] = (64,)
    activation: str = "relu"
    task: str = "classification"  # resolved: classification or regression
    classes: list[Any] = field(default_factory=list)  # original labels, by class index

    def to_json(self) -> dict[str, Any]:
        d = super().to_json()
        d["model"] = "mlp"
        d["hidden"] = list(self.hidden)
        d["classes"] = [v if isinstance(v, str | int | float | bool) else str(v)
                        for v in self.classes]
        return d


def parse_hidden(text: str) -> tuple[int, ...]:
    """``64,64`` -> (64, 64), parsed by the spec's own ``wdlab.config.nets._architecture``;
    an empty field (``""``, ``64,,64``, ``64,``) is refused, and every width must lie in
    [1, ``MAX_WIDTH``]. One-line errors naming --hidden."""
    from wdlab.config.nets import MAX_WIDTH, _architecture

    text = str(text)
    try:
        sizes = _architecture(text)
    except ValueError:
        sizes = None
    if sizes is None or len(sizes) != text.count(",") + 1:  # a field was not an integer
        raise ValueError(f"--hidden: expected comma-separated positive integers, got "
                         f"{shown(text, 40)}")
    if any(h < 1 or h > MAX_WIDTH for h in sizes):
        raise ValueError(f"--hidden: widths must lie in [1, {MAX_WIDTH}], got "
                         f"{shown(text, 40)}")
    return sizes


def resolve_task(df: pd.DataFrame, target: str, task: str) -> tuple[str, pd.DataFrame, list]:
    """(task, table with the target as class codes when classifying, class labels).

    Raises:
        ValueError: one line naming --task or the target column.
    """
    if task not in TASKS:
        raise ValueError(f"--task: expected one of {TASKS}, got {shown(task, 40)}")
    if target not in df.columns:
        return ("regression" if task == "auto" else task), df, []  # prepare names it
    col = df[target]
    numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    values = pd.to_numeric(col, errors="coerce") if numeric else None
    finite = values[np.isfinite(values)] if numeric else None
    integer = numeric and bool((finite == np.round(finite)).all())
    if task == "auto":
        few = numeric and integer and finite.nunique() <= MAX_CLASSES and \
            finite.nunique() < len(finite)
        task = "classification" if (not numeric or few) else "regression"
    if task == "regression":
        return task, df, []
    if numeric and not integer:
        bad = finite[finite != np.round(finite)]
        row = int(np.flatnonzero(df.index == bad.index[0])[0]) + 1
        raise ValueError(f"--task: classification needs class labels, but target column "
                         f"{shown(target, 40)} holds non-integer value {bad.iloc[0]:g} at row "
                         f"{row}; use --task regression")
    present = col.dropna()
    classes = sorted(present.unique().tolist(), key=lambda v: (str(type(v)), v))
    codes = {v: i for i, v in enumerate(classes)}
    out = df.copy()
    out[target] = col.map(codes).astype(np.float64)  # NaN stays NaN: prepare names its row
    return task, out, classes


def load_for_mlp(path, target: str, features, *, dropna: bool, task: str):
    """``read_user_table``, the task, then ``prepare`` (the linear fit's validation)."""
    from pathlib import Path

    from wdlab.data.tables import read_user_table

    df = read_user_table(path)
    task, df, classes = resolve_task(df, target, task)
    table = prepare(df, target, features, dropna=dropna, path=Path(path).name)
    return table, task, classes


def run_fit_mlp(table: UserTable, opts: NetFitOptions) -> FitResults:
    """Cross-validate every lam for every pair, refit, score on the test split."""
    from sklearn.model_selection import KFold, StratifiedKFold

    from wdlab.cvfit import mean_sem
    from wdlab.estimator_nets import (
        WeightDecayMLPClassifierCV,
        WeightDecayMLPRegressorCV,
        _forward,
    )

    clf = opts.task == "classification"
    X_tr, y_tr, X_te, y_te, scale, tr, te = split(table, opts)
    if clf:
        y_tr, y_te = table.y[tr].astype(np.int64), table.y[te].astype(np.int64)
        scale["y_mean"], scale["y_std"] = 0.0, 1.0
        counts = np.bincount(y_tr, minlength=len(opts.classes))
        i = int(np.argmin(counts))
        if counts[i] < opts.folds:
            raise ValueError(f"--target: class {shown(opts.classes[i], 40)} of column "
                             f"{shown(table.target, 40)} has {int(counts[i])} training row(s), "
                             f"fewer than --folds {opts.folds}")
    s2 = scale["y_std"] ** 2
    lams = np.asarray(opts.lams, dtype=np.float64)
    L, E = len(lams), opts.epochs
    rec = sorted({int(v) for v in np.linspace(0, E, CURVE_POINTS + 1)} | {E})
    folds = (StratifiedKFold if clf else KFold)(opts.folds, shuffle=True, random_state=opts.seed)
    Est = WeightDecayMLPClassifierCV if clf else WeightDecayMLPRegressorCV
    extra = {} if clf else {"loss": opts.loss}
    configs, curves, selection = [], [], []
    for p, (opt, reg) in enumerate(opts.pairs):  # one engine call per optimizer/regularizer
        cv = Est(lams, cv=folds, hidden_layer_sizes=opts.hidden, activation=opts.activation,
                 regularizer=reg, optimizer=opt, lr=opts.lr, epochs=E,
                 batch_size=opts.batch_size, schedule=opts.schedule, dtype=opts.dtype,
                 device=opts.device, random_state=opts.seed, **extra)
        cv.fit(X_tr, y_tr, X_test=X_te, y_test=y_te, record_epochs=rec)
        res, r = cv.net_result_, cv.cv_results_
        F = cv.n_splits_
        refit = F * L + np.arange(L)  # (L,) the full-train networks
        div = res.diverged_epoch.numpy()[refit]
        ok = (div < 0) & ~r["diverged"]
        z = _forward(cv.net_, res.theta[refit], X_te)  # (L, n_test, C)
        ids = p * L + np.arange(L)
        frame = pd.DataFrame({
            "config_id": ids, "model": "mlp", "task": opts.task, "optimizer": opt,
            "regularizer": reg, "loss": "cross_entropy" if clf else opts.loss, "lam": lams,
            "lr": opts.lr, "epochs": E, "batch_size": opts.batch_size or 0,
            "schedule": opts.schedule, "hidden": ",".join(map(str, opts.hidden)),
            "activation": opts.activation, "status": np.where(ok, "ok", "diverged"),
            "diverged_epoch": np.where(div >= 0, div, -1),
            "train_loss": res.metrics["train_loss"][-1].double().numpy()[refit],
            "val_error": r["mean_test_error"] * (1.0 if clf else s2),
            "val_sem": r["sem_test_error"] * (1.0 if clf else s2),
        })
        if clf:
            folds_ce = _fold_cross_entropy(cv, X_tr, y_tr, folds.split(X_tr, y_tr), L)
            frame["val_loss"], frame["val_loss_sem"] = mean_sem(folds_ce)  # (L,) (L,)
            frame["val_accuracy"] = 1.0 - r["mean_test_error"]
            frame["train_accuracy"] = res.metrics["train_accuracy"][-1].double().numpy()[refit]
            frame["test_accuracy"] = (z.argmax(2) == y_te[None]).mean(1)
            frame["test_loss"] = res.metrics["test_loss"][-1].double().numpy()[refit]
        else:
            test_mse = ((z[..., 0] - y_te[None]) ** 2).mean(1) * s2  # (L,)
            frame["val_mse"] = frame["val_error"]
            frame["test_mse"] = test_mse
            frame["test_r2"] = _r2(test_mse / s2, y_te)
        frame["n_train"], frame["n_test"] = len(tr), len(te)
        frame["n_features"], frame["folds"], frame["dtype"] = X_tr.shape[1], F, opts.dtype
        for col in ("train_loss", "val_error", "val_accuracy", "test_accuracy", "test_loss",
                    "train_accuracy", "val_mse", "test_mse", "test_r2", "val_loss",
                    "val_loss_sem"):
            if col in frame:
                frame.loc[~ok, col] = np.nan
        configs.append(frame)
        curves.append(_curves(res, refit, ids, clf))
        selection.append(_selection_row(frame, cv, opt, reg, lams, opts, clf))
    info = {"n_rows": int(table.X.shape[0]), "n_train": len(tr), "n_test": len(te),
            "features": table.features, "target": table.target, "task": opts.task,
            **{k: np.asarray(v).tolist() for k, v in scale.items()}}
    if clf:
        info["classes"] = opts.to_json()["classes"]
        major = int(np.argmax(np.bincount(y_tr)))
        baseline = {"kind": "majority class", "test_accuracy": float((y_te == major).mean())}
    else:
        base = float(np.mean((y_te - 0.0) ** 2)) * s2  # the training mean (0 once standardised)
        baseline = {"kind": "training mean", "test_mse": base,
                    "test_r2": float(_r2(base / s2, y_te))}
    return FitResults(pd.concat(configs, ignore_index=True), pd.concat(curves, ignore_index=True),
                      pd.DataFrame(selection), pd.DataFrame(), pd.DataFrame(), baseline, info)


def _selection_row(frame, cv, opt, reg, lams, opts, clf: bool) -> dict[str, Any]:
    from wdlab.fitrun import ci_range

    i_min = int(np.flatnonzero(lams == cv.lam_min_)[0])
    i_1se = int(np.flatnonzero(lams == cv.lam_1se_)[0])
    val = frame["val_error"].to_numpy(np.float64)
    ci, lo, hi, count = ci_range(lams, val, frame["val_sem"].to_numpy(), i_min, cv.n_splits_)
    row = {"optimizer": opt, "regularizer": reg, "model": "mlp", "task": opts.task,
           "best_lam": cv.lam_min_, "lam_1se": cv.lam_1se_, "best_val_error": val[i_min],
           "best_val_error_ci95": ci, "lam_lo": lo, "lam_hi": hi, "n_lams_in_range": count}
    for name in (("val_accuracy", "test_accuracy", "test_loss") if clf
                 else ("val_mse", "test_mse", "test_r2")):
        row[f"best_{name}"] = frame[name].to_numpy()[i_min]
        row[f"{name}_1se"] = frame[name].to_numpy()[i_1se]
    row["n_train"], row["n_features"] = int(frame["n_train"].iloc[0]), int(frame["n_features"].iloc[0])
    return row


def _fold_cross_entropy(cv, X: np.ndarray, y: np.ndarray, splits, L: int) -> np.ndarray:
    """(F, L) held-out cross-entropy of every fold network: mean over the fold's rows of
    ``logsumexp(z) - z[y]`` (the data loss, no penalty); NaN where the network diverged.
    ``splits`` must be the folds the estimator used (the same seeded splitter)."""
    from scipy.special import logsumexp

    from wdlab.estimator_nets import _forward

    res = cv.net_result_
    splits = list(splits)
    out = np.full((len(splits), L), np.nan)
    for f, (_, va) in enumerate(splits):  # loop over folds to score, not over configs
        z = _forward(cv.net_, res.theta[f * L:(f + 1) * L], X[va])  # (L, n_va, C)
        picked = np.take_along_axis(z, y[va][None, :, None], axis=2)[..., 0]  # (L, n_va)
        out[f] = (logsumexp(z, axis=2) - picked).mean(1)
    div = res.diverged_epoch.numpy().reshape(len(splits) + 1, L)[:-1] >= 0  # (F, L)
    return np.where(div, np.nan, out)


def _curves(res, refit: np.ndarray, ids: np.ndarray, clf: bool) -> pd.DataFrame:
    """Long-form curves of the full-train refit of every lam (loss in the loss's units) and
    ``norm/<state_dict name>``, the l2 norm of each parameter tensor."""
    epochs = np.asarray(res.epochs)
    R, L = len(epochs), len(ids)
    cols: dict[str, Any] = {"config_id": np.repeat(ids, R), "epoch": np.tile(epochs, L)}
    names = ["train_loss", "test_loss"] + (["train_accuracy", "test_accuracy"] if clf else [])
    names += [n for n in res.metrics if n.startswith("norm/")]
    for name in names:
        cols[name] = res.metrics[name].double().numpy()[:, refit].T.reshape(-1)
    return cut_at_divergence(pd.DataFrame(cols), res.diverged_epoch.numpy()[refit], R)


def fit_warnings_mlp(results: FitResults, folds: int) -> list[dict]:
    """Grid edge, flat CV curve and divergence checks (``wdlab.answer``) of an MLP fit
    (``wdlab.fitrun.pair_checks``), worded for accuracy when it classifies."""
    from wdlab.answer import merge_warnings
    from wdlab.fitrun import pair_checks

    found = pair_checks(results, folds, best="best_val_error", ci="best_val_error_ci95")
    if (results.configs["task"] == "classification").any():  # answer's checks speak of MSE
        for w in found:
            if "message" in w:
                w["message"] = w["message"].replace("validation MSE",
                                                    "validation error (1 - accuracy)")
    return merge_warnings(found)


def mlp_report(run_dir) -> str:
    """Write report.html of an MLP fit (``wdlab.report.fit_mlp``): answer, selection, the
    nets report's interactive charts (validation curve in loss and accuracy, training curves
    and per-tensor weight norms per λ, lr x λ heatmaps when both vary), every config and the
    config; self-contained, every user string escaped."""
    from pathlib import Path

    from wdlab.report.fit_mlp import build_fit_mlp_report
    from wdlab.store import write_text

    return write_text(Path(run_dir) / "report.html", build_fit_mlp_report(run_dir))


def write_fit_run_mlp(run, results: FitResults, manifest: dict[str, Any], *, report: bool):
    """The linear fit's run directory with the MLP's warnings, figures and report."""
    from wdlab.fitrun import write_fit_run
    from wdlab.plots import fit_cv_curve, fit_training_curves

    folds = int(manifest["config"].get("folds", 5))
    clf = results.configs["task"].iloc[0] == "classification"
    cv_curve = fit_cv_curve(
        results.configs, results.selection, cv="val_accuracy" if clf else "val_mse",
        test="test_accuracy" if clf else "test_mse", log_y=not clf, one_se=False,
        ylabel="accuracy" if clf else "MSE (target units)",
        title="MLP: k-fold CV (dashed, mean ± SE over folds) and test (solid); ★ CV best")
    figures = {"cv_curve": cv_curve,
               "training": fit_training_curves(results.curves, results.configs, results.selection)}
    return write_fit_run(run, results, manifest, report=report,
                         warnings=fit_warnings_mlp(results, folds), figures=figures,
                         reporter=mlp_report)
