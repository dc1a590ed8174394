"""The sweep spec: a validated, frozen description of a grid of configurations.

A spec is written as TOML or YAML (loaded safely) or assembled from CLI flags; every path
ends in ``SweepSpec`` validated through ``wdlab.config.validate``, so a bad value raises a
``ConfigError`` whose one-line message names the key (``train.lr.0: ... (got -1)``).

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
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BeforeValidator, Field, field_validator, model_validator

from wdlab.config import (
    ADAMW_REGULARIZERS,
    MAX_AXIS,
    MAX_EPOCHS,
    MAX_FEATURES,
    MAX_LAM,
    MAX_LR,
    MAX_SAMPLES,
    MAX_SCALE,
    MAX_SEED,
    ConfigError,
    DType,
    Loss,
    Optimizer,
    Regularizer,
    Schedule,
    _Frozen,
    seed_axis,
    shown,
    validate,
)
from wdlab.conventions import ENGINES, OPTIMIZERS
from wdlab.spec_nets import (
    SweepDataset,
    SweepModel,
    SweepSelection,
    check_model,
    is_nets,
    route_family,
)

Engine = Literal[ENGINES]  # auto, eager, compiled, triton, native (wdlab.conventions)
Method = Literal["holdout", "split", "kfold"]
PRESETS: tuple[str, ...] = ("seed", "d2l")


def _no_bool(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError("expected a number, not a boolean")
    return v


Int = Annotated[int, BeforeValidator(_no_bool)]
Float = Annotated[float, BeforeValidator(_no_bool)]
PosInt = Annotated[int, BeforeValidator(_no_bool), Field(ge=1)]
NonNegInt = Annotated[int, BeforeValidator(_no_bool), Field(ge=0)]
PosFloat = Annotated[float, BeforeValidator(_no_bool), Field(gt=0.0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, BeforeValidator(_no_bool), Field(ge=0.0, allow_inf_nan=False)]
UnitFloat = Annotated[float, BeforeValidator(_no_bool), Field(ge=0.0, lt=1.0)]
Seed = Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=MAX_SEED)]
Samples = Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=MAX_SAMPLES)]
Epochs = Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=MAX_EPOCHS)]
Lam = Annotated[float, BeforeValidator(_no_bool), Field(ge=0.0, le=MAX_LAM, allow_inf_nan=False)]
Scale = Annotated[float, BeforeValidator(_no_bool),
                  Field(ge=0.0, le=MAX_SCALE, allow_inf_nan=False)]
Signed = Annotated[float, BeforeValidator(_no_bool),
                   Field(ge=-MAX_SCALE, le=MAX_SCALE, allow_inf_nan=False)]
Rate = Annotated[float, BeforeValidator(_no_bool), Field(gt=0.0, le=MAX_LR, allow_inf_nan=False)]


# ----------------------------------------------------------------------------------------
# Value lists and ranges: "1e-3:1e2:50", "0,0.1,3", "0,1e-3:1e2:50:log", "0:1:11:lin"
# ----------------------------------------------------------------------------------------

def parse_range(start: float, stop: float, num: int, scale: str = "log") -> list[float]:
    """``num`` values from ``start`` to ``stop`` inclusive, log- (default) or linearly spaced.

    Log ranges use ``numpy.geomspace``, so the endpoints are exact.
    """
    if isinstance(num, float) and not num.is_integer():
        raise ValueError(f"range count must be an integer, got {num!r}")
    if not num <= MAX_AXIS:  # before anything is allocated
        raise ValueError(f"range count must be <= {MAX_AXIS:,}, got {num:.6g}")
    num = int(num)
    if num < 1:
        raise ValueError(f"empty range: count must be >= 1, got {num}")
    if scale not in ("log", "lin"):
        raise ValueError(f"range scale must be 'log' or 'lin', got {scale!r}")
    start, stop = float(start), float(stop)
    if not (math.isfinite(start) and math.isfinite(stop)):
        raise ValueError("range ends must be finite")
    if start > stop:
        raise ValueError(f"empty range: start {start:g} > stop {stop:g}")
    if num == 1:
        if start != stop:
            raise ValueError(f"a 1-point range needs start == stop, got {start:g} and {stop:g}")
        return [start]
    if scale == "log":
        if start <= 0:
            raise ValueError(f"log range needs start > 0, got {start:g} (list 0 separately: '0,{start:g}:...')")
        return [float(v) for v in np.geomspace(start, stop, num)]
    return [float(v) for v in np.linspace(start, stop, num)]


def parse_values(text: str) -> list[float]:
    """Comma-separated numbers and ``start:stop:num[:log|lin]`` ranges, e.g. ``0,1e-3:1e2:50``."""
    out: list[float] = []
    text = str(text).strip()
    if not text:
        raise ValueError("empty value list")
    for token in text.split(","):
        token = token.strip()
        if not token:
            raise ValueError(f"empty item in {text!r}")
        if ":" in token:
            parts = token.split(":")
            if len(parts) not in (3, 4):
                raise ValueError(f"range {token!r}: expected start:stop:num[:log|lin]")
            try:
                a, b, n = float(parts[0]), float(parts[1]), float(parts[2])
            except ValueError:
                raise ValueError(f"range {token!r}: start, stop and num must be numbers") from None
            out.extend(parse_range(a, b, n, parts[3] if len(parts) == 4 else "log"))
        else:
            try:
                out.append(float(token))
            except ValueError:
                raise ValueError(f"{token!r} is not a number") from None
    return out


def _range_table(v: dict) -> list[float]:
    unknown = set(v) - {"start", "stop", "num", "scale"}
    if unknown:
        raise ValueError(f"range table: unknown key {sorted(unknown)[0]!r} (keys: start, stop, num, scale)")
    try:
        return parse_range(v["start"], v["stop"], v["num"], v.get("scale", "log"))
    except KeyError as exc:
        raise ValueError(f"range table needs start, stop and num (missing {exc.args[0]!r})") from None
    except TypeError:
        raise ValueError("range table: start, stop and num must be numbers") from None


def _values(v: Any, numeric: bool = True) -> Any:
    """Scalar -> 1-tuple; range strings and {start, stop, num} tables -> values; dedupe."""
    if v is None:
        return v
    items = list(v) if isinstance(v, (list, tuple)) else [v]
    out: list[Any] = []
    for item in items:
        if isinstance(item, str) and "," in item and not numeric:
            out.extend(s.strip() for s in item.split(",") if s.strip())
        elif isinstance(item, str) and (":" in item or "," in item) and numeric:
            out.extend(parse_values(item))
        elif isinstance(item, dict) and numeric:
            out.extend(_range_table(item))
        else:
            out.append(item)
    if not out:
        raise ValueError("empty list: give at least one value")
    if len(out) > MAX_AXIS:
        raise ValueError(f"{len(out):,} values on one axis; at most {MAX_AXIS:,}")
    seen, uniq = set(), []
    for item in out:
        key = (type(item).__name__, item) if not isinstance(item, (int, float)) else item
        try:
            if key in seen:
                continue
            seen.add(key)
        except TypeError:  # unhashable: let validation name it
            pass
        uniq.append(item)
    return tuple(uniq)


def _batch_values(v: Any) -> Any:
    if v is None or v == "full":
        return (0,)
    items = list(v) if isinstance(v, (list, tuple)) else [v]
    return _values([0 if (i is None or i == "full") else i for i in items])


# ----------------------------------------------------------------------------------------
# The spec sections
# ----------------------------------------------------------------------------------------

class SweepData(_Frozen):
    """Synthetic draws y = X w* + b* + eps (see ``wdlab.data.make_linear``)."""

    n_features: Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=MAX_FEATURES)] = 200  # d
    n_train: tuple[Samples, ...] = (10,)  # training samples per draw (axis)
    n_test: Samples = 10  # test samples per draw
    w_star: Signed = 0.01  # every coordinate of the true weights (finite, |w*| <= 1e10)
    bias: Signed = 0.5  # the true intercept (finite, |b*| <= 1e10)
    noise: tuple[Scale, ...] = (0.01,)  # label noise standard deviation (axis)
    seeds: tuple[Seed, ...] = (0,)  # data draws: an int N means seeds 0..N-1, or a list

    @field_validator("n_train", "noise", mode="before")
    @classmethod
    def _axis(cls, v):
        return _values(v)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, v):
        return seed_axis(v, _values)


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
    batch_size: tuple[Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=MAX_SAMPLES)],
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
        return _values(v)

    @field_validator("optimizer", "regularizer", "loss", "schedule", mode="before")
    @classmethod
    def _names(cls, v):
        return _values(v, numeric=False)

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
        return _values(items, numeric=False)

    @field_validator("batch_size", mode="before")
    @classmethod
    def _batch(cls, v):
        return _batch_values(v)

    @field_validator("init_seed", mode="before")
    @classmethod
    def _init_seed(cls, v):
        return v if v == "data" else _values(v)

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
    fraction: Annotated[float, BeforeValidator(_no_bool), Field(gt=0.0, lt=1.0)] = 0.2  # split
    folds: Annotated[int, BeforeValidator(_no_bool), Field(ge=2)] = 5  # kfold
    seed: Seed = 0  # seed of the split / fold assignment


#: Runs up to this many epochs record every epoch by default; longer ones ~DEFAULT_LOG_POINTS
#: log-spaced epochs (issue 20: a 2,000 x 1,000 sweep's curves were 70 MB).
EVERY_EPOCH_UP_TO = 200
DEFAULT_LOG_POINTS = 100


class SweepRecord(_Frozen):
    """Which epochs' metrics are kept in curves: every k-th, or N log-spaced (plus 0 and last)."""

    every: Epochs | None = None  # record epochs 0, k, 2k, ..., and the last
    log_points: Annotated[int, BeforeValidator(_no_bool), Field(ge=2, le=MAX_AXIS)] | None = None  # ~N log-spaced epochs
    dist_to_ridge: bool = False  # also record the distance to the closed-form ridge solution
    dist_to_limit: bool = False  # decoupled Adam(W): the distance to its l-inf limit (wdlab.linf)

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

    chunk_size: Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=2**31)] | None = None  # models per engine call; None = sized to memory
    memory_gb: Annotated[float, BeforeValidator(_no_bool), Field(gt=0, le=1e6, allow_inf_nan=False)] | None = None  # per chunk; None = auto
    engine: Engine = "auto"  # engine variant passed through to wdlab.engine.train
    backend: Literal["local", "ray"] = "local"  # where chunks run: this process or Ray tasks
    address: str | None = Field(None, min_length=1)  # ray: "auto", HOST:PORT, ray://HOST:PORT


