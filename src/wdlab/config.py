"""Validated, frozen configuration models: data, training, experiments.

Every field carries a short comment; a bad value raises a ``ConfigError`` whose one-line
message names the field (``train.lr``) and the allowed range, before any training.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wdlab.conventions import COUPLED

Optimizer = Literal["sgd", "adam", "adamw"]
Regularizer = Literal["mean", "half_sum", "sum", "weight_decay", "decoupled", "independent"]
Loss = Literal["mse", "half_mse"]
Schedule = Literal["constant", "cosine"]
DType = Literal["float32", "float64"]

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw")
#: AdamW's own decay is decoupled; it pairs only with the decoupled regularizers.
ADAMW_REGULARIZERS: tuple[str, ...] = ("decoupled", "independent")


class ConfigError(ValueError):
    """A configuration value is invalid. Its message is one line naming the field."""


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line naming the first offending field and why, e.g. ``train.lr: ... (got -1)``."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
    loc = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
    msg = err.get("msg", "invalid value").removeprefix("Value error, ")
    got = err.get("input")
    tail = ""
    if err.get("type") not in ("missing", "extra_forbidden") and not isinstance(got, dict):
        tail = f" (got {got!r})"
    if err.get("type") == "extra_forbidden":
        msg = "unknown key"
    more = len(exc.errors()) - 1
    extra = f" [+{more} more error{'s' if more > 1 else ''}]" if more > 0 else ""
    return f"{loc or 'config'}: {msg}{tail}{extra}".replace("\n", " ")


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

    n_features: int = Field(200, ge=1)  # d, number of features
    n_train: int = Field(10, ge=1)  # training samples per draw
    n_test: int = Field(10, ge=1)  # test samples per draw
    w_star: float = 0.01  # every coordinate of the true weights w*
    bias: float = 0.5  # the true intercept b*
    noise: float = Field(0.01, ge=0.0)  # standard deviation sigma of the label noise
    seed: int = Field(0, ge=0)  # data draw seed (a torch.Generator, never the global RNG)


class TrainConfig(_Frozen):
    """How each model is trained; lam/lr/betas/init seed may also vary per configuration."""

    optimizer: Optimizer = "adam"  # sgd (optional momentum), adam, adamw
    regularizer: Regularizer = "mean"  # penalty convention or decay kind (see conventions)
    loss: Loss = "mse"  # mse = mean(r^2), half_mse = 1/2 mean(r^2)
    lr: float = Field(0.05, gt=0.0)  # base learning rate
    momentum: float = Field(0.0, ge=0.0, lt=1.0)  # SGD momentum (PyTorch semantics)
    beta1: float = Field(0.9, ge=0.0, lt=1.0)  # Adam first-moment decay
    beta2: float = Field(0.999, ge=0.0, lt=1.0)  # Adam second-moment decay
    eps: float = Field(1e-8, gt=0.0)  # Adam denominator epsilon
    epochs: int = Field(100, ge=1)  # passes over the training set
    batch_size: int | None = Field(None, ge=1)  # None = full batch; else seeded minibatches
    batch_seed: int = Field(0, ge=0)  # seed of the minibatch order
    schedule: Schedule = "constant"  # learning-rate multiplier eta_t: constant or cosine
    init_scale: float = Field(1.0, ge=0.0)  # w0 ~ N(0, init_scale^2); b0 = 0
    fit_intercept: bool = True  # learn an unpenalised bias
    decay_bias: bool = False  # also apply the regularizer to the bias
    dtype: DType = "float32"  # float32 by default, float64 on request
    device: str = "cpu"  # cpu, cuda, cuda:1, ...

    @model_validator(mode="after")
    def _check_pairs(self) -> TrainConfig:
        if self.optimizer == "adamw" and self.regularizer not in ADAMW_REGULARIZERS:
            raise ValueError(
                f"optimizer 'adamw' decays decoupled; use regularizer 'decoupled' or 'independent',"
                f" or optimizer 'adam' for the {self.regularizer!r} penalty"
            )
        if self.decay_bias and not self.fit_intercept:
            raise ValueError("decay_bias needs fit_intercept")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
        return self

    @property
    def coupled(self) -> bool:
        """True when the regularizer is a coupled gradient term (has a closed form)."""
        return self.regularizer in COUPLED


class ExperimentConfig(_Frozen):
    """One data draw, one training recipe, several lam values: a preset experiment."""

    name: str = Field("custom", min_length=1, max_length=200)  # label shown in outputs
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    lams: tuple[float, ...] = Field((0.0, 3.0), min_length=1)  # lam values, each >= 0
    init_seed: int = Field(0, ge=0)  # seed of w0, shared by every lam

    @field_validator("lams")
    @classmethod
    def _check_lams(cls, lams: tuple[float, ...]) -> tuple[float, ...]:
        for lam in lams:
            if not 0.0 <= lam < float("inf"):
                raise ValueError(f"every lam must be finite and >= 0, got {lam!r}")
        return lams
