"""tau-epoch: best lam -> tau_epoch per N, CIs and the slope statistic on synthetic grids,
and a tiny real run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from wdlab.demos import tau_epoch as te

NS = [128, 256, 512, 1024]
LAMS = [2.0 ** e for e in range(-6, 7)]


def _configs(best_log2_lam, seeds=(0, 1, 2), lr=2.0 ** -7, bs=32) -> pd.DataFrame:
    rows = []
    for s in seeds:
        for n in NS:
            target = best_log2_lam(n, s)
            for lam in LAMS:
                rows.append({"n_train": n, "data_seed": s, "lam": lam, "lr": lr, "batch_size": bs,
                             "status": "ok", "val_loss": (math.log2(lam) - target) ** 2 + 1})
    return pd.DataFrame(rows)


def test_tau_rule_grid():
    # best lam = 2^10 / N exactly: tau_epoch = B / (lr lam N) = 32 * 2^7 / 2^10 = 4, every N
    best = te.best_per_seed(_configs(lambda n, s: 10 - math.log2(n)))
    assert best["tau_epoch"].to_numpy() == pytest.approx(np.full(12, 4.0))
    assert best["tau_iter"].to_numpy() == pytest.approx(2.0 ** 7 / best["lam"].to_numpy())
    table = te.tau_table(best)
    assert table["tau_epoch"].to_numpy() == pytest.approx(np.full(4, 4.0))
    assert te.slope_stat(best)["slope"] == pytest.approx(-1.0)
    assert te.common_value(table["log2_tau_epoch"].to_numpy(), table["log2_tau_epoch_ci"].to_numpy())
    assert not te.common_value(table["log2_lam"].to_numpy(), table["log2_lam_ci"].to_numpy())
    text = " ".join(te.reading(table, te.slope_stat(best), {"setting": "x.", "epochs": 20}))
    assert "consistent with the τ_epoch rule" in text and "λ is NOT constant" in text


def test_constant_lam_grid_and_seed_spread():
    # seeds 0, 1, 2 pick lam = 2^0, 2^0, 2^1 at every N: slope 0, lam CI by hand
    best = te.best_per_seed(_configs(lambda n, s: 0.0 if s < 2 else 1.0))
    table = te.tau_table(best)
    mean, half = te.t_ci(np.array([0.0, 0.0, 1.0]))
    # t_{0.975, 2} = 4.302652729911275, sd = sqrt(1/3)
    assert (mean, half) == pytest.approx((1 / 3, 4.302652729911275 * math.sqrt(1 / 3) / math.sqrt(3)))
    assert table["log2_lam"].to_numpy() == pytest.approx(np.full(4, 1 / 3))
    assert table["log2_lam_ci"].to_numpy() == pytest.approx(np.full(4, half))
    # tau_epoch = 32 * 128 / (lam N): log2 = 12 - log2 lam - log2 N; spread 3 > 2 * half
    want = [12 - 1 / 3 - math.log2(n) for n in NS]
    assert table["log2_tau_epoch"].to_numpy() == pytest.approx(want)
    stat = te.slope_stat(best)
    assert stat["slope"] == pytest.approx(0.0, abs=1e-12) and stat["n_seeds"] == 3
    text = " ".join(te.reading(table, stat, {"setting": "x.", "epochs": 20}))
    assert "consistent with constant λ" in text and "τ_epoch is NOT constant" in text
    # seeds spread over 2^0 .. 2^2: the CIs are so wide that both hypotheses fit
    wide = te.best_per_seed(_configs(lambda n, s: float(s)))
    text = " ".join(te.reading(te.tau_table(wide), te.slope_stat(wide),
                               {"setting": "x.", "epochs": 20}))
    assert "Both hypotheses fit" in text


def test_edges_and_divergence():
    df = _configs(lambda n, s: 20.0, seeds=(0,))  # optimum above the grid: largest lam
    df.loc[df["lam"] == LAMS[-1], "status"] = "diverged"  # ... which diverged: next largest
    best = te.best_per_seed(df)
    assert (best["lam"] == LAMS[-2]).all() and not best["edge"].any()
    df2 = _configs(lambda n, s: 20.0, seeds=(0,))
    assert te.best_per_seed(df2)["edge"].all()


def test_tiny_real_run(tmp_path):
    from wdlab.store import read_json, read_table

    out = te.run_tau_epoch(out=tmp_path / "t", reduced=True, report=False)
    configs = read_table(out / "configs")
    assert configs["n_train"].nunique() == 2 and len(configs) == 2 * 3 * 2
    best = read_table(out / "tau_best")
    for r in best.itertuples():  # hand recomputation from the configs table
        g = configs[(configs["n_train"] == r.n_train) & (configs["data_seed"] == r.data_seed)]
        lam = float(g.loc[g["val_loss"].idxmin(), "lam"])
        assert r.lam == lam
        assert r.tau_epoch == pytest.approx(64 / (2.0 ** -7 * lam * r.n_train))
    result = read_json(out / "tau-epoch.json")
    assert len(result["table"]) == 2 and result["reading"]
    assert (out / "figures" / "tau-epoch.png").stat().st_size > 10_000
