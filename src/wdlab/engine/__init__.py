"""The batched training engine: K models, one tensor program. Pure torch."""

from wdlab.engine.core import (
    DIVERGENCE_FACTOR,
    EngineSpec,
    Hyper,
    TrainResult,
    schedule_multiplier,
    supports_closed_form,
    train,
)
from wdlab.engine.registry import OPTIMIZERS, PAIRS, build_chain, check_pair

__all__ = [
    "DIVERGENCE_FACTOR",
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
