"""The batched training engine: K models, one tensor program. Pure torch."""

from wdlab.engine.core import (
    DIVERGENCE_FACTOR,
    EngineSpec,
    Hyper,
    TrainResult,
    supports_closed_form,
    train,
)
from wdlab.engine.fast import ENGINES, EngineFallbackWarning
from wdlab.optim.registry import OPTIMIZERS, PAIRS, build_chain, check_pair
from wdlab.optim.schedule import schedule_multiplier

__all__ = [
    "DIVERGENCE_FACTOR",
    "ENGINES",
    "EngineFallbackWarning",
    "EngineSpec",
    "Hyper",
    "OPTIMIZERS",
    "PAIRS",
    "TrainResult",
    "build_chain",
    "check_pair",
    "schedule_multiplier",
    "supports_closed_form",
    "train",
]
