"""The lam translator: known values, round trips, and equal minimisers solved by numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from wdlab.conventions import (
    CONVENTIONS,
    DECOUPLED_NAMES,
    REGULARIZERS,
    conventions_table,
    has_closed_form,
    sklearn_alpha,
    translate,
)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small numpy solves: one BLAS thread avoids oversubscribing the shared cores."""
    with threadpool_limits(limits=1):
        yield

NAMES = tuple(CONVENTIONS)

# The objectives written out from their definitions, independently of the module's tables:
# name -> (c_data, c_pen(lam, n, d)) for  c_data * ||r||^2 + c_pen * ||w||^2.
OBJECTIVES = {
    "seed": (lambda n: 1 / n, lambda v, n, d: v / d),
    "d2l": (lambda n: 0.5 / n, lambda v, n, d: v / 2),
    "d2l_concise": (lambda n: 1 / n, lambda v, n, d: v / 2),
    "torch_mse": (lambda n: 1 / n, lambda v, n, d: v / 2),
    "torch_half_mse": (lambda n: 0.5 / n, lambda v, n, d: v / 2),
    "sklearn": (lambda n: 1.0, lambda v, n, d: v),
    "glmnet": (lambda n: 1 / (2 * n), lambda v, n, d: v / 2),
    "mse+mean": (lambda n: 1 / n, lambda v, n, d: v / d),
    "mse+half_sum": (lambda n: 1 / n, lambda v, n, d: v / 2),
    "mse+sum": (lambda n: 1 / n, lambda v, n, d: v),
    "mse+weight_decay": (lambda n: 1 / n, lambda v, n, d: v / 2),
    "half_mse+mean": (lambda n: 0.5 / n, lambda v, n, d: v / d),
    "half_mse+half_sum": (lambda n: 0.5 / n, lambda v, n, d: v / 2),
    "half_mse+sum": (lambda n: 0.5 / n, lambda v, n, d: v),
    "half_mse+weight_decay": (lambda n: 0.5 / n, lambda v, n, d: v / 2),
}


def test_every_convention_has_an_independent_objective():
    assert set(OBJECTIVES) == set(NAMES)


def _minimiser(X, y, value, name):
    """argmin over (w, b) of c_data ||Xw + b - y||^2 + c_pen ||w||^2, by numpy lstsq."""
    n, d = X.shape
    c_data, c_pen = OBJECTIVES[name][0](n), OBJECTIVES[name][1](value, n, d)
    A = np.hstack([X, np.ones((n, 1))]) * np.sqrt(c_data)
    P = np.hstack([np.sqrt(c_pen) * np.eye(d), np.zeros((d, 1))])
    theta, *_ = np.linalg.lstsq(np.vstack([A, P]), np.concatenate([y * np.sqrt(c_data),
                                                                     np.zeros(d)]), rcond=None)
    return theta


def test_known_values():
    kw = dict(n_train=10, n_features=200)
    assert translate(3.0, "seed", "sklearn", **kw) == pytest.approx(0.15)
    # d2l's from-scratch lam=3 is twice as strong as its concise weight_decay=3
    assert translate(3.0, "d2l", "d2l_concise", **kw) == pytest.approx(6.0)
    assert translate(1.0, "glmnet", "sklearn", **kw) == pytest.approx(10.0)
    assert translate(2.0, "d2l", "glmnet", **kw) == pytest.approx(2.0)
    assert translate(2.0, "torch_mse", "mse+half_sum", **kw) == pytest.approx(2.0)
    assert translate(2.0, "seed", "mse+mean", **kw) == pytest.approx(2.0)
    assert sklearn_alpha(3.0, "mse", "mean", 10, 200) == pytest.approx(0.15)


def test_array_types_are_kept():
    t = translate(torch.tensor([1.0, 2.0], dtype=torch.float64), "seed", "sklearn",
                  n_train=10, n_features=200)
    a = translate(np.array([1.0, 2.0]), "seed", "sklearn", n_train=10, n_features=200)
    assert isinstance(t, torch.Tensor) and isinstance(a, np.ndarray)
    np.testing.assert_allclose(t.numpy(), a)


@pytest.mark.parametrize("name", DECOUPLED_NAMES)
def test_decoupled_has_no_equivalent(name):
    for src, dst in ((name, "seed"), ("seed", name)):
        with pytest.raises(ValueError, match="no exact L2 equivalent.*per coordinate"):
            translate(1.0, src, dst, n_train=10, n_features=200)


@pytest.mark.parametrize("reg", REGULARIZERS)
def test_closed_form_exactly_where_an_sklearn_alpha_exists(reg):
    """The one predicate: a ridge minimiser exists iff the pair translates to Ridge's alpha,
    and never with a decayed bias (ridge leaves the bias free)."""
    try:
        sklearn_alpha(1.0, "mse", reg, 10, 3)
        translates = True
    except ValueError:
        translates = False
    assert has_closed_form(reg) is translates
    assert has_closed_form(reg, decay_bias=True) is False
    from wdlab.engine import supports_closed_form

    assert supports_closed_form(reg) is translates


