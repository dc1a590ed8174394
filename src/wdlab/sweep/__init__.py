"""Sweeps: grid -> chunk plan -> one engine call per chunk -> tidy tables; resume; progress.

    spec (wdlab.spec) -> plan (groups x chunks, sized to memory)      wdlab.sweep.plan
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
    failed_chunk_configs,
    prepare_chunk,
    run_chunk,
)
from wdlab.sweep.draws import ModelDraw, draw_unit, fold_ids, holdout_draw, unit_draws
from wdlab.sweep.driver import (
    KILL_AFTER_CHUNK_ENV,
    ChunkFailure,
    Executor,
    SweepEvent,
    assemble,
    local_executor,
    resume_sweep,
    run_sweep,
)
from wdlab.sweep.files import (
    CHUNK_DIR,
    chunk_done,
    chunk_failure,
    chunk_path,
    write_chunk,
    write_chunk_failure,
)
from wdlab.sweep.plan import (
    LINEAR_METRICS,
    Chunk,
    Group,
    SweepPlan,
    auto_chunk_size,
    bytes_per_config,
    make_plan,
    resolve_spec,
)
from wdlab.sweep.reference import closed_form_frame, stability_warnings

__all__ = [
    "CHUNK_DIR", "KILL_AFTER_CHUNK_ENV", "LINEAR_METRICS", "Chunk", "ChunkFailure", "ChunkInputs",
    "ChunkResult", "Executor", "Group", "ModelDraw", "SweepEvent", "SweepPlan", "assemble",
    "auto_chunk_size", "bytes_per_config", "chunk_done", "chunk_failure", "chunk_path",
    "chunk_tables", "closed_form_frame", "draw_unit", "execute_chunk", "failed_chunk_configs",
    "fold_ids", "holdout_draw", "local_executor", "make_plan", "prepare_chunk", "resolve_spec",
    "resume_sweep", "run_chunk", "run_sweep", "stability_warnings", "unit_draws",
    "write_chunk", "write_chunk_failure",
]
