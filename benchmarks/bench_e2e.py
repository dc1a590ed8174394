"""The whole process of a sweep, split into imports, plan, data, engine, tables, figures and
report, against the seed's one-model loop extrapolated to the same work (issue 20).

    python benchmarks/bench_e2e.py [--lam 1e-3:1e2:20] [--seeds 100] [--epochs 1000]
        [--repeats 2] [--worker auto|on|off] [--extra ...]

Each repeat runs, in a fresh process, ``wdlab sweep --preset seed --lam L --seeds S --epochs E
--no-csv`` (report and figures included, as a user runs it) with timers wrapped around the
library functions of each phase:

    imports   first loads of modules (``importlib._bootstrap._find_and_load``, outermost only),
              wherever they happen; subtracted from the phase they happen in
    plan      ``sweep.plan.make_plan``;  data  ``sweep.chunk.prepare_chunk`` (data, references)
    engine    ``engine.train``;  tables  ``chunk_tables``, ``write_chunk``, ``driver.assemble``
    figures   the time this process waits for the figure worker (``wdlab.figure_worker``: started
              before torch loads, it imports matplotlib and draws on the other core), or
              ``report.figures.write_figures`` when it draws them itself (``--worker off``, or
              ``auto`` on a machine with no idle core: ``figure_worker.enabled``)
    report    ``report.write_report`` less figures
    other     the rest of the wall time (CLI parsing, manifest, ...)

The seed's way = K * E / (seed loop steps/s, ``wdlab.bench.seed_loop_rate``, measured here).
Also prints ``wdlab sweep --help`` wall time and the time to the first chunk's engine call.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wdlab.store import cpu_model

DRIVER = r"""
import json, sys, time
T0 = time.perf_counter()
import importlib._bootstrap as bs
acc = {"imports": 0.0}
depth = [0]
real_load = bs._find_and_load
def timed_load(*a, **k):
    depth[0] += 1
    t = time.perf_counter()
    try:
        return real_load(*a, **k)
    finally:
        depth[0] -= 1
        if depth[0] == 0:
            acc["imports"] += time.perf_counter() - t
bs._find_and_load = timed_load
if "--no-report" not in sys.argv:  # as wdlab sweep does, before torch loads
    from wdlab import figure_worker as worker
    worker.start()
    acc["figure_worker"] = worker._worker is not None
stack = []
first = {}
def wrap(mod, name, phase):
    fn = getattr(mod, name)
    def inner(*a, **k):
        if phase == "engine" and "first_engine" not in first:
            first["first_engine"] = time.perf_counter() - T0
        t, i0 = time.perf_counter(), acc["imports"]
        stack.append(0.0)
        try:
            return fn(*a, **k)
        finally:
            nested = stack.pop()  # nested phases' time, net of their imports
            dt, imp = time.perf_counter() - t, acc["imports"] - i0
            acc[phase] = acc.get(phase, 0.0) + dt - imp - nested
            if stack:
                stack[-1] += dt - imp
    setattr(mod, name, inner)
from wdlab.cli._common import heavy_imports
with heavy_imports():  # as wdlab sweep loads them (no cyclic GC while they load)
    import wdlab.sweep.chunk as ch, wdlab.sweep.driver as dr, wdlab.sweep.plan as pl
    import wdlab.sweep.files as fl
    import wdlab.report as rp, wdlab.report.figures as rf
wrap(pl, "make_plan", "plan"); wrap(dr, "make_plan", "plan"); wrap(ch, "make_plan", "plan")
wrap(ch, "prepare_chunk", "data"); wrap(ch, "train", "engine")
wrap(ch, "chunk_tables", "tables"); wrap(dr, "write_chunk", "tables"); wrap(dr, "assemble", "tables")
wrap(rf, "write_figures", "figures"); wrap(rp, "write_report", "report")
import wdlab.figure_worker as wk
real_submit = wk.submit
def timed_submit(*a, **k):
    wait = real_submit(*a, **k)
    holder = type("W", (), {"wait": staticmethod(wait)})
    wrap(holder, "wait", "figures")
    return holder.wait
