"""wdlab: a weight-decay laboratory for PyTorch.

Thousands of small linear models trained as one tensor program, with exact references.
"""

from wdlab.config import ConfigError, DataConfig, ExperimentConfig, TrainConfig
from wdlab.conventions import conventions_table, translate
from wdlab.data import Dataset, Problem, init_weights, make_linear, problem_from_datasets
from wdlab.decompose import decompose_error
from wdlab.engine import EngineSpec, Hyper, TrainResult, train
from wdlab.ridge import RidgePath, ridge_path

__version__ = "0.1.0"


def __getattr__(name: str):
    """The scikit-learn estimators load on first use, so ``import wdlab`` skips sklearn."""
    if name in ("WeightDecayRegressor", "WeightDecayRegressorCV"):
        from wdlab import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module 'wdlab' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "DataConfig",
    "Dataset",
    "EngineSpec",
    "ExperimentConfig",
    "Hyper",
    "Problem",
    "RidgePath",
    "TrainConfig",
    "TrainResult",
    "WeightDecayRegressor",
    "WeightDecayRegressorCV",
    "__version__",
    "conventions_table",
    "decompose_error",
    "init_weights",
    "make_linear",
    "problem_from_datasets",
    "ridge_path",
    "train",
    "translate",
]
