"""Same parsed specs and same one-line errors before and after a refactoring of the spec code.

Runs one list of raw specs, CLI flag sets and the example spec files through ``build_spec``
/ ``flag_overrides`` / ``load_spec`` under a base revision (``git archive``) and under this
checkout, and compares the validated dumps and the error lines::

    python scripts/check_spec_same.py --base b4b1d00~1      # before issue 13's config package

Exit 0 and ``same: N cases`` when every case agrees; else the differing cases and exit 1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = r'''
import glob, json, sys
try:
    from wdlab.cli.flags import flag_overrides
    from wdlab.config.load import build_spec, load_spec
    from wdlab.config.presets import SWEEP_PRESETS
except ImportError:  # before the config package
    from wdlab.config.schema import build_spec, flag_overrides, load_spec
    from wdlab.config.load import SWEEP_PRESETS
raws = [
    {"preset": "seed"}, {"preset": "d2l"},
    {"preset": "seed", "train": {"lam": "1e-3:1e2:50"}, "data": {"seeds": 20}},
    {"preset": "d2l", "train": {"pairs": ["sgd+half_sum", "adamw+decoupled"], "init_seed": [0, 1]},
     "validation": {"method": "kfold", "folds": 3}, "record": {"log_points": 20}},
    {"train": {"optimizer": ["sgd", "adam", "adamw"], "regularizer": ["mean", "decoupled"],
               "batch_size": [0, 5]}},
    {"model": {"family": "mlp", "hidden": "8"}, "data": {"dataset": "moons", "n_train": 60}},
    *SWEEP_PRESETS.values(),
    {"preset": "sed"}, {"preset": 3}, {"preset": "adamw-fig2"}, {"train": {"lr": -1}},
    {"train": {"lam": "1e-3:1e2:0"}}, {"train": {"pairs": ["adamw+mean"]}},
    {"train": {"optimizer": "adamw", "regularizer": "mean"}}, {"data": {"seeds": True}},
    {"validation": {"method": "split", "fraction": 0.01}}, {"model": {"family": "mlp"}},
    {"model": {"family": "mlp", "hidden": "8"}, "data": {"dataset": "moons"},
     "train": {"loss": "half_mse"}},
    {"record": {"every": 2, "log_points": 3}}, {"execution": {"engine": "fast"}}, {"bogus": 1},
]
flags = [dict(preset="seed", lam="1e-3:1e2:50", seeds="20"), dict(epochs="2.5"),
         dict(batch_size="full,x"), dict(optimizer="AdamW", regularizer="Decoupled", preset="seed"),
         dict(record_every="3"), dict(lam="a"), dict(preset="d2l", validation="kfold", folds="3")]
out = []
def run(f):
    try:
        out.append(f().model_dump_json())
    except Exception as e:
        out.append(f"{type(e).__name__}: {e}")
for r in raws:
    run(lambda: build_spec(r))
for fl in flags:
    run(lambda: build_spec(flag_overrides(**fl)))
for p in sorted(glob.glob(sys.argv[1] + "/examples/*.toml") + glob.glob(sys.argv[1] + "/examples/*.y*ml")):
    run(lambda: load_spec(p))
print(json.dumps(out))
'''


def cases(src: Path) -> list[str]:
    import json

    env = {**os.environ, "PYTHONPATH": str(src)}
    res = subprocess.run([sys.executable, "-c", CASES, str(ROOT)], env=env, capture_output=True,
                         text=True, check=True, cwd=tempfile.gettempdir())
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="git revision to compare against")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.base, "src"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        before = cases(Path(tmp) / "src")
    after = cases(ROOT / "src")
    diff = [(i, a, b) for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    for i, a, b in diff:
        print(f"case {i}:\n  before: {a[:300]}\n  after:  {b[:300]}")
    print(f"{'same' if not diff else 'different'}: {len(before)} cases, {len(diff)} differ")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