class SweepSpec(_Frozen):
    """A whole sweep: data, axes, validation, recording, execution."""

    name: str = Field("sweep", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    preset: Literal["seed", "d2l"] | None = None  # defaults for data and train
    data: SweepData = SweepData()
    train: SweepTrain = SweepTrain()
    validation: SweepValidation = SweepValidation()
    record: SweepRecord = SweepRecord()
    execution: SweepExecution = SweepExecution()
    model: SweepModel = SweepModel()  # family: linear (default) or mlp (wdlab.spec_nets)
    dataset: SweepDataset | None = None  # family = "mlp": the [data] table's dataset
    selection: SweepSelection = SweepSelection()  # rank by validation loss or accuracy

    @property
    def n_val(self) -> int:
        return self.validation.n_val or self.data.n_test


# ----------------------------------------------------------------------------------------
# Building a spec: preset defaults, files, flags, cross-field checks
# ----------------------------------------------------------------------------------------

def preset_defaults(name: str) -> dict[str, Any]:
    """The raw data/train defaults of a preset experiment (``wdlab.presets``)."""
    from wdlab.presets import EXPERIMENTS

    if name not in PRESETS:
        raise ConfigError(f"preset: unknown name {name!r}; expected one of {PRESETS}")
    exp = EXPERIMENTS[name]
    d, t = exp.data, exp.train
    return {
        "name": name,
        "data": {"n_features": d.n_features, "n_train": d.n_train, "n_test": d.n_test,
                 "w_star": d.w_star, "bias": d.bias, "noise": d.noise, "seeds": [d.seed]},
        "train": {"optimizer": t.optimizer, "regularizer": t.regularizer, "loss": t.loss,
                  "lam": list(exp.lams), "lr": t.lr, "momentum": t.momentum, "beta1": t.beta1,
                  "beta2": t.beta2, "eps": t.eps, "epochs": t.epochs,
                  "batch_size": t.batch_size or 0, "batch_seed": t.batch_seed,
                  "schedule": t.schedule, "init_scale": t.init_scale, "init_seed": "data",
                  "fit_intercept": t.fit_intercept, "decay_bias": t.decay_bias,
                  "dtype": t.dtype, "device": t.device},
    }


def merge(base: dict, over: dict) -> dict:
    """Recursive dict merge: ``over`` wins; non-dict values replace."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def build_spec(raw: dict[str, Any]) -> SweepSpec:
    """Validate a raw spec dict (from a file and/or flags) into a ``SweepSpec``.

    A ``preset`` supplies data and train defaults under the given keys. Raises
    ``ConfigError`` with a one-line message naming the key.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"spec: expected a table of keys, got {type(raw).__name__}")
    user_train = raw.get("train") if isinstance(raw.get("train"), dict) else {}
    if user_train.get("pairs") is not None and ("optimizer" in user_train
                                                 or "regularizer" in user_train):
        raise ConfigError("train.pairs: give pairs or optimizer/regularizer, not both")
    preset = raw.get("preset")
    if preset is not None:
        if not isinstance(preset, str) or preset not in PRESETS:
            import difflib

            close = difflib.get_close_matches(str(preset).lower(), PRESETS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"preset: unknown name {shown(preset)}; expected one of {PRESETS}{hint}")
        base = preset_defaults(preset)
        if "pairs" in user_train:
            base["train"] = {k: v for k, v in base["train"].items()
                             if k not in ("optimizer", "regularizer")}
        raw = merge(base, raw)
    spec = validate(SweepSpec, route_family(raw))
    check_spec(spec)  # type: ignore[arg-type]
    return spec  # type: ignore[return-value]


