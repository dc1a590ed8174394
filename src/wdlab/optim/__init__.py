"""Update rules, their chains and learning-rate schedules: model-independent, shared by
every model family (``wdlab.engine``'s linear models, ``wdlab.nets``). Pure torch."""

from wdlab.optim.registry import OPTIMIZERS, PAIRS, build_chain, check_pair
from wdlab.optim.rules import (
    AddDecayedWeights,
    AddL2,
    AddScheduledDecay,
    Rule,
    ScaleByAdam,
    ScaleByLearningRate,
    StepContext,
    TraceMomentum,
    apply_chain,
    init_chain,
)
from wdlab.optim.schedule import SCHEDULES, schedule_multiplier

__all__ = [
    "AddDecayedWeights",
    "AddL2",
    "AddScheduledDecay",
    "OPTIMIZERS",
    "PAIRS",
    "Rule",
    "SCHEDULES",
    "ScaleByAdam",
    "ScaleByLearningRate",
    "StepContext",
    "TraceMomentum",
    "apply_chain",
    "build_chain",
    "check_pair",
    "init_chain",
    "schedule_multiplier",
]