def test_unknown_name_and_bad_sizes():
    with pytest.raises(ValueError, match="unknown convention 'ridge'"):
        translate(1.0, "ridge", "seed", n_train=10, n_features=200)
    with pytest.raises(ValueError, match="n_train"):
        translate(1.0, "seed", "d2l", n_train=0, n_features=200)


def test_n_train_is_a_real_number():
    """With sample weights n is sum(w), not an integer: no truncation (int(255.83) = 255)."""
    assert sklearn_alpha(0.7, "half_mse", "sum", 255.83, 20) == pytest.approx(
        0.7 * 255.83 / 0.5, rel=1e-12)
    assert translate(2.0, "seed", "sklearn", n_train=12.5, n_features=4) == pytest.approx(
        2.0 * 12.5 / 4, rel=1e-12)
    for bad in (0, -1.0, 0.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="n_train"):
            sklearn_alpha(1.0, "mse", "mean", bad, 3)


def test_sample_weights_give_sklearn_ridge_at_alpha_of_their_sum():
    """The weighted-mean objective c_L sum_i s_i r_i^2 / sum(s) + c_P lam ||w||^2 has
    scikit-learn Ridge(alpha = sklearn_alpha(lam, .., n_train=sum(s)))'s minimiser."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(4)
    n, d, lam = 40, 6, 0.3
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 0.3 + 0.5 * rng.normal(size=n)
    sw = rng.uniform(0.2, 1.7, size=n)  # sum 37.7.., not an integer
    for loss, pen in (("mse", "mean"), ("half_mse", "sum")):
        c_l = 1.0 if loss == "mse" else 0.5
        c_p = 1.0 / d if pen == "mean" else 1.0
        root = np.sqrt(c_l * sw / sw.sum())[:, None]
        A = np.vstack([np.hstack([X, np.ones((n, 1))]) * root,
                       np.hstack([np.sqrt(c_p * lam) * np.eye(d), np.zeros((d, 1))])])
        theta, *_ = np.linalg.lstsq(A, np.concatenate([y * root[:, 0], np.zeros(d)]), rcond=None)
        m = Ridge(alpha=sklearn_alpha(lam, loss, pen, sw.sum(), d)).fit(X, y, sample_weight=sw)
        np.testing.assert_allclose(m.coef_, theta[:d], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(m.intercept_, theta[d], rtol=1e-9)


def _glmnet_gaussian_ridge(X, y, lam):
    """glmnet's gaussian family at alpha = 0, standardize = FALSE, as its Fortran (elnet)
    does it: y scaled by s_y = its population standard deviation, the user's lambda divided
    by s_y, the documented objective 1/(2n) RSS + lam/2 ||w||^2 solved on y / s_y, and the
    coefficients scaled back by s_y (Friedman, Hastie & Tibshirani 2010, Sec. 2.5)."""
    n, d = X.shape
    s_y = y.std()  # ddof = 0: the population standard deviation
    lam_inner = lam / s_y
    A = np.vstack([np.hstack([X, np.ones((n, 1))]) / np.sqrt(2 * n),
                   np.hstack([np.sqrt(lam_inner / 2) * np.eye(d), np.zeros((d, 1))])])
    theta, *_ = np.linalg.lstsq(A, np.concatenate([y / s_y / np.sqrt(2 * n), np.zeros(d)]),
                                rcond=None)
    return theta * s_y


@pytest.mark.parametrize("s", [1.0, 77.0])
def test_glmnet_y_scale_matches_glmnets_own_standardisation(s):
    """A lam from real glmnet means alpha = n lam / s_y; without y_scale, the documented
    objective (alpha = n lam), exact only when s_y = 1."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(5)
    n, d, lam = 50, 8, 0.4
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 3.0 + 0.5 * rng.normal(size=n)
    y = (y - y.mean()) / y.std() * s + y.mean()  # s_y = s exactly
    ref = _glmnet_gaussian_ridge(X, y, lam)
    alpha = translate(lam, "glmnet", "sklearn", n_train=n, n_features=d, y_scale=y.std())
    assert alpha == pytest.approx(n * lam / s, rel=1e-12)
    m = Ridge(alpha=alpha).fit(X, y)
    np.testing.assert_allclose(m.coef_, ref[:d], rtol=1e-8, atol=1e-10 * s)
    documented = translate(lam, "glmnet", "sklearn", n_train=n, n_features=d)
    assert documented == pytest.approx(n * lam, rel=1e-12)  # the default is unchanged
    off = Ridge(alpha=documented).fit(X, y).coef_
    err = np.abs(off - ref[:d]).max() / np.abs(ref[:d]).max()
    assert err < 1e-8 if s == 1.0 else err > 1e-3
    # round trip through glmnet, and y_scale touches only the glmnet convention
    back = translate(alpha, "sklearn", "glmnet", n_train=n, n_features=d, y_scale=y.std())
    assert back == pytest.approx(lam, rel=1e-12)
    assert translate(lam, "seed", "sklearn", n_train=n, n_features=d, y_scale=s) == \
        pytest.approx(translate(lam, "seed", "sklearn", n_train=n, n_features=d), rel=1e-15)
    rows = {r["name"]: r for r in conventions_table(lam, "glmnet", n, d, y_scale=y.std())}
    assert rows["sklearn"]["value"] == pytest.approx(alpha, rel=1e-12)
    assert "y_scale" in rows["glmnet"]["objective"]  # the caveat wherever glmnet is named


