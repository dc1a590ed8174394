"""equilibrium: the predictions, angles and ratios by hand, and a tiny real run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from wdlab.demos import equilibrium as eq
from wdlab.nets import MLP


def test_predictions_by_hand():
    assert eq.predicted_norm(0.01, 0.5, 64) == pytest.approx(math.sqrt(0.01 * 64 / 1.0))
    assert eq.predicted_angle(0.01, 0.5, 0.9) == pytest.approx(math.sqrt(2 * 0.005 * 0.1 / 1.9))


def test_row_angles():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 3.0], [1.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    assert row_list(eq.row_angles(a, b)) == pytest.approx([math.pi / 2, 0.0, math.pi], abs=1e-7)


def row_list(t):
    return t.tolist()


def test_measure_on_constructed_snapshots():
    # one config, a 2 -> 3 -> 2 MLP; layer 0.weight (3 x 2) rows at norms c * prediction,
    # rotated by a known angle between the two snapshots
    model = MLP(2, [3], 2)
    layout = model.layout
    lr, lam, b1 = 0.01, 0.5, 0.9
    pn, pa = eq.predicted_norm(lr, lam, 2), eq.predicted_angle(lr, lam, b1)
    scales = np.array([0.5, 1.0, 2.0])
    th = 0.7 * pa
    s0 = torch.zeros(1, layout.size, dtype=torch.float64)
    s1 = torch.zeros(1, layout.size, dtype=torch.float64)
    w0 = torch.tensor([[c * pn, 0.0] for c in scales], dtype=torch.float64)
    w1 = torch.tensor([[c * pn * math.cos(th), c * pn * math.sin(th)] for c in scales],
                      dtype=torch.float64)
    layout.view(s0, "0.weight")[0] = w0
    layout.view(s1, "0.weight")[0] = w1
    layout.view(s0, "2.weight")[0] = 1.0
    layout.view(s1, "2.weight")[0] = 1.0
    snaps = torch.stack([s0, s1])  # (S=2, K=1, P)
    configs = pd.DataFrame({"lr": [lr], "lam": [lam], "seed": [0]})
    m = eq.measure(snaps, [10, 11], layout, configs, b1)
    r = m[m["layer"] == "0.weight"].iloc[0]
    assert r["step"] == 10 and r["lr_lam_t"] == pytest.approx(lr * lam * 10)
    assert r["norm_ratio"] == pytest.approx(1.0)
    assert (r["norm_p10"], r["norm_p90"]) == pytest.approx(tuple(np.quantile(scales, [0.1, 0.9])))
    assert r["angle_ratio"] == pytest.approx(0.7) and r["angle_p90"] == pytest.approx(0.7)
    r2 = m[m["layer"] == "2.weight"].iloc[0]  # unchanged rows of ones (C = 3)
    assert r2["angle_ratio"] == pytest.approx(0.0, abs=1e-6)
    assert r2["norm_ratio"] == pytest.approx(math.sqrt(3) / eq.predicted_norm(lr, lam, 3))
    # lr*lam*t = 0.05 < 3: nothing settled, the unsettled median is reported instead
    s = eq.summary(m)
    assert (s["settled"] == 0).all() and s["norm_ratio"].isna().all()
    assert "not yet testable" in " ".join(eq.reading(s, {"setting": "x.", "last": 10}))


def test_summary_and_reading_on_a_settled_grid():
    rows = [{"config": k, "lr": 0.01, "lam": 1.0, "seed": 0, "layer": "0.weight", "C": 64,
             "step": 400, "lr_lam_t": 4.0, "norm_ratio": v, "norm_p10": v - 0.1,
             "norm_p90": v + 0.1, "angle_ratio": 2 * v, "angle_p10": 2 * v - 0.1,
             "angle_p90": 2 * v + 0.1} for k, v in enumerate([0.9, 1.0, 1.1])]
    s = eq.summary(pd.DataFrame(rows)).iloc[0]
    assert s["settled"] == 3 and s["norm_ratio"] == pytest.approx(1.0)
    assert (s["norm_lo"], s["norm_hi"]) == pytest.approx((0.8, 1.2))
    assert s["angle_ratio"] == pytest.approx(2.0)
    text = " ".join(eq.reading(eq.summary(pd.DataFrame(rows)), {"setting": "x.", "last": 400}))
    assert "the norm matches within 25%" in text and "the angle does NOT match" in text
    assert "scale-invariant" in text


def test_tiny_real_run(tmp_path):
    from wdlab.store import read_json, read_table

    out = eq.run_equilibrium(out=tmp_path / "e", reduced=True)
    steps = read_table(out / "equilibrium_steps")
    assert set(steps["layer"]) == {"0.weight", "2.weight"}
    snaps = {e for t in eq.snapshot_pairs(30, 4) for e in (t, t + 1)}  # 1,2,3,4,9,10,29,30
    pairs = [t for t in snaps if t + 1 in snaps]  # 1, 2, 3, 9, 29
    assert len(steps) == 2 * 2 * len(pairs)  # configs x layers x steps
    assert sorted(steps["step"].unique()) == sorted(pairs)
    assert (steps["norm_ratio"] > 0).all() and (steps["angle_ratio"] > 0).all()
    result = read_json(out / "equilibrium.json")
    assert result["reading"] and len(result["summary"]) == 2
    assert read_json(out / "manifest.json")["status"] == "complete"
    with pytest.raises(ValueError, match="^epochs:"):
        eq.run_equilibrium(out=tmp_path / "bad", reduced=True, epochs=2)
