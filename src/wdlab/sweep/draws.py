"""A sweep's data, regenerated from seeds on separate streams (``wdlab.data.synthetic.stream_seed``).

Training and test samples of draw ``seed`` are ``make_linear(seed)``'s, the same numbers as
``wdlab reproduce``; holdout validation samples come from the ``val<seed>`` stream and the
split/fold assignment from the ``<method><seed>`` stream, so neither changes the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wdlab.config.schema import SweepSpec
from wdlab.config.values import split_count
from wdlab.data.synthetic import Dataset, make_linear, stream_seed


def draw_unit(spec: SweepSpec, n_train: int, noise: float, seed: int) -> Dataset:
    """One data draw (``make_linear``): the same numbers as ``wdlab reproduce`` for that seed."""
    d = spec.data
    return make_linear(d.n_features, n_train, d.n_test, w_star=d.w_star, bias=d.bias,
                       noise=noise, seed=seed)


def holdout_draw(spec: SweepSpec, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_val`` fresh validation samples of draw ``seed`` from the same distribution.

    Drawn on the ``val`` stream, so the training and test samples are those of
    ``make_linear(seed)`` unchanged. Returns X (n_val, D) and y (n_val,), float64.
    """
    d = spec.data
    gen = torch.Generator().manual_seed(stream_seed(seed, f"val{spec.validation.seed}"))
    X = torch.randn(spec.n_val, d.n_features, generator=gen, dtype=torch.float64)  # (N_v, D)
    eps = torch.randn(spec.n_val, generator=gen, dtype=torch.float64) * noise  # (N_v,)
    y = X @ torch.full((d.n_features,), float(d.w_star), dtype=torch.float64) + d.bias + eps
    return X, y


def fold_ids(spec: SweepSpec, n_train: int, seed: int) -> torch.Tensor:
    """(n_train,) fold index of each training sample: seeded, balanced (kfold) or 0/1 (split).

    split: 1 marks the ``split_count`` held-out samples; kfold: sample perm[i] is in fold i % k.
    """
    v = spec.validation
    gen = torch.Generator().manual_seed(stream_seed(seed, f"{v.method}{v.seed}"))
    perm = torch.randperm(n_train, generator=gen)  # (N,)
    ids = torch.empty(n_train, dtype=torch.int64)
    if v.method == "split":
        held = split_count(n_train, v.fraction)
        ids[perm] = (torch.arange(n_train) < held).to(torch.int64)
    else:
        ids[perm] = torch.arange(n_train) % v.folds
    return ids


@dataclass(frozen=True)
class ModelDraw:
    """One training set of a unit with its eval sets (a draw of the engine's G axis)."""

    X: torch.Tensor  # (N, D) training design (all n_train samples)
    y: torch.Tensor  # (N,)
    w: torch.Tensor  # (N,) 1 = trains, 0 = held out
    X_test: torch.Tensor
    y_test: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    w_val: torch.Tensor  # (N_v,) 1 = scored as validation


def unit_draws(spec: SweepSpec, n_train: int, noise: float, seed: int) -> list[ModelDraw]:
    """The models one data unit trains: 1 (holdout, split) or folds + 1 (kfold, full last)."""
    ds = draw_unit(spec, n_train, noise, seed)
    ones = torch.ones(n_train, dtype=torch.float64)
    method = spec.validation.method
    if method == "holdout":
        Xv, yv = holdout_draw(spec, noise, seed)
        return [ModelDraw(ds.X_train, ds.y_train, ones, ds.X_test, ds.y_test, Xv, yv,
                          torch.ones(len(yv), dtype=torch.float64))]
    ids = fold_ids(spec, n_train, seed)
    if method == "split":
        held = (ids == 1).to(torch.float64)
        return [ModelDraw(ds.X_train, ds.y_train, 1 - held, ds.X_test, ds.y_test, ds.X_train,
                          ds.y_train, held)]
    out = []
    for f in range(spec.validation.folds):
        held = (ids == f).to(torch.float64)
        out.append(ModelDraw(ds.X_train, ds.y_train, 1 - held, ds.X_test, ds.y_test,
                             ds.X_train, ds.y_train, held))
    out.append(ModelDraw(ds.X_train, ds.y_train, ones, ds.X_test, ds.y_test, ds.X_train,
                         ds.y_train, torch.zeros(n_train, dtype=torch.float64)))
    return out
