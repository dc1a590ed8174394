"""The nets family's schema: the sweep spec's ``[model]``, the nets ``[data]`` and ``[selection]``.

It sits below ``wdlab.config.schema`` (which holds these sections) and imports only
``models`` and ``values``: no circle back into the schema.

``family = "linear"`` (the default) leaves every linear sweep exactly as it was: the
``[model]`` table may then hold ``family`` only. ``family = "mlp"`` trains small MLPs with
``wdlab.nets.train`` on a dataset of ``wdlab.nets.datasets``::

    [model]
    family = "mlp"
    hidden = [64]                 # one architecture; "64,64" too; an axis: [[32], [64, 64]]
    activation = "relu"           # axis: relu, gelu, tanh, quadratic, identity
    bias = true                   # axis: every Linear has a bias
    decay = "matrices"            # axis: decayed tensors: "matrices" (ndim >= 2) or "all"
    loss = "cross_entropy"        # axis: cross_entropy, mse, half_mse
    schedule = "constant"         # axis: constant, cosine, warmup_cosine
    warmup = 0                    # warmup_cosine's warmup steps
    label_smoothing = 0.0         # cross_entropy only

    [data]                        # for family = "mlp": a dataset and its loader's parameters
    dataset = "modular"           # a name of wdlab.nets.datasets.DATASETS (or "table")
    p = 23                        # loader parameters; a list is an axis (not "features")
    train_fraction = [0.3, 0.5]
    seeds = 3                     # dataset draws: the loader's ``seed`` (0, 1, 2); or a list

    [selection]
    metric = "loss"               # rank by validation loss (lower); "accuracy" (higher)

``[train]`` keeps its meaning (optimizer/regularizer pairs, lam, lr, momentum, betas,
epochs, batch_size (0 = full), batch_seed, init_scale, init_seed, dtype, device); its
``loss``/``schedule``/``fit_intercept``/``decay_bias`` are the linear family's and are
refused for nets: ``model.loss``, ``model.schedule``, ``model.bias``, ``model.decay`` say
it. Validation defaults to ``split`` for nets (holdout draws fresh synthetic samples, which
a fixed dataset cannot): a seeded ``fraction`` of the dataset's training rows is held out,
or ``kfold``. Every error is one line naming the key.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from wdlab.config.models import MAX_AXIS, ConfigError, _Frozen, seed_axis
from wdlab.config.values import Seed, no_bool, split_count
from wdlab.conventions import NET_ENGINES

Family = Literal["linear", "mlp"]
Activation = Literal["relu", "gelu", "tanh", "quadratic", "identity"]
NetLoss = Literal["cross_entropy", "mse", "half_mse"]
NetSchedule = Literal["constant", "cosine", "warmup_cosine"]
Decay = Literal["matrices", "all"]
SelectionMetric = Literal["loss", "accuracy"]
#: widest hidden layer and deepest network a spec may ask for
MAX_WIDTH = 1 << 16
MAX_DEPTH = 64

Width = Annotated[int, BeforeValidator(no_bool), Field(ge=1, le=MAX_WIDTH)]


def _axis(v: Any) -> tuple:
    """A scalar -> 1-tuple; a list -> its distinct values in order."""
    items = list(v) if isinstance(v, (list, tuple)) else [v]
    if not items:
        raise ValueError("empty list: give at least one value")
    if len(items) > MAX_AXIS:
        raise ValueError(f"{len(items):,} values on one axis; at most {MAX_AXIS:,}")
    out = []
    for item in items:
        if isinstance(item, str) and "," in item:
            out.extend(s.strip() for s in item.split(",") if s.strip())
        elif item not in out:
            out.append(item)
    return tuple(dict.fromkeys(out))


def _architecture(v: Any) -> tuple:
    """One architecture: [64, 64], "64,64", 64, "" or [] (no hidden layer)."""
    if isinstance(v, str):
        parts = [s.strip() for s in v.split(",") if s.strip()]
        try:
            return tuple(int(s) for s in parts)
        except ValueError:
            raise ValueError("expected comma-separated integer widths") from None
    if isinstance(v, (list, tuple)):
        return tuple(v)
    return (v,)


def parse_hidden(v: Any) -> tuple:
    """``hidden`` -> a tuple of architectures: [64] / "64,64" is one, [[64], "64,64"] two."""
    if isinstance(v, (list, tuple)) and v and all(isinstance(a, (list, tuple, str)) for a in v):
        archs = [_architecture(a) for a in v]
    else:
        archs = [_architecture(v)]
    if len(archs) > MAX_AXIS:
        raise ValueError(f"{len(archs):,} architectures; at most {MAX_AXIS:,}")
    return tuple(dict.fromkeys(archs))


class SweepModel(_Frozen):
    """Which model family the sweep trains, and for ``mlp`` the network axes."""

    family: Family = "linear"  # linear (wdlab.engine) or mlp (wdlab.nets)
    hidden: tuple[Annotated[tuple[Width, ...], Field(max_length=MAX_DEPTH)], ...] = ((64,),)  # axis
    activation: tuple[Activation, ...] = ("relu",)  # axis
    bias: tuple[bool, ...] = (True,)  # axis: every Linear has a bias
    decay: tuple[Decay, ...] = ("matrices",)  # axis: decayed tensors (matrices = ndim >= 2)
    loss: tuple[NetLoss, ...] = ("cross_entropy",)  # axis: the data loss
    schedule: tuple[NetSchedule, ...] = ("constant",)  # axis: lr multiplier
    warmup: Annotated[int, BeforeValidator(no_bool), Field(ge=0, le=10**9)] = 0  # steps
    label_smoothing: Annotated[float, BeforeValidator(no_bool), Field(ge=0.0, lt=1.0)] = 0.0

    @field_validator("hidden", mode="before")
    @classmethod
    def _hidden(cls, v):
        return parse_hidden(v)

    @field_validator("activation", "bias", "decay", "loss", "schedule", mode="before")
    @classmethod
    def _axes(cls, v):
        return _axis(v)


class SweepDataset(_Frozen):
    """A nets dataset: ``wdlab.nets.datasets.load(name, **params, seed=s)`` for s in seeds."""

    name: str = Field(min_length=1, max_length=100)  # a DATASETS name
    seeds: tuple[Seed, ...] = (0,)  # the loader's seed: one draw each
    params: dict[str, Any] = {}  # the loader's other parameters; a list is an axis

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, v):
        return seed_axis(v, _axis)

    def param_axes(self) -> dict[str, tuple]:
        """Each parameter's values (a list is an axis; ``features`` is one list value)."""
        out = {}
        for k, v in self.params.items():
            if k == "features" or not isinstance(v, (list, tuple)):
                out[k] = (v,)
            else:
                out[k] = _axis(v)
        return out

    def combos(self) -> list[dict[str, Any]]:
        """Every combination of the parameter axes, the first key outermost."""
        combos: list[dict[str, Any]] = [{}]
        for k, vals in self.param_axes().items():
            combos = [{**c, k: v} for c in combos for v in vals]
        return combos


