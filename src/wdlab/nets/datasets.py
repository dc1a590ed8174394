"""Datasets for the nets engine: scikit-learn's tables, 2-D toys, modular arithmetic, user tables.

Every loader returns a frozen ``NetDataset`` of float64 inputs (int64 labels for
classification), drawn from ``torch.Generator``/``random_state`` seeds on named streams
(``wdlab.data.synthetic.stream_seed(seed, "data")`` for samples, ``"split"`` for the train/test split),
never the global RNG, so the same parameters give bitwise-identical tensors.

* ``digits``, ``iris``, ``wine``, ``breast_cancer``: scikit-learn's bundled tables (offline),
  a stratified split, then standardisation x <- (x - mean_train) / std_train with the
  training rows' mean and population std only (a constant training column is centred, not
  scaled, as ``StandardScaler`` does).
* ``moons``, ``circles`` (scikit-learn's generators), ``xor``, ``spirals``: 2-D, seeded; the
  n_train + n_test samples are drawn as one block and split, as ``wdlab.data`` does.
* ``modular(p, op, train_fraction)``: every pair (a, b) in Z_p x Z_p (b != 0 for "/"), label
  (a op b) mod p, input one_hot(a) ++ one_hot(b) in R^{2p}; a seeded random split.
* ``table(path, target, ...)``: a CSV/Parquet file through ``wdlab.data.tables``'s reader.

``DATASETS`` maps a name to its loader and ``load(name, **params)`` calls it with validated
parameters, so a sweep spec can name a dataset; ``load(d.name, **d.params)`` rebuilds ``d``.

This module is the data layer: scikit-learn's loaders and ``userdata`` read files, so it is
not one of the pure math modules (tests/test_purity.py lists it as IO). Heavy imports happen
inside the loaders.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from wdlab.data.synthetic import stream_seed

TASKS = ("classification", "regression")
OPS = ("+", "-", "*", "/")


@dataclass(frozen=True)
class NetDataset:
    """One train/test draw of a dataset, ready for ``wdlab.nets.train``."""

    X_train: torch.Tensor  # (N, D) float64
    y_train: torch.Tensor  # (N,) int64 labels in [0, n_classes), or float64 targets
    X_test: torch.Tensor  # (N_te, D) float64
    y_test: torch.Tensor  # (N_te,)
    n_classes: int  # number of classes; 0 for regression
    task: str  # "classification" or "regression"
    feature_names: tuple[str, ...]  # D names, in column order
    name: str  # registry name: load(name, **params) rebuilds this dataset
    params: dict[str, Any] = field(default_factory=dict)  # every loader argument, defaults filled
    classes: tuple = ()  # original value of each label 0..n_classes-1 (user tables); () = range

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.X_test.shape[0])

    @property
    def out_features(self) -> int:
        """Output width of a model for this task: n_classes logits, or 1 regression output."""
        return self.n_classes if self.task == "classification" else 1


# ------------------------------------------------------------------------------ validation


def _check_int(value, field: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{field}: must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_float(value, field: str, low: float, high: float | None = None, *,
                 open_low: bool = False, open_high: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: must be a number, got {value!r}") from None
    too_low = v <= low if open_low else v < low
    too_high = high is not None and (v >= high if open_high else v > high)
    if not math.isfinite(v) or too_low or too_high:
        lo, hi = ("(" if open_low else "["), (")" if open_high else "]")
        rng = f"{lo}{low:g}, {high:g}{hi}" if high is not None else f">{'' if open_low else '='} {low:g}"
        raise ValueError(f"{field}: must lie in {rng}, got {value!r}")
    return v


def _check_seed(seed) -> int:
    return _check_int(seed, "seed", 0)


# ------------------------------------------------------------------------------ splitting


def _n_test(n: int, test_size: float) -> int:
    """ceil(test_size * n), at least 1 and leaving at least 1 training row (sklearn's rule)."""
    n_test = int(math.ceil(test_size * n))
    if n_test < 1 or n - n_test < 1:
        raise ValueError(f"test_size: {test_size!r} of {n} rows leaves an empty train or test set")
    return n_test


def stratified_split(y: torch.Tensor, test_size: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test row indices with each class's share of the test set ~ its share of y.

    The test set has n_test = ceil(test_size * n) rows; class c gets floor(n_c n_test / n) of
    them plus one for the largest remainders (ties to the lower class), at most n_c - 1, so
    every class keeps a training row. Rows of each class are drawn by ``torch.randperm``
    from the ``"split"`` stream of ``seed``. Both index sets are returned sorted.

    Args:
        y: (N,) int64 labels.
    Returns:
        (train_idx, test_idx), int64.
    """
    n = int(y.shape[0])
    n_test = _n_test(n, test_size)
    classes, counts = torch.unique(y, return_counts=True)
    if int(counts.min()) < 2:
        c = int(classes[int(torch.argmin(counts))])
        raise ValueError(f"y: class {c} has a single row; a stratified split needs >= 2 per class")
    exact = counts.double() * n_test / n  # (C,)
    take = exact.floor().long()
    rest = n_test - int(take.sum())
    order = sorted(range(len(classes)), key=lambda j: (-(exact[j] - take[j]).item(), j))
    for j in order[:rest]:
        take[j] += 1
    take = torch.minimum(take, counts - 1)
    gen = torch.Generator().manual_seed(stream_seed(seed, "split"))
    test = []
    for j, c in enumerate(classes.tolist()):  # loop over classes, not configurations
        rows = torch.nonzero(y == c).reshape(-1)
        test.append(rows[torch.randperm(len(rows), generator=gen)[: int(take[j])]])
    test_idx = torch.sort(torch.cat(test)).values
    mask = torch.ones(n, dtype=torch.bool)
    mask[test_idx] = False
    return torch.nonzero(mask).reshape(-1), test_idx


def random_split(n: int, test_size: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test row indices of a seeded random split (``"split"`` stream), sorted."""
    n_test = _n_test(n, test_size)
    gen = torch.Generator().manual_seed(stream_seed(seed, "split"))
    perm = torch.randperm(n, generator=gen)
    return torch.sort(perm[n_test:]).values, torch.sort(perm[:n_test]).values


def standardize_by_train(X_train: torch.Tensor, X_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x - mean) / std with the training rows' mean and population std (std 0 -> 1)."""
    mean = X_train.mean(0)  # (D,)
    std = X_train.std(0, correction=0)  # (D,)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return (X_train - mean) / std, (X_test - mean) / std


def _labels(y: torch.Tensor) -> tuple[torch.Tensor, int]:
    classes, inverse = torch.unique(y, return_inverse=True)
    return inverse.to(torch.int64), int(len(classes))


# ------------------------------------------------------------------------------ scikit-learn


def _sklearn_table(name: str, loader: str, test_size: float, seed: int,
                   standardise: bool) -> NetDataset:
    import sklearn.datasets

    test_size = _check_float(test_size, "test_size", 0.0, 1.0, open_low=True)
    seed = _check_seed(seed)
    bunch = getattr(sklearn.datasets, loader)()
    X = torch.as_tensor(np.asarray(bunch.data, dtype=np.float64))  # (N, D)
    y, n_classes = _labels(torch.as_tensor(np.asarray(bunch.target)))
    names = getattr(bunch, "feature_names", None)
    names = tuple(str(f) for f in names) if names is not None else tuple(
        f"x{j}" for j in range(X.shape[1]))
    tr, te = stratified_split(y, test_size, seed)
    X_tr, X_te = X[tr], X[te]
    if standardise:
        X_tr, X_te = standardize_by_train(X_tr, X_te)
    params = dict(test_size=test_size, seed=seed, standardize=bool(standardise))
    return NetDataset(X_tr, y[tr], X_te, y[te], n_classes, "classification", names, name, params)


def digits(test_size: float = 0.25, seed: int = 0, standardize: bool = True) -> NetDataset:
    """scikit-learn's 8x8 digits: 1797 images, 64 pixel features, 10 classes.

    Args:
        test_size: fraction of rows in the stratified test set, in (0, 1).
        seed: split seed (``"split"`` stream).
        standardize: scale features by the training rows' mean and std.
    """
    return _sklearn_table("digits", "load_digits", test_size, seed, standardize)


def iris(test_size: float = 0.25, seed: int = 0, standardize: bool = True) -> NetDataset:
    """scikit-learn's iris: 150 rows, 4 features, 3 classes (arguments as ``digits``)."""
    return _sklearn_table("iris", "load_iris", test_size, seed, standardize)


def wine(test_size: float = 0.25, seed: int = 0, standardize: bool = True) -> NetDataset:
    """scikit-learn's wine: 178 rows, 13 features, 3 classes (arguments as ``digits``)."""
    return _sklearn_table("wine", "load_wine", test_size, seed, standardize)


def breast_cancer(test_size: float = 0.25, seed: int = 0, standardize: bool = True) -> NetDataset:
    """scikit-learn's breast cancer: 569 rows, 30 features, 2 classes (arguments as ``digits``)."""
    return _sklearn_table("breast_cancer", "load_breast_cancer", test_size, seed, standardize)


# ------------------------------------------------------------------------------ 2-D toys


def _toy(name: str, X: torch.Tensor, y: torch.Tensor, n_train: int, params: dict) -> NetDataset:
    return NetDataset(X[:n_train], y[:n_train], X[n_train:], y[n_train:], int(y.max()) + 1,
                      "classification", ("x1", "x2"), name, params)


def _toy_sizes(n_train, n_test, noise, seed) -> tuple[int, int, float, int]:
    return (_check_int(n_train, "n_train", 1), _check_int(n_test, "n_test", 1),
            _check_float(noise, "noise", 0.0), _check_seed(seed))


def _sk_random_state(seed: int) -> int:
    return stream_seed(seed, "data") % (2**32)


def moons(n_train: int = 200, n_test: int = 200, noise: float = 0.1, seed: int = 0) -> NetDataset:
    """Two interleaving half circles (``sklearn.datasets.make_moons``), 2 classes.

    The n_train + n_test points are one shuffled ``make_moons`` draw (``random_state`` from the
    ``"data"`` stream); the first n_train are the training set.

    Args:
        noise: std of the Gaussian noise added to the points.
    """
    from sklearn.datasets import make_moons

    n_train, n_test, noise, seed = _toy_sizes(n_train, n_test, noise, seed)
    X, y = make_moons(n_train + n_test, noise=noise, random_state=_sk_random_state(seed))
    params = dict(n_train=n_train, n_test=n_test, noise=noise, seed=seed)
    return _toy("moons", torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y).long(),
                n_train, params)


def circles(n_train: int = 200, n_test: int = 200, noise: float = 0.1, factor: float = 0.5,
            seed: int = 0) -> NetDataset:
    """A circle inside another (``sklearn.datasets.make_circles``), 2 classes.

    Args:
        noise: std of the Gaussian noise added to the points.
        factor: inner radius / outer radius, in (0, 1).
    """
    from sklearn.datasets import make_circles

    n_train, n_test, noise, seed = _toy_sizes(n_train, n_test, noise, seed)
    factor = _check_float(factor, "factor", 0.0, 1.0, open_low=True)
    X, y = make_circles(n_train + n_test, noise=noise, factor=factor,
                        random_state=_sk_random_state(seed))
    params = dict(n_train=n_train, n_test=n_test, noise=noise, factor=factor, seed=seed)
    return _toy("circles", torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y).long(),
                n_train, params)


