#!/usr/bin/env bash
# Run on the lent GPU machine (its python3 already has CUDA torch, triton, typer, rich):
# pydantic travels as wheels in .whl/ (see docs/performance.md). Results go to $OUT.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src:$PWD/tests PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
python3 benchmarks/gpu_check.py "$OUT" 2>&1 | tee "$OUT/gpu_check.log"
python3 -c "from wdlab.cli import app; app()" bench --device cuda --ks 1,1e6 --epochs 200 \
  --json "$OUT/gpu_cli.json" 2>&1 | tail -12 | tee "$OUT/gpu_cli.log"