class SweepSelection(_Frozen):
    """How the selection ranks lam: validation loss (lower is better) or accuracy (higher)."""

    metric: SelectionMetric = "loss"


def is_nets(spec) -> bool:
    """Does this spec train networks (``model.family`` other than linear)?"""
    return spec.model.family != "linear"


def route_family(raw: dict) -> dict:
    """For ``family = "mlp"``: the ``[data]`` table is the dataset's (``dataset`` + loader
    parameters + ``seeds``), stored as ``dataset``; validation defaults to ``split``."""
    model = raw.get("model")
    if not isinstance(model, dict) or model.get("family", "linear") == "linear":
        return raw
    raw = dict(raw)
    data = raw.pop("data", None)
    if data is not None and "dataset" in raw:
        raise ConfigError("data: give the dataset in [data] or as a dump's dataset, not both")
    if data is not None:
        if not isinstance(data, dict):
            raise ConfigError(f"data: expected a table of keys, got {type(data).__name__}")
        if "dataset" not in data:
            raise ConfigError('data.dataset: family = "mlp" needs a dataset name (e.g. '
                              'dataset = "digits")')
        params = {k: v for k, v in data.items() if k not in ("dataset", "seeds", "seed")}
        if "seed" in data and "seeds" in data:
            raise ConfigError("data.seed: give seeds or seed, not both")
        seeds = data.get("seeds", [data["seed"]] if "seed" in data else (0,))
        raw["dataset"] = {"name": data["dataset"], "seeds": seeds, "params": params}
    elif "dataset" not in raw:
        raise ConfigError('data.dataset: family = "mlp" needs a dataset name (e.g. '
                          'dataset = "digits")')
    val = raw.get("validation")
    if not isinstance(val, dict) or "method" not in val:
        raw["validation"] = {**(val if isinstance(val, dict) else {}), "method": "split"}
    return raw