def xor(n_train: int = 200, n_test: int = 200, noise: float = 0.1, seed: int = 0) -> NetDataset:
    """XOR of the quadrants: u ~ U[-1, 1]^2, label 1[u1 u2 < 0], x = u + noise * N(0, I).

    The label is fixed before the noise is added, so noise blurs the quadrant boundaries.
    """
    n_train, n_test, noise, seed = _toy_sizes(n_train, n_test, noise, seed)
    gen = torch.Generator().manual_seed(stream_seed(seed, "data"))
    n = n_train + n_test
    u = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 2 - 1  # (N, 2)
    y = (u[:, 0] * u[:, 1] < 0).long()  # (N,)
    X = u + noise * torch.randn(n, 2, generator=gen, dtype=torch.float64)  # (N, 2)
    params = dict(n_train=n_train, n_test=n_test, noise=noise, seed=seed)
    return _toy("xor", X, y, n_train, params)


def spirals(n_train: int = 200, n_test: int = 200, noise: float = 0.05, arms: int = 2,
            turns: float = 1.5, seed: int = 0) -> NetDataset:
    """Interleaved spiral arms, one class per arm.

    Point i has class c_i = i mod arms and t_i ~ U(0, 1]; it lies at radius t_i and angle
    2 pi (turns t_i + c_i / arms), plus noise * N(0, I).

    Args:
        arms: number of arms (= classes), >= 2.
        turns: revolutions of each arm, > 0.
    """
    n_train, n_test, noise, seed = _toy_sizes(n_train, n_test, noise, seed)
    arms = _check_int(arms, "arms", 2)
    turns = _check_float(turns, "turns", 0.0, open_low=True)
    gen = torch.Generator().manual_seed(stream_seed(seed, "data"))
    n = n_train + n_test
    c = torch.arange(n) % arms  # (N,)
    c = c[torch.randperm(n, generator=gen)]
    t = 1.0 - torch.rand(n, generator=gen, dtype=torch.float64)  # (N,) in (0, 1]
    angle = 2 * math.pi * (turns * t + c.double() / arms)  # (N,)
    X = torch.stack([t * torch.cos(angle), t * torch.sin(angle)], 1)  # (N, 2)
    X = X + noise * torch.randn(n, 2, generator=gen, dtype=torch.float64)
    params = dict(n_train=n_train, n_test=n_test, noise=noise, arms=arms, turns=turns, seed=seed)
    return NetDataset(X[:n_train], c[:n_train], X[n_train:], c[n_train:], arms,
                      "classification", ("x1", "x2"), "spirals", params)


