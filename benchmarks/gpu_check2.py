"""Second device pass: throughput (end-to-end and steady state), the fused-gradient switch at
K = 1e6, and the top CUDA kernels of a few compiled epochs there.

    python benchmarks/gpu_check2.py OUT_DIR
"""

from __future__ import annotations

import json
import sys

import torch

import wdlab.engine.core as core
from wdlab.bench import run_bench
from wdlab.data.synthetic import SEED_DATA, init_weights, make_linear, problem_from_datasets
from wdlab.engine import EngineSpec, Hyper, train


def show(r):
    print(f"  K={r['K']:>8}: {r['config_steps_per_s']:.4g} e2e, steady "
          f"{r['steady_config_steps_per_s'] or 0:.4g} config-steps/s ({r['engine']})", flush=True)


def profile(K=1_000_000, epochs=5):
    prob = problem_from_datasets([make_linear(**SEED_DATA, seed=0)])
    th0 = init_weights(torch.arange(K) % 1000, 200)
    h = Hyper.of(K, lam=3.0)
    spec = EngineSpec("adam", "mean", epochs=epochs, device="cuda")
    train(prob, spec, h, th0, engine="compiled")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as p:
        train(prob, spec, h, th0, engine="compiled")
    return p.key_averages().table(sort_by="cuda_time_total", row_limit=12)


def main() -> None:
    out, res = sys.argv[1], {}
    res["small"] = run_bench("cuda", "compiled", [1, 100, 10000], epochs=1000, progress=show)
    for fuse in (64, 0):
        core.FUSE_GRAD_MAX_N = fuse
        for every in (1, 100):
            key = f"large_fuse{fuse}_rec{every}"
            print(key, flush=True)
            res[key] = run_bench("cuda", "compiled", [1_000_000], epochs=100,
                                 record_every=every, progress=show)
        print(profile(), flush=True)
    with open(f"{out}/gpu2.json", "w") as fh:
        json.dump(res, fh, indent=2)
    b = res["small"]
    print(b["device_name"], "seed", b["seed_loop_steps_per_s"], "floor",
          b["floor_config_steps_per_s"])


if __name__ == "__main__":
    main()
