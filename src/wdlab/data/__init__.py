"""Data: synthetic linear problems (``synthetic``, pure torch; its names are re-exported
here) and user CSV/Parquet tables (``tables``: pandas, imported on its own)."""

from wdlab.data.synthetic import (
    D2L_DATA,
    SEED_DATA,
    Dataset,
    EvalSet,
    Problem,
    init_weights,
    make_linear,
    problem_from_datasets,
    stack_problem,
    stream_seed,
)

__all__ = [
    "D2L_DATA",
    "Dataset",
    "EvalSet",
    "Problem",
    "SEED_DATA",
    "init_weights",
    "make_linear",
    "problem_from_datasets",
    "stack_problem",
    "stream_seed",
]
