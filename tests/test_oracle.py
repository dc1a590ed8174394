"""The float32 oracle rule itself (tests/oracle.py): it passes a genuine float32 run on any
rounding order and fails a run with a small real defect."""

from __future__ import annotations

import pytest
import torch

from oracle import F32_C, F32_FLOOR, assert_f32_close, rel_err, single_run
from wdlab.data.synthetic import make_linear

KW = dict(optimizer="adam", regularizer="mean", loss="mse", lam=0.1, lr=0.03, beta1=0.9,
          beta2=0.999, epochs=60)


@pytest.fixture(scope="module")
def runs():
    d = make_linear(8, 40, 4, w_star=2.0, bias=0.5, noise=0.1, seed=1)
    theta0 = torch.linspace(-1, 1, 9, dtype=torch.float64)
    exact, _ = single_run(d.X_train, d.y_train, theta0, **KW, dtype=torch.float64)
    f32, _ = single_run(d.X_train, d.y_train, theta0, **KW, dtype=torch.float32)
    return d, theta0, exact, f32


def test_another_rounding_order_passes(runs):
    """The same run with the rows summed in reverse order: another float32 rounding sequence."""
    d, theta0, exact, f32 = runs
    flipped, _ = single_run(d.X_train.flip(0), d.y_train.flip(0), theta0, **KW,
                            dtype=torch.float32)
    assert not torch.equal(flipped, f32)  # another rounding sequence indeed
    ratio = assert_f32_close(flipped, f32, exact, msg="flipped rows")
    assert ratio <= F32_C


@pytest.mark.parametrize("defect", [dict(beta2=0.99), dict(lr=0.03 * (1 + 1e-3)),
                                    dict(lam=0.1 * (1 - 1e-2))])
def test_a_small_defect_fails(runs, defect):
    """A wrong beta2, a learning rate off by 0.1% or a penalty off by 1% is caught: theta
    moves by 9e-3, 7e-4 and 4e-5, against a bound of 2e-6 here (float32's own error 2e-7),
    so the margin is >= 10x on any CPU."""
    d, theta0, exact, f32 = runs
    bad, _ = single_run(d.X_train, d.y_train, theta0, **{**KW, **defect}, dtype=torch.float32)
    assert rel_err(bad, exact) > max(F32_FLOOR, F32_C * rel_err(f32, exact))
    with pytest.raises(AssertionError, match="exceeds"):
        assert_f32_close(bad, f32, exact, msg="defect")


def test_floor_and_ratio():
    exact = torch.tensor([1.0, -2.0], dtype=torch.float64)
    same = exact.float()
    assert assert_f32_close(same, same, exact) == 0.0  # both exact: ratio 0
    off = exact * (1 + 1e-6)  # within the floor though the reference is exact
    assert assert_f32_close(off, same, exact) == float("inf")
    with pytest.raises(AssertionError, match="float32 error"):
        assert_f32_close(exact * (1 + 1e-5), same, exact)
