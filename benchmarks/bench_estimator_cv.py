"""WeightDecayRegressorCV (every lam x fold, plus the refit path, as ONE engine call on the
folds' compressed rows) against GridSearchCV(WeightDecayRegressor) over the same grid and
folds (one engine call per fit, on the fit's own rows), in the same run, on load_diabetes
(standardised).

    python benchmarks/bench_estimator_cv.py [--lams 30] [--folds 5] [--epochs 1000]
        [--threads 1] [--repeats 5] [--grid-repeats 3] [--device cpu] [--out FILE.json]

Both sides train the same models (the script checks that the CV scores agree and that the
same lam is chosen) with the same torch thread count and n_jobs=1. Each time is the best of
its repeats, as wall time and as this process's CPU time (with one torch thread the CPU
time is what a loaded machine distorts least; ``load_1min`` is recorded before and after).
The CV fit's CPU time is then split into validation, row compression, the engine (its
native kernel apart), the closed-form reference and the rest, from separate instrumented
runs. The CV on the N rows (``compress=False``, as before) is timed too, and
``--grid-compressed`` adds GridSearchCV with every fit on compressed rows too (what
``WeightDecayRegressor.fit`` would cost with the same transform; it does not use it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time

import numpy as np
import torch
from sklearn.datasets import load_diabetes
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.preprocessing import StandardScaler

import wdlab.cvfit as cvfit
import wdlab.engine.kernels.native as native
import wdlab.estimator as estimator
from wdlab import WeightDecayRegressor, WeightDecayRegressorCV
from wdlab.store import device_name


def best_time(fn, repeats: int) -> tuple[float, float, object]:
    """(best wall seconds, best CPU seconds, last result) over ``repeats`` calls."""
    wall, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu, out


@contextlib.contextmanager
def rows_compressed(flag: bool):
    """Every ``fit_batch`` call of the estimators with ``compress=flag`` (a reference only:
    the CV compresses, ``WeightDecayRegressor.fit`` does not)."""
    real = estimator.fit_batch
    estimator.fit_batch = lambda *a, **k: real(*a, **{**k, "compress": flag})
    try:
        yield
    finally:
        estimator.fit_batch = real


def cpu_split(fit, runs: int) -> dict[str, float]:
    """Mean CPU milliseconds per CV fit in each stage (instrumented, not the timed runs)."""
    acc: dict[str, float] = {}
    patched = []

    def wrap(mod, name, label):
        real = getattr(mod, name)

        def timed(*a, **k):
            c0 = time.process_time()
            try:
                return real(*a, **k)
            finally:
                acc[label] = acc.get(label, 0.0) + time.process_time() - c0

        patched.append((mod, name, real))
        setattr(mod, name, timed)

    wrap(estimator, "_validate_fit_input", "validate")
    wrap(cvfit, "compressed_rows", "compress rows")
    wrap(cvfit, "train", "engine")
    wrap(native, "run", "native kernel")
    wrap(estimator, "closed_form_fold_mse", "closed form")
    c0 = time.process_time()
    try:
        for _ in range(runs):
            fit()
    finally:
        for mod, name, real in patched:
            setattr(mod, name, real)
    total = time.process_time() - c0
    ms = {k: 1e3 * v / runs for k, v in acc.items()}
    out = {"total": 1e3 * total / runs, "validate": ms.get("validate", 0.0),
           "compress rows": ms.get("compress rows", 0.0),
           "native kernel": ms.get("native kernel", 0.0),
           "engine (rest: inputs, dispatch, metrics)": ms.get("engine", 0.0) - ms.get("native kernel", 0.0),
           "closed form": ms.get("closed form", 0.0)}
    out["rest (folds, init, selection, results)"] = out["total"] - sum(
        v for k, v in out.items() if k != "total")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lams", type=int, default=30)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--grid-repeats", type=int, default=3)
    ap.add_argument("--split-runs", type=int, default=20)
    ap.add_argument("--grid-compressed", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="also write the result JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    lams = np.logspace(-3, 2, args.lams)
    folds = KFold(args.folds)
    kw = dict(lr=args.lr, epochs=args.epochs, device=args.device)

    # warm up both paths once (allocator, native library load, first-call overheads)
    WeightDecayRegressorCV(lams=lams[:2], cv=folds, **{**kw, "epochs": 5}).fit(X, y)
    WeightDecayRegressor(**{**kw, "epochs": 5}).fit(X, y)

    cv_fit = lambda: WeightDecayRegressorCV(lams=lams, cv=folds, **kw).fit(X, y)  # noqa: E731
    t_cv, c_cv, cv = best_time(cv_fit, args.repeats)
    grid = GridSearchCV(WeightDecayRegressor(**kw), {"lam": lams}, cv=folds,
                        scoring="neg_mean_squared_error", n_jobs=1)
    t_gs, c_gs, gs = best_time(lambda: grid.fit(X, y), args.grid_repeats)
    with rows_compressed(False):  # the CV on the N rows, as before compressed rows
        t_cvn, c_cvn, _ = best_time(cv_fit, args.repeats)
    split = cpu_split(cv_fit, args.split_runs)

    diff = float(np.max(np.abs(cv.cv_results_["mean_test_score"] / gs.cv_results_["mean_test_score"] - 1)))
    result = {
        "benchmark": "estimator_cv", "device": device_name(args.device),
        "cpu": device_name("cpu"), "torch": torch.__version__,
        "torch_threads": args.threads, "n_lams": args.lams, "folds": args.folds,
        "epochs": args.epochs, "lr": args.lr, "repeats": args.repeats,
        "grid_repeats": args.grid_repeats,
        "engine_calls": {"WeightDecayRegressorCV": 1, "GridSearchCV": args.lams * args.folds + 1},
        "seconds": {"WeightDecayRegressorCV": t_cv, "GridSearchCV": t_gs},
        "cpu_seconds": {"WeightDecayRegressorCV": c_cv, "GridSearchCV": c_gs},
        "speedup": t_gs / t_cv, "speedup_cpu": c_gs / c_cv,
        "max_rel_cv_score_diff": diff,
        "lam": {"WeightDecayRegressorCV": cv.lam_, "GridSearchCV": gs.best_params_["lam"]},
        "same_lam": bool(cv.lam_ == gs.best_params_["lam"]),
        "cv_cpu_ms_split": split,
    }
    result["seconds"]["WeightDecayRegressorCV_on_rows"] = t_cvn
    result["cpu_seconds"]["WeightDecayRegressorCV_on_rows"] = c_cvn
    result["compressed_rows_gain"] = t_cvn / t_cv
    if args.grid_compressed:  # not shipped: every GridSearchCV fit on its compressed rows
        with rows_compressed(True):
            t_gc, c_gc, gc = best_time(lambda: grid.fit(X, y), args.grid_repeats)
        result["seconds"]["GridSearchCV_compressed_fits"] = t_gc
        result["cpu_seconds"]["GridSearchCV_compressed_fits"] = c_gc
        result["speedup_vs_compressed_grid"] = t_gc / t_cv
        result["lam"]["GridSearchCV_compressed_fits"] = gc.best_params_["lam"]
    result["load_1min"] = [load_before, os.getloadavg()[0]]

    print(f"{args.lams} lams x {args.folds} folds, {args.epochs} epochs, diabetes, "
          f"{result['device']}, {args.threads} torch thread(s), load {load_before:.2f} -> "
          f"{result['load_1min'][1]:.2f}")
    print(f"  WeightDecayRegressorCV (1 engine call)            {t_cv:8.3f} s wall  {c_cv:8.3f} s CPU")
    print(f"  GridSearchCV(WeightDecayRegressor) ({args.lams * args.folds + 1} calls) "
          f"{t_gs:8.3f} s wall  {c_gs:8.3f} s CPU")
    print(f"  WeightDecayRegressorCV on the N rows (before)     {t_cvn:8.3f} s wall  {c_cvn:8.3f} s CPU")
    if args.grid_compressed:
        print(f"  GridSearchCV, fits on compressed rows (not shipped)  {t_gc:8.3f} s wall  "
              f"{c_gc:8.3f} s CPU")
    print(f"  speedup {result['speedup']:.1f}x wall, {result['speedup_cpu']:.1f}x CPU; same lam: "
          f"{result['same_lam']}; max relative CV-score difference {diff:.1e}")
    print("  CV fit, CPU ms per fit: " + ", ".join(f"{k} {v:.2f}" for k, v in split.items()))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        from wdlab.store import write_text

        write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