# ------------------------------------------------------------------------------ modular


def _is_prime(p: int) -> bool:
    return p >= 2 and all(p % q for q in range(2, int(math.isqrt(p)) + 1))


def modular(p: int = 97, op: str = "+", train_fraction: float = 0.5, seed: int = 0) -> NetDataset:
    """Modular arithmetic (the grokking task): label (a op b) mod p, input one_hot(a) ++ one_hot(b).

    Every pair (a, b) in {0..p-1}^2 appears once (b != 0 for "/", where a / b = a b^(p-2) mod p
    by Fermat, so p must be prime); round(train_fraction * n_pairs) random pairs (``"split"``
    stream) form the training set, the rest the test set, both in (a, b) order.

    Args:
        p: the modulus, >= 2 (prime for "/"); also the number of classes.
        op: one of "+", "-", "*", "/".
        train_fraction: share of the pairs used for training, in (0, 1).
    """
    p = _check_int(p, "p", 2)
    if op not in OPS:
        raise ValueError(f"op: unknown operation {op!r}; expected one of {OPS}")
    if op == "/" and not _is_prime(p):
        raise ValueError(f"p: division mod {p} needs a prime p (b has no inverse otherwise)")
    train_fraction = _check_float(train_fraction, "train_fraction", 0.0, 1.0, open_low=True)
    seed = _check_seed(seed)
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)  # (N,)
    if op == "/":
        keep = b != 0
        a, b = a[keep], b[keep]
    if op == "+":
        y = (a + b) % p
    elif op == "-":
        y = (a - b) % p
    elif op == "*":
        y = (a * b) % p
    else:
        inv = torch.tensor([0] + [pow(int(v), p - 2, p) for v in range(1, p)])  # (p,)
        y = (a * inv[b]) % p
    n = int(a.shape[0])
    n_train = int(round(train_fraction * n))
    if not 1 <= n_train <= n - 1:
        raise ValueError(f"train_fraction: {train_fraction!r} of {n} pairs leaves an empty "
                         "train or test set")
    X = torch.cat([torch.nn.functional.one_hot(a, p), torch.nn.functional.one_hot(b, p)],
                  1).double()  # (N, 2p)
    tr, te = random_split(n, (n - n_train) / n, seed)
    names = tuple(f"a={i}" for i in range(p)) + tuple(f"b={i}" for i in range(p))
    params = dict(p=p, op=op, train_fraction=train_fraction, seed=seed)
    return NetDataset(X[tr], y[tr].long(), X[te], y[te].long(), p, "classification", names,
                      "modular", params)


