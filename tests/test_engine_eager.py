"""The in-place eager engine (``engine.eager``) equals, bit for bit, the pure epoch function
(``fast.epoch_step``) it rewrites on fixed buffers: every PAIRS entry, both schedules,
decay_bias on and off, float32 and float64, eval sets, a reference, several draws and
configurations that diverge (frozen from their divergence epoch)."""

from __future__ import annotations

import pytest
import torch

from wdlab.data import init_weights, make_linear, problem_from_datasets
from wdlab.engine import PAIRS, EngineSpec, Hyper, core, fast, train


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


def _both(prob, monkeypatch, spec, k=8, reference=None, record=None):
    hyper = _hyper(k)
    theta0 = init_weights(torch.arange(k), 5, 0.5, dtype=spec.dtype)
    kw = dict(record_epochs=record, reference=reference, engine="eager")
    new = train(prob, spec, hyper, theta0, **kw)
    with monkeypatch.context() as mp:  # the pure epoch_step, run eagerly by fast.EpochRunner
        orig = core._train

        def pure(*a, **k2):
            a = list(a)
            a[6] = None  # no kernel plan: fast.run_full_batch runs epoch_step per epoch
            return orig(*a, **k2)

        mp.setattr(core, "_train", pure)
        old = train(prob, spec, hyper, theta0, **kw)
    return new, old


def _assert_bitwise(new, old):
    assert new.extra["engine"] == old.extra["engine"] == "eager"
    assert torch.equal(new.theta, old.theta)
    assert torch.equal(new.diverged_epoch, old.diverged_epoch)
    assert new.metrics.keys() == old.metrics.keys()
    for name in new.metrics:
        assert torch.equal(new.metrics[name].nan_to_num(-1.0), old.metrics[name].nan_to_num(-1.0)), name


@pytest.mark.parametrize(("optimizer", "regularizer"), PAIRS)
@pytest.mark.parametrize("decay_bias", [False, True])
def test_in_place_eager_equals_epoch_step_bitwise(prob, monkeypatch, optimizer, regularizer,
                                                  decay_bias):
    spec = EngineSpec(optimizer, regularizer, epochs=25, schedule="cosine",
                      decay_bias=decay_bias)
    new, old = _both(prob, monkeypatch, spec)
    _assert_bitwise(new, old)
    assert int((new.diverged_epoch >= 0).sum()) >= 1  # the frozen path ran too


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_in_place_eager_equals_epoch_step_with_reference_and_sparse_records(prob, monkeypatch,
                                                                           dtype):
    spec = EngineSpec("adam", "mean", epochs=30, dtype=dtype)
    ref = torch.randn(8, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    new, old = _both(prob, monkeypatch, spec, reference=ref, record=[0, 3, 17, 30])
    _assert_bitwise(new, old)
    assert "dist_to_ridge" in new.metrics and new.epochs == [0, 3, 17, 30]


def test_eager_runs_in_place_only_for_a_chain_it_maps(prob):
    spec = EngineSpec("adam", "mean", epochs=3)
    res = train(prob, spec, Hyper.of(4, lam=0.1), init_weights(torch.arange(4), 5),
                engine="eager")
    assert res.extra["engine"] == "eager"
    assert fast.DIVERGENCE_FACTOR == core.DIVERGENCE_FACTOR
