"""Time the views of a run directory (figures + report.html, issue 20), this code against a
baseline source tree, alternating in one run so both sides see the same machine load.

    python benchmarks/bench_report.py RUN_DIR [--baseline-src OLD/src] [--repeats 3]

RUN_DIR is e.g. the seed sweep of issue 20:
``wdlab sweep --preset seed --lam 1e-3:1e2:20 --seeds 100 --epochs 1000 --no-csv``.
OLD/src is a checkout of an earlier revision's ``src`` (``git archive REV src | tar -x``).
Each measurement runs in a fresh subprocess on a fresh copy of RUN_DIR (figures/ and
report.html removed) and times ``write_report`` (the static figures and the page) after
the imports: wall and CPU seconds, and the size of report.html. Prints the medians and the
baseline / this ratio; note the CPU and the load printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from wdlab.store import cpu_model

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from wdlab.report import write_report
t0, c0 = time.perf_counter(), time.process_time()
path = write_report(sys.argv[2])
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
                  "bytes": path.stat().st_size,
                  "figures": sorted(p.name for p in (path.parent / "figures").iterdir())}))
"""


def _once(src: Path, run_dir: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "run"
        shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("figures", "report.html",
                                                                     "curves.csv", "*.csv"))
        out = subprocess.run([sys.executable, "-c", CHILD, str(src), str(copy)],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--baseline-src", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    this = Path(__file__).resolve().parents[1] / "src"
    sides = {"this": this} | ({"baseline": args.baseline_src.resolve()} if args.baseline_src else {})
    print(f"cpu: {cpu_model()} ({os.cpu_count()} logical); load before: {os.getloadavg()}")
    res: dict[str, list[dict]] = {k: [] for k in sides}
    for _ in range(args.repeats):
        for name, src in sides.items():  # alternate: both sides see the same load
            r = _once(src, args.run_dir)
            res[name].append(r)
            print(f"  {name:8s} wall {r['wall']:6.2f} s  cpu {r['cpu']:6.2f} s  "
                  f"report.html {r['bytes'] / 1e6:.2f} MB  figures {', '.join(r['figures'])}")
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("wall", "cpu", "bytes")}
           for k, v in res.items()}
    for k, v in med.items():
        print(f"median {k:8s} wall {v['wall']:.2f} s  cpu {v['cpu']:.2f} s  "
              f"report.html {v['bytes'] / 1e6:.2f} MB")
    if "baseline" in med:
        b, t = med["baseline"], med["this"]
        print(f"baseline / this: wall {b['wall'] / t['wall']:.2f}x  cpu {b['cpu'] / t['cpu']:.2f}x"
              f"  report.html {b['bytes'] / t['bytes']:.2f}x")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