def spec_from_json(data: dict[str, Any] | str) -> SweepSpec:
    """A spec from its own dump (``spec.model_dump(mode="json")``, e.g. a manifest's ``spec``).

    Unlike ``build_spec`` no preset is merged in: the dump is complete.
    """
    import json

    if isinstance(data, str):
        data = json.loads(data)
    spec = validate(SweepSpec, data)
    check_spec(spec)  # type: ignore[arg-type]
    return spec  # type: ignore[return-value]


def check_spec(spec: SweepSpec) -> None:
    """Cross-field checks that name the key; raises ``ConfigError``."""
    from wdlab.engine.registry import check_pair

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


def split_count(n_train: int, fraction: float) -> int:
    """Samples held out by a ``split`` of ``n_train`` (round half up)."""
    return int(math.floor(n_train * fraction + 0.5))


#: A spec is a few lines: larger files (or /dev/zero behind a symlink) are refused unread.
MAX_SPEC_BYTES = 1 << 20
#: Values a spec may expand to (YAML aliases expand: a 463-byte alias bomb is 10^9 values)
#: and how deep it may nest.
MAX_SPEC_NODES = 10**6
MAX_SPEC_DEPTH = 32


def _read_spec_text(path: Path) -> str:
    import stat

    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"spec: {shown(str(path))} is not a regular file")
        with open(path, "rb") as fh:
            data = fh.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"spec: cannot read {shown(str(path))}: {exc.strerror or exc}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise ConfigError(f"spec: {shown(path.name)} is larger than {MAX_SPEC_BYTES >> 20} MiB; "
                          "a spec is a few lines")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"spec: {shown(path.name)} is not UTF-8 text (byte {exc.start})") from None


