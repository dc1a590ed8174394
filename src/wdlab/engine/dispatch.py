"""Which engine runs a ``train`` call, decided once: ``resolve`` returns (name, why_not).

    auto      full batch on CUDA: ``triton`` where Triton imports and the kernel covers the
              run; full batch on CPU: ``native`` where a C++ compiler is present and the
              kernel covers the run; else ``compiled`` for full-batch work large enough to
              amortise compilation (``fast.AUTO_MIN_CONFIG_STEPS``), else ``eager``.
    triton,   the all-epochs kernel where it can run; else ``compiled`` (a compiler is present)
    native    or ``eager``, with ``why_not`` saying why (the caller warns).
    compiled, as asked (a compile failure falls back to eager at run time, with a warning).
    eager
    any       minibatch runs always run eagerly (``why_not`` says so only when something
              else was asked).

The rule chain is mapped onto the kernels' flags once, here (``Resolution.plan``); the
kernels take that plan instead of the chain. The primitives (``fast.compiler_available``,
``fast.triton_unavailable``, ``native.unavailable``) are called through their modules, so
a test can replace any of them.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from wdlab.engine import fast
from wdlab.engine.kernels import native
from wdlab.engine.kernels.common import Plan, plan_chain


class Resolution(NamedTuple):
    """The engine that runs, why the asked one cannot (None when it runs), the chain's plan."""

    name: str
    why_not: str | None
    plan: Plan | None = None


def fallback_engine(device: torch.device) -> str:
    """Where an all-epochs kernel cannot run: compiled where a compiler exists, else eager."""
    return "compiled" if fast.compiler_available(device) else "eager"


def kernel_unavailable(name: str, device: torch.device, plan, dtype: torch.dtype,
                       d1: int) -> str | None:
    """None when the all-epochs kernel ``name`` can run here, else why not (one line).

    For ``native`` this builds the library if needed (once per machine)."""
    if name == "triton":
        return fast.triton_unavailable(device, plan, dtype, d1)
    if device.type != "cpu":
        return "it runs on CPU only"
    return native.unavailable(plan, dtype)


def resolve(engine: str, device: torch.device, K: int, epochs: int, full_batch: bool, chain,
            dtype: torch.dtype, d1: int) -> Resolution:
    """Resolve ``engine`` for one run of K configurations x ``epochs`` (see the module doc)."""
    fast.check_engine(engine)
    if not full_batch:
        why = None if engine in ("auto", "eager") else "minibatch runs run eagerly"
        return Resolution("eager", why)
    plan = plan_chain(chain)
    if engine == "auto":
        if device.type == "cuda" and fast.triton_unavailable(device, plan, dtype, d1) is None:
            return Resolution("triton", None, plan)
        if device.type == "cpu" and native.compiler_present():
            why = kernel_unavailable("native", device, plan, dtype, d1)
            if why is None:
                return Resolution("native", None, plan)
            return Resolution(fallback_engine(device), f"native cannot run this: {why}", plan)
        return Resolution(fast.choose_engine("auto", device, K, epochs, True), None, plan)
    if engine in ("triton", "native"):
        why = kernel_unavailable(engine, device, plan, dtype, d1)
        if why is not None:
            return Resolution(fallback_engine(device), f"{engine} cannot run this: {why}", plan)
    return Resolution(engine, None, plan)
