"""wdlab: a weight-decay laboratory for PyTorch.

Thousands of small linear models trained as one tensor program, with exact references.

The public API below loads on first use (PEP 562), so ``import wdlab.cli`` and
``wdlab --help`` do not pay for importing torch or scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "ConfigError": "wdlab.config",
    "DataConfig": "wdlab.config",
    "ExperimentConfig": "wdlab.config",
    "TrainConfig": "wdlab.config",
    "conventions_table": "wdlab.conventions",
    "translate": "wdlab.conventions",
    "Dataset": "wdlab.data.synthetic",
    "Problem": "wdlab.data.synthetic",
    "init_weights": "wdlab.data.synthetic",
    "make_linear": "wdlab.data.synthetic",
    "problem_from_datasets": "wdlab.data.synthetic",
    "decompose_error": "wdlab.exact.decompose",
    "EngineSpec": "wdlab.engine",
    "Hyper": "wdlab.engine",
    "TrainResult": "wdlab.engine",
    "train": "wdlab.engine",
    "RidgePath": "wdlab.exact.ridge",
    "ridge_path": "wdlab.exact.ridge",
    "LinfPath": "wdlab.exact.linf",
    "linf_path": "wdlab.exact.linf",
    "WeightDecayRegressor": "wdlab.estimator",
    "WeightDecayRegressorCV": "wdlab.estimator",
    "WeightDecayMLPClassifier": "wdlab.estimator_nets",
    "WeightDecayMLPClassifierCV": "wdlab.estimator_nets",
    "WeightDecayMLPRegressor": "wdlab.estimator_nets",
    "WeightDecayMLPRegressorCV": "wdlab.estimator_nets",
    "MLP": "wdlab.nets",
    "NetResult": "wdlab.nets",
    "from_module": "wdlab.nets",
    "audit": "wdlab.audit",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load on first use
    from wdlab.audit import audit  # noqa: F401
    from wdlab.config import ConfigError, DataConfig, ExperimentConfig, TrainConfig  # noqa: F401
    from wdlab.conventions import conventions_table, translate  # noqa: F401
    from wdlab.data.synthetic import (  # noqa: F401
        Dataset,
        Problem,
        init_weights,
        make_linear,
        problem_from_datasets,
    )
    from wdlab.engine import EngineSpec, Hyper, TrainResult, train  # noqa: F401
    from wdlab.estimator import WeightDecayRegressor, WeightDecayRegressorCV  # noqa: F401
    from wdlab.estimator_nets import (  # noqa: F401
        WeightDecayMLPClassifier,
        WeightDecayMLPClassifierCV,
        WeightDecayMLPRegressor,
        WeightDecayMLPRegressorCV,
    )
    from wdlab.exact.decompose import decompose_error  # noqa: F401
    from wdlab.exact.linf import LinfPath, linf_path  # noqa: F401
    from wdlab.exact.ridge import RidgePath, ridge_path  # noqa: F401
    from wdlab.nets import MLP, NetResult, from_module  # noqa: F401


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wdlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
