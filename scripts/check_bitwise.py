"""Hash the values of the configs and curves tables of a fixed set of runs, per engine.

    python scripts/check_bitwise.py [--engines eager,native] [--out DIR] > hashes.txt

Runs ``wdlab reproduce seed|d2l|adamw-fig2|double-descent`` and three small ``wdlab sweep``s
(full batch; minibatch; minibatch with ``decay_bias``) once per engine, each in a fresh
process with ``wdlab.engine.train`` forced to that engine, into a temporary directory, and
prints one line per (run, engine, table): a SHA-256 of the table's values. Rows are sorted
by (config_id, epoch); float columns are hashed as float64 (so a float32 value stored as
float32 or as float64 hashes alike); run-specific columns (timings, paths) are left out.
Compare two outputs with ``diff`` to prove a change kept every result bitwise identical.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

RUNS = {
    "reproduce-seed": ["reproduce", "seed", "--no-report"],
    "reproduce-d2l": ["reproduce", "d2l", "--no-report"],
    "reproduce-adamw-fig2": ["reproduce", "adamw-fig2", "--no-report"],
    "reproduce-double-descent": ["reproduce", "double-descent", "--no-report"],
    "sweep-full": ["sweep", "--preset", "seed", "--lam", "1e-3:1e2:5", "--seeds", "3",
                   "--epochs", "50", "--no-csv", "--no-report"],
    "sweep-minibatch": ["sweep", "--preset", "seed", "--lam", "1e-3:1e2:3", "--seeds", "2",
                        "--epochs", "20", "--batch-size", "4", "--no-csv", "--no-report"],
    "sweep-minibatch-decay-bias": ["sweep", "SPEC_DECAY_BIAS", "--no-csv", "--no-report"],
}

DECAY_BIAS_SPEC = """\
name = "decay-bias"
preset = "seed"
[data]
seeds = 2
[train]
lam = "1e-2,1"
epochs = 20
batch_size = 4
decay_bias = true
"""

#: The driver of one run: every engine call of the process runs on ``engine``.
DRIVER = """
import functools, sys
import wdlab.engine as eng
import wdlab.experiment as ex
import wdlab.sweep.chunk as ch
real = eng.train
def forced(*a, engine=None, **kw):
    return real(*a, engine=sys.argv[1], **kw)
ex.train = ch.train = forced
from wdlab.cli import app
app(sys.argv[2:], prog_name="wdlab")
"""

SKIP = ("seconds", "time", "path", "created", "started", "finished")


def table_hash(path: Path) -> str:
    df = pd.read_parquet(path)
    keys = [c for c in ("config_id", "epoch") if c in df.columns]
    df = df.sort_values(keys, kind="stable").reset_index(drop=True) if keys else df
    h = hashlib.sha256()
    for col in sorted(df.columns):
        if any(s in col.lower() for s in SKIP):
            continue
        s = df[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(s.cat.categories.dtype)
        h.update(col.encode())
        if s.dtype.kind == "f":
            h.update(np.ascontiguousarray(s.to_numpy(np.float64)).tobytes())
        elif s.dtype.kind in "iub":
            h.update(np.ascontiguousarray(s.to_numpy(np.int64)).tobytes())
        else:
            h.update("\x00".join("<NA>" if pd.isna(v) else str(v) for v in s).encode())
    return f"{h.hexdigest()[:16]} rows={len(df)} cols={df.shape[1]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", default="eager,native")
    ap.add_argument("--runs", default=",".join(RUNS))
    ap.add_argument("--out", default=None, help="keep the run directories here")
    args = ap.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="wdlab-bitwise-"))
    root.mkdir(parents=True, exist_ok=True)
    spec = root / "decay_bias.toml"
    spec.write_text(DECAY_BIAS_SPEC)
    for name in args.runs.split(","):
        for engine in args.engines.split(","):
            out = root / f"{name}-{engine}"
            argv = [str(spec) if a == "SPEC_DECAY_BIAS" else a for a in RUNS[name]]
            cmd = [sys.executable, "-c", DRIVER, engine, *argv, "--out", str(out), "--force"]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                print(f"{name} {engine}: FAILED rc={proc.returncode} "
                      f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}", flush=True)
                continue
            for table in ("configs", "curves"):
                print(f"{name} {engine} {table}: {table_hash(out / f'{table}.parquet')}",
                      flush=True)


if __name__ == "__main__":
    main()
