"""How the one registry's optimizers and regularizers (``wdlab.conventions``) compose into a chain.

    optimizer x regularizer     chain (applied to the data-loss gradient)
    sgd   + penalty/wd          AddL2 -> [TraceMomentum] -> ScaleByLearningRate
    adam  + penalty/wd          AddL2 -> ScaleByAdam -> ScaleByLearningRate
    *     + decoupled           core -> AddDecayedWeights -> ScaleByLearningRate   (torch AdamW)
    *     + independent         core -> ScaleByLearningRate -> AddScheduledDecay   (L&H Alg. 2)

``adamw`` is Adam whose decay is decoupled: it pairs with ``decoupled`` (= torch.optim.AdamW)
or ``independent`` only.
"""

from __future__ import annotations

from wdlab.conventions import COUPLED, OPTIMIZERS, PAIRS, check_pair, penalty_grad_scale
from wdlab.optim.rules import (
    AddDecayedWeights,
    AddL2,
    AddScheduledDecay,
    Rule,
    ScaleByAdam,
    ScaleByLearningRate,
    TraceMomentum,
)

__all__ = ["OPTIMIZERS", "PAIRS", "build_chain", "check_pair"]  # the registry is conventions'


def build_chain(
    optimizer: str,
    regularizer: str,
    *,
    n_decayed: int,
    eps: float = 1e-8,
    momentum: bool = True,
) -> list[Rule]:
    """The rule chain for an (optimizer, regularizer) pair.

    Args:
        n_decayed: decayed coordinates, for the ``mean`` convention's 1/d.
        eps: Adam's epsilon.
        momentum: include SGD's momentum buffer (skip it when every momentum is 0).
    """
    check_pair(optimizer, regularizer)
    chain: list[Rule] = []
    if regularizer in COUPLED:
        chain.append(AddL2(penalty_grad_scale(regularizer, n_decayed)))
    if optimizer == "sgd":
        if momentum:
            chain.append(TraceMomentum())
    else:
        chain.append(ScaleByAdam(eps))
    if regularizer == "decoupled":
        chain.append(AddDecayedWeights())
    chain.append(ScaleByLearningRate())
    if regularizer == "independent":
        chain.append(AddScheduledDecay())
    return chain
