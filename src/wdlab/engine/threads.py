"""Torch's intra-op thread count lowered to one for a block, then restored: the one helper.

Small torch work (tiny eager runs, the closed form's many small SVDs, the demos' small
networks, a native run's inputs and metrics) is faster on one thread: torch's OpenMP workers
spin-wait for a few milliseconds after each parallel op, on cores other work needs.
``torch.set_num_threads`` is process-wide, so concurrent blocks in several Python threads
share one count (none in wdlab run side by side: a speed matter, never one of bits).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_outer = threading.local()  # .threads: torch's count before a keep_for_kernels block


@contextmanager
def one_thread(active: bool = True, *, keep_for_kernels: bool = False) -> Iterator[None]:
    """Run the block on one intra-op thread when ``active`` (torch's count restored on exit,
    exceptions included; a nested block changes nothing). ``keep_for_kernels``: the native
    kernels inside (``engine.kernels.native.kernel_threads``) still get the count from
    before, since only the torch side is meant to be serial."""
    n = torch.get_num_threads()
    if not active or n == 1:
        yield
        return
    kept = getattr(_outer, "threads", None)
    if keep_for_kernels and kept is None:
        _outer.threads = n
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
        _outer.threads = kept


def kept_threads() -> int | None:
    """The thread count a ``keep_for_kernels`` block lowered (in this Python thread), or None."""
    return getattr(_outer, "threads", None)
