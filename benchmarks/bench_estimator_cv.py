"""WeightDecayRegressorCV (every lam x fold, plus the refit path, as ONE engine call) against
GridSearchCV(WeightDecayRegressor) over the same grid and folds (one engine call per fit),
in the same run, on load_diabetes (standardised).

    python benchmarks/bench_estimator_cv.py [--lams 30] [--folds 5] [--epochs 1000]
        [--threads 1] [--repeats 3] [--device cpu]

Both sides train the same models (the script checks that the CV scores agree) with the same
torch thread count and n_jobs=1; each time is the best of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from sklearn.datasets import load_diabetes
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.preprocessing import StandardScaler

from wdlab import WeightDecayRegressor, WeightDecayRegressorCV
from wdlab.store import device_name


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lams", type=int, default=30)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--grid-repeats", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    lams = np.logspace(-3, 2, args.lams)
    folds = KFold(args.folds)
    kw = dict(lr=args.lr, epochs=args.epochs, device=args.device)

    # warm up both paths once (allocator, first-call overheads)
    WeightDecayRegressorCV(lams=lams[:2], cv=folds, **{**kw, "epochs": 5}).fit(X, y)

    t_cv, cv = best_time(lambda: WeightDecayRegressorCV(lams=lams, cv=folds, **kw).fit(X, y),
                         args.repeats)
    grid = GridSearchCV(WeightDecayRegressor(**kw), {"lam": lams}, cv=folds,
                        scoring="neg_mean_squared_error", n_jobs=1)
    t_gs, gs = best_time(lambda: grid.fit(X, y), args.grid_repeats)

    diff = float(np.max(np.abs(cv.cv_results_["mean_test_score"] / gs.cv_results_["mean_test_score"] - 1)))
    result = {
        "benchmark": "estimator_cv", "device": device_name(args.device), "torch_threads": args.threads,
        "n_lams": args.lams, "folds": args.folds, "epochs": args.epochs,
        "engine_calls": {"WeightDecayRegressorCV": 1, "GridSearchCV": args.lams * args.folds + 1},
        "seconds": {"WeightDecayRegressorCV": t_cv, "GridSearchCV": t_gs},
        "speedup": t_gs / t_cv, "max_rel_cv_score_diff": diff,
        "lam": {"WeightDecayRegressorCV": cv.lam_, "GridSearchCV": gs.best_params_["lam"]},
    }
    print(f"{args.lams} lams x {args.folds} folds, {args.epochs} epochs, diabetes, "
          f"{result['device']}, {args.threads} torch thread(s)")
    print(f"  WeightDecayRegressorCV (1 engine call)      {t_cv:8.3f} s")
    print(f"  GridSearchCV(WeightDecayRegressor) ({args.lams * args.folds + 1} calls) {t_gs:8.3f} s")
    print(f"  speedup {result['speedup']:.1f}x; same lam: {cv.lam_ == gs.best_params_['lam']}; "
          f"max relative CV-score difference {diff:.1e}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
