#!/usr/bin/env bash
# Issue 7, fused Triton engine, on the lent GPU machine (CUDA torch and triton already there;
# pydantic travels as wheels in .whl/). Each part has its own time limit; JSON lands in $OUT.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
timeout 60 python3 benchmarks/gpu_check3.py "$OUT" equiv 2>&1 | tee "$OUT/equiv.log"
timeout 40 python3 benchmarks/gpu_check3.py "$OUT" tune 2>&1 | tee "$OUT/tune.log"
timeout 170 python3 benchmarks/gpu_check3.py "$OUT" bench 2>&1 | tee "$OUT/bench.log"
