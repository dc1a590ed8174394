"""AdamW's l-inf limit: how close full-batch AdamW gets, and what the exact path costs.

1. Distance of full-batch AdamW (float64, w0 = 0, eps 1e-12) to ``linf_path`` on a tall
   40 x 5 draw, at weight decays whose box is inactive / partly / fully active, against the
   epochs and lr of a cosine (or constant) schedule. The engine's ``reference=`` records it.
2. ``linf_path`` over a whole lam path (warm-started BVLS) against
   ``scipy.optimize.lsq_linear(method="bvls")`` solved once per lam, same run, best of 3.

    python benchmarks/bench_linf.py
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch
from scipy.optimize import lsq_linear

from wdlab.data.synthetic import make_linear, problem_from_datasets
from wdlab.engine import EngineSpec, Hyper, train
from wdlab.exact.linf import linf_path


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def convergence() -> None:
    ds = make_linear(5, 40, 10, w_star=0.5, bias=0.5, noise=0.3, seed=3)
    lams = [0.5, 1.8, 2.5, 4.0]
    path = linf_path(ds.X_train, ds.y_train, lams)
    ref = path.theta  # (K, D+1)
    print(f"tall 40 x 5, lam = {lams}, coordinates on the box: {path.n_bound.tolist()}")
    print("schedule  epochs    lr      relative distance ||theta - limit|| / ||limit|| per lam")
    for schedule, epochs, lr in [("cosine", 2_000, 1e-2), ("cosine", 20_000, 1e-3),
                                 ("cosine", 200_000, 1e-3), ("cosine", 200_000, 3e-4),
                                 ("cosine", 1_000_000, 1e-3),
                                 ("constant", 200_000, 1e-3), ("constant", 200_000, 1e-4)]:
        spec = EngineSpec("adamw", "decoupled", "mse", epochs=epochs, schedule=schedule,
                          eps=1e-12, dtype=torch.float64)
        res = train(problem_from_datasets([ds]), spec, Hyper.of(len(lams), lam=lams, lr=lr),
                    torch.zeros_like(ref), reference=ref, record_epochs=[epochs])
        rel = res.metrics["dist_to_ridge"][-1] / torch.linalg.vector_norm(ref, dim=1)
        print(f"{schedule:9s} {epochs:7d} {lr:7.0e}   " + "  ".join(f"{v:.2e}" for v in rel.tolist())
              + f"   ({res.extra['engine']})")


def timing() -> None:
    rng = np.random.default_rng(0)
    for n, d in [(200, 50), (10, 200)]:
        X = rng.normal(size=(n, d))
        y = X @ rng.normal(size=d) * 0.3 + rng.normal(size=n) * 0.1
        Xc, yc = X - X.mean(0), y - y.mean()
        lams = np.geomspace(0.1, 100.0, 50)
        best_ours, best_scipy = np.inf, np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            linf_path(X, y, lams)
            best_ours = min(best_ours, time.perf_counter() - t0)
            t0 = time.perf_counter()
            for lam in lams:  # loop over lams: scipy solves one box at a time
                lsq_linear(Xc, yc, bounds=(-1 / lam, 1 / lam), method="bvls", tol=1e-12)
            best_scipy = min(best_scipy, time.perf_counter() - t0)
        print(f"{n} x {d}, 50 lams: linf_path {best_ours * 1e3:.1f} ms, scipy bvls per lam "
              f"{best_scipy * 1e3:.1f} ms, ratio {best_scipy / best_ours:.2f}")


if __name__ == "__main__":
    print(f"CPU: {_cpu()}; load average {os.getloadavg()[0]:.2f}; torch {torch.__version__}")
    convergence()
    timing()
