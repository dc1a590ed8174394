"""Figure functions on small hand-built tables: axes scales, number of lines, labels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402

from wdlab import plots  # noqa: E402

GROUPS = [("sgd", "weight_decay"), ("adamw", "decoupled")]
LAMS = [0.0, 0.01, 0.1, 1.0]
LRS = [0.01, 0.1, 1.0]


def _configs(seeds=3, lrs=(0.1,), diverge=True):
    rows, cid = [], 0
    for g, (opt, reg) in enumerate(GROUPS):
        for lr in lrs:
            for lam in LAMS:
                for s in range(seeds):
                    test = (1.0 + g) * (1 + (np.log10(lam + 1e-3) + 1.5) ** 2) + 0.01 * s + lr
                    rows.append(dict(config_id=cid, optimizer=opt, regularizer=reg, loss="mse",
                                     lam=lam, lr=lr, init_seed=s, data_seed=s, n_train=20,
                                     n_features=10, status="ok", train_mse=test / 2,
                                     val_mse=test * 1.1, test_mse=test, w_norm=1.0 / (1 + lam)))
                    cid += 1
    df = pd.DataFrame(rows)
    if diverge:  # one diverged config with NaN metrics must never reach a line
        df.loc[0, ["status", "test_mse", "val_mse", "train_mse", "w_norm"]] = [
            "diverged", np.nan, np.nan, np.nan, np.nan]
    return df


def _curves(configs, epochs=5):
    ids = configs["config_id"].to_numpy()
    e = np.arange(epochs + 1)
    return pd.DataFrame({"config_id": np.repeat(ids, len(e)), "epoch": np.tile(e, len(ids)),
                         "train_mse": np.tile(10.0 / (1 + e), len(ids)),
                         "test_mse": np.tile(20.0 / (1 + e), len(ids))})


def _selection():
    return pd.DataFrame({"optimizer": [g[0] for g in GROUPS], "regularizer": [g[1] for g in GROUPS],
                         "best_lam": [0.01, 0.1], "best_val_mse": [1.0, 2.0],
                         "best_test_mse": [1.1, 2.1], "lam_1se": [0.1, 1.0],
                         "val_mse_1se": [1.2, 2.2], "test_mse_1se": [1.3, 2.3]})


def _labels(ax):
    return [line.get_label() for line in ax.get_lines()]


def test_validation_curve_lines_scales_and_labels():
    configs = _configs()
    ridge = pd.DataFrame({"regularizer": "weight_decay", "lam": np.logspace(-3, 1, 9),
                          "test_mse": 1.0})
    theory = pd.DataFrame({"regularizer": "weight_decay", "lam": np.logspace(-3, 1, 9),
                           "risk": 1.5})
    fig = plots.validation_curve(configs, selection=_selection(), ridge=ridge, theory=theory)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "λ" in ax.get_xlabel() and "MSE" in ax.get_ylabel()
    labels = _labels(ax)
    # per group: test, val, test at lam=0, best, 1-SE = 5; + ridge + theory
    assert len(labels) == 2 * 5 + 2
    assert sum("closed-form ridge" in s for s in labels) == 1
    assert sum(s.startswith("theory") for s in labels) == 1
    assert sum("best λ" in s for s in labels) == 2 and sum("1-SE" in s for s in labels) == 2
    # the diverged (NaN) seed is left out: the first group's lam=0 mean is over 2 seeds
    zero = configs[(configs.optimizer == "sgd") & (configs.lam == 0) & (configs.status == "ok")]
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "SGD + " +
                plots.describe("weight_decay") + ": test at λ = 0")
    assert line.get_ydata()[0] == pytest.approx(zero.test_mse.mean())
    test_line = next(ln for ln in ax.get_lines() if ln.get_label().endswith(": test")
                     and ln.get_label().startswith("SGD"))
    np.testing.assert_allclose(test_line.get_xdata(), LAMS[1:])  # lam = 0 not on a log axis


def test_validation_curve_picks_best_lr_when_swept():
    configs = _configs(lrs=LRS, diverge=False)
    ax = plots.validation_curve(configs).axes[0]
    line = next(ln for ln in ax.get_lines() if ln.get_label().startswith("SGD")
                and ln.get_label().endswith(": val"))
    rows = configs[(configs.optimizer == "sgd") & (configs.lr == 0.01) & (configs.lam > 0)]
    np.testing.assert_allclose(line.get_ydata(), rows.groupby("lam").val_mse.mean().to_numpy())


def test_training_curves_one_panel_per_lam():
    configs = _configs(seeds=2)
    sub = configs[configs.optimizer == "sgd"]
    fig = plots.training_curves(_curves(sub), sub)
    assert len(fig.axes) == len(LAMS)
    for ax in fig.axes:
        assert ax.get_yscale() == "log" and ax.get_xlabel() == "epoch"
        assert _labels(ax) == ["train", "test"]
    assert "λ = 0.1" in fig.axes[2].get_title()


def test_norm_path_one_line_per_group():
    fig = plots.norm_path(_configs())
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 2
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log" and "‖w‖" in ax.get_ylabel()
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [1 / 1.01, 1 / 1.1, 0.5])


@pytest.mark.parametrize(("n_features", "expected"), [(5, 5), (40, 12)])
def test_coef_path_all_or_a_sample(n_features, expected):
    lams = np.logspace(-2, 2, 7)
    coefs = pd.DataFrame({"lam": np.repeat(lams, n_features),
                          "feature": np.tile(np.arange(n_features), len(lams)),
                          "coef": np.tile(np.linspace(-1, 1, n_features), len(lams))})
    ax = plots.coef_path(coefs).axes[0]
    assert len(ax.get_lines()) == expected + 1  # + the zero line
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "coefficient w_j"
    assert ("all" in ax.get_title()) == (expected == n_features)


def test_lr_lam_heatmaps_panels_best_cells_and_diverged():
    configs = _configs(seeds=2, lrs=LRS, diverge=False)
    bad = (configs.optimizer == "sgd") & (configs.lr == 1.0) & (configs.lam == 0.01)
    configs.loc[bad, ["status", "test_mse"]] = ["diverged", np.nan]
    fig = plots.lr_lam_heatmaps(configs, top=3)
    panels = [ax for ax in fig.axes if any(isinstance(c, QuadMesh) for c in ax.collections)
              and ax.get_label() != "<colorbar>"]
    assert len(panels) == 2
    assert sum(ax.get_label() == "<colorbar>" for ax in fig.axes) == 1  # one shared scale
    for ax in panels:
        assert ax.get_xlabel() == "learning rate" and "λ" in ax.get_ylabel()
        (marks,) = ax.get_lines()
        assert len(marks.get_xdata()) == 3
        mesh = next(c for c in ax.collections if isinstance(c, QuadMesh))
        assert mesh.get_array().shape == (len(LAMS), len(LRS))
    sgd = next(ax for ax in panels if ax.get_title().startswith("SGD"))
    mesh = next(c for c in sgd.collections if isinstance(c, QuadMesh))
    assert int(np.ma.getmaskarray(mesh.get_array()).sum()) == 1  # the all-diverged cell
    # best cell circled: lowest mean test MSE of the adamw panel (lam 0.01, lr 0.01)
    other = next(ax for ax in panels if ax.get_title().startswith("AdamW"))
    m = other.get_lines()[0]
    assert (m.get_xdata()[0], m.get_ydata()[0]) == (0.5, 1.5)
    assert [t.get_text() for t in other.get_yticklabels()] == ["0", "1e-2", "1e-1", "1e0"]


def test_double_descent_lines_and_scales():
    rows, cid = [], 0
    for n in (5, 10, 20, 40):
        for lam in (1e-6, 0.1, 1.0):
            for s in range(2):
                peak = 10.0 / (abs(n - 10) + 1) if lam < 1e-3 else 1.0 + lam
                rows.append(dict(config_id=cid, optimizer="sgd", regularizer="sum", lam=lam,
                                 n_train=n, n_features=10, status="ok", test_mse=peak + s,
                                 val_mse=peak + s))
                cid += 1
    theory = pd.DataFrame({"ratio": [0.5, 2.0, 0.5, 2.0], "curve": ["ridgeless"] * 2 + ["optimal"] * 2,
                           "risk": [2.0, 2.0, 1.0, 1.0]})
    ax = plots.double_descent(pd.DataFrame(rows), theory).axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "n_train / n_features"
    labels = _labels(ax)
    assert sum(s.startswith("trained") for s in labels) == 2
    assert sum(s.startswith("theory") for s in labels) == 2
    best = next(ln for ln in ax.get_lines() if ln.get_label().startswith("trained, best"))
    # per n the lam with the lowest mean val: 0.1 near the peak, ~0 far from it
    np.testing.assert_allclose(best.get_ydata(), [1.6, 1.6, 10 / 11 + 0.5, 10 / 31 + 0.5])
    small = next(ln for ln in ax.get_lines() if ln.get_label().startswith("trained, λ"))
    assert small.get_ydata()[1] == pytest.approx(10.5)  # the peak at n = d


def test_heatmap_circles_only_when_meaningful_and_colours_clipped():
    """A flat grid (every cell ~100) gets no "best" circles; one unconverged cell 1e4x worse
    does not stretch the colour scale (clipped at a percentile, said on the colour bar)."""
    configs = _configs(seeds=1, lrs=LRS, diverge=False)
    configs["test_mse"] = 100.0 + 0.01 * configs["config_id"]
    fig = plots.lr_lam_heatmaps(configs, top=3)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.collections]
    assert panels and all(not ax.get_lines() for ax in panels)
    assert plots.top_cells(np.full((4, 3), 100.0), 3).size == 0
    grid = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0], [10.0, 11.0, 1e5]])
    assert list(plots.top_cells(grid, 3)) == [0, 1, 2]
    vmin, vmax, clipped = plots.heat_scale(grid.ravel())
    assert clipped and vmin == 1.0 and vmax == pytest.approx(np.percentile(grid, 60))
    configs["test_mse"] = np.where(configs["config_id"] == 0, 1e6, 1.0 + configs["config_id"])
    fig = plots.lr_lam_heatmaps(configs, top=3)
    bar = next(ax for ax in fig.axes if ax.get_label() == "<colorbar>")
    assert "clipped at the 60th percentile" in bar.get_ylabel()


def test_bands_are_percentiles_inside_the_seeds_range():
    """Asymmetric bands: 2.5-97.5th percentiles of the seeds, > 0 on log axes even when a
    symmetric t-interval of 2 seeds would reach below zero."""
    df = pd.DataFrame({"lam": [1.0, 1.0], "test_mse": [0.01, 10.0]})
    agg = plots.mean_band(df, "lam", "test_mse").iloc[0]
    assert 0.01 <= agg["lo"] < agg["mean"] < agg["hi"] <= 10.0
    assert agg["lo"] == pytest.approx(np.percentile([0.01, 10.0], 2.5))


def test_few_lams_draw_categories_not_a_single_dot():
    configs = _configs(seeds=2)
    two = configs[configs["lam"].isin([0.0, 1.0])]
    fig = plots.validation_curve(two)
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["λ = 0", "λ = 1"]
