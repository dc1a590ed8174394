"""Time the views of a run directory: static figures and report.html (issue 20).

    python benchmarks/bench_report.py RUN_DIR [--repeats 2]

Prints, for the run directory given (e.g. the seed sweep
``wdlab sweep --preset seed --lam 1e-3:1e2:20 --seeds 100 --epochs 1000 --no-csv``):
seconds for ``write_figures`` (default formats), for the report page alone
(``write_report(..., figures=False)``), for both together, and the size of report.html.
Run it on the code before and after a change, on the same machine, and compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    from wdlab.report import load_run, write_report
    from wdlab.report.figures import write_figures

    print(f"machine: {platform.processor() or platform.machine()}, load {os.getloadavg()}")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        write_figures(args.run_dir, load_run(args.run_dir))
        t1 = time.perf_counter()
        write_report(args.run_dir, figures=False)
        t2 = time.perf_counter()
        write_report(args.run_dir)
        t3 = time.perf_counter()
        size = (args.run_dir / "report.html").stat().st_size
        print(f"figures {t1 - t0:.2f} s | report page {t2 - t1:.2f} s | both (write_report) "
              f"{t3 - t2:.2f} s | report.html {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
