"""The static figures of a run, rendered in a worker process started before the engine runs.

A sweep's figures (matplotlib: ~1 s of imports, ~1-2 s of rendering) need only the final
tables. ``start()`` launches a process that imports matplotlib, pandas and ``wdlab.plots``
while this process imports torch and trains (on the other core); ``submit(run_dir)`` hands it
the finished run directory and returns a ``wait`` callable, so the report page is assembled
here while the figures are drawn there. The worker writes through the same
``wdlab.report.figures.write_figures`` (atomic, same files). Anything that goes wrong in the
worker (not started, crashed, an error) makes ``wait()`` return None and the caller renders
in process, where a real error (a full disk) is raised as usual.

Right after saying ``ready`` (so a short sweep's job is not refused for it) the worker also
pays the first figure's one-time costs (``report.figures.warm_up``: the modules
``write_figures`` imports lazily, fonts, a first draw), and after answering it ends without
the interpreter's teardown (``os._exit``), which the caller's ``wait`` would otherwise sit
through: together 0.8-1.1 s of the 1.5-2.2 s a sweep waited for its figures (measured on
the 2-core AMD EPYC, Zen 5).

The worker pays for its own imports (torch too, through ``wdlab.conventions``), which is a
gain only when a core is idle: by default it starts only when the 1-minute load average
leaves one (on a 2-core machine at load 10 it made the sweep 1.3x slower, measured by
``benchmarks/bench_e2e.py``), and it runs at a lower priority so it never slows the engine.
This module imports only the standard library, so deciding costs nothing.
``WDLAB_FIGURE_WORKER=0`` turns it off, ``=1`` starts it whatever the load. A worker still
importing when the tables are done (``READY_GRACE_S``) is ended and the figures drawn here.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

#: 0: draw the figures in process (no worker); 1: always start it; unset: when a core is idle.
WORKER_ENV = "WDLAB_FIGURE_WORKER"

_CODE = r"""
import json, os, sys
os.nice(10)
import matplotlib
matplotlib.use("Agg")
import wdlab.plots
from wdlab.report.figures import warm_up, write_figures
sys.stdout.write("ready\n")  # imports done: a job may come (it waits in the pipe meanwhile)
sys.stdout.flush()
warm_up()
for line in sys.stdin:
    job = json.loads(line)
    try:
        paths = write_figures(job["run_dir"], formats=tuple(job["formats"]))
        out = {"ok": True, "paths": [str(p) for p in paths]}
    except Exception as exc:  # the caller renders in process, where the error is raised
        out = {"ok": False, "error": type(exc).__name__ + ": " + str(exc)}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    break  # one job per worker
# the figures are written (atomically) and answered: skip the interpreter's teardown of
# torch, pandas and matplotlib (0.7-1 s here), which the caller would otherwise wait for
os._exit(0)
"""

_worker: subprocess.Popen | None = None
#: How long ``submit`` waits for a worker that has not finished its imports yet.
READY_GRACE_S = 1.0


def enabled() -> bool:
    """Start a worker? ``WDLAB_FIGURE_WORKER`` 0/1, else only when a core is idle."""
    flag = os.environ.get(WORKER_ENV, "")
    if flag in ("0", "1"):
        return flag == "1"
    try:
        cores = len(os.sched_getaffinity(0))
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return False
    return cores >= 2 and load <= cores - 1


def start() -> None:
    """Start the worker (once; a no-op when one is waiting or ``enabled()`` says no)."""
    global _worker
    if not enabled() or (_worker is not None and _worker.poll() is None):
        return
    src = str(Path(__file__).resolve().parents[1])  # the directory holding wdlab/
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    try:
        _worker = subprocess.Popen([sys.executable, "-c", _CODE], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True, env=env)
    except OSError:
        _worker = None
        return
    atexit.register(stop)


def stop() -> None:
    """End a waiting worker (closing its stdin ends its loop)."""
    global _worker
    w, _worker = _worker, None
    if w is None:
        return
    try:
        if w.stdin:
            w.stdin.close()
        w.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        w.kill()
        w.wait()


def _ready(w: subprocess.Popen, timeout: float) -> bool:
    """Has the worker said ``ready`` (its imports done), within ``timeout`` seconds?"""
    import select

    try:
        readable, _, _ = select.select([w.stdout], [], [], timeout)
        return bool(readable) and w.stdout.readline().strip() == "ready"
    except (OSError, ValueError):
        return False


def submit(run_dir: Path | str, formats: tuple[str, ...]) -> Callable[[], list[Path] | None]:
    """Hand the worker one run directory; the returned ``wait()`` gives the written paths,
    or None when the worker could not do it (then render in process). A worker that is not
    ready within ``READY_GRACE_S`` (still importing on a busy machine) is ended: None too.
    One job per worker."""
    global _worker
    w, _worker = _worker, None

    def failed() -> None:
        return None

    if w is None or w.poll() is not None or w.stdin is None or w.stdout is None:
        return failed
    if not _ready(w, READY_GRACE_S):  # still importing (a busy machine): drawing here is faster
        w.kill()
        w.wait()
        return failed
    try:
        w.stdin.write(json.dumps({"run_dir": str(run_dir), "formats": list(formats)}) + "\n")
        w.stdin.flush()
    except OSError:
        w.kill()
        w.wait()
        return failed

    def wait() -> list[Path] | None:
        try:
            line = w.stdout.readline()  # the answer ("ready" was read by submit)
            w.stdin.close()
            w.wait(timeout=30)
            answer = json.loads(line)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            w.kill()
            w.wait()
            return None
        return [Path(p) for p in answer["paths"]] if answer.get("ok") else None

    return wait