@pytest.mark.parametrize("bad", [0.0, -2.0, float("nan"), float("inf")])
def test_bad_y_scale_is_named(bad):
    with pytest.raises(ValueError, match="y_scale"):
        translate(1.0, "glmnet", "sklearn", n_train=10, n_features=3, y_scale=bad)


def test_table_has_every_row():
    rows = conventions_table(3.0, "seed", 10, 200)
    names = [r["name"] for r in rows]
    assert names == list(NAMES) + list(DECOUPLED_NAMES)
    by = {r["name"]: r for r in rows}
    assert by["sklearn"]["value"] == pytest.approx(0.15)
    assert by["adamw"]["value"] is None and by["adamw"]["note"] == "no exact equivalent"


names = st.sampled_from(NAMES)
sizes = st.integers(1, 300)


@settings(max_examples=200, deadline=None)
@given(v=st.floats(1e-6, 1e6), a=names, b=names, n=sizes, d=sizes)
def test_round_trip(v, a, b, n, d):
    there = translate(v, a, b, n_train=n, n_features=d)
    assert translate(there, b, a, n_train=n, n_features=d) == pytest.approx(v, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(v=st.floats(1e-3, 1e2), a=names, b=names, shape=st.sampled_from([(30, 5), (6, 15)]),
       seed=st.integers(0, 2**16))
def test_same_minimiser(v, a, b, shape, seed):
    rng = np.random.default_rng(seed)
    n, d = shape
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 0.3 + 0.5 * rng.normal(size=n)
    u = translate(v, a, b, n_train=n, n_features=d)
    np.testing.assert_allclose(_minimiser(X, y, u, b), _minimiser(X, y, v, a),
                               rtol=1e-7, atol=1e-9)


def _cli_app():
    try:
        from wdlab.cli import app
    except ImportError as exc:  # other commands of the CLI may be mid-edit
        pytest.skip(f"wdlab.cli does not import: {exc}")
    return app


def test_cli_translate_prints_every_convention():
    from typer.testing import CliRunner

    res = CliRunner().invoke(_cli_app(), ["translate", "3", "--from", "seed", "--to", "sklearn",
                                          "--n-train", "10", "--n-features", "200"],
                             terminal_width=200)
    assert res.exit_code == 0, res.output
    for name in NAMES + DECOUPLED_NAMES:
        assert name in res.output
    assert "3 (seed) = 0.15 (sklearn)" in res.output
    assert "no exact equivalent" in res.output


@pytest.mark.parametrize("args", [["--from", "ridge"], ["--from", "seed", "--to", "adamw"]])
def test_cli_translate_bad_names_are_one_line_errors(args):
    from typer.testing import CliRunner

    res = CliRunner().invoke(_cli_app(), ["translate", "3", *args, "--n-train", "10",
                                          "--n-features", "200"])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    assert res.output.strip().startswith("error:") and res.output.strip().count("\n") == 0


def test_every_name_list_is_the_one_registry():
    """config's and spec's pydantic types, engine.ENGINES and the pairing rule of a config,
    a sweep grid and the engine all come from ``conventions``: a new entry reaches them all."""
    import typing

    import wdlab.engine as engine
    from wdlab import conventions
    from wdlab.config import models as config
    from wdlab.config import schema as spec
    from wdlab.config.models import ConfigError, TrainConfig, validate

    assert typing.get_args(config.Optimizer) == tuple(conventions.OPTIMIZERS) == config.OPTIMIZERS
    assert typing.get_args(config.Regularizer) == conventions.REGULARIZERS
    assert typing.get_args(config.Loss) == conventions.LOSSES
    assert typing.get_args(config.DType) == tuple(conventions.DTYPES)
    assert typing.get_args(spec.Engine) == conventions.ENGINES == engine.ENGINES
    assert engine.OPTIMIZERS is conventions.OPTIMIZERS and engine.PAIRS is conventions.PAIRS
    assert config.ADAMW_REGULARIZERS == conventions.DECOUPLED
    valid = []
    for opt in conventions.OPTIMIZERS:
        for reg in conventions.REGULARIZERS:
            try:
                validate(TrainConfig, {"optimizer": opt, "regularizer": reg}, "train")
                valid.append((opt, reg))
            except ConfigError as exc:
                assert str(exc).startswith(f"train: optimizer {opt!r} decays decoupled")
                with pytest.raises(ValueError, match=f"^regularizer: {opt!r} pairs only with"):
                    engine.check_pair(opt, reg)
    assert tuple(valid) == conventions.PAIRS
    grid = spec.SweepTrain(optimizer=tuple(conventions.OPTIMIZERS),
                           regularizer=conventions.REGULARIZERS)
    assert tuple(grid.pair_list()) == conventions.PAIRS
