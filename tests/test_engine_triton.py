"""The fused Triton kernel (engine ``triton``) in Triton's CPU interpreter: equals the
torch.optim oracles over every PAIRS entry and the eager engine over 100 steps (eval sets,
reference, several draws, divergence); falls back with a warning where it cannot run.

The interpreter runs the kernel op by op in numpy, so every problem here is tiny (and the
eager comparison 100 steps, not the native kernel's 200: 40-100 s each on two loaded cores).
"""

from __future__ import annotations

import importlib.util
import warnings

import pytest
import torch

from oracle import assert_matches_single_runs, assert_results_f32_close
from wdlab.data.synthetic import init_weights, make_linear, problem_from_datasets
from wdlab.engine import PAIRS, EngineFallbackWarning, EngineSpec, Hyper, build_chain, fast, train
from wdlab.engine.kernels import native
from wdlab.engine.kernels import triton as fused

needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                                  reason="triton is not installed (pip install triton)")
K = 6


@pytest.fixture
def interpret(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def small():
    return make_linear(5, 6, 4, w_star=2.0, bias=0.5, noise=0.1, seed=1)


def _hyper(optimizer: str, k: int = K, seed: int = 0) -> Hyper:
    g = torch.Generator().manual_seed(seed)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(k, generator=g, dtype=torch.float64)  # noqa: E731
    hi_lr = -1.7 if optimizer == "sgd" else -1.3
    return Hyper(10 ** u(-3, 0), 10 ** u(-3, hi_lr), u(0.5, 0.9), u(0.9, 0.999))


def _train(prob, optimizer, regularizer, engine, *, epochs=30, schedule="constant", k=K,
           hyper=None, dtype=torch.float32, **kw):
    hyper = _hyper(optimizer, k) if hyper is None else hyper
    theta0 = init_weights(torch.arange(k), prob.X.shape[2] - 1, 0.5, dtype=torch.float32)
    spec = EngineSpec(optimizer, regularizer, "mse", epochs=epochs, schedule=schedule,
                      dtype=dtype)
    theta0 = theta0.to(dtype)
    return hyper, theta0, train(prob, spec, hyper, theta0, engine=engine, **kw)


@needs_triton
@pytest.mark.parametrize(("optimizer", "regularizer"), PAIRS)
def test_triton_equals_single_runs(interpret, small, optimizer, regularizer):
    hyper, theta0, res = _train(problem_from_datasets([small]), optimizer, regularizer, "triton")
    assert res.extra["engine"] == "triton"
    assert_matches_single_runs(  # float32: held to the float64 one-model run (oracle.py)
        small.X_train, small.y_train, res, hyper, theta0, optimizer=optimizer,
        regularizer=regularizer, loss="mse", epochs=30)


@needs_triton
@pytest.mark.parametrize(("optimizer", "regularizer", "schedule"),
                         [("adam", "mean", "constant"), ("sgd", "independent", "cosine"),
                          ("adamw", "decoupled", "cosine")])
def test_triton_equals_eager_100_steps(interpret, optimizer, regularizer, schedule):
    """Two draws with M = 3 configurations each (blocks straddle draws), an eval set, the
    closed-form reference and a subset of recorded epochs, held to the float64 eager run with
    a bound set by eager float32's own error. Learning rates stay small enough that Adam does
    not rattle around its fixed point (where float rounding is amplified)."""
    draws = [make_linear(3, 8, 3, w_star=1.5, bias=0.3, noise=0.1, seed=s) for s in (2, 3)]
    prob = problem_from_datasets(draws)
    ref = torch.randn(K, 4, generator=torch.Generator().manual_seed(0))
    h = _hyper(optimizer)
    kw = dict(epochs=100, schedule=schedule, reference=ref, record_epochs=[0, 1, 7, 75, 100],
              hyper=Hyper(h.lam, h.lr / 4, h.beta1, h.beta2))
    _, _, exact = _train(prob, optimizer, regularizer, "eager", dtype=torch.float64, **kw)
    _, _, eager = _train(prob, optimizer, regularizer, "eager", **kw)
    _, _, tri = _train(prob, optimizer, regularizer, "triton", **kw)
    assert tri.extra["engine"] == "triton"
    assert set(tri.metrics) == set(eager.metrics) and "test_mse" in tri.metrics
    assert_results_f32_close(tri, eager, exact, msg="triton")
    assert torch.equal(tri.diverged_epoch, eager.diverged_epoch)


@needs_triton
def test_triton_freezes_diverged_configs_like_eager(interpret, small):
    prob = problem_from_datasets([small])
    lr = torch.full((K,), 1e-2, dtype=torch.float64)
    lr[::2] = 50.0  # plain SGD with a huge step diverges within a few epochs
    h = _hyper("sgd")
    hyper = Hyper(h.lam, lr, h.beta1, h.beta2)
    _, _, exact = _train(prob, "sgd", "mean", "eager", hyper=hyper, dtype=torch.float64)
    _, _, eager = _train(prob, "sgd", "mean", "eager", hyper=hyper)
    _, _, tri = _train(prob, "sgd", "mean", "triton", hyper=hyper)
    assert (eager.diverged_epoch[::2] > 0).all() and (eager.diverged_epoch[1::2] == -1).all()
    # lr = 50 grows the iterate by orders of magnitude per epoch: the epoch it overflows at
    # does not depend on rounding, so equality holds on any CPU
    assert torch.equal(tri.diverged_epoch, eager.diverged_epoch)
    assert torch.equal(exact.diverged_epoch, eager.diverged_epoch)
    assert_results_f32_close(tri, eager, exact, configs=eager.diverged_epoch == -1)


@needs_triton
def test_epoch_chunks_are_bitwise_identical(interpret, small, monkeypatch):
    """Launches of a few epochs each (state through memory, beta^t restarted) = one launch."""
    prob = problem_from_datasets([small])
    one = _train(prob, "adam", "mean", "triton", epochs=20)[2]
    monkeypatch.setattr(fused, "EPOCHS_PER_LAUNCH", 7)
    chunked = _train(prob, "adam", "mean", "triton", epochs=20)[2]
    assert torch.equal(one.theta, chunked.theta)
    for name in one.metrics:
        assert torch.equal(one.metrics[name], chunked.metrics[name]), name


def test_no_triton_backend_falls_back_with_warning(small, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setattr(fast, "compiler_available", lambda device: False)
    prob = problem_from_datasets([small])
    with pytest.warns(EngineFallbackWarning, match="triton"):
        res = _train(prob, "adam", "decoupled", "triton")[2]
    eager = _train(prob, "adam", "decoupled", "eager")[2]
    assert res.extra["engine"] == "eager"
    assert torch.equal(res.theta, eager.theta)


@needs_triton
def test_uncovered_dtype_falls_back_with_warning(interpret, small, monkeypatch):
    monkeypatch.setattr(fast, "compiler_available", lambda device: False)
    prob = problem_from_datasets([small])
    spec = EngineSpec("adam", "mean", epochs=3, dtype=torch.float64)
    theta0 = init_weights(torch.arange(K), 5, 0.5, dtype=torch.float64)
    with pytest.warns(EngineFallbackWarning, match="float32 only"):
        res = train(prob, spec, _hyper("adam"), theta0, engine="triton")
    assert res.extra["engine"] == "eager"


def test_kernel_failure_falls_back_with_warning(small, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("ptxas died (simulated)")

    monkeypatch.setattr(fast, "compiler_available", lambda device: False)
    monkeypatch.setattr(fast, "triton_unavailable", lambda *a: None)
    monkeypatch.setattr(fused, "run", broken)
    prob = problem_from_datasets([small])
    with pytest.warns(EngineFallbackWarning, match="simulated"):
        res = _train(prob, "sgd", "sum", "triton")[2]
    assert res.extra["engine"] == "eager"
    assert torch.equal(res.theta, _train(prob, "sgd", "sum", "eager")[2].theta)


@pytest.mark.parametrize(("optimizer", "regularizer"), PAIRS)
@pytest.mark.parametrize("momentum", [True, False])
def test_every_registry_chain_is_covered(optimizer, regularizer, momentum):
    chain = build_chain(optimizer, regularizer, n_decayed=5, momentum=momentum)
    assert fused.covers(chain, torch.float32, 6) is None
    opt, scale, decoupled, independent, _ = fused.plan_chain(chain)
    assert opt == (2 if optimizer != "sgd" else int(momentum))
    assert (scale is None) == (regularizer in ("decoupled", "independent"))
    assert (decoupled, independent) == (regularizer == "decoupled", regularizer == "independent")


def test_coverage_limits():
    chain = build_chain("adam", "mean", n_decayed=5)
    assert "float32" in fused.covers(chain, torch.float64, 6)
    assert "parameters" in fused.covers(chain, torch.float32, fused.MAX_D1 + 1)
    assert fused.plan_chain(chain[1:]) is not None  # Adam with no penalty is still a chain
    assert fused.plan_chain(chain[:-1]) is None  # no learning-rate scaling: not covered


def test_auto_picks_triton_on_cuda_only_when_covered(monkeypatch):
    monkeypatch.setattr(native, "compiler_present", lambda: False)  # CPU: no native kernel
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert fast.choose_engine("auto", cuda, 1, 10, True, triton_ok=True) == "triton"
    assert fast.choose_engine("auto", cuda, 1, 10, False, triton_ok=True) == "eager"
    assert fast.choose_engine("auto", cpu, 1, 10, True, triton_ok=True) == "eager"
    assert fast.choose_engine("triton", cpu, 1, 10, True) == "triton"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fast.choose_engine("auto", cuda, 10**6, 100, True, triton_ok=False) in (
            "compiled", "eager")
