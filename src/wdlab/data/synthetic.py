"""Synthetic linear data and the batched ``Problem`` the engine trains on.

Model: y = X w* + b* + eps with X ~ N(0, I_d) and eps ~ N(0, sigma^2), drawn from a
``torch.Generator`` seeded per draw (never the global RNG). Samples are drawn as one
(n_train + n_test, d) block and split, like the seed article.

This module is pure: it imports torch only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch

#: The seed article's data: 200 features, 10 + 10 samples, w* = 0.01, b* = 0.5, sigma = 0.01.
SEED_DATA = dict(n_features=200, n_train=10, n_test=10, w_star=0.01, bias=0.5, noise=0.01)
#: d2l's "Weight Decay" chapter: 200 features, 20 train, 100 test, b* = 0.05.
D2L_DATA = dict(n_features=200, n_train=20, n_test=100, w_star=0.01, bias=0.05, noise=0.01)


def stream_seed(seed: int, stream: str) -> int:
    """A 63-bit generator seed for ``seed`` on a named stream ("data", "init", ...).

    Different streams never share a generator state, so a data seed of 0 and an init seed
    of 0 do not draw the same numbers (which would correlate w0 with the first sample).
    """
    digest = hashlib.sha256(f"wdlab:{stream}:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass(frozen=True)
class Dataset:
    """One draw of a linear regression problem (float64, CPU)."""

    X_train: torch.Tensor  # (N, D)
    y_train: torch.Tensor  # (N,)
    X_test: torch.Tensor  # (N_te, D)
    y_test: torch.Tensor  # (N_te,)
    w_star: torch.Tensor | None = None  # (D,) true weights, when synthetic
    b_star: float | None = None
    noise: float | None = None

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]


def make_linear(
    n_features: int,
    n_train: int,
    n_test: int,
    *,
    w_star: float = 0.01,
    bias: float = 0.5,
    noise: float = 0.01,
    seed: int = 0,
) -> Dataset:
    """Draw y = X w* + b* + eps with w* = w_star * 1, X ~ N(0, I), eps ~ N(0, noise^2).

    Returns float64 tensors; the engine casts to its dtype, so float32 and float64 runs see
    the same draw.
    """
    gen = torch.Generator().manual_seed(stream_seed(seed, "data"))
    n = n_train + n_test
    X = torch.randn(n, n_features, generator=gen, dtype=torch.float64)  # (N, D)
    eps = torch.randn(n, generator=gen, dtype=torch.float64) * noise  # (N,)
    w = torch.full((n_features,), float(w_star), dtype=torch.float64)  # (D,)
    y = X @ w + bias + eps  # (N,)
    return Dataset(X[:n_train], y[:n_train], X[n_train:], y[n_train:], w, float(bias), float(noise))


def init_weights(
    init_seeds: torch.Tensor | list[int],
    n_features: int,
    init_scale: float = 1.0,
    *,
    fit_intercept: bool = True,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Initial parameters theta0 = [w0, b0] with w0 ~ N(0, init_scale^2 I), b0 = 0.

    Each configuration's w0 depends on its own seed only (one generator per distinct seed),
    so a configuration starts identically in any chunk.

    Returns:
        (K, D + fit_intercept) tensor.
    """
    seeds = torch.as_tensor(init_seeds, dtype=torch.int64).reshape(-1)
    uniq, inverse = torch.unique(seeds, return_inverse=True)
    draws = torch.empty(len(uniq), n_features, dtype=torch.float64)
    for i, s in enumerate(uniq.tolist()):  # loop over distinct seeds, not configurations
        draws[i] = torch.randn(n_features, generator=torch.Generator().manual_seed(stream_seed(s, "init")),
                               dtype=torch.float64)
    w0 = (draws * init_scale)[inverse]  # (K, D)
    if fit_intercept:
        w0 = torch.cat([w0, torch.zeros(len(seeds), 1, dtype=torch.float64)], dim=1)
    return w0.to(dtype)


