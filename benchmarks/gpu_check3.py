"""CUDA checks of the fused Triton engine (issue 7), one short script for the device machine:

    python benchmarks/gpu_check3.py OUT_DIR PART      PART: equiv | tune | bench

equiv: CUDA triton vs CPU eager (200 epochs, 2 draws, eval set, reference) and vs the
       torch.optim oracle; bench: ``run_bench`` rows for triton and compiled (K = 1, 1e4, 1e6;
       K = 1e6 recorded every epoch and every 100th); tune: configurations per program.
"""

from __future__ import annotations

import json
import sys
import time

import torch

sys.path.insert(0, "tests")
from oracle import single_run  # noqa: E402
from wdlab.bench import engine_rate, run_bench  # noqa: E402
from wdlab.data.synthetic import init_weights, make_linear, problem_from_datasets  # noqa: E402
from wdlab.engine import EngineSpec, Hyper, train  # noqa: E402
from wdlab.engine.kernels import triton as fused  # noqa: E402


def _rel(a, b):
    return ((a - b).abs() / b.abs().clamp_min(1e-3)).max().item()


def equiv() -> list[dict]:
    draws = [make_linear(8, 40, 20, w_star=2.0, bias=0.5, noise=0.1, seed=s) for s in (1, 2)]
    prob = problem_from_datasets(draws)
    K = 10  # M = 5 per draw: blocks straddle draws
    g = torch.Generator().manual_seed(0)
    hyper = Hyper(10 ** (-3 * torch.rand(K, generator=g, dtype=torch.float64)),
                  torch.full((K,), 0.01, dtype=torch.float64), torch.full((K,), 0.9),
                  torch.full((K,), 0.999))
    theta0 = init_weights(torch.arange(K), 8, 0.5)
    ref = torch.randn(K, 9, generator=g)
    out = []
    for opt, reg, sched in [("adam", "mean", "constant"), ("adamw", "independent", "cosine"),
                            ("sgd", "decoupled", "cosine"), ("sgd", "sum", "constant"),
                            ("adam", "weight_decay", "constant")]:
        spec = dict(epochs=200, schedule=sched)
        cpu = train(prob, EngineSpec(opt, reg, **spec), hyper, theta0, reference=ref,
                    engine="eager")
        t0 = time.perf_counter()
        r = train(prob, EngineSpec(opt, reg, device="cuda", **spec), hyper, theta0,
                  reference=ref, engine="triton")
        row = {"pair": f"{opt}/{reg}/{sched}", "engine": r.extra["engine"],
               "seconds_incl_jit": time.perf_counter() - t0,
               "theta_rel_vs_cpu_eager": _rel(r.theta, cpu.theta),
               "metrics_rel_vs_cpu_eager": max(
                   ((r.metrics[n] - v).abs() / v.abs().clamp_min(1e-6)).max().item()
                   for n, v in cpu.metrics.items()),
               "diverged_equal": bool(torch.equal(r.diverged_epoch, cpu.diverged_epoch))}
        if sched == "constant":
            worst = 0.0
            for k in (0, 7):
                d = draws[k // 5]
                th, _ = single_run(d.X_train, d.y_train, theta0[k].double(), optimizer=opt,
                                   regularizer=reg, loss="mse", lam=hyper.lam[k].item(),
                                   lr=0.01, beta1=0.9, beta2=0.999, epochs=200,
                                   dtype=torch.float32)
                worst = max(worst, _rel(r.theta[k], th.float()))
            row["theta_rel_vs_torch_optim"] = worst
        print(row, flush=True)
        out.append(row)
    return out


def tune() -> list[dict]:
    out = []
    for bk in (2, 4, 8):
        fused.BLOCK_K = bk
        r = engine_rate(1_000_000, torch.device("cuda"), "triton", 100, 100)
        r["block_k"] = bk
        print(r, flush=True)
        out.append(r)
    fused.BLOCK_K = 4
    return out


def bench() -> dict:
    show = lambda r: print(  # noqa: E731
        f"  K={r['K']:>8}: {r['config_steps_per_s']:.4g} /s end-to-end, steady "
        f"{r['steady_config_steps_per_s'] or float('nan'):.4g} ({r['engine']})", flush=True)
    res = {}
    runs = [("1e6_e100_rec100", [1_000_000], 100, 100), ("small_e1000_rec1", [1, 10_000], 1000, 1),
            ("1e6_e100_rec1", [1_000_000], 100, 1)]
    for eng in ("triton", "compiled"):
        for name, ks, epochs, every in runs:
            print(eng, name, flush=True)
            res[f"{eng}_{name}"] = run_bench("cuda", eng, ks, epochs=epochs, record_every=every,
                                             progress=show)
            print({k: v for k, v in res[f"{eng}_{name}"].items() if k != "rows"}, flush=True)
            with open(f"{sys.argv[1]}/gpu_check3_bench.json", "w") as fh:  # partial results
                json.dump(res, fh, indent=2)
    return res


if __name__ == "__main__":
    out_dir, part = sys.argv[1], sys.argv[2]
    res = {"equiv": equiv, "tune": tune, "bench": bench}[part]()
    with open(f"{out_dir}/gpu_check3_{part}.json", "w") as fh:
        json.dump(res, fh, indent=2)
