"""Validated, frozen configuration models: data, training, experiments.

Every field carries a short comment; a bad value raises a ``ConfigError`` whose one-line
message names the field (``train.lr``) and the allowed range, before any training.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wdlab import conventions
from wdlab.conventions import COUPLED

# The names come from the one registry (``wdlab.conventions``); these are its pydantic types.
Optimizer = Literal[tuple(conventions.OPTIMIZERS)]  # sgd, adam, adamw
Regularizer = Literal[conventions.REGULARIZERS]  # mean, half_sum, sum, weight_decay, decoupled, ...
Loss = Literal[conventions.LOSSES]  # mse, half_mse
Schedule = Literal["constant", "cosine"]
DType = Literal[tuple(conventions.DTYPES)]  # float32, float64

OPTIMIZERS: tuple[str, ...] = tuple(conventions.OPTIMIZERS)
#: AdamW's own decay is decoupled; it pairs only with the decoupled regularizers.
ADAMW_REGULARIZERS: tuple[str, ...] = conventions.OPTIMIZERS["adamw"]


class ConfigError(ValueError):
    """A configuration value is invalid. Its message is one line naming the field."""


# Upper bounds: a value beyond them is refused at validation, naming the field, instead of
# failing late (an overflow, a MemoryError, a singular matrix after tables were written).
MAX_SEED = 2**63 - 1  # seeds are int64 in the plan and the tables
MAX_EPOCHS = 10**7  # passes over the training set
MAX_SAMPLES = 10**7  # n_train, n_test, n_val, batch size
MAX_FEATURES = 10**6  # n_features (and columns of a user table)
MAX_AXIS = 10**5  # values on one axis (a range's count, a list, a number of seeds)
MAX_LAM = 1e15  # beyond it every weight is 0 to double precision, and n*lam overflows float32
MAX_SCALE = 1e10  # |w_star|, |bias|, noise, init_scale: keeps X @ w and its square finite
MAX_LR = 1e6
#: Longest echo of a user value in an error message (a 50 MB name must not be a 50 MB line).
MAX_ECHO = 60


def shown(value: Any, limit: int = MAX_ECHO) -> str:
    """``repr(value)`` fit for a one-line message: control characters (ANSI escapes,
    newlines) escaped, and cut to ``limit`` characters with the full length said."""
    if isinstance(value, (list, tuple, dict, set)) and len(value) > 20:
        return f"<{type(value).__name__} of {len(value)} items>"
    try:
        text = repr(value) if not isinstance(value, str) else repr(value[: limit * 4])
    except (RecursionError, ValueError):
        return f"<{type(value).__name__}>"
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    if len(text) > limit:
        n = len(value) if isinstance(value, str) else len(text)
        text = f"{text[:limit]}... ({n:,} chars)"
    return text


def seed_axis(v: Any, values) -> Any:
    """Data-draw seeds: an int N means seeds 0..N-1 (1 <= N <= MAX_AXIS), else ``values(v)``
    (the caller's list grammar); a boolean is refused."""
    if isinstance(v, bool):
        raise ValueError("expected a count or a list of seeds, not a boolean")
    if isinstance(v, int):
        if not 1 <= v <= MAX_AXIS:
            raise ValueError(f"the number of data draws must be in [1, {MAX_AXIS:,}]")
        return tuple(range(v))
    return values(v)


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line naming the first offending field and why, e.g. ``train.lr: ... (got -1)``."""
    err = exc.errors()[0]
    loc = ".".join(shown(p, 40) if not isinstance(p, (str, int)) or len(str(p)) > 40 else str(p)
                   for p in err.get("loc", ()) if p != "__root__")
    loc = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
    msg = err.get("msg", "invalid value").removeprefix("Value error, ")
    got = err.get("input")
    tail = ""
    if err.get("type") not in ("missing", "extra_forbidden") and not isinstance(got, dict):
        tail = f" (got {shown(got)})"
    if err.get("type") == "extra_forbidden":
        msg = "unknown key"
    more = len(exc.errors()) - 1
    extra = f" [+{more} more error{'s' if more > 1 else ''}]" if more > 0 else ""
    msg = " ".join(str(msg).split())[:200]
    return f"{loc or 'config'}: {msg}{tail}{extra}"


def validate(model: type[BaseModel], data: Any, prefix: str = "") -> BaseModel:
    """Validate ``data`` into ``model``, raising ``ConfigError`` with a one-line message."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, prefix)) from None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def replace(self, **changes: Any):
        """A validated copy with ``changes`` applied."""
        return validate(type(self), {**self.model_dump(), **changes})


class DataConfig(_Frozen):
    """Synthetic linear data y = X w* + b* + eps, X ~ N(0, I), eps ~ N(0, noise^2)."""

    n_features: int = Field(200, ge=1, le=MAX_FEATURES)  # d, number of features
    n_train: int = Field(10, ge=1, le=MAX_SAMPLES)  # training samples per draw
    n_test: int = Field(10, ge=1, le=MAX_SAMPLES)  # test samples per draw
    w_star: float = Field(0.01, ge=-MAX_SCALE, le=MAX_SCALE, allow_inf_nan=False)  # every w*_j
    bias: float = Field(0.5, ge=-MAX_SCALE, le=MAX_SCALE, allow_inf_nan=False)  # intercept b*
    noise: float = Field(0.01, ge=0.0, le=MAX_SCALE, allow_inf_nan=False)  # label noise sigma
    seed: int = Field(0, ge=0, le=MAX_SEED)  # data draw seed (a torch.Generator, never global)


class TrainConfig(_Frozen):
    """How each model is trained; lam/lr/betas/init seed may also vary per configuration."""

    optimizer: Optimizer = "adam"  # sgd (optional momentum), adam, adamw
    regularizer: Regularizer = "mean"  # penalty convention or decay kind (see conventions)
    loss: Loss = "mse"  # mse = mean(r^2), half_mse = 1/2 mean(r^2)
    lr: float = Field(0.05, gt=0.0, le=MAX_LR, allow_inf_nan=False)  # base learning rate
    momentum: float = Field(0.0, ge=0.0, lt=1.0)  # SGD momentum (PyTorch semantics)
    beta1: float = Field(0.9, ge=0.0, lt=1.0)  # Adam first-moment decay
    beta2: float = Field(0.999, ge=0.0, lt=1.0)  # Adam second-moment decay
    eps: float = Field(1e-8, gt=0.0)  # Adam denominator epsilon
    epochs: int = Field(100, ge=1, le=MAX_EPOCHS)  # passes over the training set
    batch_size: int | None = Field(None, ge=1, le=MAX_SAMPLES)  # None = full batch
    batch_seed: int = Field(0, ge=0, le=MAX_SEED)  # seed of the minibatch order
    schedule: Schedule = "constant"  # learning-rate multiplier eta_t: constant or cosine
    init_scale: float = Field(1.0, ge=0.0, le=MAX_SCALE, allow_inf_nan=False)  # w0 ~ N(0, s^2)
    fit_intercept: bool = True  # learn an unpenalised bias
    decay_bias: bool = False  # also apply the regularizer to the bias
    dtype: DType = "float32"  # float32 by default, float64 on request
    device: str = "cpu"  # cpu, cuda, cuda:1, ...

    @model_validator(mode="after")
    def _check_pairs(self) -> TrainConfig:
        if self.regularizer not in conventions.OPTIMIZERS[self.optimizer]:  # adamw + a penalty
            raise ValueError(
                f"optimizer {self.optimizer!r} decays decoupled; use regularizer "
                f"{' or '.join(map(repr, conventions.OPTIMIZERS[self.optimizer]))}, or optimizer "
                f"'adam' for the {self.regularizer!r} penalty"
            )
        if self.decay_bias and not self.fit_intercept:
            raise ValueError("decay_bias needs fit_intercept")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
        return self

    @property
    def coupled(self) -> bool:
        """True when the regularizer is a coupled gradient term (a penalty or coupled wd); it has
        a closed form when the bias is not decayed (``conventions.has_closed_form``)."""
        return self.regularizer in COUPLED


class ExperimentConfig(_Frozen):
    """One data draw, one training recipe, several lam values: a preset experiment."""

    name: str = Field("custom", min_length=1, max_length=200)  # label shown in outputs
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    lams: tuple[float, ...] = Field((0.0, 3.0), min_length=1)  # lam values, each >= 0
    init_seed: int = Field(0, ge=0, le=MAX_SEED)  # seed of w0, shared by every lam

    @field_validator("lams")
    @classmethod
    def _check_lams(cls, lams: tuple[float, ...]) -> tuple[float, ...]:
        for lam in lams:
            if not 0.0 <= lam <= MAX_LAM:
                raise ValueError(f"every lam must be finite, >= 0 and <= {MAX_LAM:g}, got {lam!r}")
        return lams