@dataclass(frozen=True)
class EvalSet:
    """A held-out set scored each recorded epoch, shared by the configs of each draw."""

    X: torch.Tensor  # (G, N_e, D1) with the ones column when fitting an intercept
    y: torch.Tensor  # (G, N_e)
    weight: torch.Tensor  # (G, N_e), rows sum to 1 (mask / count)


@dataclass(frozen=True)
class Problem:
    """G data draws, stacked, ready for the engine.

    Configurations are laid out draw-major: config k trains on draw k // (K // G).
    Sample weights are masks or sample weights; rows of ``weight`` are normalised to sum 1,
    so the data loss is a weighted mean of squared residuals. Zero-weight samples are
    padding (different n_train per draw) or held-out folds.
    """

    X: torch.Tensor  # (G, N, D1) training design, with ones column if fit_intercept
    y: torch.Tensor  # (G, N)
    weight: torch.Tensor  # (G, N) raw non-negative sample weights (0 = absent)
    evals: dict[str, EvalSet] = field(default_factory=dict)
    fit_intercept: bool = True

    @property
    def n_draws(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[2] - int(self.fit_intercept)

    def draws(self, start: int, stop: int) -> Problem:
        """The sub-problem of draws ``start:stop`` (views, no copy)."""
        evals = {k: EvalSet(e.X[start:stop], e.y[start:stop], e.weight[start:stop])
                 for k, e in self.evals.items()}
        return Problem(self.X[start:stop], self.y[start:stop], self.weight[start:stop], evals,
                       self.fit_intercept)

    def to(self, dtype: torch.dtype, device: torch.device | str) -> Problem:
        cast = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
        evals = {k: EvalSet(cast(e.X), cast(e.y), cast(e.weight)) for k, e in self.evals.items()}
        return Problem(cast(self.X), cast(self.y), cast(self.weight), evals, self.fit_intercept)


def _design(X: torch.Tensor, fit_intercept: bool) -> torch.Tensor:
    if not fit_intercept:
        return X
    return torch.cat([X, torch.ones(*X.shape[:-1], 1, dtype=X.dtype)], dim=-1)


def _normalise(w: torch.Tensor) -> torch.Tensor:
    tot = w.sum(-1, keepdim=True)
    return torch.where(tot > 0, w / tot.clamp_min(torch.finfo(w.dtype).tiny), w)


def stack_problem(
    train: list[tuple[torch.Tensor, torch.Tensor]]
    | list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    evals: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] | None = None,
    *,
    fit_intercept: bool = True,
) -> Problem:
    """Stack per-draw (X, y[, sample_weight]) tables into one padded ``Problem``.

    Draws may have different numbers of samples; shorter ones are zero-padded with weight 0.
    """

    def pad(tables, with_weight):
        n = max(t[0].shape[0] for t in tables)
        d = tables[0][0].shape[1]
        G = len(tables)
        X = torch.zeros(G, n, d, dtype=torch.float64)
        y = torch.zeros(G, n, dtype=torch.float64)
        w = torch.zeros(G, n, dtype=torch.float64)
        for g, t in enumerate(tables):  # loop over draws (data tables), not configurations
            m = t[0].shape[0]
            X[g, :m] = t[0].to(torch.float64)
            y[g, :m] = t[1].to(torch.float64).reshape(-1)
            w[g, :m] = t[2].to(torch.float64) if with_weight and len(t) > 2 else 1.0
        return _design(X, fit_intercept), y, w

    X, y, w = pad(train, True)
    ev = {}
    for name, tables in (evals or {}).items():
        Xe, ye, we = pad(tables, True)
        ev[name] = EvalSet(Xe, ye, _normalise(we))
    return Problem(X, y, w, ev, fit_intercept)


def problem_from_datasets(datasets: list[Dataset], *, fit_intercept: bool = True) -> Problem:
    """A ``Problem`` with a ``test`` eval set from synthetic draws."""
    return stack_problem(
        [(d.X_train, d.y_train) for d in datasets],
        {"test": [(d.X_test, d.y_test) for d in datasets]},
        fit_intercept=fit_intercept,
    )
