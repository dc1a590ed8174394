"""Backends: where the chunks of a sweep run. ``local`` (this process) or ``ray`` (a cluster).

Both yield the same ``ChunkResult``s from the same ``run_chunk``, so the run directory,
resume and the final tables do not depend on the backend.
"""

from __future__ import annotations

from wdlab.sweep.executor import Executor, local_executor

BACKENDS: tuple[str, ...] = ("local", "ray")


def executor_for(backend: str = "local", address: str | None = None) -> Executor:
    """The executor of ``backend``; ``address`` (Ray only) joins an existing cluster.

    Raises ValueError for an unknown backend or an address without Ray, and ImportError
    (one line: how to install the extra) for ``ray`` without ray installed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"--backend: expected one of {BACKENDS}, got {backend!r}")
    if backend == "local":
        if address is not None:
            raise ValueError("--address: only with --backend ray")
        return local_executor
    from wdlab.sweep.ray_backend import RayExecutor

    return RayExecutor(address)


__all__ = ["BACKENDS", "executor_for"]
