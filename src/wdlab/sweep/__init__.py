"""Sweeps: grid -> chunk plan -> one engine call per chunk -> tidy tables; resume; progress.

    spec (wdlab.config.schema) -> plan (groups x chunks, sized to memory)      wdlab.sweep.plan
                      -> run_chunk(spec, i): data from seeds, ONE     wdlab.sweep.chunk
                         engine call, the chunk's tables
                      -> chunks/<i>.curves|configs.parquet (atomic)    wdlab.sweep.files
                      -> configs, curves, summary, selection, ridge    wdlab.sweep.driver
                         (+ closed-form ridge, stability warnings)     wdlab.sweep.reference

``run_chunk`` is what a remote backend (Ray) runs; ``run_sweep``/``resume_sweep`` take an
``executor`` that yields finished chunks, and the driver writes them through the same store.
"""

from wdlab.sweep.chunk import (
    ChunkInputs,
    ChunkResult,
    chunk_tables,
    execute_chunk,
    prepare_chunk,
    run_chunk,
)
from wdlab.sweep.driver import SweepEvent, resume_sweep, run_sweep
from wdlab.sweep.executor import ChunkFailure, Executor, local_executor
from wdlab.sweep.plan import SweepPlan, make_plan, resolve_spec
from wdlab.sweep.reference import closed_form_frame, stability_warnings

#: The public API: run or resume a sweep, the unit of work a backend runs, the executor
#: interface, the plan and the reference tables. Everything else is imported from its module
#: (``wdlab.sweep.files``, ``.draws``, ``.plan``, ...).
__all__ = [
    "ChunkFailure", "ChunkInputs", "ChunkResult", "Executor", "SweepEvent", "SweepPlan",
    "chunk_tables", "closed_form_frame", "execute_chunk", "local_executor", "make_plan",
    "prepare_chunk", "resolve_spec", "resume_sweep", "run_chunk", "run_sweep",
    "stability_warnings",
]
