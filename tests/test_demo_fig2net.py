"""adamw-fig2-net: the diagonal/separable statistic on synthetic grids, and a tiny real run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from wdlab.demos import fig2net


def _grid(metric, lrs, lams, seeds=(0, 1), groups=(("sgd", "weight_decay"),)) -> pd.DataFrame:
    rows = []
    for opt, reg in groups:
        for s in seeds:
            for lr in lrs:
                for lam in lams:
                    rows.append({"optimizer": opt, "regularizer": reg, "data_seed": s, "lr": lr,
                                 "lam": lam, "status": "ok", "test_loss": metric(lr, lam, s)})
    return pd.DataFrame(rows)


LRS = [2.0 ** e for e in range(-8, 0)]
LAMS = [2.0 ** e for e in range(-14, 2)]


def test_diagonal_grid_has_slope_minus_one():
    # best lam = 2^-8 / lr: log2 best lam = -8 - log2 lr, slope -1, inside the grid everywhere
    df = _grid(lambda lr, lam, s: (math.log2(lam) + math.log2(lr) + 8) ** 2 + 0.1 * s, LRS, LAMS)
    per = fig2net.grid_slopes(df)
    assert per["slope"].tolist() == pytest.approx([-1.0, -1.0])
    assert per["edge_rows"].tolist() == [0, 0]
    summ = fig2net.slope_summary(per)
    assert summ.loc[0, "shape"] == "diagonal" and summ.loc[0, "slope"] == pytest.approx(-1.0)


def test_separable_grid_has_slope_zero_and_spread_over_seeds():
    # seed 0: best lam = 2^-6 for every lr (slope 0); seed 1: best lam = 2^-6 * lr^0.5 (by
    # hand: log2 lam* = -6 + 0.5 log2 lr -> on the grid only at even log2 lr ... use exact
    # grid points: lrs 2^-8, 2^-6, 2^-4, 2^-2 -> lam* 2^-10, 2^-9, 2^-8, 2^-7, slope 0.5)
    lrs = [2.0 ** e for e in (-8, -6, -4, -2)]

    def metric(lr, lam, s):
        target = -6 if s == 0 else -6 + 0.5 * math.log2(lr)
        return (math.log2(lam) - target) ** 2 + math.log2(lr) ** 2

    per = fig2net.grid_slopes(_grid(metric, lrs, LAMS))
    assert per["slope"].tolist() == pytest.approx([0.0, 0.5])
    summ = fig2net.slope_summary(per).iloc[0]
    assert summ["slope"] == pytest.approx(0.25)
    assert (summ["slope_min"], summ["slope_max"]) == pytest.approx((0.0, 0.5))
    assert summ["slope_std"] == pytest.approx(np.std([0.0, 0.5], ddof=1))
    assert fig2net.shape_word(0.0) == "separable" and fig2net.shape_word(-0.3) == "in between"
    assert fig2net.shape_word(0.8).startswith("rising")


def test_edge_rows_flagged_and_inner_slope():
    # best lam = 2^-12 / lr^2: at lr >= 2^-6 it falls below the grid (2^-14): edge rows
    def metric(lr, lam, s):
        return (math.log2(lam) - (-12 - 2 * math.log2(lr) - 16)) ** 2

    lrs = [2.0 ** e for e in (-8, -7, -6, -5, -4)]
    # log2 lam* = -28 - 2 log2 lr: -12, -14, -16, -18, -20 -> grid [-14, 1]: rows 3..5 clip
    per = fig2net.grid_slopes(_grid(metric, lrs, LAMS, seeds=(0,)))
    r = per.iloc[0]
    assert r["edge_rows"] == 4  # -14 (exactly the smallest lam, flagged) and the 3 clipped
    assert r["low_edge_rows"] == 4
    assert r["n_rows"] == 5
    # slope over all rows: argmins -12, -14, -14, -14, -14 -> least squares by hand
    x, y = np.array([-8, -7, -6, -5, -4.0]), np.array([-12, -14, -14, -14, -14.0])
    assert r["slope"] == pytest.approx(np.polyfit(x, y, 1)[0])
    assert math.isnan(r["slope_inner"])  # one inner row only
    assert fig2net.slope_summary(per).iloc[0]["shape"] == "edge-bound"


def test_diverged_cells_are_dropped():
    df = _grid(lambda lr, lam, s: (math.log2(lam) + math.log2(lr) + 8) ** 2, LRS, LAMS, seeds=(0,))
    df.loc[df["lr"] == LRS[-1], "status"] = "diverged"  # a whole lr row diverged
    per = fig2net.grid_slopes(df)
    assert per.loc[0, "n_rows"] == len(LRS) - 1 and per.loc[0, "slope"] == pytest.approx(-1.0)


def test_norm_factor_is_the_papers():
    assert fig2net.norm_factor(128, 1078, 10) == pytest.approx(math.sqrt(128 / 10780))


def test_tiny_real_run(tmp_path):
    out = fig2net.run_fig2net(out=tmp_path / "f", reduced=True, report=False, linear=False,
                              seeds=1)
    from wdlab.store import read_json, read_table

    configs = pd.concat([read_table(out / o / "configs") for o in ("sgd", "adam")])
    assert len(configs) == 2 * 3 * 3 * 3  # 2 runs x 3 pairs x 3 lr x 3 lam x 1 seed
    per = read_table(out / "fig2net_slopes")
    # recompute one group's slope from the configs table by hand
    g = configs[(configs["optimizer"] == "adamw") & (configs["regularizer"] == "independent")
                & (configs["status"] == "ok")]
    best = g.loc[g.groupby("lr")["test_loss"].idxmin()]
    want = np.polyfit(np.log2(best["lr"]), np.log2(best["lam"]), 1)[0]
    got = per[(per["optimizer"] == "adamw") & (per["regularizer"] == "independent")]["slope"]
    assert float(got.iloc[0]) == pytest.approx(want)
    result = read_json(out / "adamw-fig2-net.json")
    assert len(result["net"]) == 6 and result["reading"]
    assert (out / "figures" / "fig2net.png").stat().st_size > 10_000
    assert "<script" not in (out / "adamw-fig2-net.html").read_text()


def test_normalize_scales_the_lam_grid():
    plain = fig2net.fig2net_specs(reduced=True)["adam"]
    normed = fig2net.fig2net_specs(reduced=True, normalize=True)["adam"]
    ratio = np.array(normed.train.lam) / np.array(plain.train.lam)
    assert ratio == pytest.approx(np.full(len(ratio), fig2net.norm_factor(128, 1078, 2)))
