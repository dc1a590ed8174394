"""The l-inf limit of AdamW (``wdlab.exact.linf``) against scipy's BVLS, the KKT conditions, least
squares, and a long full-batch AdamW run of the engine (Xie & Li 2024, Theorem 1.1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import lsq_linear

from wdlab.data.synthetic import make_linear, problem_from_datasets
from wdlab.engine import EngineSpec, Hyper, train
from wdlab.engine.kernels import native_build as _native
from wdlab.exact.linf import bvls, limit_theta, linf_path, linf_radius

TOL = 1e-8


def _problem(n, d, seed, w_scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ (w_scale * rng.normal(size=d)) + 0.4 + 0.2 * rng.normal(size=n)
    s = rng.uniform(0.2, 2.0, size=n)
    return X, y, s


def _scipy(X, y, radius, s=None, fit_intercept=True):
    """scipy's BVLS on the weighted problem with the intercept as an unbounded column."""
    n, d = X.shape
    root = np.sqrt(np.ones(n) if s is None else s)
    A = root[:, None] * (np.concatenate([X, np.ones((n, 1))], 1) if fit_intercept else X)
    lo = np.full(A.shape[1], -radius)
    hi = np.full(A.shape[1], radius)
    if fit_intercept:
        lo[-1], hi[-1] = -np.inf, np.inf
    res = lsq_linear(A, root * y, bounds=(lo, hi), method="bvls", tol=1e-15, max_iter=2000)
    theta = res.x
    return (theta[:-1], theta[-1]) if fit_intercept else (theta, 0.0)


def _objective(X, y, coef, b, s):
    r = X @ coef + b - y
    return float((s * r * r).sum() / s.sum())


