#!/usr/bin/env bash
# Install everything the test suite needs: the CPU build of torch first (a bare `torch`
# requirement would pull a multi-GB CUDA build), then wdlab with its test and ray extras,
# then triton for the Triton kernel's tests (run in Triton's CPU interpreter: no GPU needed),
# then Debian's chromium for the browser tests (Playwright drives it; it never downloads a browser).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check torch==2.13.0
python -m pip install --quiet --disable-pip-version-check -e ".[test,ray]"
# triton 3.9.0 has no dependencies (--no-deps all the same, so nothing can replace the CPU
# torch): a 286 MB wheel, 1.0 GB installed, ~19 s from a warm pip cache (measured on a
# 2-core AMD EPYC). Without it the ~20 Triton interpreter tests skip.
python -m pip install --quiet --disable-pip-version-check --no-deps triton==3.9.0
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: chromium not found and not root; browser tests will be skipped" >&2
  fi
fi