def check_spec_size(raw: Any, where: str = "spec") -> None:
    """Refuse a loaded spec that nests deeper than ``MAX_SPEC_DEPTH`` or expands (YAML
    aliases) to more than ``MAX_SPEC_NODES`` values; stops counting at the bound."""
    count = 0
    stack = [(raw, 0)]
    while stack:
        obj, depth = stack.pop()
        count += 1
        if count > MAX_SPEC_NODES:
            raise ConfigError(f"{where}: expands to more than {MAX_SPEC_NODES:,} values "
                              "(YAML aliases?); a spec is a few keys")
        if depth > MAX_SPEC_DEPTH:
            raise ConfigError(f"{where}: nested deeper than {MAX_SPEC_DEPTH} levels")
        if isinstance(obj, dict):
            stack.extend((v, depth + 1) for v in obj.values())
        elif isinstance(obj, (list, tuple)):
            stack.extend((v, depth + 1) for v in obj)


def load_raw(path: Path | str) -> dict[str, Any]:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) spec file into a dict, safely.

    Raises ``ConfigError`` with the file name and, for syntax errors, the line. A file that
    is not a regular file, larger than 1 MiB, nested too deep or expanding (YAML aliases)
    past ``MAX_SPEC_NODES`` values is refused.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise ConfigError(f"spec: {shown(path.name)}: expected a .toml, .yaml or .yml file")
    text = _read_spec_text(path)
    if suffix == ".toml":
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"spec: {path.name}: malformed TOML: {exc}") from None
        except RecursionError:
            raise ConfigError(f"spec: {path.name}: nested too deeply") from None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            raw = yaml.safe_load(text)
        except RecursionError:
            raise ConfigError(f"spec: {path.name}: nested too deeply") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise ConfigError(f"spec: {path.name}: malformed YAML{where}: {problem}") from None
        if raw is None:
            raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"spec: {path.name}: the top level must be a table of keys")
    check_spec_size(raw, f"spec: {shown(path.name)}")
    return raw


