"""``wdlab bench``: rates against the seed loop measured in the same run (no timed asserts)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from wdlab.bench import run_bench
from wdlab.cli import app


def test_run_bench_rows_are_ratios_of_same_run_measurements():
    res = run_bench("cpu", "eager", [1, 8], epochs=10)
    assert res["engine"] == "eager" and res["device_name"]
    seed = res["seed_loop_steps_per_s"]
    assert seed > 0
    assert [r["K"] for r in res["rows"]] == [1, 8]
    for row in res["rows"]:
        assert row["engine"] == "eager"
        assert row["ratio_to_seed_loop"] == pytest.approx(row["config_steps_per_s"] / seed)
        assert row["fraction_of_floor"] == pytest.approx(
            row["config_steps_per_s"] / res["floor_config_steps_per_s"])
        assert row["peer_config_steps_per_s"] > 0  # the batched peer, same run, same K
        assert row["ratio_to_peer"] == pytest.approx(
            row["config_steps_per_s"] / row["peer_config_steps_per_s"])


def test_cli_bench_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    res = CliRunner().invoke(app, ["bench", "--engine", "eager", "--ks", "2", "--epochs", "5",
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["rows"][0]["K"] == 2 and "seed loop" in res.output
    assert "x peer" in res.output and data["rows"][0]["ratio_to_peer"] > 0


def test_cli_bench_bad_engine_is_one_line():
    res = CliRunner().invoke(app, ["bench", "--engine", "warp", "--ks", "1"])
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and "Traceback" not in res.output
