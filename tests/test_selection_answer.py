"""selection.select's answer columns and run_warnings on hand-built summaries (no training):
the CI range, the translations, the best-lr rows a swept lr is answered with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wdlab.selection import best_lr_rows, run_warnings, select


def _summary(lrs=(0.1,), lams=(0.01, 0.1, 1.0, 10.0), seeds=5, diverged_at=None):
    rows = []
    for lr in lrs:
        for lam in lams:
            val = 1.0 + (np.log10(lam) - np.log10(lr) - 1) ** 2  # best λ = 10 * lr
            rows.append(dict(optimizer="adam", regularizer="mean", loss="mse", lam=lam, lr=lr,
                             momentum=0.0, n_train=20, n_features=10,
                             val_mse_mean=val, val_mse_std=0.05, val_mse_ci95=0.06,
                             test_mse_mean=val + 0.1, test_mse_std=0.05, test_mse_ci95=0.06,
                             n_ok=seeds, n_diverged=0, n_seeds=seeds))
    df = pd.DataFrame(rows)
    if diverged_at is not None:
        df.loc[df["lam"] == diverged_at, ["n_diverged", "n_ok", "val_mse_mean"]] = [2, 3, np.nan]
    return df


def test_answer_columns_range_and_translation():
    sel = select(_summary())
    row = sel.iloc[0]
    assert row["best_lam"] == 1.0 and row["best_val_mse_ci95"] == pytest.approx(0.06)
    assert (row["lam_lo"], row["lam_hi"], row["n_lams_in_range"]) == (1.0, 1.0, 1)
    assert row["alpha_best"] == pytest.approx(20 * 1.0 / 10)  # n * lam / d (mean convention)
    assert row["torch_weight_decay_best"] == pytest.approx(2 * 1.0 / 10)  # 2 lam / d
    assert row["torch_optimizer"] == "Adam"
    assert run_warnings(_summary(), sel) == []  # interior, 5 seeds, nothing diverged


def test_swept_lr_is_answered_at_each_groups_best_lr():
    summary = _summary(lrs=(0.001, 0.1))
    summary.loc[summary["lr"] == 0.001, "val_mse_mean"] += 5.0  # lr 0.1 is better
    sel = select(summary)
    assert len(sel) == 2 and list(best_lr_rows(sel)["lr"]) == [0.1]
    codes = [w["code"] for w in run_warnings(summary, sel)]
    # lr = 0.001 has its best λ (0.01) at the grid's bottom edge, but it is not the answer
    assert "grid_edge" not in codes


def test_diverged_and_edge_are_reported_with_ranges():
    summary = _summary(lams=(0.01, 0.1, 1.0), diverged_at=0.01, seeds=2)
    sel = select(summary)
    ws = {w["code"]: w["message"] for w in run_warnings(summary, sel)}
    assert "the largest λ of the grid (1)" in ws["grid_edge"]
    assert ws["diverged"].startswith("2 of 6 configurations diverged")
    assert "only 2 seeds" in ws["few_seeds"]


def test_t975_table_is_scipy_bit_for_bit():
    """The t quantile table (no scipy import in a sweep) equals scipy.stats.t.ppf, and dof
    beyond the table or non-integer still go to scipy; dof < 1 is nan."""
    from scipy.stats import t as student_t

    from wdlab.selection import t975

    dof = np.arange(1, 1001, dtype=np.float64)
    np.testing.assert_array_equal(t975(dof), student_t.ppf(0.975, dof))
    odd = np.array([0.0, -1.0, 1.5, 1001.0, 5000.0])
    got = t975(odd)
    assert np.isnan(got[:2]).all()
    np.testing.assert_array_equal(got[2:], student_t.ppf(0.975, odd[2:]))
