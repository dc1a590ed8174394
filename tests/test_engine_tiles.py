"""CPU cache tiling of the engine: same numbers as one untiled call, in order."""

from __future__ import annotations

import pytest
import torch

import wdlab.engine.core as core
from oracle import assert_results_f32_close
from wdlab.data.synthetic import init_weights, make_linear, problem_from_datasets
from wdlab.engine import EngineSpec, Hyper, train
from wdlab.engine.fast import compiler_available

pytestmark = pytest.mark.skipif(not compiler_available(torch.device("cpu")),
                                reason="no C++ compiler for torch.compile on CPU")


def test_tile_ranges_cover_the_configuration_axis_in_order():
    for G, M, tile in [(1, 150, 64), (4, 32, 64), (3, 50, 64), (5, 7, 64), (2, 64, 64)]:
        ranges = core._tile_ranges(G, M, tile)
        assert ranges[0][2] == 0 and ranges[-1][3] == G * M
        for (g0, g1, a, b), nxt in zip(ranges, ranges[1:] + [None], strict=True):
            assert g0 * M <= a < b <= g1 * M and b - a <= max(tile, M)
            if nxt is not None:
                assert nxt[2] == b


@pytest.mark.parametrize("engine", ["eager", "compiled"])
@pytest.mark.parametrize("n_draws", [1, 4])
def test_tiled_equals_untiled(monkeypatch, n_draws, engine):
    draws = [make_linear(20, 10, 6, w_star=0.3, noise=0.1, seed=s) for s in range(n_draws)]
    prob = problem_from_datasets(draws)
    K = 128
    lam = torch.logspace(-3, 0, K, dtype=torch.float64)
    lr = torch.full((K,), 0.01, dtype=torch.float64)
    lr[100] = 1e9  # diverges, in the second tile
    hyper = Hyper(lam, lr, torch.full((K,), 0.9, dtype=torch.float64),
                  torch.full((K,), 0.999, dtype=torch.float64))
    theta0 = init_weights(torch.arange(K) % 5, 20)
    spec = EngineSpec("adam", "mean", epochs=40)
    ref = train(prob, spec, hyper, theta0, engine="eager")
    exact = train(prob, EngineSpec("adam", "mean", epochs=40, dtype=torch.float64), hyper,
                  theta0.double(), engine="eager")
    monkeypatch.setattr(core, "CPU_TILE_BYTES", 64 * 6 * 21 * 4)  # tiles of 64 configurations
    tiled = train(prob, spec, hyper, theta0, engine=engine)
    assert tiled.extra["tiles"] == 2 and tiled.extra["engine"] == engine
    again = train(prob, spec, hyper, theta0, engine=engine)
    assert torch.equal(tiled.theta, again.theta)  # deterministic
    assert torch.equal(tiled.diverged_epoch, ref.diverged_epoch)
    assert int(tiled.diverged_epoch[100]) >= 0 and int((tiled.diverged_epoch >= 0).sum()) == 1
    # float32 tiles held to the untiled float64 run, bounded by untiled float32's own error
    assert_results_f32_close(tiled, ref, exact, configs=ref.diverged_epoch < 0, msg=engine)