def load_spec(path: Path | str, overrides: dict[str, Any] | None = None) -> SweepSpec:
    """Load and validate a spec file, with ``overrides`` (e.g. from CLI flags) merged on top."""
    return build_spec(merge(load_raw(path), overrides or {}))


#: CLI flag -> (section, key). Values are strings parsed by ``flag_overrides``.
FLAG_KEYS: dict[str, tuple[str | None, str]] = {
    "preset": (None, "preset"), "name": (None, "name"),
    "lam": ("train", "lam"), "lr": ("train", "lr"), "optimizer": ("train", "optimizer"),
    "regularizer": ("train", "regularizer"), "pairs": ("train", "pairs"),
    "loss": ("train", "loss"), "momentum": ("train", "momentum"), "beta1": ("train", "beta1"),
    "beta2": ("train", "beta2"), "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"), "schedule": ("train", "schedule"),
    "init_scale": ("train", "init_scale"), "init_seed": ("train", "init_seed"),
    "device": ("train", "device"), "dtype": ("train", "dtype"),
    "seeds": ("data", "seeds"), "n_train": ("data", "n_train"), "noise": ("data", "noise"),
    "n_features": ("data", "n_features"), "n_test": ("data", "n_test"),
    "validation": ("validation", "method"), "folds": ("validation", "folds"),
    "n_val": ("validation", "n_val"), "log_points": ("record", "log_points"),
    "record_every": ("record", "every"), "chunk_size": ("execution", "chunk_size"),
    "memory_gb": ("execution", "memory_gb"), "engine": ("execution", "engine"),
    "backend": ("execution", "backend"), "address": ("execution", "address"),
}
_NUMERIC_LISTS = {"lam", "lr", "momentum", "beta1", "beta2", "init_scale", "noise"}
_INT_LISTS = {"epochs", "n_train"}
_STR_LISTS = {"optimizer", "regularizer", "loss", "schedule"}


def _int_token(flag: str, token: str) -> int:
    try:
        value = float(token)
    except ValueError:
        raise ConfigError(f"--{flag.replace('_', '-')}: {token!r} is not an integer") from None
    if not value.is_integer():
        raise ConfigError(f"--{flag.replace('_', '-')}: {token!r} is not an integer")
    return int(value)


def flag_overrides(**flags: Any) -> dict[str, Any]:
    """Raw spec overrides from CLI flag strings (None = not given).

    ``--lam 1e-3:1e2:50`` (50 log-spaced values), ``--lam 0,0.1,3`` (a list), ``--seeds 20``
    (seeds 0..19), ``--optimizer sgd,adam``, ``--batch-size full,5``, ``--init-seed data``.
    """
    raw: dict[str, Any] = {}
    for flag, value in flags.items():
        if value is None:
            continue
        if flag not in FLAG_KEYS:
            raise ConfigError(f"--{flag.replace('_', '-')}: unknown flag")
        section, key = FLAG_KEYS[flag]
        text = str(value)
        name = f"--{flag.replace('_', '-')}"
        try:
            if flag in _NUMERIC_LISTS:
                parsed: Any = parse_values(text)
            elif flag in _INT_LISTS:
                parsed = [_int_token(flag, s) for s in text.split(",")]
            elif flag in _STR_LISTS or flag == "pairs":  # registry names: AdamW = adamw
                parsed = [s.strip().lower() for s in text.split(",") if s.strip()]
            elif flag == "batch_size":
                parsed = [s if s.strip() == "full" else _int_token(flag, s) for s in text.split(",")]
            elif flag == "init_seed":
                parsed = text if text == "data" else [_int_token(flag, s) for s in text.split(",")]
            elif flag == "seeds":
                parsed = (_int_token(flag, text) if "," not in text
                          else [_int_token(flag, s) for s in text.split(",")])
            elif flag in ("folds", "n_val", "log_points", "record_every", "chunk_size",
                          "n_features", "n_test"):
                parsed = _int_token(flag, text)
            elif flag == "memory_gb":
                parsed = float(text)
            else:
                parsed = text
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None
        if section is None:
            raw[key] = parsed
        else:
            raw.setdefault(section, {})[key] = parsed
    if "record" in raw:  # a flag for one recording mode replaces the file's other one
        other = {"every": "log_points", "log_points": "every"}
        for k in list(raw["record"]):
            raw["record"].setdefault(other[k], None)
    return raw
