"""wdlab: a weight-decay laboratory for PyTorch.

Thousands of small linear models trained as one tensor program, with exact references.
"""

from wdlab.config import ConfigError, DataConfig, ExperimentConfig, TrainConfig
from wdlab.data import Dataset, Problem, init_weights, make_linear, problem_from_datasets
from wdlab.engine import EngineSpec, Hyper, TrainResult, train

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataConfig",
    "Dataset",
    "EngineSpec",
    "ExperimentConfig",
    "Hyper",
    "Problem",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "init_weights",
    "make_linear",
    "problem_from_datasets",
    "train",
]
