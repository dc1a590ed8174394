"""Issue 8's benchmark: the Ray backend against the local backend, same sweep, same run.

    python benchmarks/bench_ray.py [--k 1e5] [--chunk-size 12500] [--epochs 100]
                                   [--num-cpus N] [--json out.json] [--quick]

The sweep: the seed problem (200 features, 10 + 10 samples, Adam lr 0.05, lam * mean(w^2)),
K = 100 lams x K/100 data seeds, the same explicit chunk size for both backends (so the same
chunks), no CSV, no report. Measured, in this order, in one process:

* local: ``run_sweep`` with ``local_executor`` (chunks one after another, torch's threads);
* Ray: the time to start a local instance (``connect``), then ``run_sweep`` with
  ``RayExecutor`` on it (one task per chunk, one CPU per task, ``num_cpus`` tasks at once).

Reported: both end-to-end times and their ratio (the overhead ratio; < 1 means Ray was
faster), the same for the chunk phase alone (from the executor's call to the last chunk
written: what the backend changes; the rest is the same driver code), and the inputs of the N-node estimate in the README: the mean in-task seconds per
chunk ``t_task`` (``run_chunk``: data, engine call, tables), the wall time per chunk on the
instance ``t_wall`` (``(T_ray - T_fixed) / C * slots``, which folds in Ray's scheduling and the
result transfer), the driver's serial seconds per chunk ``t_drv`` (receive + write the chunk
files, measured between chunks), the fixed cost ``T_fixed`` (plan, manifest, assembly) and
the warm-up ``T_warm`` (the first chunk's wait beyond its own task time: worker start,
imports, spec transfer).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from wdlab.config.load import build_spec
from wdlab.store import device_name
from wdlab.sweep import local_executor, run_sweep
from wdlab.sweep.ray_backend import RayExecutor, connect


class Timed:
    """Wrap an executor: time spent inside it (waiting for chunks) vs in the driver."""

    def __init__(self, executor):
        self.executor = executor
        self.wait = 0.0
        self.driver = 0.0
        self.task_seconds: list[float] = []
        self.first = None  # seconds from the call to the first finished chunk
        self.loop = 0.0  # seconds from the call to the last chunk written

    def __call__(self, spec, indices):
        start = time.perf_counter()
        it = iter(self.executor(spec, indices))
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                self.loop = time.perf_counter() - start
                return
            t1 = time.perf_counter()
            self.wait += t1 - t0
            if self.first is None:
                self.first = t1 - start
            self.task_seconds.append(item.seconds)
            yield item  # the driver writes the chunk files before asking for the next one
            self.driver += time.perf_counter() - t1


def one_run(spec, executor) -> tuple[float, Timed]:
    timed = Timed(executor)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_sweep(spec, Path(tmp) / "run", csv=False, report=False, executor=timed)
        return time.perf_counter() - start, timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", default="1e5", help="configurations (100 lams x K/100 seeds)")
    ap.add_argument("--chunk-size", type=int, default=12500)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--num-cpus", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of this script")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    K = int(float(args.k))
    if args.quick:
        K, args.chunk_size, args.epochs = 2000, 500, 20
    n_seeds = max(1, K // 100)
    spec = build_spec({"preset": "seed", "name": "bench-ray",
                       "train": {"lam": "1e-3:1e2:100", "epochs": args.epochs},
                       "data": {"seeds": n_seeds},
                       "execution": {"chunk_size": args.chunk_size}})
    K = 100 * n_seeds
    res = {"K": K, "chunk_size": args.chunk_size, "epochs": args.epochs,
           "cpu": device_name("cpu"), "cores": os.cpu_count(), "num_cpus": args.num_cpus,
           "torch_threads_local": torch.get_num_threads(), "torch": torch.__version__}
    import ray

    res["ray"] = ray.__version__
    print(f"K={K:,} configs, chunks of {args.chunk_size:,}, {args.epochs} epochs; "
          f"{res['cpu']}, {res['cores']} cores", flush=True)

    t_local, loc = one_run(spec, local_executor)
    C = len(loc.task_seconds)
    res["local"] = {"seconds": t_local, "chunks": C,
                    "chunk_seconds_mean": sum(loc.task_seconds) / C,
                    "driver_seconds_per_chunk": loc.driver / C,
                    "chunk_phase_seconds": loc.loop, "fixed_seconds": t_local - loc.loop}
    print(f"local: {t_local:7.2f} s  ({K / t_local:,.0f} configs/s; {C} chunks, "
          f"{res['local']['chunk_seconds_mean']:.2f} s each)", flush=True)

    t0 = time.perf_counter()
    connect(None, num_cpus=args.num_cpus)
    t_start = time.perf_counter() - t0
    try:
        t_ray, rt = one_run(spec, RayExecutor())
    finally:
        ray.shutdown()
    fixed = t_ray - rt.loop
    slots = args.num_cpus  # one CPU per task
    res["ray_backend"] = {
        "start_seconds": t_start, "seconds": t_ray, "chunks": len(rt.task_seconds),
        "chunk_phase_seconds": rt.loop,
        "t_task": sum(rt.task_seconds) / len(rt.task_seconds),
        "t_wall": (t_ray - fixed) / len(rt.task_seconds) * slots,
        "t_drv": rt.driver / len(rt.task_seconds), "T_fixed": fixed, "slots": slots,
        "T_warm": rt.first - rt.task_seconds[0]}
    res["overhead_ratio"] = t_ray / t_local
    res["overhead_ratio_with_start"] = (t_ray + t_start) / t_local
    res["chunk_phase_ratio"] = rt.loop / loc.loop
    r = res["ray_backend"]
    print(f"ray:   {t_ray:7.2f} s  ({K / t_ray:,.0f} configs/s) on a started instance "
          f"(+{t_start:.1f} s to start it); {slots} tasks at once", flush=True)
    print(f"overhead ratio ray/local: {res['overhead_ratio']:.2f} "
          f"({res['overhead_ratio_with_start']:.2f} with the start)")
    print(f"chunk phase (executor running, chunk files written): local {loc.loop:.2f} s, "
          f"ray {rt.loop:.2f} s, ratio {res['chunk_phase_ratio']:.2f}; the rest (plan, "
          f"assembly, selection) local {t_local - loc.loop:.2f} s, ray {fixed:.2f} s")
    print(f"per chunk: t_task {r['t_task']:.2f} s in the task, t_wall {r['t_wall']:.2f} s "
          f"per slot, t_drv {r['t_drv']:.3f} s in the driver; T_fixed {fixed:.2f} s, "
          f"T_warm {r['T_warm']:.2f} s (first chunk's wait beyond its task time)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
