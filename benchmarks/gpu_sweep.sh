#!/usr/bin/env bash
# Issue 4's device check, run on the lent GPU machine (python3 there has CUDA torch, pandas,
# pyarrow, scipy, typer, rich; pydantic travels as wheels in .whl/). Results go to $OUT.
#   1. the acceptance sweep with --device cuda; 2. the CUDA-vs-CPU sweep test;
#   3. bench_sweep.py on CUDA (throughput K = 1e3..1e5, peak RSS of 1e5 x 1000 epochs);
#   4. bench_sweep.py on the machine's CPU cores, as far as the time limit allows.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src:$PWD/tests PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/info.log"
python3 -c "import torch, os; print('torch', torch.__version__, 'cpus', os.cpu_count())" | tee -a "$OUT/info.log"
( time timeout 120 python3 -c "from wdlab.cli import app; app(prog_name='wdlab')" sweep \
    --preset seed --lam 1e-3:1e2:50 --seeds 20 --device cuda --out /tmp/acc --no-report ) \
  > "$OUT/acceptance_cuda.log" 2>&1
cp /tmp/acc/selection.csv "$OUT/acceptance_selection.csv" 2>/dev/null
timeout 100 python3 -m pytest -q -x -p no:cacheprovider tests/test_sweep_cli.py -k cuda \
  > "$OUT/pytest_cuda.log" 2>&1; echo "pytest rc=$?" >> "$OUT/pytest_cuda.log"
timeout 240 python3 benchmarks/bench_sweep.py --device cuda --json "$OUT/bench_cuda.json" \
  > "$OUT/bench_cuda.log" 2>&1; echo "bench cuda rc=$?" >> "$OUT/bench_cuda.log"
timeout 170 python3 benchmarks/bench_sweep.py --device cpu --rss-epochs 1000 \
  --json "$OUT/bench_cpu.json" > "$OUT/bench_cpu.log" 2>&1; echo "bench cpu rc=$?" >> "$OUT/bench_cpu.log"
tail -5 "$OUT"/*.log
