"""Issue 4's benchmark: sweep throughput and peak memory, against the seed's one-model loop
measured in the same run.

    python benchmarks/bench_sweep.py [--device cpu|cuda] [--ks 1e3,1e4,1e5] [--rss-k 1e5]
                                     [--rss-epochs 1000] [--json out.json] [--quick]

Throughput: ``run_sweep`` end to end (plan, chunks, per-chunk files, assembly, summary,
selection with the closed-form ridge; no CSV, no report) on the seed problem (200 features,
10 + 10 samples, Adam lr 0.05, lam * mean(w^2), 100 epochs, every epoch recorded), with K =
(lams x seeds) configurations, against the seed's loop: one model at a time,
``torch.optim.Adam`` on [w, b], ``.item()`` of the train and test loss every epoch.

Memory: peak RSS of a ``wdlab sweep`` subprocess (``resource.getrusage(RUSAGE_CHILDREN)``)
for K configurations x ``--rss-epochs`` epochs with 50 log-spaced recorded epochs; the same
for K/10 configurations shows the peak is set by the chunk, not the grid; and the RSS of a
subprocess running the seed loop is the baseline footprint. Target: <= 4 GB at K = 1e5.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from wdlab.bench import seed_epoch
from wdlab.config.load import build_spec
from wdlab.data.synthetic import SEED_DATA, make_linear
from wdlab.store import device_name
from wdlab.sweep import run_sweep


def seed_loop(n_models: int, epochs: int = 100) -> float:
    """Configurations per second of the seed article's loop (one model per lam)."""
    data = make_linear(**SEED_DATA, seed=0)
    X, y = data.X_train.float(), data.y_train.float()[:, None]
    Xt, yt = data.X_test.float(), data.y_test.float()[:, None]
    lams = torch.logspace(-3, 2, n_models).tolist()
    start = time.perf_counter()
    for i, lam in enumerate(lams):  # the baseline: a Python loop over models
        g = torch.Generator().manual_seed(i)
        w = torch.randn(X.shape[1], 1, generator=g).requires_grad_(True)
        b = torch.zeros(1, requires_grad=True)
        opt = torch.optim.Adam([w, b], lr=0.05)
        for _ in range(epochs):
            seed_epoch(X, y, Xt, yt, w, b, opt, lam)
    return n_models / (time.perf_counter() - start)


