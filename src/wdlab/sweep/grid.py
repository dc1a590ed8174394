"""The data types of a sweep's plan and chunks, below every module that builds or runs them.

``SweepPlan`` (groups x chunks), ``Group``, ``Chunk`` and the per-draw grid (``per_draw``,
``split_even``) are built by ``wdlab.sweep.plan`` (linear) and ``wdlab.sweep.nets_chunk``
(nets); ``ChunkResult`` is what ``run_chunk`` returns for either family; ``cached_plan``
builds a spec's plan once per process. Nothing here imports a builder, so the linear and
nets modules import this one and not each other (no import circle).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from wdlab.config.load import spec_from_json
from wdlab.config.schema import SweepSpec


@dataclass(frozen=True)
class Group:
    """Configurations sharing the engine's static structure (one ``EngineSpec``)."""

    index: int
    optimizer: str
    regularizer: str
    loss: str
    epochs: int
    batch_size: int  # 0 = full batch
    schedule: str
    offset: int  # first config_id
    n_units: int  # data units (draws) G
    per_draw: dict[str, np.ndarray]  # (M,) each: lr, momentum, beta1, beta2, init_scale, init_seed, lam
    static: dict | None = None  # nets: unit, hidden, activation, bias, decay (sweep.nets_chunk)

    @property
    def n_per_unit(self) -> int:
        return len(self.per_draw["lam"])

    @property
    def n_configs(self) -> int:
        return self.n_units * self.n_per_unit


@dataclass(frozen=True)
class Chunk:
    """Units [u0, u1) x per-draw configurations [m0, m1) of one group: one engine call."""

    index: int
    group: int
    u0: int
    u1: int
    m0: int
    m1: int
    first_id: int  # ids [first_id, first_id + n_configs) when the chunk spans whole units

    @property
    def n_configs(self) -> int:
        return (self.u1 - self.u0) * (self.m1 - self.m0)


@dataclass(frozen=True)
class SweepPlan:
    """The expanded grid and its chunks; a pure function of the (resolved) spec."""

    units: list[tuple[int, float, int]]  # (n_train, noise, data_seed) per data unit
    groups: list[Group]
    chunks: list[Chunk]
    chunk_size: int  # models per engine call, at most
    models_per_config: int  # folds + 1 for kfold, else 1

    @property
    def n_configs(self) -> int:
        return sum(g.n_configs for g in self.groups)

    def to_json(self) -> dict[str, Any]:
        return {
            "n_configs": self.n_configs,
            "n_chunks": len(self.chunks),
            "chunk_size": self.chunk_size,
            "models_per_config": self.models_per_config,
            "n_units": len(self.units),
            "groups": [{"index": g.index, "optimizer": g.optimizer, "regularizer": g.regularizer,
                        "loss": g.loss, "epochs": g.epochs, "batch_size": g.batch_size,
                        "schedule": g.schedule, "offset": g.offset, "n_units": g.n_units,
                        "n_per_unit": g.n_per_unit,
                        **({"static": g.static} if g.static is not None else {})}
                       for g in self.groups],
            "chunks": [[c.group, c.u0, c.u1, c.m0, c.m1, c.first_id, c.n_configs]
                       for c in self.chunks],
        }

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]


def per_draw(spec: SweepSpec, optimizer: str) -> dict[str, np.ndarray]:
    """The per-draw axes of one group, lam innermost: lr, m1, beta2, init_scale, init_seed, lam."""
    t = spec.train
    sgd = optimizer == "sgd"
    m1 = t.momentum if sgd else t.beta1
    b2 = (np.nan,) if sgd else t.beta2
    seeds = (-1,) if t.init_seed == "data" else t.init_seed
    axes = [np.asarray(a, dtype=np.float64) for a in (t.lr, m1, b2, t.init_scale)]
    axes += [np.asarray(seeds, dtype=np.int64), np.asarray(t.lam, dtype=np.float64)]
    mesh = np.meshgrid(*[np.arange(len(a)) for a in axes], indexing="ij")
    idx = [m.reshape(-1) for m in mesh]
    lr, m1v, b2v, scale, iseed, lam = (a[i] for a, i in zip(axes, idx, strict=True))
    return {"lr": lr, "momentum": m1v if sgd else np.zeros_like(lr),
            "beta1": np.full_like(lr, np.nan) if sgd else m1v, "beta2": b2v,
            "m1": m1v, "init_scale": scale, "init_seed": iseed, "lam": lam}


def split_even(n: int, size: int) -> list[tuple[int, int]]:
    """[0, n) cut into ceil(n / size) near-equal consecutive ranges."""
    parts = max(1, math.ceil(n / max(size, 1)))
    step = math.ceil(n / parts)
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def n_per_draw(train) -> int:
    """Per-draw configurations of one group of a sweep's ``train`` section, summed over its
    optimizer pairs: lr x init_scale x init seeds x lam x (momentum, or beta1 x beta2)."""
    t = train
    seeds = 1 if t.init_seed == "data" else len(t.init_seed)
    shared = len(t.lr) * len(t.init_scale) * seeds * len(t.lam)
    return shared * sum(len(t.momentum) if o == "sgd" else len(t.beta1) * len(t.beta2)
                        for o, _ in t.pair_list())


def group_columns(group: Group, per: dict[str, np.ndarray], K: int) -> dict[str, Any]:
    """The configs-table columns a group and its per-draw axes give (``per``: (K,) each, the
    chunk's configurations): optimizer .. schedule, as ``wdlab.experiment.hyper_table`` orders."""
    return {
        "optimizer": group.optimizer, "regularizer": group.regularizer, "loss": group.loss,
        "lam": per["lam"], "lr": per["lr"], "momentum": per["momentum"],
        "beta1": per["beta1"], "beta2": per["beta2"],
        "epochs": np.full(K, group.epochs, dtype=np.int64),
        "batch_size": np.full(K, group.batch_size, dtype=np.int64),
        "schedule": group.schedule,
    }

@dataclass
class ChunkResult:
    """A chunk's tables: configs (one row per configuration) and curves (long form)."""

    index: int
    configs: pd.DataFrame
    curves: pd.DataFrame
    seconds: float = 0.0


def as_spec(spec: SweepSpec | dict | str) -> SweepSpec:
    """A ``SweepSpec`` from itself, its ``model_dump()`` or its JSON."""
    return spec if isinstance(spec, SweepSpec) else spec_from_json(spec)


_PLANS: dict[str, SweepPlan] = {}


def cached_plan(spec: SweepSpec, build: Callable[[SweepSpec], SweepPlan]) -> SweepPlan:
    """``build(spec)``, kept for the last spec seen (a process runs the chunks of one plan)."""
    key = spec.model_dump_json()
    hit = _PLANS.get(key)
    if hit is None:
        hit = build(spec)
        _PLANS.clear()
        _PLANS[key] = hit
    return hit
