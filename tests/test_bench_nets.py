"""benchmarks/bench_nets.py: the quick dry run's output structure and the FLOP count (no timing
is asserted; the rates are whatever this machine gives)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_nets.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_nets", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_flops_are_counted_per_layer(bench):
    # 2-16-16-2 on 200 rows: fwd + dW on the first layer, fwd + dW + dX on the others
    assert bench.step_flops((2, 16, 16, 2), 200, None) == (
        2 * 200 * (2 * 16 * 2 + 16 * 16 * 3 + 16 * 2 * 3))
    # minibatches of 64 of 130 rows (64, 64, 2): the average over the epoch's steps
    per_row = 2 * (64 * 128 * 2 + 128 * 10 * 3)
    assert bench.step_flops((64, 128, 10), 130, 64) == pytest.approx(per_row * 130 / 3)
    assert bench.steps_per_epoch(130, 64) == 3 and bench.steps_per_epoch(130, None) == 1


def test_quick_run_reports_every_rate_and_ratio(bench, tmp_path, capsys):
    out = tmp_path / "results_nets_quick.json"
    res = bench.main(["--quick", "--threads", "1", "--shapes", "moons", "--json", str(out)])
    text = capsys.readouterr().out
    assert "torch threads: 1" in text and "GFLOP/s" in text and "(c)/(a)" in text
    data = json.loads(out.read_text())
    assert data["quick"] is True and data["cpu"] and data["torch_threads"] == 1
    assert len(data["load_before"]) == 3 and data["provenance"]["torch"]
    row = data["shapes"]["moons"]
    assert row["K"] == res["shapes"]["moons"]["K"] == bench.QUICK["moons"]["K"]
    for key in ("loop", "vmap", "roofline"):
        assert row[key] > 0
    assert row["roofline"] == pytest.approx(data["gemm_1024_flops_per_s"] / row["flops_per_step"])
    if row["wdlab"] is None:  # the engine is absent: said so, no ratios invented
        assert "not available" in text
        assert all(v is None for v in row["ratios"].values())
    else:
        for key in ("loop", "vmap", "roofline"):
            assert row["ratios"][key] == pytest.approx(row["wdlab"] / row[key])


def test_unknown_shape_is_rejected(bench):
    with pytest.raises(SystemExit) as info:
        bench.main(["--quick", "--shapes", "mnist"])
    assert info.value.code == 2