def grid(K: int) -> tuple[int, int]:
    """(lams, seeds) with lams * seeds = K: 50 x 20 for 1e3, 100 x K/100 above."""
    n_lam = 50 if K <= 1000 else 100
    return n_lam, max(1, K // n_lam)


def sweep_rate(K: int, device: str, engine: str) -> dict:
    n_lam, n_seeds = grid(K)
    spec = build_spec({"preset": "seed", "train": {"lam": f"1e-3:1e2:{n_lam}", "device": device},
                       "data": {"seeds": n_seeds}, "execution": {"engine": engine}})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        out = run_sweep(spec, Path(tmp) / "run", csv=False, report=False)
        total = time.perf_counter() - start
        manifest = json.loads((out / "manifest.json").read_text())
    chunk_s = manifest["timing"]["seconds_this_process"]
    return {"K": n_lam * n_seeds, "seconds": total, "configs_per_s": n_lam * n_seeds / total,
            "chunk_loop_seconds": chunk_s, "chunks": manifest["plan"]["n_chunks"],
            "chunk_size": manifest["plan"]["chunk_size"]}


def child_peak_rss(argv: list[str]) -> tuple[float, float]:
    """(peak RSS in GiB, seconds) of one subprocess; run before any other child exits."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, max over children
    if peak <= before:
        raise RuntimeError("an earlier child had a larger RSS; run the RSS part first")
    return peak / 2**20, seconds


def rss_rows(K: int, epochs: int, device: str, engine: str) -> list[dict]:
    rows = []
    for k in (K, K // 10):  # the larger first: RUSAGE_CHILDREN keeps the maximum
        n_lam, n_seeds = grid(k)
        with tempfile.TemporaryDirectory() as tmp:
            argv = [sys.executable, "-c", "from wdlab.cli import app; app(prog_name='wdlab')",
                    "sweep", "--preset", "seed", "--lam", f"1e-3:1e2:{n_lam}",
                    "--seeds", str(n_seeds), "--epochs", str(epochs), "--log-points", "50",
                    "--device", device, "--engine", engine, "--out", f"{tmp}/run",
                    "--no-csv", "--no-report"]
            gib, seconds = child_peak_rss(argv)
        rows.append({"K": n_lam * n_seeds, "epochs": epochs, "peak_rss_gib": gib,
                     "seconds": seconds})
        if k == K:
            # a fresh interpreter for the smaller sweep's own maximum
            code = ("import resource,subprocess,sys; subprocess.run(sys.argv[1:], check=True,"
                    " stdout=subprocess.DEVNULL); print(resource.getrusage("
                    "resource.RUSAGE_CHILDREN).ru_maxrss)")
            n_lam, n_seeds = grid(K // 10)
            with tempfile.TemporaryDirectory() as tmp:
                argv = [sys.executable, "-c", code, sys.executable, "-c",
                        "from wdlab.cli import app; app(prog_name='wdlab')", "sweep", "--preset",
                        "seed", "--lam", f"1e-3:1e2:{n_lam}", "--seeds", str(n_seeds),
                        "--epochs", str(epochs), "--log-points", "50", "--device", device,
                        "--engine", engine, "--out", f"{tmp}/run", "--no-csv", "--no-report"]
                start = time.perf_counter()
                kib = int(subprocess.run(argv, check=True, capture_output=True,
                                         text=True).stdout.split()[-1])
                rows.append({"K": n_lam * n_seeds, "epochs": epochs,
                             "peak_rss_gib": kib / 2**20,
                             "seconds": time.perf_counter() - start})
            break
    code = ("import resource,subprocess,sys; subprocess.run(sys.argv[1:], check=True);"
            " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    loop = [sys.executable, "-c", code, sys.executable, "-c",
            "import sys; sys.path.insert(0, 'benchmarks'); import bench_sweep; "
            "bench_sweep.seed_loop(5)"]
    kib = int(subprocess.run(loop, check=True, capture_output=True, text=True).stdout.split()[-1])
    rows.append({"K": "seed loop (5 models)", "epochs": 100, "peak_rss_gib": kib / 2**20,
                 "seconds": None})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--ks", default="1e3,1e4,1e5")
    ap.add_argument("--loop-models", type=int, default=20)
    ap.add_argument("--rss-k", default="1e5")
    ap.add_argument("--rss-epochs", type=int, default=1000)
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of this script")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    ks = [int(float(k)) for k in args.ks.split(",")]
    rss_k, rss_epochs = int(float(args.rss_k)), args.rss_epochs
    if args.quick:
        ks, rss_k, rss_epochs, args.loop_models = [1000], 2000, 20, 3
    res = {"device": args.device, "device_name": device_name(args.device),
           "threads": torch.get_num_threads(), "torch": torch.__version__, "engine": args.engine}
    if not args.no_rss:  # first: RUSAGE_CHILDREN is a maximum over every child so far
        res["rss"] = rss_rows(rss_k, rss_epochs, args.device, args.engine)
        for r in res["rss"]:
            print(f"peak RSS  K={r['K']!s:>22}  epochs={r['epochs']:>5}  "
                  f"{r['peak_rss_gib']:6.2f} GiB"
                  + (f"  ({r['seconds']:.0f} s)" if r["seconds"] else ""), flush=True)
    threads = torch.get_num_threads()
    rates = {}
    for n in sorted({1, threads}):  # the baseline at its best thread count (tiny matrices)
        torch.set_num_threads(n)
        rates[n] = seed_loop(args.loop_models)
    torch.set_num_threads(threads)
    loop = max(rates.values())
    res["seed_loop_configs_per_s"] = loop
    res["seed_loop_by_threads"] = rates
    print(f"device: {res['device_name']}, torch threads {res['threads']}, engine {args.engine}")
    print("seed one-model loop (CPU): " + ", ".join(f"{r:,.2f} configs/s with {n} thread(s)"
                                                    for n, r in rates.items())
          + " (100 epochs each); the faster is the baseline", flush=True)
    res["throughput"] = []
    for K in ks:
        row = sweep_rate(K, args.device, args.engine)
        row["ratio_to_seed_loop"] = row["configs_per_s"] / loop
        res["throughput"].append(row)
        print(f"K={row['K']:>7,}  {row['configs_per_s']:>10,.0f} configs/s end to end "
              f"({row['seconds']:.1f} s, {row['chunks']} chunk(s) of <= {row['chunk_size']:,})"
              f"  {row['ratio_to_seed_loop']:>7,.0f}x the seed loop", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
