"""Fast paths of the engine: compiled equals eager and the one-model oracles; fallbacks.

Compilation is slow on two cores, so every compiled case here uses the same K and problem
shapes and each (optimizer, regularizer) chain compiles once for the whole module.
"""

from __future__ import annotations

import pytest
import torch

from oracle import assert_matches_single_runs, assert_results_f32_close
from wdlab.data.synthetic import init_weights, make_linear, problem_from_datasets
from wdlab.engine import PAIRS, EngineFallbackWarning, EngineSpec, Hyper, fast, train

K = 8
needs_compiler = pytest.mark.skipif(not fast.compiler_available(torch.device("cpu")),
                                    reason="torch.compile has no C++ compiler here")


@pytest.fixture(scope="module")
def tall():
    return make_linear(8, 40, 20, w_star=2.0, bias=0.5, noise=0.1, seed=1)


def _hyper(optimizer: str, seed: int = 0) -> Hyper:
    g = torch.Generator().manual_seed(seed)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(K, generator=g, dtype=torch.float64)  # noqa: E731
    hi_lr = -1.7 if optimizer == "sgd" else -1.3
    return Hyper(10 ** u(-3, 0), 10 ** u(-3, hi_lr), u(0.5, 0.9), u(0.9, 0.999))


def _run(data, optimizer, regularizer, engine, *, epochs=50, schedule="constant", lr=None,
         dtype=torch.float32):
    hyper = _hyper(optimizer)
    if lr is not None:
        hyper = Hyper(hyper.lam, lr, hyper.beta1, hyper.beta2)
    theta0 = init_weights(torch.arange(K), data.n_features, 0.5, dtype=torch.float32).to(dtype)
    spec = EngineSpec(optimizer, regularizer, "mse", epochs=epochs, schedule=schedule,
                      dtype=dtype)
    return hyper, theta0, train(problem_from_datasets([data]), spec, hyper, theta0, engine=engine)


@needs_compiler
@pytest.mark.parametrize(("optimizer", "regularizer"), PAIRS)
def test_compiled_equals_single_runs(tall, optimizer, regularizer):
    hyper, theta0, res = _run(tall, optimizer, regularizer, "compiled")
    assert res.extra["engine"] == "compiled"
    assert_matches_single_runs(  # float32: held to the float64 one-model run (oracle.py)
        tall.X_train, tall.y_train, res, hyper, theta0, optimizer=optimizer,
        regularizer=regularizer, loss="mse", epochs=50)


@needs_compiler
@pytest.mark.parametrize(("optimizer", "regularizer", "schedule"),
                         [("adam", "mean", "constant"), ("sgd", "independent", "cosine")])
def test_compiled_equals_eager_200_steps(tall, optimizer, regularizer, schedule):
    """float32 compiled held to the float64 eager run, bounded by eager float32's own error."""
    kw = dict(epochs=200, schedule=schedule)
    _, _, exact = _run(tall, optimizer, regularizer, "eager", dtype=torch.float64, **kw)
    _, _, eager = _run(tall, optimizer, regularizer, "eager", **kw)
    _, _, comp = _run(tall, optimizer, regularizer, "compiled", **kw)
    assert_results_f32_close(comp, eager, exact, msg="compiled")


@needs_compiler
def test_compiled_freezes_diverged_configs_like_eager(tall):
    lr = torch.full((K,), 1e-2, dtype=torch.float64)
    lr[::2] = 50.0  # plain SGD with a huge step diverges within a few epochs
    _, _, exact = _run(tall, "sgd", "mean", "eager", lr=lr, dtype=torch.float64)
    _, _, eager = _run(tall, "sgd", "mean", "eager", lr=lr)
    _, _, comp = _run(tall, "sgd", "mean", "compiled", lr=lr)
    assert (eager.diverged_epoch[::2] > 0).all() and (eager.diverged_epoch[1::2] == -1).all()
    # lr = 50 grows the iterate by orders of magnitude per epoch: the epoch it overflows at
    # does not depend on rounding, so equality holds on any CPU
    assert torch.equal(comp.diverged_epoch, eager.diverged_epoch)
    assert torch.equal(exact.diverged_epoch, eager.diverged_epoch)
    assert_results_f32_close(comp, eager, exact, configs=eager.diverged_epoch == -1)


@pytest.mark.parametrize("engine", ["eager", pytest.param("compiled", marks=needs_compiler)])
def test_runs_are_bitwise_reproducible(tall, engine):
    a = _run(tall, "adam", "mean", engine)[2]
    b = _run(tall, "adam", "mean", engine)[2]
    assert torch.equal(a.theta, b.theta)
    for name in a.metrics:
        assert torch.equal(a.metrics[name].nan_to_num(), b.metrics[name].nan_to_num()), name


def test_compile_failure_falls_back_to_eager(tall, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no toolchain (simulated)")

    monkeypatch.setattr(fast, "compiled_step", lambda: broken)
    with pytest.warns(EngineFallbackWarning, match="simulated"):
        _, _, res = _run(tall, "adam", "decoupled", "compiled")
    _, _, eager = _run(tall, "adam", "decoupled", "eager")
    assert res.extra["engine"] == "eager"
    assert torch.equal(res.theta, eager.theta)


def test_auto_chooses_eager_when_compiling_would_not_pay(tall, monkeypatch):
    from wdlab.engine.kernels import native

    monkeypatch.setattr(native, "compiler_present", lambda: False)  # no native kernel
    cpu = torch.device("cpu")
    assert fast.choose_engine("auto", cpu, 8, 50, full_batch=True) == "eager"
    assert fast.choose_engine("auto", cpu, 10**6, 100, full_batch=False) == "eager"
    monkeypatch.setattr(fast, "compiler_available", lambda device: False)
    assert fast.choose_engine("auto", cpu, 10**6, 100, full_batch=True) == "eager"
    monkeypatch.setattr(fast, "compiler_available", lambda device: True)
    assert fast.choose_engine("auto", cpu, 10**6, 100, full_batch=True) == "compiled"
    assert fast.choose_engine("compiled", cpu, 1, 1, full_batch=True) == "compiled"
    assert _run(tall, "sgd", "sum", "auto")[2].extra["engine"] == "eager"


def test_unknown_engine_is_rejected(tall):
    with pytest.raises(ValueError, match="engine"):
        _run(tall, "adam", "mean", "turbo")


def test_flush_denormals_is_scoped(tall):
    tiny = torch.tensor([1e-39], dtype=torch.float32)
    torch.set_flush_denormal(False)
    with fast.flush_denormals(torch.device("cpu")):
        if torch.set_flush_denormal(True):  # supported on this CPU: flushing inside
            assert (tiny * 1.0).item() == 0.0
    assert (tiny * 1.0).item() != 0.0  # and the caller's state is back afterwards
    _run(tall, "adam", "mean", "eager")
    assert (tiny * 1.0).item() != 0.0
