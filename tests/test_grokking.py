"""``wdlab reproduce grokking``: the spec is the papers' setting, a tiny real run's analysis
matches its own curves, the reading quotes the table, bad input is one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from wdlab.cli import app
from wdlab.demos.grokking import (
    GROKKING,
    grokking_spec,
    grokking_summary,
    grokking_table,
    reading,
    run_grokking,
)
from wdlab.store import read_table


def test_spec_is_gromovs_setting():
    spec = grokking_spec()
    m, t = spec.model, spec.train
    assert m.family == "mlp" and m.activation == ("quadratic",) and m.bias == (False,)
    assert set(m.loss) == {"mse", "cross_entropy"} and len(m.hidden) == 1
    assert t.beta1 == (0.9,) and t.beta2 == (0.98,) and t.lr == (0.01,)
    assert max(t.lam) == 20.0 and min(t.lam) == 0.0 and t.batch_size == (0,)
    assert spec.dataset.name == "modular" and spec.dataset.params["op"] == "+"
    assert len(spec.dataset.seeds) >= 3 and GROKKING["train"]["pairs"] == ["adamw+decoupled"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return run_grokking(out=tmp_path_factory.mktemp("gk") / "run", reduced=True, report=False)


def test_steps_match_the_curves(run_dir):
    curves, configs = read_table(run_dir / "curves"), read_table(run_dir / "configs")
    s = read_table(run_dir / "grokking_summary")
    assert len(s) == len(configs) == 2 * 2 * 2  # 2 losses x 2 lams x 2 seeds
    for r in s.itertuples():
        c = curves[curves.config_id == r.config_id].sort_values("epoch")
        for col, level, step in (("train_accuracy", 1.0, r.step_train_100),
                                 ("test_accuracy", 0.95, r.step_test_95)):
            v, ep = c[col].to_numpy(), c["epoch"].to_numpy()
            if math.isnan(step):
                assert (v < level - 1e-9).all()
            else:
                assert v[ep == step][0] >= level - 1e-9 and (v[ep < step] < level - 1e-9).all()
        assert r.w_norm == pytest.approx(float(configs.loc[configs.config_id == r.config_id,
                                                           "w_norm"].iloc[0]), rel=1e-5)
    t = read_table(run_dir / "grokking")
    assert len(t) == 4 and (t["seeds"] == 2).all()
    assert (run_dir / "figures" / "grokking.png").stat().st_size > 1000


def test_reading_quotes_the_table(run_dir):
    out = json.loads((run_dir / "grokking.json").read_text())
    assert len(out["reading"]) == 2 and out["reading"][0].startswith("MSE")
    t = read_table(run_dir / "grokking")
    mse0 = t[(t.loss == "mse") & (t.lam == 0)].iloc[0]
    assert f"{mse0.final_test_accuracy:.2f}" in out["reading"][0] or mse0.n_test_95 == 2
    html = (run_dir / "grokking.html").read_text()
    assert "never within budget" in html or "data:image/png;base64," in html
    assert "<script" not in html and "http" not in html


def test_reading_on_a_synthetic_table_says_disagreement():
    rows = []
    for loss in ("mse", "cross_entropy"):
        for lam, n95 in ((0.0, 2), (1.0, 2), (20.0, 0)):
            rows.append({"loss": loss, "lam": lam, "seeds": 2, "n_train_100": 2 if lam < 20 else 0,
                         "n_test_95": n95, "median_step_train_100": 10.0 if lam < 20 else np.nan,
                         "median_step_test_95": 50.0 if n95 else np.nan, "w_norm": 5 - lam / 10,
                         "final_test_accuracy": 1.0 if n95 else 0.1, "final_train_accuracy": 1.0,
                         "final_train_loss": 1e-3, "budget": 100})
    paras = reading(pd.DataFrame(rows))
    assert "as Gromov (2023) reports" in paras[0]
    assert "DISAGREES" in paras[1] and "Prieto" in paras[1]
    assert "only 0/2 seeds even fit" in paras[0]


def test_summary_never_within_budget():
    configs = pd.DataFrame({"config_id": [0], "loss": ["mse"], "lam": [0.0], "data_seed": [0]})
    curves = pd.DataFrame({"config_id": [0, 0], "epoch": [0, 5], "train_accuracy": [0.5, 1.0],
                           "test_accuracy": [0.1, 0.2], "train_loss": [1.0, 0.1],
                           "w_norm": [1.0, 2.0]})
    s = grokking_summary(configs, curves)
    assert s.step_train_100[0] == 5 and math.isnan(s.step_test_95[0])
    assert grokking_table(s).n_test_95[0] == 0


def test_cli_bad_epochs_one_line(tmp_path):
    res = CliRunner().invoke(app, ["reproduce", "grokking", "--epochs", "0", "--out",
                                   str(tmp_path / "never")])
    assert res.exit_code == 2 and "epochs" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()
