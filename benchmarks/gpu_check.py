"""CUDA checks for the device machine: compiled (CUDA graphs at small K) vs eager vs CPU,
then the throughput table for K = 1 ... 1e6. Writes JSON next to the printed figures.

    python benchmarks/gpu_check.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
import time

import torch

from wdlab.bench import run_bench
from wdlab.data.synthetic import init_weights, make_linear, problem_from_datasets
from wdlab.engine import EngineSpec, Hyper, train


def equivalence() -> list[dict]:
    data = make_linear(8, 40, 20, w_star=2.0, bias=0.5, noise=0.1, seed=1)
    prob = problem_from_datasets([data])
    K = 8
    g = torch.Generator().manual_seed(0)
    hyper = Hyper(10 ** (-3 * torch.rand(K, generator=g, dtype=torch.float64)),
                  torch.full((K,), 0.01, dtype=torch.float64), torch.full((K,), 0.9),
                  torch.full((K,), 0.999))
    theta0 = init_weights(torch.arange(K), 8, 0.5)
    out = []
    for opt, reg, sched in [("adam", "mean", "constant"), ("adamw", "independent", "cosine"),
                            ("sgd", "decoupled", "cosine")]:
        spec = EngineSpec(opt, reg, epochs=200, schedule=sched)
        ref = train(prob, spec, hyper, theta0, engine="eager")
        row = {"pair": f"{opt}/{reg}/{sched}"}
        for eng in ("eager", "compiled"):
            r = train(prob, EngineSpec(opt, reg, epochs=200, schedule=sched, device="cuda"),
                      hyper, theta0, engine=eng)
            rel = ((r.theta - ref.theta).abs() / ref.theta.abs().clamp_min(1e-3)).max().item()
            mrel = max(((r.metrics[n] - v).abs() / v.abs().clamp_min(1e-6)).max().item()
                       for n, v in ref.metrics.items())
            row[eng] = {"engine": r.extra["engine"], "theta_rel": rel, "metrics_rel": mrel}
        print(row, flush=True)
        out.append(row)
    return out


def main() -> None:
    out_dir = sys.argv[1]
    t0 = time.time()
    res = {"equivalence": equivalence()}
    show = lambda r: print(  # noqa: E731
        f"  K={r['K']:>8}: {r['config_steps_per_s']:.4g} config-steps/s "
        f"({r['seconds']:.3f} s, {r['engine']})", flush=True)
    res["small"] = run_bench("cuda", "compiled", [1, 10, 100, 1000, 10000], epochs=1000,
                             progress=show)
    print({k: v for k, v in res["small"].items() if k != "rows"}, flush=True)
    res["large"] = run_bench("cuda", "compiled", [100000, 1000000], epochs=100, progress=show)
    res["large_rec100"] = run_bench("cuda", "compiled", [1000000], epochs=100, record_every=100,
                                    progress=show)
    res["eager_large"] = run_bench("cuda", "eager", [1, 1000000], epochs=100, progress=show)
    res["wall_s"] = time.time() - t0
    with open(f"{out_dir}/gpu.json", "w") as fh:
        json.dump(res, fh, indent=2)
    for name in ("small", "large", "large_rec100", "eager_large"):
        b = res[name]
        print(f"{name}: {b['device_name']} seed loop {b['seed_loop_steps_per_s']:.0f}/s, "
              f"copy {b['copy_bytes_per_s'] / 1e12:.2f} TB/s, floor "
              f"{b['floor_config_steps_per_s']:.3g}")
        for r in b["rows"]:
            print("   ", {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()})


if __name__ == "__main__":
    main()
