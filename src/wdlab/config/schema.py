"""The sweep schema: a validated, frozen description of a grid of configurations.

Any list-valued field is an axis of the grid; the grid is their Cartesian product::

    name = "seed-lam"
    preset = "seed"                      # defaults for data and train: "seed" or "d2l"

    [data]
    n_train = [10, 20]                   # axis
    noise = 0.01                         # scalar or list (axis)
    seeds = 20                           # 20 data draws: seeds 0..19 (or a list of seeds)

    [train]
    lam = "1e-3:1e2:50"                  # 50 log-spaced values; or [0, 0.1, 3]; or "0,1e-3:1e2:50"
    lr = [0.01, 0.05]
    optimizer = ["sgd", "adam"]          # x regularizer, invalid pairs skipped; or pairs = [...]
    regularizer = "mean"                 # the lam convention (mean / half_sum / sum / decays)
    init_seed = "data"                   # w0 seed = the data seed; or a list (an axis)

    [validation]
    method = "holdout"                   # holdout (fresh n_val samples), split, or kfold

    [record]
    log_points = 50                      # or every = 1

    [execution]
    chunk_size = 16384                   # models per engine call; default sized to memory
    backend = "local"                    # or "ray": one Ray task per chunk (address = "auto")

``lam`` is in the regularizer's own convention (see ``wdlab.conventions``); for the optimizer
decays (``weight_decay``, ``decoupled``, ``independent``) it is the optimizer's weight_decay.
The value grammar is ``wdlab.config.values``, the nets sections ``wdlab.config.nets``, and
files, presets and flags reach this schema through ``wdlab.config.load``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import BeforeValidator, Field, field_validator, model_validator

from wdlab.config.models import (
    ADAMW_REGULARIZERS,
    MAX_AXIS,
    MAX_FEATURES,
    MAX_SAMPLES,
    ConfigError,
    DType,
    Loss,
    Optimizer,
    Regularizer,
    Schedule,
    _Frozen,
    seed_axis,
)
from wdlab.config.nets import SweepDataset, SweepModel, SweepSelection, check_model, is_nets
from wdlab.config.presets import SPEC_PRESETS
from wdlab.config.values import (
    Epochs,
    Lam,
    PosFloat,
    Rate,
    Samples,
    Scale,
    Seed,
    Signed,
    UnitFloat,
    axis_values,
    batch_values,
    no_bool,
    split_count,
)
from wdlab.conventions import ENGINES, OPTIMIZERS

Engine = Literal[ENGINES]  # auto, eager, compiled, triton, native (wdlab.conventions)
Method = Literal["holdout", "split", "kfold"]
#: The presets a spec's ``preset`` key (and ``wdlab sweep --preset``) accepts: the registry's
#: experiments (``wdlab.config.presets``).
SpecPreset = Literal[SPEC_PRESETS]


class SweepData(_Frozen):
    """Synthetic draws y = X w* + b* + eps (see ``wdlab.data.synthetic.make_linear``)."""

    n_features: Annotated[int, BeforeValidator(no_bool), Field(ge=1, le=MAX_FEATURES)] = 200  # d
    n_train: tuple[Samples, ...] = (10,)  # training samples per draw (axis)
    n_test: Samples = 10  # test samples per draw
    w_star: Signed = 0.01  # every coordinate of the true weights (finite, |w*| <= 1e10)
    bias: Signed = 0.5  # the true intercept (finite, |b*| <= 1e10)
    noise: tuple[Scale, ...] = (0.01,)  # label noise standard deviation (axis)
    seeds: tuple[Seed, ...] = (0,)  # data draws: an int N means seeds 0..N-1, or a list

    @field_validator("n_train", "noise", mode="before")
    @classmethod
    def _axis(cls, v):
        return axis_values(v)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, v):
        return seed_axis(v, axis_values)


class SweepTrain(_Frozen):
    """Training axes (any list is an axis) and fixed settings shared by every configuration."""

    optimizer: tuple[Optimizer, ...] = ("adam",)  # axis, crossed with regularizer
    regularizer: tuple[Regularizer, ...] = ("mean",)  # axis: the lam convention or decay kind
    pairs: tuple[str, ...] | None = None  # explicit "optimizer+regularizer" pairs instead
    loss: tuple[Loss, ...] = ("mse",)  # axis: mse = mean(r^2), half_mse = 1/2 mean(r^2)
    lam: tuple[Lam, ...] = (0.0, 3.0)  # axis: lam in the regularizer's convention, <= 1e15
    lr: tuple[Rate, ...] = (0.05,)  # axis: base learning rate
    momentum: tuple[UnitFloat, ...] = (0.0,)  # axis: SGD momentum (sgd only)
    beta1: tuple[UnitFloat, ...] = (0.9,)  # axis: Adam beta1 (adam/adamw only)
    beta2: tuple[UnitFloat, ...] = (0.999,)  # axis: Adam beta2 (adam/adamw only)
    eps: PosFloat = 1e-8  # Adam epsilon
    epochs: tuple[Epochs, ...] = (100,)  # axis: passes over the training set (<= 1e7)
    batch_size: tuple[Annotated[int, BeforeValidator(no_bool), Field(ge=0, le=MAX_SAMPLES)],
                      ...] = (0,)  # axis: 0 (or "full") = full batch
    batch_seed: Seed = 0  # minibatch order seed
    schedule: tuple[Schedule, ...] = ("constant",)  # axis: constant or cosine
    init_scale: tuple[Scale, ...] = (1.0,)  # axis: w0 ~ N(0, init_scale^2)
    init_seed: Literal["data"] | tuple[Seed, ...] = "data"  # "data" = the draw's seed; list = axis
    fit_intercept: bool = True  # learn an unpenalised bias
    decay_bias: bool = False  # also apply the regularizer to the bias
    dtype: DType = "float32"  # float32 or float64
    device: str = "cpu"  # cpu, cuda, cuda:N

    @field_validator("lam", "lr", "momentum", "beta1", "beta2", "epochs", "init_scale",
                     mode="before")
    @classmethod
    def _axis(cls, v):
        return axis_values(v)

    @field_validator("optimizer", "regularizer", "loss", "schedule", mode="before")
    @classmethod
    def _names(cls, v):
        return axis_values(v, numeric=False)

    @field_validator("lam", mode="after")
    @classmethod
    def _sorted(cls, v):
        return tuple(sorted(v))

    @field_validator("pairs", mode="before")
    @classmethod
    def _pairs(cls, v):
        if v is None:
            return v
        items = list(v) if isinstance(v, (list, tuple)) else [v]  # pydantic names a non-str
        return axis_values(items, numeric=False)

    @field_validator("batch_size", mode="before")
    @classmethod
    def _batch(cls, v):
        return batch_values(v)

    @field_validator("init_seed", mode="before")
    @classmethod
    def _init_seed(cls, v):
        return v if v == "data" else axis_values(v)

    @field_validator("device")
    @classmethod
    def _device(cls, v):
        if not (v == "cpu" or v == "cuda" or (v.startswith("cuda:") and v[5:].isdigit())):
            raise ValueError("must be 'cpu' or 'cuda[:N]'")
        return v

    @model_validator(mode="after")
    def _check(self) -> SweepTrain:
        if self.decay_bias and not self.fit_intercept:
            raise ValueError("decay_bias needs fit_intercept")
        return self

    def pair_list(self) -> list[tuple[str, str]]:
        """The (optimizer, regularizer) pairs of the grid, in order."""
        if self.pairs is not None:
            return [tuple(p.split("+", 1)) for p in self.pairs]  # type: ignore[misc]
        return [(o, r) for o in self.optimizer for r in self.regularizer if r in OPTIMIZERS[o]]


class SweepValidation(_Frozen):
    """How the validation error that selects lam is measured (seeded).

    holdout: ``n_val`` fresh samples per draw from the same distribution (own seed stream);
    split: a seeded ``fraction`` of the n_train samples is held out, the model trains on the rest;
    kfold: ``folds`` seeded folds of the training samples, one model per fold plus a full refit
    (whose test error is reported); the validation error is the mean over folds.
    """

    method: Method = "holdout"
    n_val: Samples | None = None  # holdout samples per draw; default n_test
    fraction: Annotated[float, BeforeValidator(no_bool), Field(gt=0.0, lt=1.0)] = 0.2  # split
    folds: Annotated[int, BeforeValidator(no_bool), Field(ge=2)] = 5  # kfold
    seed: Seed = 0  # seed of the split / fold assignment


#: Runs up to this many epochs record every epoch by default; longer ones ~DEFAULT_LOG_POINTS
#: log-spaced epochs (issue 20: a 2,000 x 1,000 sweep's curves were 70 MB).
EVERY_EPOCH_UP_TO = 200
DEFAULT_LOG_POINTS = 100


class SweepRecord(_Frozen):
    """Which epochs' metrics are kept in curves: every k-th, or N log-spaced (plus 0 and last)."""

    every: Epochs | None = None  # record epochs 0, k, 2k, ..., and the last
    log_points: Annotated[int, BeforeValidator(no_bool), Field(ge=2, le=MAX_AXIS)] | None = None  # ~N log-spaced epochs
    dist_to_ridge: bool = False  # also record the distance to the closed-form ridge solution
    dist_to_limit: bool = False  # decoupled Adam(W): the distance to its l-inf limit (wdlab.exact.linf)

    def epochs(self, total: int) -> list[int]:
        """The recorded epochs for a run of ``total`` epochs (always 0 and ``total``).

        Default (neither ``every`` nor ``log_points``): every epoch up to
        ``EVERY_EPOCH_UP_TO`` epochs, else ~``DEFAULT_LOG_POINTS`` log-spaced ones
        (``every = 1`` records every epoch of any run)."""
        log_points = self.log_points
        if log_points is None and self.every is None and total > EVERY_EPOCH_UP_TO:
            log_points = DEFAULT_LOG_POINTS
        if log_points is not None:
            pts = np.geomspace(1, total, log_points) if total > 1 else np.ones(1)
            return sorted({0, total, *(int(round(p)) for p in pts)})
        k = self.every or 1
        return sorted({*range(0, total + 1, k), total})

    def n_epochs(self, total: int) -> int:
        """``len(self.epochs(total))``, counted without building the list."""
        if self.log_points is not None or (self.every is None and total > EVERY_EPOCH_UP_TO):
            return len(self.epochs(total))  # log-spaced: at most log_points + 2
        k = self.every or 1
        return total // k + 1 + (total % k != 0)