CASES = {  # (n, d, lams): tall, and wide with a strongly active box (a unique minimiser)
    "tall": (60, 8, [0.3, 0.9, 1.5, 3.0, 10.0]),
    "wide": (8, 24, [3.0, 4.0, 20.0]),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_scipy_bvls(case, fit_intercept, weighted):
    n, d, lams = CASES[case]
    X, y, s = _problem(n, d, seed=10 * len(case) + 2 * fit_intercept + weighted)
    sw = s if weighted else None
    path = linf_path(X, y, lams, fit_intercept=fit_intercept, sample_weight=sw)
    assert path.coef.shape == (len(lams), d) and path.coef.dtype == torch.float64
    partly = (path.n_bound > 0) & (path.n_bound < d)
    assert bool(partly.any()), f"a partly active box is covered: {path.n_bound}"
    for k, lam in enumerate(lams):
        coef, b = _scipy(X, y, 1.0 / lam, sw, fit_intercept)
        np.testing.assert_allclose(path.coef[k].numpy(), coef, rtol=0, atol=TOL / lam)
        np.testing.assert_allclose(path.intercept[k].item(), b, rtol=0, atol=TOL)
        ww = np.ones(n) if sw is None else sw
        np.testing.assert_allclose(path.train_mse[k].item(), _objective(X, y, coef, b, ww),
                                   rtol=TOL)
    np.testing.assert_allclose(path.fitted.numpy(), path.predict(X).numpy(), rtol=1e-12)


def test_inactive_box_tall_is_least_squares():
    X, y, _ = _problem(50, 6, seed=1)
    X1 = np.concatenate([X, np.ones((50, 1))], 1)
    theta = np.linalg.lstsq(X1, y, rcond=None)[0]
    lam_small = 0.5 / np.abs(theta[:-1]).max()  # radius twice the largest |w|
    path = linf_path(X, y, [0.0, lam_small])
    assert path.n_bound.tolist() == [0, 0]
    assert np.isinf(path.radius[0].item())
    for k in range(2):
        np.testing.assert_allclose(path.theta[k].numpy(), theta, rtol=0, atol=TOL)


def test_inactive_box_wide_interpolates():
    """Wide, inactive box: the minimisers form a polytope; only the fitted values are unique.

    AdamW's KKT point is not unique there either, so we test what is: the objective (0, an
    interpolation), the fitted values, feasibility and scipy's objective value.
    """
    X, y, s = _problem(10, 40, seed=2)
    lams = [0.0, 0.05, 0.2]
    path = linf_path(X, y, lams, sample_weight=s)
    for k, lam in enumerate(lams):
        np.testing.assert_allclose(path.fitted[k].numpy(), y, rtol=0, atol=TOL)
        assert path.train_mse[k].item() <= TOL**2
        assert np.abs(path.coef[k].numpy()).max() <= path.radius[k].item() * (1 + 1e-12)
        if lam > 0:
            coef, b = _scipy(X, y, 1.0 / lam, s)
            assert _objective(X, y, coef, b, s) <= TOL**2


@pytest.mark.parametrize("seed", range(6))
def test_kkt_conditions(seed):
    """Independent of scipy: free coordinates have zero gradient, bound ones point outward."""
    rng = np.random.default_rng(seed)
    n, d = [(30, 10), (6, 15), (15, 15)][seed % 3]
    A, c = rng.normal(size=(n, d)), rng.normal(size=n)
    R = float(rng.uniform(0.05, 0.5))
    w, state = bvls(A, c, R)
    g = A.T @ (A @ w - c)  # (D,)
    scale = np.abs(A).max() * (np.abs(A).max() * R * d + np.abs(c).max())
    assert np.abs(w).max() <= R * (1 + 1e-14)
    np.testing.assert_array_equal(w[state != 0], R * state[state != 0])
    assert np.abs(g[state == 0]).max(initial=0.0) <= 1e-10 * scale
    assert (g[state != 0] * state[state != 0] <= 1e-10 * scale).all()


def test_path_order_and_warm_start_do_not_matter():
    X, y, s = _problem(40, 7, seed=3)
    lams = np.array([2.0, 0.4, 8.0, 1.0, 0.0])
    path = linf_path(X, y, lams, sample_weight=s)
    for k, lam in enumerate(lams):
        alone = linf_path(X, y, [lam], sample_weight=s)
        np.testing.assert_allclose(path.theta[k].numpy(), alone.theta[0].numpy(), atol=1e-12)
    assert path.lams.tolist() == lams.tolist()


def test_independent_radius_is_lr_over_lam():
    X, y, _ = _problem(30, 5, seed=4)
    lr = np.array([0.01, 0.003])
    lam_ind = np.array([0.02, 0.006])
    ind = linf_path(X, y, lam_ind, regularizer="independent", lr=lr)
    dec = linf_path(X, y, lam_ind / lr, regularizer="decoupled")
    np.testing.assert_allclose(ind.radius.numpy(), lr / lam_ind)
    np.testing.assert_allclose(ind.theta.numpy(), dec.theta.numpy(), atol=1e-14)
    np.testing.assert_allclose(linf_radius([0.5, 0.0]), [2.0, np.inf])


def test_loss_scale_does_not_move_the_limit():
    X, y, _ = _problem(30, 5, seed=5)
    a, b = linf_path(X, y, [1.5], loss="mse"), linf_path(X, y, [1.5], loss="half_mse")
    np.testing.assert_array_equal(a.theta.numpy(), b.theta.numpy())


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"lams": [-1.0]}, "lams"),
    ({"lams": [float("nan")]}, "lams"),
    ({"loss": "hinge"}, "loss"),
    ({"regularizer": "mean"}, "regularizer"),
    ({"regularizer": "independent"}, "lr"),
    ({"regularizer": "independent", "lr": 0.0}, "lr"),
    ({"sample_weight": -np.ones(20)}, "sample_weight"),
    ({"sample_weight": np.ones(19)}, "sample_weight"),
    ({"y": np.ones(19)}, "y"),
    ({"X": np.ones(20)}, "X"),
    ({"X": np.full((20, 4), np.inf)}, "X"),
    ({"y": np.full(20, np.nan)}, "y"),
])
def test_bad_input_names_the_field(kwargs, field):
    X, y, _ = _problem(20, 4, seed=6)
    args = {"X": X, "y": y, "lams": [1.0], **kwargs}
    with pytest.raises(ValueError, match=f"^{field}:"):
        linf_path(args.pop("X"), args.pop("y"), args.pop("lams"), **args)


def test_limit_theta_layouts():
    X, y, s = _problem(30, 5, seed=7)
    lams = [0.5, 2.0]
    path = linf_path(X, y, lams, sample_weight=s)
    both = dict(optimizer="adamw", regularizer="decoupled", sample_weight=s)
    torch.testing.assert_close(limit_theta(X, y, lams, **both), path.theta)
    torch.testing.assert_close(limit_theta(X, y, lams, fit_intercept=False, **both),
                               linf_path(X, y, lams, fit_intercept=False, sample_weight=s).coef)
    boxed = limit_theta(X, y, lams, decay_bias=True, **both)  # the intercept joins the box
    lo = np.full(6, -0.5)
    ref = lsq_linear(np.sqrt(s)[:, None] * np.concatenate([X, np.ones((30, 1))], 1),
                     np.sqrt(s) * y, bounds=(lo, -lo), method="bvls", tol=1e-15).x
    np.testing.assert_allclose(boxed[1].numpy(), ref, atol=TOL)
    assert limit_theta(X, y, lams, optimizer="adam", regularizer="mean") is None


needs_compiler = pytest.mark.skipif(_native.compiler() is None,
                                    reason="no C++ compiler: eager AdamW for 2e5 epochs is too slow")


