"""Small neural networks, K at a time: the same optimizer rules, registry, schedules and
divergence rule as the linear engine, on networks.

    MLP            a network described as data (``to_module()`` is its nn.Sequential twin)
    train          K networks with per-configuration hyperparameters as one tensor program
    from_module    K copies of a user's nn.Module (vmap + functional_call), same rules
    NetResult      metrics (R, K) and every configuration's state_dict
"""

from wdlab.nets.engine import train
from wdlab.nets.mlp import MLP, Layout
from wdlab.nets.module import ModuleNet, from_module
from wdlab.nets.result import NetResult

__all__ = ["MLP", "Layout", "ModuleNet", "NetResult", "from_module", "train"]
