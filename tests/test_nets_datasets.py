"""wdlab.nets.datasets: splits, standardisation and generators checked against scikit-learn and
against the definitions (arithmetic mod p, quadrants, spiral angles); seeds; one-line errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sklearn.datasets
import torch
from sklearn.preprocessing import StandardScaler

from wdlab.nets import datasets as D

TABLES = {"digits": (sklearn.datasets.load_digits, 10), "iris": (sklearn.datasets.load_iris, 3),
          "wine": (sklearn.datasets.load_wine, 3),
          "breast_cancer": (sklearn.datasets.load_breast_cancer, 2)}


def _sorted_rows(X: np.ndarray) -> np.ndarray:
    return X[np.lexsort(X.T[::-1])]


@pytest.mark.parametrize("name", list(TABLES))
def test_sklearn_table_split_is_a_stratified_partition(name):
    loader, n_classes = TABLES[name]
    bunch = loader()
    raw = D.load(name, test_size=0.3, seed=3, standardize=False)
    assert raw.n_classes == n_classes and raw.task == "classification" and raw.name == name
    assert raw.X_train.dtype == torch.float64 and raw.y_train.dtype == torch.int64
    assert raw.feature_names == tuple(bunch.feature_names)
    n = len(bunch.target)
    assert raw.n_test == int(np.ceil(0.3 * n)) and raw.n_train + raw.n_test == n
    # train and test rows (with their labels) are exactly the table's rows
    both = np.vstack([np.column_stack([raw.X_train.numpy(), raw.y_train.numpy()]),
                      np.column_stack([raw.X_test.numpy(), raw.y_test.numpy()])])
    np.testing.assert_array_equal(_sorted_rows(both),
                                  _sorted_rows(np.column_stack([bunch.data, bunch.target])))
    # each class's share of the test set is its share of the data, to within one row
    counts = np.bincount(bunch.target)
    test_counts = np.bincount(raw.y_test.numpy(), minlength=n_classes)
    assert np.all(np.abs(test_counts - counts * raw.n_test / n) < 1.0 + 1e-12)


@pytest.mark.parametrize("name", ["digits", "wine"])
def test_standardised_with_training_statistics_only(name):
    raw = D.load(name, seed=1, standardize=False)
    std = D.load(name, seed=1)
    scaler = StandardScaler().fit(raw.X_train.numpy())  # the oracle: train rows only
    np.testing.assert_allclose(std.X_train.numpy(), scaler.transform(raw.X_train.numpy()),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std.X_test.numpy(), scaler.transform(raw.X_test.numpy()),
                               rtol=1e-12, atol=1e-12)
    assert torch.equal(std.y_train, raw.y_train) and torch.equal(std.y_test, raw.y_test)
    if name == "digits":  # some pixels are constant in training: centred, not divided by 0
        assert torch.isfinite(std.X_train).all() and torch.isfinite(std.X_test).all()


@pytest.mark.parametrize("name", list(D.DATASETS))
def test_seeded_reproducible_and_params_rebuild(name, tmp_path):
    params = _table_params(tmp_path) if name == "table" else (
        dict(p=11) if name == "modular" else {})
    a, b = D.load(name, **params, seed=5), D.load(name, **params, seed=5)
    for f in ("X_train", "y_train", "X_test", "y_test"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    c = D.load(a.name, **a.params)
    assert torch.equal(c.X_train, a.X_train) and torch.equal(c.y_test, a.y_test)
    other = D.load(name, **params, seed=6)
    assert not torch.equal(other.X_train, a.X_train)
    assert a.X_train.shape[1] == a.n_features == len(a.feature_names)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "x"


def test_moons_and_circles_are_sklearn_draws():
    d = D.moons(n_train=30, n_test=20, noise=0.2, seed=4)
    X, y = sklearn.datasets.make_moons(50, noise=0.2, random_state=D._sk_random_state(4))
    np.testing.assert_array_equal(torch.cat([d.X_train, d.X_test]).numpy(), X)
    np.testing.assert_array_equal(torch.cat([d.y_train, d.y_test]).numpy(), y)
    c = D.circles(n_train=30, n_test=20, noise=0.0, factor=0.3, seed=4)
    r = torch.cat([c.X_train, c.X_test]).norm(dim=1)
    y = torch.cat([c.y_train, c.y_test])
    torch.testing.assert_close(r[y == 1], torch.full_like(r[y == 1], 0.3))
    torch.testing.assert_close(r[y == 0], torch.ones_like(r[y == 0]))
    assert d.n_classes == c.n_classes == 2 and d.feature_names == ("x1", "x2")


def test_xor_labels_are_quadrants_without_noise():
    d = D.xor(n_train=300, n_test=100, noise=0.0, seed=2)
    X, y = torch.cat([d.X_train, d.X_test]), torch.cat([d.y_train, d.y_test])
    assert torch.equal(y, ((X[:, 0] > 0) != (X[:, 1] > 0)).long())
    assert X.abs().max() <= 1 and 0.3 < y.double().mean() < 0.7


@pytest.mark.parametrize("arms", [2, 3])
def test_spiral_points_lie_on_their_arm(arms):
    d = D.spirals(n_train=90, n_test=30, noise=0.0, arms=arms, turns=1.25, seed=0)
    X, y = torch.cat([d.X_train, d.X_test]), torch.cat([d.y_train, d.y_test])
    assert d.n_classes == arms and torch.bincount(y).tolist() == [120 // arms] * arms
    t = X.norm(dim=1)
    assert t.max() <= 1 + 1e-12 and t.min() > 0
    # angle = 2 pi (turns t + c / arms) (mod 2 pi)
    phase = torch.atan2(X[:, 1], X[:, 0]) / (2 * torch.pi) - 1.25 * t - y.double() / arms
    torch.testing.assert_close(torch.remainder(phase + 0.5, 1.0) - 0.5, torch.zeros_like(t),
                               atol=1e-9, rtol=0)


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_modular_labels_are_the_arithmetic(op):
    p = 7
    d = D.modular(p=p, op=op, train_fraction=0.4, seed=1)
    X, y = torch.cat([d.X_train, d.X_test]), torch.cat([d.y_train, d.y_test])
    n = p * (p - 1) if op == "/" else p * p
    assert d.n_train == round(0.4 * n) and d.n_train + d.n_test == n
    assert X.shape[1] == 2 * p == d.n_features and d.n_classes == p
    assert torch.equal(X.sum(1), torch.full((n,), 2.0, dtype=torch.float64))  # two one-hots
    a, b = X[:, :p].argmax(1).tolist(), X[:, p:].argmax(1).tolist()
    assert len(set(zip(a, b, strict=True))) == n  # every pair once
    for ai, bi, yi in zip(a, b, y.tolist(), strict=True):
        if op == "/":
            assert bi != 0 and (yi * bi) % p == ai
        else:
            assert yi == {"+": ai + bi, "-": ai - bi, "*": ai * bi}[op] % p


def _table_params(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "t.csv"
    x1, x2 = rng.normal(size=40), rng.normal(size=40) * 5 + 2
    label = np.where(x1 > 0, 7, 3)
    label[:5] = 5
    rows = ["x1,x2,label,note"] + [f"{a},{b},{c},n{i}" for i, (a, b, c) in
                                   enumerate(zip(x1, x2, label, strict=True))]
    path.write_text("\n".join(rows) + "\n")
    return dict(path=str(path), target="label")


def test_user_table_classification_and_regression(tmp_path):
    params = _table_params(tmp_path)
    d = D.load("table", **params, test_size=0.25)
    assert d.classes == (3, 5, 7) and d.n_classes == 3 and d.feature_names == ("x1", "x2")
    assert d.n_train + d.n_test == 40 and d.y_train.dtype == torch.int64
    torch.testing.assert_close(d.X_train.mean(0), torch.zeros(2, dtype=torch.float64))
    r = D.load("table", **params, task="regression", features=["x1"])
    assert r.task == "regression" and r.n_classes == 0 and r.out_features == 1
    assert r.y_train.dtype == torch.float64 and set(r.y_train.tolist()) <= {3.0, 5.0, 7.0}


def test_user_table_errors_name_the_column(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("x,y\n1,0.5\n2,1\n3,0\n4,1\n")
    with pytest.raises(ValueError, match=r"target: column 'y' has the non-integer value 0.5 at row 1"):
        D.table(str(path), "y")
    with pytest.raises(ValueError, match="no column 'z'"):
        D.table(str(path), "z")


@pytest.mark.parametrize(("name", "params", "match"), [
    ("digits", dict(test_size=1.5), "test_size"),
    ("iris", dict(seed=-1), "seed"),
    ("moons", dict(n_train=0), "n_train"),
    ("xor", dict(noise=-0.1), "noise"),
    ("circles", dict(factor=1.0), "factor"),
    ("spirals", dict(arms=1), "arms"),
    ("modular", dict(op="^"), "op: unknown operation"),
    ("modular", dict(p=8, op="/"), "p: division mod 8 needs a prime"),
    ("modular", dict(p=3, train_fraction=0.01), "train_fraction"),
    ("moons", dict(foo=1), "unknown parameter 'foo'"),
    ("mnist", {}, "dataset: unknown name 'mnist'"),
    ("table", dict(target="y"), "missing parameter 'path'"),
    ("table", dict(path="x.csv", target="y", task="ranking"), "task"),
])
def test_bad_parameters_are_one_line_errors(name, params, match):
    with pytest.raises(ValueError, match=match) as info:
        D.load(name, **params)
    assert "\n" not in str(info.value)


def test_stratified_split_keeps_a_training_row_per_class():
    y = torch.tensor([0, 0, 1, 1, 1, 1, 1, 1, 2, 2])
    tr, te = D.stratified_split(y, 0.5, seed=0)
    assert len(te) == 5 and set(y[tr].tolist()) == {0, 1, 2}
    assert sorted(tr.tolist() + te.tolist()) == list(range(10))
    with pytest.raises(ValueError, match="class 2 has a single row"):
        D.stratified_split(torch.tensor([0, 0, 1, 1, 2]), 0.4, seed=0)
