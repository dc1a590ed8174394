"""The in-place eager engine (``engine.eager``) against the pure epoch function
(``fast.epoch_step``) it rewrites on fixed buffers: float64 SGD chains bit for bit; float32
runs and Adam chains (one ``torch._fused_adam_`` pass) held to the float64 ``epoch_step`` run
by float32 ``epoch_step``'s own error. Every PAIRS entry, both schedules, decay_bias on and off, float32 and float64, eval
sets, a reference, several draws and configurations that diverge (frozen from their divergence
epoch). The fused Adam's bits do not depend on the tile, the thread count or the neighbours."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from oracle import assert_results_f32_close
from wdlab.data.synthetic import init_weights, make_linear, problem_from_datasets
from wdlab.engine import PAIRS, EngineSpec, Hyper, core, eager, fast, train


@pytest.fixture(scope="module")
def prob():
    draws = [make_linear(5, 8, 6, w_star=1.0, bias=0.5, noise=0.2, seed=s) for s in (1, 2)]
    return problem_from_datasets(draws)


def _hyper(k: int) -> Hyper:
    g = torch.Generator().manual_seed(7)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(k, generator=g, dtype=torch.float64)  # noqa: E731
    lr = 10 ** u(-3, -1.2)
    lr[-1] = 1e4  # one configuration diverges (SGD and Adam alike)
    return Hyper(10 ** u(-3, 0), lr, u(0.0, 0.9), u(0.9, 0.999))


def _pure(monkeypatch, prob, spec, hyper, theta0, **kw):
    """The run by the pure epoch_step, run eagerly by fast.EpochRunner."""
    with monkeypatch.context() as mp:
        orig = core._train

        def pure(*a, **k2):
            a = list(a)
            a[6] = None  # no kernel plan: fast.run_full_batch runs epoch_step per epoch
            return orig(*a, **k2)

        mp.setattr(core, "_train", pure)
        return train(prob, spec, hyper, theta0, **kw)


def _both(prob, monkeypatch, spec, k=8, reference=None, record=None, hyper=None):
    hyper = _hyper(k) if hyper is None else hyper
    theta0 = init_weights(torch.arange(k), 5, 0.5, dtype=spec.dtype)
    kw = dict(record_epochs=record, reference=reference, engine="eager")
    new = train(prob, spec, hyper, theta0, **kw)
    old = _pure(monkeypatch, prob, spec, hyper, theta0, **kw)
    if spec.optimizer == "sgd" and spec.dtype == torch.float64:  # the bits of epoch_step
        return new, old, None
    exact = _pure(monkeypatch, prob, dataclasses.replace(spec, dtype=torch.float64), hyper,
                  theta0.double(), **kw)
    return new, old, exact


def _assert_bitwise(new, old):
    assert new.extra["engine"] == old.extra["engine"] == "eager"
    assert torch.equal(new.theta, old.theta)
    assert torch.equal(new.diverged_epoch, old.diverged_epoch)
    assert new.metrics.keys() == old.metrics.keys()
    for name in new.metrics:
        assert torch.equal(new.metrics[name].nan_to_num(-1.0), old.metrics[name].nan_to_num(-1.0)), name


def _assert_matches(new, old, exact):
    """float64 SGD: the bits of epoch_step. float32 (SGD, and Adam's fused pass): held to the
    float64 epoch_step run, bounded by float32 epoch_step's own error, never to another float32
    rounding sequence (BLAS may round differently on another CPU); float64 Adam to 1e-12;
    divergence epochs equal."""
    if exact is None:
        return _assert_bitwise(new, old)
    assert new.extra["engine"] == old.extra["engine"] == "eager"
    assert torch.equal(new.diverged_epoch, old.diverged_epoch)
    live = new.diverged_epoch < 0
    frozen = ~live
    torch.testing.assert_close(new.theta[frozen], old.theta[frozen], rtol=1e-5, atol=1e-5)
    if new.theta.dtype == torch.float64:
        torch.testing.assert_close(new.theta[live], exact.theta[live], rtol=1e-12, atol=1e-12)
        for name in new.metrics:
            torch.testing.assert_close(new.metrics[name][:, live], exact.metrics[name][:, live],
                                       rtol=1e-10, atol=1e-12, msg=name)
        return None
    return assert_results_f32_close(new, old, exact, configs=live, msg="in-place eager")


@pytest.mark.parametrize(("optimizer", "regularizer"), PAIRS)
@pytest.mark.parametrize("decay_bias", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_in_place_eager_equals_epoch_step(prob, monkeypatch, optimizer, regularizer,
                                                  decay_bias, dtype):
    spec = EngineSpec(optimizer, regularizer, epochs=25, schedule="cosine",
                      decay_bias=decay_bias, dtype=dtype)
    new, old, exact = _both(prob, monkeypatch, spec)
    _assert_matches(new, old, exact)
    assert int((new.diverged_epoch >= 0).sum()) >= 1  # the frozen path ran too


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_in_place_eager_equals_epoch_step_with_reference_and_sparse_records(prob, monkeypatch,
                                                                           dtype):
    spec = EngineSpec("adam", "mean", epochs=30, dtype=dtype)
    ref = torch.randn(8, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    new, old, exact = _both(prob, monkeypatch, spec, reference=ref, record=[0, 3, 17, 30])
    _assert_matches(new, old, exact)
    assert "dist_to_ridge" in new.metrics and new.epochs == [0, 3, 17, 30]


def test_eager_runs_in_place_only_for_a_chain_it_maps(prob):
    spec = EngineSpec("adam", "mean", epochs=3)
    res = train(prob, spec, Hyper.of(4, lam=0.1), init_weights(torch.arange(4), 5),
                engine="eager")
    assert res.extra["engine"] == "eager"
    assert fast.DIVERGENCE_FACTOR == core.DIVERGENCE_FACTOR


def _seed_run(K, spec, lr=None, lam=None):
    prob = problem_from_datasets([make_linear(20, 10, 10, w_star=0.3, noise=0.1, seed=3)])
    g = torch.Generator().manual_seed(1)
    lam = 10 ** (-3 + 3 * torch.rand(K, generator=g, dtype=torch.float64)) if lam is None else lam
    lr = torch.full((K,), 0.05, dtype=torch.float64) if lr is None else lr
    hyper = Hyper(lam, lr, torch.full((K,), 0.9, dtype=torch.float64),
                  torch.full((K,), 0.999, dtype=torch.float64))
    theta0 = init_weights(torch.arange(K), 20, 0.5)
    return prob, hyper, theta0


@pytest.mark.parametrize("regularizer", ["mean", "decoupled", "independent"])
def test_fused_adam_bits_do_not_depend_on_tiles_threads_or_neighbours(monkeypatch, regularizer):
    """A configuration's bits are the same in a sub-run, in tiles of 64, with 2 threads, and
    beside a neighbour whose lr (1e9: it diverges) splits the fused calls."""
    K = 100
    spec = EngineSpec("adam", regularizer, epochs=30, schedule="cosine")
    prob, hyper, theta0 = _seed_run(K, spec)
    base = train(prob, spec, hyper, theta0, engine="eager")
    assert base.extra["engine"] == "eager" and int((base.diverged_epoch >= 0).sum()) == 0
    part = slice(5, 24)  # a sub-run of 19 (a single row is a matrix-vector product in BLAS)
    alone = train(prob, spec, Hyper(hyper.lam[part], hyper.lr[part], hyper.beta1[part],
                                    hyper.beta2[part]), theta0[part], engine="eager")
    assert torch.equal(alone.theta, base.theta[part])
    with monkeypatch.context() as mp:
        mp.setattr(core, "CPU_TILE_BYTES", 64 * 6 * 21 * 4)  # the smallest tile: 64
        tiled = train(prob, spec, hyper, theta0, engine="eager")
    assert tiled.extra["tiles"] == 2 and torch.equal(tiled.theta, base.theta)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        small = train(prob, spec, hyper, theta0, engine="eager")  # too small to share: 1 thread
        assert torch.get_num_threads() == 2
        with monkeypatch.context() as mp:
            mp.setattr(core, "MIN_ENTRIES_PER_THREAD", 1)
            two = train(prob, spec, hyper, theta0, engine="eager")
    finally:
        torch.set_num_threads(threads)
    assert "tiles" not in small.extra and torch.equal(small.theta, base.theta)
    assert two.extra["tiles"] == 2  # one tile per thread, side by side
    assert torch.equal(two.theta, base.theta)
    assert torch.get_num_threads() == threads
    lr = hyper.lr.clone()
    lr[20] = 1e9
    odd = train(prob, spec, Hyper(hyper.lam, lr, hyper.beta1, hyper.beta2), theta0,
                engine="eager")
    assert int(odd.diverged_epoch[20]) >= 0 and int((odd.diverged_epoch >= 0).sum()) == 1
    others = torch.arange(K) != 20
    assert torch.equal(odd.theta[others], base.theta[others])
    for name in base.metrics:
        assert torch.equal(odd.metrics[name][:, others], base.metrics[name][:, others]), name


def test_fused_adam_groups_follow_runs_of_shared_hyperparameters():
    K = 6
    spec = EngineSpec("adam", "mean", epochs=2)
    prob, hyper, theta0 = _seed_run(K, spec, lr=torch.tensor([0.1, 0.1, 0.2, 0.2, 0.1, 0.1],
                                                             dtype=torch.float64))
    C = type("C", (), {})()
    C.lr, C.beta1, C.beta2 = (x.float()[:, None] for x in (hyper.lr, hyper.beta1, hyper.beta2))
    assert [g[:2] for g in eager._groups(C)] == [(0, 2), (2, 4), (4, 6)]
    assert eager.fused_adam_available(torch.device("cpu"))


def test_eager_threads_follow_the_work_size(monkeypatch):
    """Eager tiles run side by side only with >= MIN_ENTRIES_PER_THREAD entries per thread
    (and one tile of 64 configurations each); a small CPU run takes one thread, and torch's count returns."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    per = core.MIN_ENTRIES_PER_THREAD
    assert core._tile_workers("eager", 2 * per // 201, 201) == 2
    assert core._tile_workers("eager", 2 * per // 201 - 1, 201) == 1
    assert core._tile_workers("eager", 64, 10**7) == 1  # one tile of 64 configurations
    assert core._tile_workers("compiled", 10**6, 201) == 1
    cpu = torch.device("cpu")
    assert core._small_eager("eager", cpu, True, 1000, 201)
    assert not core._small_eager("eager", cpu, True, 10_000, 201)
    assert not core._small_eager("eager", cpu, False, 1000, 201)  # minibatch: untouched
    assert not core._small_eager("native", cpu, True, 1000, 201)