@needs_compiler
@pytest.mark.parametrize("regularizer", ["decoupled", "independent"])
def test_long_full_batch_adamw_approaches_the_limit(regularizer):
    """Full-batch AdamW (float64, cosine lr 1e-3 -> 0, eps 1e-12, w0 = 0) on a tall 40 x 5
    problem, at a weight decay whose box is inactive, partly active and fully active: the
    distance to the box-constrained least squares shrinks with the epochs and is < 1e-4
    (relative) after 2e5 epochs. ``independent`` decay lam * lr has the same box, lr/lam."""
    ds = make_linear(5, 40, 10, w_star=0.5, bias=0.5, noise=0.3, seed=3)
    lams = [0.5, 1.8, 2.5, 4.0]
    if regularizer == "independent":
        lams = [lam * 1e-3 for lam in lams]
    path = linf_path(ds.X_train, ds.y_train, lams, regularizer=regularizer, lr=1e-3)
    assert path.n_bound.tolist() == [0, 2, 5, 5]
    ref = path.theta  # (K, D+1)
    rel = {}
    for epochs in (20_000, 200_000):
        spec = EngineSpec("adamw", regularizer, "mse", epochs=epochs, schedule="cosine",
                          eps=1e-12, dtype=torch.float64)
        res = train(problem_from_datasets([ds]), spec, Hyper.of(len(lams), lam=lams, lr=1e-3),
                    torch.zeros_like(ref), reference=ref, record_epochs=[epochs],
                    engine="native")
        dist = res.metrics["dist_to_ridge"][-1]  # the engine's distance to its reference
        torch.testing.assert_close(dist, torch.linalg.vector_norm(res.theta - ref, dim=1))
        rel[epochs] = dist / torch.linalg.vector_norm(ref, dim=1)  # (K,)
    assert bool((rel[200_000] < 1e-4).all()), rel
    assert bool((rel[200_000] < rel[20_000] / 10).all()), rel


def test_experiment_records_dist_to_limit():
    """A decoupled Adam experiment records its distance to the l-inf limit (as a coupled one
    records dist_to_ridge): at epoch 0 it is ||theta0 - linf_path(...).theta||, and it shrinks."""
    from wdlab.config import DataConfig, ExperimentConfig, TrainConfig
    from wdlab.data.synthetic import init_weights
    from wdlab.experiment import run_experiment

    data = DataConfig(n_features=4, n_train=30, n_test=10, w_star=0.5, noise=0.3, seed=1)
    train_cfg = TrainConfig(optimizer="adamw", regularizer="decoupled", lr=0.01, epochs=3000,
                            schedule="cosine", dtype="float64")
    cfg = ExperimentConfig(data=data, lams=(0.5, 2.5), train=train_cfg)
    res = run_experiment(cfg)
    assert "dist_to_limit" in res.curves and "dist_to_ridge" not in res.curves
    ds = make_linear(4, 30, 10, w_star=0.5, bias=data.bias, noise=0.3, seed=1)
    ref = linf_path(ds.X_train, ds.y_train, [0.5, 2.5]).theta  # (K, D+1)
    theta0 = init_weights([cfg.init_seed] * 2, 4, train_cfg.init_scale, dtype=torch.float64)
    curves = res.curves.sort_values(["config_id", "epoch"])
    first = curves.groupby("config_id")["dist_to_limit"].first().to_numpy()
    np.testing.assert_allclose(first, torch.linalg.vector_norm(theta0 - ref, dim=1).numpy(),
                               rtol=1e-12)
    last = res.configs["dist_to_limit"].to_numpy()
    assert (last < first / 10).all(), (first, last)
    coupled = run_experiment(cfg.model_copy(update={"train": TrainConfig(
        optimizer="adam", regularizer="weight_decay", lr=0.01, epochs=10, dtype="float64")}))
    assert "dist_to_ridge" in coupled.curves and "dist_to_limit" not in coupled.curves


