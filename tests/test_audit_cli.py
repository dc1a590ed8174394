"""``wdlab audit FILE.py:FACTORY``: table and flags, --strict, --json, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runs import one_line_error
from wdlab.cli import app

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "audit_buggy.py"

GOOD = '''
import torch
from torch import nn

def make():
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 1))
    params = [p for p in model.parameters()]
    opt = torch.optim.AdamW([
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.5},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}], lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10000)
    return model, opt, sched

def not_a_pair():
    return 3

def raises():
    raise RuntimeError("boom")
'''


def invoke(*args):
    return CliRunner().invoke(app, ["audit", *map(str, args)], terminal_width=200)


def test_buggy_example_prints_table_and_flags(tmp_path):
    res = invoke(f"{EXAMPLE}:make", "--steps-per-epoch", 390, "--epochs", 30, "--probe")
    assert res.exit_code == 0, res.output
    for code in ("coupled_adam", "unknown_key", "decayed_bias", "decayed_norm", "fix:"):
        assert code in res.output
    assert "encoder.self_attn.in_proj_weight" in res.output and "not a shrink" in res.output
    strict = invoke(f"{EXAMPLE}:make", "--strict", "--json", tmp_path / "a.json")
    assert strict.exit_code == 1
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["optimizer"] == "Adam"
    assert {f["code"] for f in data["flags"]} >= {"coupled_adam", "unknown_key"}
    assert {r["name"] for r in data["params"]} >= {"embed.weight", "head.bias"}


def test_good_factory_with_scheduler_passes_strict(tmp_path):
    f = tmp_path / "good.py"
    f.write_text(GOOD)
    res = invoke(f"{f}:make", "--strict", "--steps-per-epoch", 1000, "--epochs", 10,
                 "--json", tmp_path / "good.json")
    assert res.exit_code == 0, res.output
    assert "no flags" in res.output and "nanoGPT" in res.output
    rows = json.loads((tmp_path / "good.json").read_text())["params"]
    weight = next(r for r in rows if r["name"] == "0.weight")
    assert weight["decay"] == "decoupled" and weight["shrink_total"] < weight["shrink_avg"] < 1


@pytest.mark.parametrize("target,needles", [
    ("nope.py:make", ["FILE", "nope.py"]),
    ("{good}:missing", ["FACTORY", "'missing'"]),
    ("{good}:not_a_pair", ["FACTORY", "(model, optimizer)", "int"]),
    ("{good}:raises", ["FACTORY", "RuntimeError", "boom"]),
    ("{good}", ["FILE.py:FACTORY"]),
    ("{broken}:make", ["FILE", "SyntaxError"]),
])
def test_bad_targets_are_one_line_errors(tmp_path, target, needles):
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "broken.py").write_text("def make(:\n")
    target = target.format(good=tmp_path / "good.py", broken=tmp_path / "broken.py")
    res = invoke(target, "--json", tmp_path / "out.json")
    one_line_error(res, *needles)
    assert not (tmp_path / "out.json").exists()


def test_help_says_the_file_runs():
    res = CliRunner().invoke(app, ["audit", "--help"], terminal_width=200)
    assert res.exit_code == 0
    assert "RUNS ITS CODE" in res.output