# ------------------------------------------------------------------------------ user tables


def table(path: str, target: str, features: list[str] | None = None,
          task: str = "classification", test_size: float = 0.25, seed: int = 0,
          standardize: bool = True, dropna: bool = False) -> NetDataset:
    """A user's CSV/Parquet table, read and checked by ``wdlab.data.tables.load``.

    Classification targets must hold integer values; the distinct values, sorted, become
    labels 0..C-1 (``classes`` keeps them) and the split is stratified. Regression
    targets are kept as float64 and the split is random. Features are standardised with the
    training rows' statistics.

    Args:
        path: the file.
        target: the target column.
        features: feature columns; None = every other numeric column.
        task: "classification" or "regression".
        test_size: fraction of rows in the test set, in (0, 1).
        seed: split seed (``"split"`` stream).
        standardize: scale features by the training rows' mean and std.
        dropna: drop incomplete rows instead of failing.
    """
    from wdlab.data import tables as userdata

    if task not in TASKS:
        raise ValueError(f"task: unknown task {task!r}; expected one of {TASKS}")
    test_size = _check_float(test_size, "test_size", 0.0, 1.0, open_low=True)
    seed = _check_seed(seed)
    tab = userdata.load(path, target, features, dropna=dropna)
    X = torch.as_tensor(tab.X, dtype=torch.float64)  # (N, D)
    params = dict(path=str(path), target=target, features=None if features is None else list(features),
                  task=task, test_size=test_size, seed=seed, standardize=bool(standardize),
                  dropna=bool(dropna))
    if task == "classification":
        bad = np.flatnonzero(tab.y != np.round(tab.y))
        if len(bad):
            raise ValueError(f"target: column {target!r} has the non-integer value "
                             f"{float(tab.y[bad[0]])!r} at row {int(bad[0]) + 1}; class labels must be "
                             "integers (or pass task='regression')")
        classes, inverse = np.unique(tab.y.astype(np.int64), return_inverse=True)
        y = torch.as_tensor(inverse.reshape(-1), dtype=torch.int64)
        n_classes = int(len(classes))
        classes = tuple(int(c) for c in classes)
        if n_classes < 2:
            raise ValueError(f"target: column {target!r} has a single class")
        tr, te = stratified_split(y, test_size, seed)
    else:
        y = torch.as_tensor(tab.y, dtype=torch.float64)
        n_classes = 0
        classes = ()
        tr, te = random_split(len(y), test_size, seed)
    X_tr, X_te = X[tr], X[te]
    if standardize:
        X_tr, X_te = standardize_by_train(X_tr, X_te)
    return NetDataset(X_tr, y[tr], X_te, y[te], n_classes, task, tuple(tab.features), "table",
                      params, classes)


# ------------------------------------------------------------------------------ registry

#: name -> loader; every loader returns a ``NetDataset`` whose ``params`` rebuild it.
DATASETS: dict[str, Callable[..., NetDataset]] = {
    "digits": digits,
    "iris": iris,
    "wine": wine,
    "breast_cancer": breast_cancer,
    "moons": moons,
    "circles": circles,
    "xor": xor,
    "spirals": spirals,
    "modular": modular,
    "table": table,
}


def load(name: str, **params) -> NetDataset:
    """``DATASETS[name](**params)``; an unknown name or parameter is a one-line ValueError."""
    if name not in DATASETS:
        raise ValueError(f"dataset: unknown name {name!r}; expected one of {tuple(DATASETS)}")
    loader = DATASETS[name]
    accepted = tuple(inspect.signature(loader).parameters)
    unknown = [k for k in params if k not in accepted]
    if unknown:
        raise ValueError(f"dataset {name!r}: unknown parameter {unknown[0]!r}; "
                         f"accepted: {accepted}")
    if name == "table":
        missing = [k for k in ("path", "target") if k not in params]
        if missing:
            raise ValueError(f"dataset 'table': missing parameter {missing[0]!r}")
    return loader(**params)
