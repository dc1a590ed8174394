"""WeightDecayMLPClassifierCV (every lam x fold, plus the refit of every lam, as ONE nets
engine call) against GridSearchCV(WeightDecayMLPClassifier) over the same grid and folds (one
engine call per fit), and against scikit-learn's GridSearchCV(MLPClassifier(alpha=...)) on the
same grid values, in the same run, on digits or wine (75/25 stratified split, standardised on
train).

    python benchmarks/bench_estimator_nets_cv.py [--data digits|wine] [--lams 10] [--folds 5] [--hidden 64]
        [--epochs 100] [--lr 0.01] [--dtype float64] [--threads 1] [--repeats 1]

Our two sides train the same networks (full batch, AdamW, decoupled lam on the weights), and
the script checks that their CV scores agree and they choose the same lam. scikit-learn's
MLPClassifier is trained full batch with Adam for the same number of epochs (no early stop);
its ``alpha`` is an L2 penalty alpha/(2 n) ||W||^2, a different knob taking the same values.
Reports wall time (best of ``--repeats``), the speedup and the held-out test accuracy.

Roofline: the matmul FLOPs of each side (per layer of fan_in a x fan_out b on n rows and per
epoch: 2 n a b forward, 2 n a b for dW, 2 n a b for dX except on the first layer), divided by
the rate of one 1024^3 GEMM in the run's dtype measured in the same run, give the fastest
either side could be. The CV call trains (folds + 1) x lams networks on all n rows (a fold's
held-out rows weigh 0 but are computed); GridSearchCV trains folds x lams networks on the
fold's training rows and refits one. ``bound_speedup`` = GridSearchCV's measured time over
the CV call's lower bound: no implementation of the CV call's arithmetic can beat it, and
``bound_speedup_same_flops`` (the same over GridSearchCV's own FLOPs) bounds any batched
implementation that does GridSearchCV's arithmetic.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from wdlab import WeightDecayMLPClassifier, WeightDecayMLPClassifierCV
from wdlab.store import cpu_model


def best_time(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def matmul_flops(widths, n: int) -> float:
    """Forward + backward matmul FLOPs of one full-batch epoch of one MLP on n rows."""
    return float(sum(2 * n * a * b * (2 if i == 0 else 3)
                     for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True))))


def gemm_rate(dtype: torch.dtype, size: int = 1024, repeats: int = 5) -> float:
    """FLOP/s of one size^3 GEMM in ``dtype`` (best of ``repeats``)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    out = torch.empty(size, size, dtype=dtype)
    torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=("digits", "wine"), default="digits")
    ap.add_argument("--lams", type=int, default=10)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-sklearn", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    X, y = {"digits": load_digits, "wine": load_wine}[a.data](return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    sc = StandardScaler().fit(X_tr)
    X_tr, X_te = sc.transform(X_tr), sc.transform(X_te)
    lams = np.logspace(-4, 0, a.lams)
    folds = StratifiedKFold(a.folds)
    kw = dict(hidden_layer_sizes=(a.hidden,), lr=a.lr, epochs=a.epochs, dtype=a.dtype,
              device=a.device, random_state=0)

    t_cv, cv = best_time(lambda: WeightDecayMLPClassifierCV(lams=lams, cv=folds, **kw)
                         .fit(X_tr, y_tr), a.repeats)
    t_grid, grid = best_time(lambda: GridSearchCV(WeightDecayMLPClassifier(**kw),
                                                  {"lam": list(lams)}, cv=folds, n_jobs=1)
                             .fit(X_tr, y_tr), a.repeats)
    print(f"wdlab CV {t_cv:.1f} s, GridSearchCV(wdlab) {t_grid:.1f} s", flush=True)
    diff = float(np.abs(cv.cv_results_["mean_test_score"]
                        - grid.cv_results_["mean_test_score"]).max())
    out = {
        "cpu": cpu_model(), "load_1min": os.getloadavg()[0], "torch_threads": a.threads,
        "torch": torch.__version__, "data": a.data, "n_train": len(y_tr), "n_test": len(y_te),
        "grid": f"{a.lams} lams x {a.folds} folds", "hidden": a.hidden, "epochs": a.epochs,
        "dtype": a.dtype, "device": a.device,
        "wdlab_cv": {"seconds": t_cv, "lam": cv.lam_, "cv_accuracy": cv.best_score_,
                     "test_accuracy": float(cv.score(X_te, y_te))},
        "gridsearch_wdlab": {"seconds": t_grid, "lam": grid.best_params_["lam"],
                             "cv_accuracy": float(grid.best_score_),
                             "test_accuracy": float(grid.score(X_te, y_te))},
        "speedup_vs_gridsearch_wdlab": t_grid / t_cv,
        "same_lam": bool(cv.lam_ == grid.best_params_["lam"]), "max_cv_score_diff": diff,
    }
    if not a.skip_sklearn:
        mlp = MLPClassifier((a.hidden,), solver="adam", learning_rate_init=a.lr,
                            batch_size=len(y_tr), max_iter=a.epochs, tol=0.0,
                            n_iter_no_change=a.epochs + 1, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", message="Got `batch_size`")  # clipped: full batch
            t_sk, sk = best_time(lambda: GridSearchCV(mlp, {"alpha": list(lams)}, cv=folds,
                                                      n_jobs=1).fit(X_tr, y_tr), a.repeats)
        out["gridsearch_sklearn_mlp"] = {"seconds": t_sk, "alpha": sk.best_params_["alpha"],
                                         "cv_accuracy": float(sk.best_score_),
                                         "test_accuracy": float(sk.score(X_te, y_te))}
        out["speedup_vs_sklearn_mlp"] = t_sk / t_cv
    widths = (X_tr.shape[1], a.hidden, len(np.unique(y_tr)))
    rate = gemm_rate(getattr(torch, a.dtype))
    n_folds = [len(tr) for tr, _ in folds.split(X_tr, y_tr)]
    f_cv = a.epochs * a.lams * (a.folds + 1) * matmul_flops(widths, len(y_tr))
    f_grid = a.epochs * (a.lams * sum(matmul_flops(widths, n) for n in n_folds)
                         + matmul_flops(widths, len(y_tr)))
    out["roofline"] = {"gemm_1024_flops_per_s": rate, "cv_flops": f_cv, "grid_flops": f_grid,
                       "cv_seconds_bound": f_cv / rate, "grid_seconds_bound": f_grid / rate,
                       "cv_fraction_of_roofline": f_cv / rate / t_cv,
                       "grid_fraction_of_roofline": f_grid / rate / t_grid,
                       "bound_speedup": t_grid / (f_cv / rate),
                       "bound_speedup_same_flops": t_grid / (f_grid / rate)}
    out["load_1min_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