class SweepExecution(_Frozen):
    """How chunks are sized and run."""

    chunk_size: Annotated[int, BeforeValidator(no_bool), Field(ge=1, le=2**31)] | None = None  # models per engine call; None = sized to memory
    memory_gb: Annotated[float, BeforeValidator(no_bool), Field(gt=0, le=1e6, allow_inf_nan=False)] | None = None  # per chunk; None = auto
    engine: Engine = "auto"  # engine variant passed through to wdlab.engine.train
    backend: Literal["local", "ray"] = "local"  # where chunks run: this process or Ray tasks
    address: str | None = Field(None, min_length=1)  # ray: "auto", HOST:PORT, ray://HOST:PORT


class SweepSpec(_Frozen):
    """A whole sweep: data, axes, validation, recording, execution."""

    name: str = Field("sweep", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    preset: SpecPreset | None = None  # defaults for data and train (wdlab.config.presets)
    data: SweepData = SweepData()
    train: SweepTrain = SweepTrain()
    validation: SweepValidation = SweepValidation()
    record: SweepRecord = SweepRecord()
    execution: SweepExecution = SweepExecution()
    model: SweepModel = SweepModel()  # family: linear (default) or mlp (wdlab.config.nets)
    dataset: SweepDataset | None = None  # family = "mlp": the [data] table's dataset
    selection: SweepSelection = SweepSelection()  # rank by validation loss or accuracy

    @property
    def n_val(self) -> int:
        return self.validation.n_val or self.data.n_test



def check_spec(spec: SweepSpec) -> None:
    """Cross-field checks that name the key; raises ``ConfigError``."""
    from wdlab.optim.registry import check_pair

    t, d, v = spec.train, spec.data, spec.validation
    check_model(spec)
    if t.pairs is not None:
        for i, p in enumerate(t.pairs):
            if "+" not in p:
                raise ConfigError(f"train.pairs.{i}: expected 'optimizer+regularizer', got {p!r}")
            opt, reg = p.split("+", 1)
            try:
                check_pair(opt, reg)
            except ValueError as exc:
                raise ConfigError(f"train.pairs.{i}: {exc} (got {p!r})") from None
    if not t.pair_list():
        raise ConfigError(
            f"train.regularizer: no valid optimizer x regularizer pair in {t.optimizer} x "
            f"{t.regularizer}; adamw pairs only with {ADAMW_REGULARIZERS}")
    if spec.execution.address is not None and spec.execution.backend != "ray":
        raise ConfigError("execution.address: only with backend = \"ray\"")
    if spec.record.every is not None and spec.record.log_points is not None:
        raise ConfigError("record.log_points: give every or log_points, not both")
    if is_nets(spec):
        return
    n_min = min(d.n_train)
    if v.method == "kfold" and v.folds > n_min:
        raise ConfigError(f"validation.folds: must be <= the smallest n_train ({n_min}), got {v.folds}")
    if v.method == "split":
        for n in d.n_train:
            held = split_count(n, v.fraction)
            if not 1 <= held < n:
                raise ConfigError(f"validation.fraction: holds out {held} of n_train={n} samples;"
                                  f" need at least 1 held out and 1 left (got {v.fraction})")