_LINEAR_TRAIN_ONLY = {"loss": "model.loss", "schedule": "model.schedule",
                      "fit_intercept": "model.bias", "decay_bias": "model.decay"}


def check_model(spec) -> None:
    """Cross-field checks of the model family; raises a one-line ``ConfigError``."""
    m = spec.model
    if m.family == "linear":
        default = SweepModel()
        extra = [k for k in SweepModel.model_fields if getattr(m, k) != getattr(default, k)]
        if extra:
            raise ConfigError(f'model.{extra[0]}: only with family = "mlp"')
        if spec.dataset is not None:
            raise ConfigError('dataset: only with model.family = "mlp"')
        if spec.selection.metric == "accuracy":
            raise ConfigError('selection.metric: "accuracy" needs a classification model '
                              '(family = "mlp" on a classification dataset)')
        return
    default = type(spec.train)()
    for key, instead in _LINEAR_TRAIN_ONLY.items():
        if getattr(spec.train, key) != getattr(default, key):
            raise ConfigError(f"train.{key}: the linear family's; for nets use {instead}")
    if spec.dataset is None:
        raise ConfigError('data.dataset: family = "mlp" needs a dataset name')
    for key in ("dist_to_ridge", "dist_to_limit"):
        if getattr(spec.record, key):
            raise ConfigError(f"record.{key}: linear models only (no closed form for nets)")
    v = spec.validation
    if v.method == "holdout":
        raise ConfigError('validation.method: holdout draws fresh synthetic samples; for '
                          'family = "mlp" use "split" or "kfold"')
    if m.warmup and "warmup_cosine" not in m.schedule:
        raise ConfigError('model.warmup: only with schedule = "warmup_cosine"')
    if m.label_smoothing and m.loss != ("cross_entropy",):
        raise ConfigError('model.label_smoothing: only with loss = "cross_entropy"')
    if spec.execution.engine not in NET_ENGINES:
        raise ConfigError(f"execution.engine: {spec.execution.engine!r} is a linear engine; "
                          f'family = "mlp" takes one of {NET_ENGINES} (wdlab.nets.train)')
    _check_dataset(spec)


def _check_dataset(spec) -> None:
    """Load each parameter combination once (first seed): bad names or values fail here."""
    from wdlab.nets.datasets import DATASETS, load

    ds = spec.dataset
    if ds.name not in DATASETS:
        raise ConfigError(f"data.dataset: unknown name {ds.name[:40]!r}; expected one of "
                          f"{tuple(DATASETS)}")
    accepted = set(inspect.signature(DATASETS[ds.name]).parameters) - {"seed"}
    for k in ds.params:
        if k not in accepted:
            raise ConfigError(f"data.{k}: not a parameter of dataset {ds.name!r}; accepted: "
                              f"{', '.join(sorted(accepted))}")
    n_train, classification = [], True
    for combo in ds.combos():
        try:
            d = load(ds.name, **combo, seed=ds.seeds[0])
        except ConfigError:
            raise
        except (ValueError, TypeError, OSError, KeyError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            key = msg.split(":", 1)[0]
            if key in accepted or key == "seed":
                raise ConfigError(f"data.{msg}") from None
            raise ConfigError(f"data: dataset {ds.name!r}: {msg}") from None
        n_train.append(d.n_train)
        classification &= d.task == "classification"
    v = spec.validation
    if v.method == "kfold" and v.folds > min(n_train):
        raise ConfigError(f"validation.folds: must be <= the smallest training set "
                          f"({min(n_train)} rows), got {v.folds}")
    if v.method == "split":
        for n in n_train:
            held = split_count(n, v.fraction)
            if not 1 <= held < n:
                raise ConfigError(f"validation.fraction: holds out {held} of {n} training rows;"
                                  f" need at least 1 held out and 1 left (got {v.fraction})")
    if spec.selection.metric == "accuracy" and not classification:
        raise ConfigError(f"selection.metric: \"accuracy\" needs a classification dataset; "
                          f"{ds.name!r} is a regression task")
    if not classification and "cross_entropy" in spec.model.loss:
        raise ConfigError(f"model.loss: cross_entropy needs class labels; {ds.name!r} is a "
                          "regression task (use mse or half_mse)")
