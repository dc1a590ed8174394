"""The closed-form lam path against scikit-learn, in the same run.

Problem: the seed article's draw (n_train = 10, n_features = 200), K = 1000 lam values
(``mean`` convention, log-spaced 1e-4 .. 1e3) translated to sklearn's alpha. Compared:

    wdlab.ridge_path     one SVD, then O(K n d): coefficients, intercepts, LOO, GCV, test MSE
    Ridge per lam        sklearn.linear_model.Ridge(alpha, solver="svd") refitted K times
    RidgeCV              sklearn.linear_model.RidgeCV(alphas) (efficient LOO, best alpha only)

Run: python benchmarks/bench_ridge.py [--k 1000] [--repeats 5]
Prints the best-of-repeats wall time of each and the ratios. Targets: >= 500x faster than
the per-lam loop, and faster than RidgeCV while also returning the whole path.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import sklearn
import torch
from sklearn.linear_model import Ridge, RidgeCV

from wdlab.conventions import translate
from wdlab.data.synthetic import SEED_DATA, make_linear
from wdlab.exact.ridge import ridge_path


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=1000, help="number of lam values")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (best is kept)")
    parser.add_argument("--loop-repeats", type=int, default=2, help="repeats of the slow loop")
    args = parser.parse_args()

    ds = make_linear(**SEED_DATA, seed=0)
    X, y = ds.X_train, ds.y_train
    Xn, yn = X.numpy(), y.numpy()
    n, d = Xn.shape
    lams = np.logspace(-4, 3, args.k)
    alphas = translate(lams, "seed", "sklearn", n_train=n, n_features=d)

    path = ridge_path(X, y, lams, "mse", "mean", X_test=ds.X_test, y_test=ds.y_test)
    cv = RidgeCV(alphas=alphas).fit(Xn, yn)
    coefs = np.stack([Ridge(alpha=a, solver="svd").fit(Xn, yn).coef_ for a in alphas[:: 97]])
    err = np.abs(path.coef.numpy()[:: 97] - coefs).max() / np.abs(coefs).max()
    same = bool(np.isclose(cv.alpha_, alphas[path.best_index("loo")], rtol=1e-12))

    t_path = best_time(lambda: ridge_path(X, y, lams, "mse", "mean", X_test=ds.X_test,
                                          y_test=ds.y_test), args.repeats)
    t_loop = best_time(lambda: [Ridge(alpha=a, solver="svd").fit(Xn, yn) for a in alphas],
                       args.loop_repeats)
    t_cv = best_time(lambda: RidgeCV(alphas=alphas).fit(Xn, yn), args.repeats)

    print(f"wdlab ridge_path benchmark: seed problem n_train={n}, n_features={d}, "
          f"K={args.k} lam values")
    print(f"torch {torch.__version__}, sklearn {sklearn.__version__}, numpy {np.__version__}, "
          f"python {platform.python_version()}, threads {torch.get_num_threads()}")
    print(f"check: max rel coef diff vs Ridge {err:.1e}; same lam as RidgeCV: {same}")
    print(f"{'method':<28}{'time [ms]':>12}{'ratio':>12}")
    print(f"{'ridge_path (whole path)':<28}{t_path * 1e3:>12.3f}{1.0:>12.1f}")
    print(f"{'Ridge refit per lam':<28}{t_loop * 1e3:>12.3f}{t_loop / t_path:>12.1f}")
    print(f"{'RidgeCV (best alpha only)':<28}{t_cv * 1e3:>12.3f}{t_cv / t_path:>12.1f}")
    print(f"speed-up vs per-lam loop: {t_loop / t_path:.0f}x (target >= 500x); "
          f"vs RidgeCV: {t_cv / t_path:.1f}x (target > 1x)")


if __name__ == "__main__":
    main()
