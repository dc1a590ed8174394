"""The batched engine equals K separate one-model runs (torch.optim, or the paper's loop):
the eager tensor program and, for full-batch runs, the native C++ kernel."""

from __future__ import annotations

import pytest
import torch

from oracle import assert_matches_single_runs
from wdlab.conventions import LOSSES
from wdlab.data.synthetic import init_weights, problem_from_datasets
from wdlab.engine import PAIRS, EngineSpec, Hyper, train
from wdlab.engine.kernels import native_build as _native

K = 8


def _random_hyper(optimizer: str, seed: int):
    g = torch.Generator().manual_seed(seed)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(K, generator=g, dtype=torch.float64)  # noqa: E731
    lam = 10 ** u(-3, 0)
    if optimizer == "sgd":
        lr, beta1 = 10 ** u(-3, -1.7), u(0.0, 0.9)
    else:
        lr, beta1 = 10 ** u(-3, -1.3), u(0.5, 0.95)
    beta2 = u(0.9, 0.999)
    return Hyper(lam, lr, beta1, beta2), torch.randint(0, 1000, (K,), generator=g)


def _compare(data, optimizer, regularizer, loss, dtype, *, epochs=60, batch_size=None,
             schedule="constant", seed=0):
    hyper, seeds = _random_hyper(optimizer, seed)
    theta0 = init_weights(seeds, data.n_features, 0.5, dtype=torch.float64)
    spec = EngineSpec(optimizer, regularizer, loss, epochs=epochs, batch_size=batch_size,
                      batch_seed=7, schedule=schedule, dtype=dtype)
    prob = problem_from_datasets([data])
    engines = ["eager"] if batch_size is not None or _native.compiler() is None else [
        "eager", "native"]  # full batch: both the tensor program and the C++ kernel
    res = [train(prob, spec, hyper, theta0.to(dtype), engine=e) for e in engines]
    assert [r.extra["engine"] for r in res] == engines
    kw = dict(optimizer=optimizer, regularizer=regularizer, loss=loss, epochs=epochs,
              batch_size=batch_size, batch_seed=7, schedule=schedule)
    # float64: every engine to 1e-10 of the float64 one-model run; float32: every engine is
    # held to the float64 one-model run, bounded by torch.optim's own float32 error (oracle)
    assert_matches_single_runs(data.X_train, data.y_train, res, hyper, theta0, rtol=1e-10, **kw)
    assert all((r.diverged_epoch == -1).all() for r in res)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize(("optimizer", "regularizer"), PAIRS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_batched_equals_single_runs(small_problem, optimizer, regularizer, loss, dtype):
    _compare(small_problem, optimizer, regularizer, loss, dtype)


@pytest.mark.parametrize(("optimizer", "regularizer"), PAIRS)
def test_minibatch_cosine_equals_single_runs(small_problem, optimizer, regularizer):
    _compare(small_problem, optimizer, regularizer, "half_mse", torch.float64, epochs=20,
             batch_size=3, schedule="cosine", seed=3)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_coupled_weight_decay_equals_half_sum_penalty(small_problem, optimizer):
    hyper, seeds = _random_hyper(optimizer, 5)
    theta0 = init_weights(seeds, small_problem.n_features, 1.0, dtype=torch.float64)
    prob = problem_from_datasets([small_problem])
    out = [train(prob, EngineSpec(optimizer, reg, epochs=50, dtype=torch.float64), hyper, theta0)
           for reg in ("weight_decay", "half_sum")]
    torch.testing.assert_close(out[0].theta, out[1].theta, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out[0].metrics["objective"], out[1].metrics["objective"],
                               rtol=1e-12, atol=1e-12)
