"""Executors: what runs the chunks of a sweep, and what one yields.

An executor takes a resolved spec and chunk indices and yields each chunk as it finishes: a
``ChunkResult`` (``wdlab.sweep.chunk``), or a ``ChunkFailure`` for a chunk it gave up on.
The driver consumes them; the backends (``local_executor`` here, ``RayExecutor`` in
``wdlab.sweep.ray_backend``) produce them. Both sides import this module and not each other,
so the sweep has no import circle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from wdlab.config.schema import SweepSpec
from wdlab.sweep.chunk import ChunkResult, run_chunk


@dataclass
class ChunkFailure:
    """A chunk an executor gave up on (after its own retries)."""

    index: int
    error: str


#: An executor runs the given chunks of a resolved spec and yields each as it finishes:
#: a ``ChunkResult``, or a ``ChunkFailure`` for a chunk that failed for good.
Executor = Callable[[SweepSpec, list[int]], Iterable["ChunkResult | ChunkFailure"]]


def local_executor(spec: SweepSpec, indices: list[int]) -> Iterator[ChunkResult]:
    """Run chunks one after another in this process (errors propagate)."""
    for i in indices:
        yield run_chunk(spec, i)


__all__ = ["ChunkFailure", "Executor", "local_executor"]
