"""Issue 12 item 4: one device check for every command, before anything is written.

CUDA is reported unavailable with a monkeypatch, so the test means the same on a GPU machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from runs import one_line_error
from wdlab.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("argv", [
    ["sweep", str(EXAMPLES / "tiny.toml"), "--device", "cuda"],
    ["reproduce", "seed", "--device", "cuda"],
    ["reproduce", "adamw-fig2", "--reduced", "--device", "cuda"],
    ["fit", "{csv}", "--target", "y", "--device", "cuda"],
    ["bench", "--device", "cuda", "--ks", "1", "--epochs", "2"],
], ids=["sweep", "reproduce", "reproduce-sweep-preset", "fit", "bench"])
def test_every_command_refuses_an_unavailable_device(no_cuda, tmp_path, argv):
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,y\n" + "".join(f"{i},{i * i % 7},{i % 3}\n" for i in range(30)))
    out = tmp_path / "run"
    argv = [a.replace("{csv}", str(csv)) for a in argv]
    if argv[0] != "bench":
        argv += ["--out", str(out)]
    line = one_line_error(runner.invoke(app, argv))
    assert line == "error: --device: 'cuda' requested but CUDA is not available here"
    assert not out.exists()


def test_spec_device_is_named_as_the_spec_field(no_cuda, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text((EXAMPLES / "tiny.toml").read_text().replace("[train]", '[train]\ndevice = "cuda:1"'))
    out = tmp_path / "run"
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(out)])
    assert one_line_error(res) == "error: train.device: 'cuda:1' requested but CUDA is not available here"
    assert not out.exists()


def test_library_sweep_and_estimator_share_the_check(no_cuda, tmp_path):
    from wdlab.config.load import build_spec
    from wdlab.estimator import WeightDecayRegressor
    from wdlab.sweep import run_sweep

    spec = build_spec({"data": {"n_features": 3, "n_train": 5, "n_test": 5, "seeds": 1},
                       "train": {"device": "cuda", "epochs": 2}})
    with pytest.raises(ValueError, match=r"^train\.device: 'cuda' requested but CUDA is not"):
        run_sweep(spec, tmp_path / "lib")
    assert not (tmp_path / "lib").exists()
    X, y = np.ones((6, 2)), np.arange(6.0)
    with pytest.raises(ValueError, match=r"^device: 'cuda' requested but CUDA is not available"):
        WeightDecayRegressor(device="cuda").fit(X, y)


def test_device_names_are_checked_before_availability():
    from wdlab.devices import check_device

    assert check_device("cpu") == "cpu"
    for bad in ("gpu", "cuda:", "cuda:x", "mps", "x" * 10_000):
        with pytest.raises(ValueError, match=r"^--device: expected 'cpu' or 'cuda\[:N\]'") as e:
            check_device(bad, "--device")
        assert len(str(e.value)) < 120
