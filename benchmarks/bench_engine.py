"""Issue 2's benchmark: engine throughput at K = 1, 100, 1000 on the seed problem, against the
seed's one-model loop (Adam via torch.optim, ``.item()`` each epoch) measured in the same run.

    python benchmarks/bench_engine.py [--engine auto|eager|compiled|native] [--ks 1,100,1000]

Target: >= 300x the seed loop at K = 1000 on CPU. ``wdlab bench`` covers K up to 1e6.
"""

from __future__ import annotations

import argparse
import json

from wdlab.bench import run_bench


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--ks", default="1,100,1000")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    res = run_bench(args.device, args.engine, [int(float(k)) for k in args.ks.split(",")],
                    args.epochs)
    print(f"device: {res['device_name']}  engine: {res['engine']}")
    print(f"seed one-model loop: {res['seed_loop_steps_per_s']:,.0f} steps/s")
    for r in res["rows"]:
        if "skipped" in r:
            print(f"K={r['K']:>8,}  skipped: {r['skipped']}")
            continue
        print(f"K={r['K']:>8,}  {r['engine']:>8}  {r['config_steps_per_s']:>14,.0f} config-steps/s"
              f"  {r['ratio_to_seed_loop']:>8.1f}x seed loop")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
