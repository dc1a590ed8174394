"""Shared fixtures: tiny "tall" (n > d) and "wide" (n < d) linear problems."""

from __future__ import annotations

import os

import pytest
import torch

from wdlab.data.synthetic import make_linear

# Triton fixes interpreter mode for its own @jit library functions when triton.language is
# first imported (torch.compile imports it too). Without a GPU the Triton kernel is tested
# in the CPU interpreter, so choose that mode before anything imports triton.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Test problems are tiny: one intra-op thread avoids thread hand-off costing more than the op.
torch.set_num_threads(1)


@pytest.fixture(params=["tall", "wide"])
def shape(request):
    return request.param


@pytest.fixture
def small_problem(shape):
    """A tall (40 x 8) or wide (10 x 30) draw with noise.

    The tall optimum is far from the init, so 50-step Adam runs stay out of the
    converged regime where float32 rounding of a ~0 gradient decides Adam's sign.
    """
    if shape == "tall":
        return make_linear(8, 40, 20, w_star=2.0, bias=0.5, noise=0.1, seed=1)
    return make_linear(30, 10, 20, w_star=0.1, bias=0.5, noise=0.1, seed=2)
