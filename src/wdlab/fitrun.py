"""``wdlab fit``'s library half: user table -> split -> batched k-fold CV per optimizer/regularizer
pair -> tables, figures and a run directory.

For each pair, every (lam x fold) model and the full-train refit of every lam are ONE engine
call (``WeightDecayRegressorCV``). With ``standardize`` the features and the target are
standardised with training-split statistics; errors and coefficients are reported in the
target's own units (coefficients per training standard deviation of each feature).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wdlab.conventions import COUPLED
from wdlab.data.tables import UserTable
from wdlab.results import cut_at_divergence

#: Recorded epochs per curve (evenly spaced, the last epoch always included).
CURVE_POINTS = 100


@dataclass
class FitOptions:
    """Everything ``wdlab fit`` was asked to do (validated by the CLI before any work)."""

    lams: list[float]
    pairs: list[tuple[str, str]]
    loss: str = "mse"
    lr: float = 0.05
    epochs: int = 2000
    batch_size: int | None = None
    schedule: str = "cosine"
    test_size: float = 0.2
    folds: int = 5
    standardize: bool = True
    seed: int = 0
    dtype: str = "float64"
    device: str = "cpu"

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["pairs"] = [f"{o}+{r}" for o, r in self.pairs]
        return d


@dataclass
class FitResults:
    """The tables of one ``wdlab fit`` run."""

    configs: pd.DataFrame
    curves: pd.DataFrame
    selection: pd.DataFrame
    ridge: pd.DataFrame
    coefficients: pd.DataFrame
    baseline: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)


def split(table: UserTable, opts: FitOptions):
    """Seeded train/test split, and standardisation fitted on the training rows only."""
    rng = np.random.default_rng(opts.seed)
    n = table.X.shape[0]
    n_test = max(1, int(round(opts.test_size * n)))
    perm = rng.permutation(n)
    te, tr = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    X_tr, X_te, y_tr, y_te = table.X[tr], table.X[te], table.y[tr], table.y[te]
    x_mean, x_std = np.zeros(X_tr.shape[1]), np.ones(X_tr.shape[1])
    y_mean, y_std = 0.0, 1.0
    if opts.standardize:
        x_mean, x_std = X_tr.mean(0), X_tr.std(0)
        x_std = np.where(x_std > 0, x_std, 1.0)
        y_mean, y_std = float(y_tr.mean()), float(y_tr.std()) or 1.0
    scale = dict(x_mean=x_mean, x_std=x_std, y_mean=y_mean, y_std=y_std)
    return ((X_tr - x_mean) / x_std, (y_tr - y_mean) / y_std,
            (X_te - x_mean) / x_std, (y_te - y_mean) / y_std, scale, tr, te)


def _r2(mse, y_test_scaled: np.ndarray):
    """1 - MSE / Var(y_test); nan when the test targets are constant (e.g. one test row)."""
    var = float(np.var(y_test_scaled))
    return 1.0 - np.asarray(mse) / var if var > 0 else np.full(np.shape(mse), np.nan)


def run_fit(table: UserTable, opts: FitOptions) -> FitResults:
    """Cross-validate every lam for every pair, refit, score on the test split."""
    from sklearn.model_selection import KFold

    from wdlab.estimator import WeightDecayRegressorCV
    from wdlab.exact.ridge import ridge_path

    X_tr, y_tr, X_te, y_te, scale, tr, te = split(table, opts)
    s2 = scale["y_std"] ** 2  # MSE back to the target's units
    lams = np.asarray(opts.lams, dtype=np.float64)
    L, E = len(lams), opts.epochs
    rec = sorted({int(v) for v in np.linspace(0, E, CURVE_POINTS + 1)} | {E})
    folds = KFold(opts.folds, shuffle=True, random_state=opts.seed)
    configs, curves, selection, ridge_rows, coef_rows = [], [], [], [], []
    for p, (opt, reg) in enumerate(opts.pairs):  # one engine call per optimizer/regularizer
        cv = WeightDecayRegressorCV(
            lams, cv=folds, regularizer=reg, loss=opts.loss, optimizer=opt, lr=opts.lr,
            epochs=E, batch_size=opts.batch_size, schedule=opts.schedule, dtype=opts.dtype,
            device=opts.device, random_state=opts.seed,
        ).fit(X_tr, y_tr, X_test=X_te, y_test=y_te, record_epochs=rec)
        bf, res = cv.batch_fit_, cv.cv_results_
        F = bf.shape[0] - 1
        div = bf.diverged_epoch[F, 0]  # (L,)
        test_mse = bf.final("test_mse")[F, 0] * s2  # (L,)
        ids = p * L + np.arange(L)
        ok = (div < 0) & ~res["diverged"]
        frame = pd.DataFrame({
            "config_id": ids, "optimizer": opt, "regularizer": reg, "loss": opts.loss,
            "lam": lams, "lr": opts.lr, "epochs": E, "batch_size": opts.batch_size or 0,
            "schedule": opts.schedule, "status": np.where(ok, "ok", "diverged"),
            "diverged_epoch": np.where(div >= 0, div, -1),
            "train_mse": bf.final("train_mse")[F, 0] * s2,
            "val_mse": res["mean_test_mse"] * s2, "val_sem": res["sem_test_mse"] * s2,
            "test_mse": test_mse, "test_r2": _r2(test_mse * 1.0 / s2, y_te),
            "w_norm": np.linalg.norm(cv.coef_path_, axis=1) * scale["y_std"],
            "n_train": len(tr), "n_test": len(te), "n_features": X_tr.shape[1],
            "folds": F, "dtype": opts.dtype,
        })
        for col in ("train_mse", "val_mse", "test_mse", "test_r2", "w_norm"):
            frame.loc[~ok, col] = np.nan
        configs.append(frame)
        curves.append(_curves(bf, ids, F, s2))
        for i, lam in enumerate(lams):
            coef_rows.append(pd.DataFrame({
                "optimizer": opt, "regularizer": reg, "lam": lam, "feature": table.features,
                "coef": cv.coef_path_[i] * scale["y_std"]}))
        ridge_lam = ridge_test = np.nan
        if reg in COUPLED:
            path = ridge_path(X_tr, y_tr, lams, opts.loss, reg, X_test=X_te, y_test=y_te)
            r_test = path.test_mse.numpy() * s2
            ridge_rows.append(pd.DataFrame({
                "optimizer": opt, "regularizer": reg, "loss": opts.loss, "lam": lams,
                "ridge_val_mse": res["ridge_mean_test_mse"] * s2, "ridge_test_mse": r_test}))
            ridge_lam = cv.ridge_lam_
            ridge_test = float(r_test[int(np.flatnonzero(lams == ridge_lam)[0])])
        i_min, i_1se = _index(lams, cv.lam_min_), _index(lams, cv.lam_1se_)
        answer = _answer_columns(lams, frame, i_min, cv, opt, reg, opts, n_train=len(tr),
                                 n_features=X_tr.shape[1])
        selection.append({
            "optimizer": opt, "regularizer": reg, "loss": opts.loss,
            "best_lam": cv.lam_min_, "best_val_mse": frame["val_mse"][i_min],
            "best_test_mse": test_mse[i_min], "best_test_r2": frame["test_r2"][i_min],
            "lam_1se": cv.lam_1se_, "test_mse_1se": test_mse[i_1se],
            "test_r2_1se": frame["test_r2"][i_1se],
            "ridge_lam": ridge_lam, "ridge_test_mse": ridge_test,
            "ridge_test_r2": float(_r2(ridge_test / s2, y_te)) if np.isfinite(ridge_test) else np.nan,
            "n_train": len(tr), "n_features": X_tr.shape[1], **answer,
        })
    ols = ridge_path(X_tr, y_tr, [0.0], X_test=X_te, y_test=y_te)
    base_mse = float(ols.test_mse[0]) * s2
    baseline = {"test_mse": base_mse, "test_r2": float(_r2(base_mse / s2, y_te)),
                "kind": "least squares" if X_tr.shape[0] > X_tr.shape[1] else "min-norm least squares"}
    info = {"n_rows": int(table.X.shape[0]), "n_train": len(tr), "n_test": len(te),
            "features": table.features, "target": table.target, **{k: np.asarray(v).tolist()
                                                                   for k, v in scale.items()}}
    return FitResults(pd.concat(configs, ignore_index=True), pd.concat(curves, ignore_index=True),
                      pd.DataFrame(selection), pd.concat(ridge_rows, ignore_index=True)
                      if ridge_rows else pd.DataFrame(), pd.concat(coef_rows, ignore_index=True),
                      baseline, info)


def _answer_columns(lams, frame: pd.DataFrame, i_min: int, cv, opt: str, reg: str,
                    opts: FitOptions, *, n_train: int, n_features: int) -> dict[str, Any]:
    """The answer columns of a fit's selection row (as ``wdlab.selection.select``'s): the
    95% CI of the best CV MSE (Student t over the k folds' standard error), the lam range
    within it, and the best / 1-SE lam as sklearn alpha and torch weight_decay."""
    from wdlab.answer import translations

    val = frame["val_mse"].to_numpy(np.float64)
    ci, lo, hi, count = ci_range(lams, val, frame["val_sem"].to_numpy(), i_min, opts.folds)
    out: dict[str, Any] = {"best_val_mse_ci95": ci, "lam_lo": lo, "lam_hi": hi,
                           "n_lams_in_range": count}
    for lam, suffix in ((cv.lam_min_, "best"), (cv.lam_1se_, "1se")):
        tr = translations(float(lam), optimizer=opt, regularizer=reg, loss=opts.loss,
                          n_train=n_train, n_features=n_features, momentum=0.0, lr=opts.lr)
        out[f"alpha_{suffix}"], out[f"torch_weight_decay_{suffix}"] = tr["alpha"], tr["torch_weight_decay"]
        out["torch_optimizer"] = tr["torch_optimizer"]
    return out


def ci_range(lams, val: np.ndarray, sem: np.ndarray, i_min: int,
             folds: int) -> tuple[float, float, float, int]:
    """(ci, lam_lo, lam_hi, n_lams_in_range): the 95% CI half-width of the best CV value
    (Student t over the ``folds`` folds' standard error ``sem[i_min]``) and the contiguous
    lam range within it (``wdlab.answer.lam_range``)."""
    from wdlab.answer import lam_range
    from wdlab.selection import t975

    ci = float(t975(np.asarray([folds - 1]))[0] * sem[i_min])
    lo, hi, count = lam_range(lams, val, ci, float(lams[i_min]))
    return ci, lo, hi, count


def fit_warnings(results: FitResults, folds: int) -> list[dict]:
    """The ``wdlab.answer`` checks of a fit: grid edge, flat CV curve, divergence and, for
    coupled pairs, training that did not reach the closed form (CV MSE vs the closed form's
    CV MSE on the same folds)."""
    from wdlab.answer import converged_check

    ridge = results.ridge

    def converged(row, part, lam, name):
        if not len(ridge) or row["regularizer"] not in COUPLED:
            return None
        r = ridge[(ridge["optimizer"] == row["optimizer"])
                  & (ridge["regularizer"] == row["regularizer"])].set_index("lam")
        return converged_check(lam, part["val_mse"].to_numpy(np.float64),
                               r["ridge_val_mse"].reindex(lam).to_numpy(np.float64),
                               group=name, metric="CV")

    return pair_checks(results, folds, best="best_val_mse", ci="best_val_mse_ci95",
                       more=converged)


def pair_checks(results: FitResults, folds: int, *, best: str, ci: str, more=None) -> list:
    """The checks every fit (linear or ``--model mlp``) makes: per pair the grid edge and a
    flat CV curve (the selection row's ``best`` value within its ``ci``), then ``more(row,
    pair configs, lams, name)`` if given, then divergence over every configuration; merged
    (``wdlab.answer.merge_warnings``)."""
    from wdlab.answer import diverged_check, edge_check, flat_check, merge_warnings

    found = []
    configs = results.configs
    for row in results.selection.to_dict("records"):
        name = f"{row['optimizer']}+{row['regularizer']}"
        part = configs[(configs["optimizer"] == row["optimizer"])
                       & (configs["regularizer"] == row["regularizer"])].sort_values("lam")
        lam = part["lam"].to_numpy(np.float64)
        found.append(edge_check(lam, row["best_lam"], group=name))
        found.append(flat_check(row["lam_lo"], row["lam_hi"], int(row["n_lams_in_range"]),
                                len(lam), group=name, best_val=row[best], tol=row[ci],
                                tol_word=f"the 95% CI over {folds} folds"))
        if more is not None:
            found.append(more(row, part, lam, name))
    div = (configs["status"] != "ok").to_numpy(np.float64)
    labels = (configs["optimizer"] + "+" + configs["regularizer"]).tolist()
    found.append(diverged_check(labels, div, len(configs), configs["lam"].to_numpy(np.float64),
                                configs["lr"].to_numpy(np.float64)))
    return merge_warnings([w for w in found if w is not None])


def _index(lams: np.ndarray, lam: float) -> int:
    return int(np.flatnonzero(lams == lam)[0])


def _curves(bf, ids: np.ndarray, F: int, s2: float) -> pd.DataFrame:
    """Long form curves of the full-train refit of every lam (val = mean over folds)."""
    epochs = np.asarray(bf.result.epochs)
    R, L = len(epochs), len(ids)
    cols = {"config_id": np.repeat(ids, R), "epoch": np.tile(epochs, L)}
    for name, part in (("train_mse", bf.curve("train_mse")[:, F, 0]),
                       ("val_mse", bf.curve("val_mse")[:, :F, 0].mean(1)),
                       ("test_mse", bf.curve("test_mse")[:, F, 0])):
        cols[name] = (part * s2).T.reshape(-1)  # (R, L) -> config-major
    cols["w_norm"] = bf.curve("w_norm")[:, F, 0].T.reshape(-1) * np.sqrt(s2)
    return cut_at_divergence(pd.DataFrame(cols), bf.diverged_epoch[F, 0], R)


# ------------------------------------------------------------------------------------------
# The run directory
# ------------------------------------------------------------------------------------------


def fit_manifest(opts, results, table: UserTable, *, data, target: str, dropna: bool,
                 seed: int) -> dict[str, Any]:
    """The manifest of a ``wdlab fit`` run (linear or ``--model mlp``): options, input, split."""
    return {"config": {**opts.to_json(), "data": str(data), "target": target,
                       "features": table.features, "dropped_constant": table.dropped_constant,
                       "dropped_rows": table.dropped_rows, "dropna": dropna},
            "seeds": {"seed": seed}, "split": results.info, "baseline": results.baseline}


def fit_into_run(table: UserTable, opts: FitOptions, *, data, target: str, dropna: bool,
                 out, force: bool, report: bool, train=None, write=None):
    """``wdlab fit``'s steps after validation, linear or ``--model mlp``: claim the run
    directory (refuses a completed run before any training), train (``train(table, opts)``,
    default ``run_fit``), then write tables, figures, manifest and report (``write(run,
    results, manifest, report=)``, default ``write_fit_run``).

    Returns (results, run directory, report path or None).
    """
    from wdlab.store import RunDir, default_run_dir

    path = Path(out) if out is not None else default_run_dir(f"fit-{Path(data).stem}")
    run = RunDir(path, force=force)  # refuses a completed run before any training
    results = (train or run_fit)(table, opts)  # nothing written yet
    manifest = fit_manifest(opts, results, table, data=data, target=target, dropna=dropna,
                            seed=opts.seed)
    report_path = (write or write_fit_run)(run, results, manifest, report=report)
    return results, run.path, report_path


def write_fit_run(run, results: FitResults, manifest: dict[str, Any], *, report: bool,
                  warnings: list[dict] | None = None, figures: dict | None = None,
                  reporter=None) -> Path:
    """Tables, figures, manifest (running, then complete) and report.html if available.

    ``warnings``, ``figures`` (name -> Figure) and ``reporter`` (run_dir -> report path)
    replace the linear fit's (``--model mlp``).
    """
    import importlib.util

    from wdlab.experiment import run_files, run_manifest

    run.create()
    if warnings is None:
        warnings = fit_warnings(results, int(manifest["config"].get("folds", 5)))
    base = run_manifest("fit", device=manifest["config"]["device"], warnings=warnings,
                        **manifest)
    run.manifest({**base, "status": "running"})
    run.table("configs", results.configs)
    run.table("curves", results.curves)
    run.table("selection", results.selection)
    if len(results.coefficients):
        run.table("coefficients", results.coefficients)
    if len(results.ridge):
        run.table("ridge", results.ridge)
    from wdlab.report.figures import figure_formats

    fmts = figure_formats()
    if figures is None:
        from wdlab.plots import fit_coefficient_paths, fit_cv_curve

        figures = {"coefficients": fit_coefficient_paths(results.coefficients, results.selection),
                   "cv_curve": fit_cv_curve(results.configs, results.selection, results.ridge)}
    for name, fig in figures.items():
        run.figure(name, fig, formats=fmts)

    def complete(status: str = "complete") -> None:
        run.manifest({**base, "status": status, "files": run_files(run.path)})

    will_report = report and importlib.util.find_spec("wdlab.report") is not None
    complete("reporting" if will_report else "complete")  # 'complete' once the report exists
    report_path = None
    if will_report:
        from wdlab.report import write_report

        report_path = (reporter or write_report)(run.path)
        complete()  # list the report (and its figures) too
    return report_path