def test_sweep_records_dist_to_limit():
    """``record.dist_to_limit``: decoupled groups record the distance to their limit (Adam(W):
    the l-inf box; SGD: its ridge fixed point) on each draw's own training samples (a split
    holds some out); coupled groups keep dist_to_ridge."""
    import pandas as pd

    from wdlab.config.load import build_spec
    from wdlab.selection import summarize
    from wdlab.sweep import make_plan, prepare_chunk, run_chunk

    spec = build_spec({
        "name": "linf", "data": {"n_features": 4, "n_train": 20, "n_test": 8, "w_star": 0.5,
                                 "noise": 0.3, "seeds": 2},
        "train": {"pairs": ["adamw+decoupled", "adam+independent", "adam+half_sum",
                            "sgd+decoupled"],
                  "lam": [0.5, 1.5], "lr": 0.01, "epochs": 400, "schedule": "cosine",
                  "dtype": "float64"},
        "validation": {"method": "split"},
        "record": {"dist_to_ridge": True, "dist_to_limit": True, "every": 100},
        "execution": {"chunk_size": 4, "engine": "eager"}})
    configs, curves = [], []
    for i in range(len(make_plan(spec).chunks)):
        inputs = prepare_chunk(spec, i)
        if inputs.group.optimizer != "sgd" and inputs.group.regularizer != "half_sum":
            draws_w = inputs.problem.weight  # (G, N) 0/1: the split's training samples
            lam, lr = inputs.hyper.lam.numpy(), inputs.hyper.lr.numpy()
            M = inputs.chunk.m1 - inputs.chunk.m0
            for g in range(draws_w.shape[0]):  # each draw's limit, solved alone
                X, y = inputs.problem.X[g, :, :-1], inputs.problem.y[g]
                ref = linf_path(X, y, lam[g * M:(g + 1) * M], sample_weight=draws_w[g],
                                regularizer=inputs.group.regularizer, lr=lr[g * M:(g + 1) * M])
                torch.testing.assert_close(inputs.reference[g * M:(g + 1) * M], ref.theta)
        res = run_chunk(spec, i)
        configs.append(res.configs)
        curves.append(res.curves)
    configs, curves = pd.concat(configs), pd.concat(curves)
    assert (configs["status"] == "ok").all()
    assert {"dist_to_ridge", "dist_to_limit"} <= set(curves.columns)
    box = configs["regularizer"].ne("half_sum")  # every decoupled group has a limit
    assert configs.loc[box, "dist_to_limit"].notna().all()
    assert configs.loc[box, "dist_to_ridge"].isna().all()
    assert configs.loc[~box, "dist_to_limit"].isna().all()
    assert configs.loc[~box, "dist_to_ridge"].notna().all()
    cur = curves[curves["config_id"].isin(configs.loc[box, "config_id"])]
    first = cur.groupby("config_id")["dist_to_limit"].first()
    last = cur.groupby("config_id")["dist_to_limit"].last()
    assert (last < first / 5).all(), (first, last)
    summary = summarize(configs)  # the distance is aggregated over seeds, never a group key
    assert len(summary) == len(configs) // 2 and summary["dist_to_limit_mean"].notna().sum() == 6


def test_bvls_says_when_it_stops_short():
    rng = np.random.default_rng(8)
    A, c = rng.normal(size=(20, 10)), 10 * rng.normal(size=20)
    with pytest.raises(RuntimeError, match="^bvls: the KKT conditions still fail"):
        bvls(A, c, 0.01, state0=np.zeros(10), max_iter=1)
    w, _ = bvls(A, c, 0.01)
    assert np.abs(w).max() <= 0.01 * (1 + 1e-14)


@needs_compiler
@pytest.mark.parametrize(("regularizer", "momentum", "loss", "decay_bias"), [
    ("decoupled", 0.9, "mse", False), ("decoupled", 0.0, "half_mse", False),
    ("independent", 0.5, "mse", False), ("decoupled", 0.9, "mse", True)])
def test_sgd_with_decoupled_decay_reaches_its_ridge(regularizer, momentum, loss, decay_bias):
    """SGD's decoupled fixed point is a ridge with coupled decay (1 - mu) lam (x 1/lr when
    independent); full-batch SGD reaches it to rounding. Adam's is the box above."""
    ds = make_linear(5, 40, 10, w_star=0.5, bias=0.5, noise=0.3, seed=3)
    lr = 0.02
    lams = [0.1, 1.0, 3.0] if regularizer == "decoupled" else [0.1 * lr, lr, 3.0 * lr]
    ref = limit_theta(ds.X_train, ds.y_train, lams, optimizer="sgd", regularizer=regularizer,
                      lr=lr, momentum=momentum, loss=loss, decay_bias=decay_bias)  # (K, D+1)
    if not decay_bias:  # the same point as ridge_path with coupled weight_decay
        from wdlab.exact.ridge import ridge_path

        wd = (1 - momentum) * np.asarray(lams) / (lr if regularizer == "independent" else 1.0)
        torch.testing.assert_close(ref, ridge_path(ds.X_train, ds.y_train, wd, loss,
                                                   "weight_decay").theta, rtol=1e-10, atol=1e-12)
    spec = EngineSpec("sgd", regularizer, loss, epochs=3000, decay_bias=decay_bias,
                      dtype=torch.float64)
    res = train(problem_from_datasets([ds]), spec,
                Hyper.of(len(lams), lam=lams, lr=lr, beta1=momentum), torch.zeros_like(ref),
                reference=ref, record_epochs=[3000], engine="native")
    rel = res.metrics["dist_to_ridge"][-1] / torch.linalg.vector_norm(ref, dim=1)
    assert bool((rel < 1e-12).all()), rel