wk.submit = timed_submit
if hasattr(dr, "write_report"):
    dr.write_report = rp.write_report
from wdlab.cli import app
try:
    app(sys.argv[2:], prog_name="wdlab")
except SystemExit as exc:
    if exc.code:
        raise
acc["wall_in_process"] = time.perf_counter() - T0
acc.update(first)
with open(sys.argv[1], "w") as fh:
    json.dump(acc, fh)
"""

PHASES = ("imports", "plan", "data", "engine", "tables", "figures", "report")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lam", default="1e-3:1e2:20")
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--worker", choices=("auto", "on", "off"), default="auto",
                    help="the figure worker: as wdlab sweep decides (auto), always, never")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[])
    args = ap.parse_args()
    import torch

    from wdlab.bench import seed_loop_rate

    n_lam = int(args.lam.split(":")[2]) if args.lam.count(":") == 2 else len(args.lam.split(","))
    K = n_lam * args.seeds
    print(f"CPU: {cpu_model()}; torch threads {torch.get_num_threads()}; "
          f"load {os.getloadavg()[0]:.2f}")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "wdlab", "sweep", "--help"], capture_output=True,
                   check=True)
    print(f"wdlab sweep --help: {time.perf_counter() - t:.2f} s (whole process)")
    rows = []
    for rep in range(args.repeats):
        seed_rate = seed_loop_rate(torch.device("cpu"))
        with tempfile.TemporaryDirectory() as tmp:
            out, timings = Path(tmp) / "run", Path(tmp) / "t.json"
            argv = ["sweep", "--preset", "seed", "--lam", args.lam, "--seeds", str(args.seeds),
                    "--epochs", str(args.epochs), "--no-csv", "--out", str(out), *args.extra]
            t = time.perf_counter()
            env = dict(os.environ)
            env.pop("WDLAB_FIGURE_WORKER", None)
            if args.worker != "auto":
                env["WDLAB_FIGURE_WORKER"] = "1" if args.worker == "on" else "0"
            proc = subprocess.run([sys.executable, "-c", DRIVER, str(timings), *argv],
                                  capture_output=True, text=True, env=env)
            wall = time.perf_counter() - t
            if proc.returncode:
                sys.exit(f"sweep failed: {proc.stderr.strip().splitlines()[-1:]}")
            acc = json.loads(timings.read_text())
            sizes = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
        seed_s = K * args.epochs / seed_rate
        split = {p: acc.get(p, 0.0) for p in PHASES}
        split["other"] = wall - sum(split.values())
        row = {"K": K, "epochs": args.epochs, "figure_worker": bool(acc.get("figure_worker")), "wall_s": wall, "split_s": split,
               "first_engine_call_s": acc.get("first_engine"),
               "seed_loop_steps_per_s": seed_rate, "seed_way_s": seed_s,
               "ratio_to_seed_way": seed_s / wall, "load": os.getloadavg()[0],
               "curves_mb": sizes.get("curves.parquet", 0) / 1e6,
               "report_mb": sizes.get("report.html", 0) / 1e6}
        rows.append(row)
        print(f"run {rep + 1} (figure worker {'on' if row['figure_worker'] else 'off'}): "
              f"K={K} x {args.epochs} epochs: wall {wall:.2f} s = "
              + ", ".join(f"{k} {v:.2f}" for k, v in split.items())
              + f"; first engine call at {row['first_engine_call_s']:.2f} s")
        print(f"  seed loop {seed_rate:,.0f} steps/s -> the seed's way {seed_s:,.0f} s; "
              f"{row['ratio_to_seed_way']:.0f}x; curves.parquet {row['curves_mb']:.1f} MB, "
              f"report.html {row['report_mb']:.1f} MB; load {row['load']:.2f}")
    print(json.dumps({"cpu": cpu_model(), "rows": rows}))


if __name__ == "__main__":
    main()
