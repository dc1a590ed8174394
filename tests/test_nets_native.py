"""The nets engine ``native`` (one C++ kernel, ``wdlab.nets.native``) against the eager
program: every activation, loss, bias, weighting, batching and recording option gives the
same parameters and metrics to float64 rounding; divergence freezes a lane without touching
its neighbours' bits; results are bitwise reproducible whatever the thread count and the
configurations sharing a block; the engine resolves and falls back as documented.
(tests/test_nets_oracle.py holds both engines to torch.optim.)"""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
from torch import nn

from wdlab.engine.fast import EngineFallbackWarning
from wdlab.engine.kernels import native as linear_native
from wdlab.engine.kernels import native_build
from wdlab.nets import MLP, from_module, train

pytestmark = pytest.mark.skipif(native_build.compiler() is None,
                                reason="no C++ compiler to build the native kernel")

K = 11


def _data(seed: int, n: int = 29, d: int = 3, C: int = 3):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    labels = torch.randint(0, C, (n,), generator=g)
    values = torch.randn(n, C, generator=g, dtype=torch.float64)
    return X, labels, values


def _hyper(optimizer):
    return dict(lam=torch.linspace(0.0, 0.1, K), lr=torch.linspace(1e-3, 4e-2, K),
                beta1=torch.linspace(0.0, 0.9, K) if optimizer == "sgd" else 0.9,
                beta2=torch.linspace(0.9, 0.999, K), seed=torch.arange(K),
                init_scale=torch.linspace(0.5, 1.5, K))


def _assert_same(a, b, rtol=1e-10):
    assert a.extra["engine"] == "eager" and b.extra["engine"] == "native"
    assert set(a.metrics) == set(b.metrics)
    assert a.epochs == b.epochs
    assert torch.equal(a.diverged_epoch, b.diverged_epoch)
    scale = a.theta.abs().nan_to_num(0.0).max().item()
    torch.testing.assert_close(b.theta, a.theta, rtol=rtol, atol=rtol * scale, equal_nan=True)
    for name, v in a.metrics.items():
        torch.testing.assert_close(b.metrics[name], v, rtol=rtol, atol=1e-12, equal_nan=True,
                                   msg=lambda m, name=name: f"{name}: {m}")
    for key in ("snapshots",):
        if key in a.extra:
            torch.testing.assert_close(b.extra[key], a.extra[key], rtol=rtol, atol=rtol * scale,
                                       equal_nan=True)


OPTIONS = list(itertools.product(
    ["relu", "tanh", "gelu", "quadratic", "identity"],
    ["cross_entropy", "mse", "half_mse"],
    [("adamw", "decoupled"), ("adam", "mean"), ("sgd", "weight_decay"), ("sgd", "independent")]))


@pytest.mark.parametrize("i", range(len(OPTIONS)))
def test_native_equals_eager(i):
    """Every (activation, loss, pair) once, with bias, batching, decay policy, weights,
    smoothing and the schedule rotating over the cases."""
    act, loss, (optimizer, regularizer) = OPTIONS[i]
    X, labels, values = _data(i)
    Xt, labels_t, values_t = _data(100 + i, n=13)
    classify = loss == "cross_entropy" or i % 2 == 0  # integer labels: one-hot mse targets
    y, yt = (labels, labels_t) if classify else (values, values_t)
    mlp = MLP(3, [(5, 4), (6,), ()][i % 3], 3, activation=act, bias=i % 4 != 3)
    kw = dict(loss=loss, optimizer=optimizer, regularizer=regularizer, **_hyper(optimizer),
              epochs=6, batch_size=[None, 8, 29, 7][i % 4], batch_seed=i,
              decay=["matrices", "all"][i % 2], schedule=["constant", "cosine",
                                                          "warmup_cosine"][i % 3],
              warmup=3 if i % 3 == 2 else 0, X_test=Xt, y_test=yt,
              label_smoothing=0.1 if loss == "cross_entropy" and i % 2 else 0.0,
              record_every=2, snapshot_epochs=[0, 3, 6], dtype=torch.float64)
    if act == "quadratic":  # z^2 layers amplify: keep the steps stable (as the oracle does)
        kw["lr"], kw["init_scale"] = 0.3 * kw["lr"], 0.5 * kw["init_scale"]
    if i % 5 == 4:
        kw["sample_weight"] = torch.rand(29, generator=torch.Generator().manual_seed(i),
                                         dtype=torch.float64)
    a = train(mlp, X, y, engine="eager", **kw)
    b = train(mlp, X, y, engine="native", **kw)
    _assert_same(a, b)
    assert ("train_accuracy" in b.metrics) == classify


@pytest.mark.parametrize("batch_size", [None, 9])
def test_draws_and_kfold_masks_equal_eager(batch_size):
    """G draws (configurations draw-major), per-draw row weights, and k-fold 0/1 masks over
    one design (one draw whose configurations carry their own weight rows)."""
    draws = [_data(s, n=30, d=4, C=2) for s in range(3)]
    X = [d[0] for d in draws]
    y = [d[1] for d in draws]
    mlp = MLP(4, (6,), 2)
    kw = dict(lam=torch.linspace(0, 0.1, 12), lr=0.02, seed=torch.arange(12), epochs=8,
              batch_size=batch_size, dtype=torch.float64)
    w = [torch.rand(30, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
         for s in range(3)]
    _assert_same(train(mlp, X, y, engine="eager", sample_weight=w, **kw),
                 train(mlp, X, y, engine="native", sample_weight=w, **kw))
    masks = [(torch.arange(30) % 3 != f).double() for f in range(3)]
    same_X, same_y = [X[0]] * 3, [y[0]] * 3
    _assert_same(train(mlp, same_X, same_y, engine="eager", sample_weight=masks, **kw),
                 train(mlp, same_X, same_y, engine="native", sample_weight=masks, **kw))


def test_ten_classes_and_wide_layers_equal_eager():
    """digits-like widths (64 -> 40 -> 10): logsumexp over 10 classes, long dot products."""
    X, labels, _ = _data(7, n=50, d=64, C=10)
    mlp = MLP(64, (40,), 10, activation="gelu")
    kw = dict(lam=torch.linspace(0, 0.05, 9), lr=torch.linspace(1e-3, 1e-2, 9),
              seed=torch.arange(9), epochs=5, dtype=torch.float64)
    _assert_same(train(mlp, X, labels, engine="eager", **kw),
                 train(mlp, X, labels, engine="native", **kw))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch_size", [None, 8])
def test_divergence_freezes_one_lane_and_leaves_the_others_bitwise(dtype, batch_size):
    X, labels, _ = _data(3)
    mlp = MLP(3, (5,), 3)
    lr = torch.full((K,), 0.01)
    kw = dict(lam=1e-2, seed=torch.arange(K), epochs=12, batch_size=batch_size, dtype=dtype,
              engine="native")
    ok = train(mlp, X, labels, lr=lr, **kw)
    bad_lr = lr.clone()
    bad_lr[3] = 1e9
    bad = train(mlp, X, labels, lr=bad_lr, **kw)
    eager = train(mlp, X, labels, lr=bad_lr, **{**kw, "engine": "eager"})
    assert bad.diverged.tolist() == [k == 3 for k in range(K)]
    assert int(bad.diverged_epoch[3]) == int(eager.diverged_epoch[3]) >= 0
    others = [k for k in range(K) if k != 3]
    assert torch.equal(bad.theta[others], ok.theta[others])
    for name, v in ok.metrics.items():
        assert torch.equal(bad.metrics[name][:, others], v[:, others]), name
    # frozen at the parameters that gave the diverged loss: its later metrics stop moving
    e = int(bad.diverged_epoch[3])
    later = [i for i, ep in enumerate(bad.epochs) if ep > e + 1]
    assert later and all(torch.equal(bad.metrics["norm/0.weight"][i, 3],
                                     bad.metrics["norm/0.weight"][later[0], 3]) for i in later)


def test_bitwise_reproducible_across_threads_and_neighbours():
    X, labels, _ = _data(5, n=40)
    mlp = MLP(3, (7, 5), 3)
    kw = dict(lam=torch.linspace(0, 0.1, 20), lr=torch.linspace(1e-3, 3e-2, 20),
              seed=torch.arange(20), epochs=10, batch_size=16, dtype=torch.float32,
              engine="native")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a = train(mlp, X, labels, **kw)
        torch.set_num_threads(1)
        b = train(mlp, X, labels, **kw)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(a.theta, b.theta)
    assert all(torch.equal(a.metrics[n], b.metrics[n]) for n in a.metrics)
    # configuration 13 trained alone (its block padded) has the same bits as among 20
    alone = train(mlp, X, labels, **{**kw, "lam": kw["lam"][13:14], "lr": kw["lr"][13:14],
                                     "seed": kw["seed"][13:14]})
    assert torch.equal(alone.theta[0], a.theta[13])
    assert torch.equal(alone.metrics["train_loss"][:, 0], a.metrics["train_loss"][:, 13])


def test_engine_resolution_and_fallback():
    X, labels, _ = _data(1)
    mlp = MLP(3, (4,), 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert train(mlp, X, labels, epochs=1).extra["engine"] == "native"  # auto
        assert train(mlp, X, labels, epochs=1, engine="eager").extra["engine"] == "eager"

    def factory():
        return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3))

    module = from_module(factory)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto: eager without a warning
        assert train(module, X, labels, epochs=1).extra["engine"] == "eager"
    with pytest.warns(EngineFallbackWarning, match="native cannot run this: it runs MLP"):
        assert train(module, X, labels, epochs=1, engine="native").extra["engine"] == "eager"
    with pytest.raises(ValueError, match="^engine: unknown name 'fast'"):
        train(mlp, X, labels, epochs=1, engine="fast")


def test_from_module_with_few_classes_equals_the_mlp_program():
    """A module of <= 4 classes under cross_entropy (autograd through the small-class
    logsumexp, which once modified exp's output in place) equals the same MLP description
    trained by the eager program from the same parameters."""
    X, labels, _ = _data(2, C=3)
    mlp = MLP(3, (4,), 3)

    def factory():
        return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3))

    kw = dict(lam=torch.linspace(0, 0.1, 5), lr=torch.linspace(1e-3, 3e-2, 5), epochs=6,
              dtype=torch.float64)
    ref = train(mlp, X, labels, seed=torch.arange(5), engine="eager", **kw)
    mod = train(from_module(factory), X, labels, theta0=ref.theta0, **kw)
    assert mod.extra["engine"] == "eager"
    torch.testing.assert_close(mod.theta, ref.theta, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(mod.metrics["train_loss"], ref.metrics["train_loss"],
                               rtol=1e-10, atol=1e-12)


def test_auto_runs_native_unless_a_large_net_half_fills_a_block():
    """``auto``: native for small per-configuration work at any K; for large work (rows x
    parameters >= SMALL_WORK) only once a draw fills a block of lanes."""
    from wdlab.nets import native

    g = torch.Generator().manual_seed(0)
    X = torch.randn(300, 64, generator=g)
    y = torch.randint(0, 10, (300,), generator=g)
    big = MLP(64, (64,), 10)  # 300 rows x 4810 parameters > SMALL_WORK
    assert 300 * big.layout.size >= native.SMALL_WORK
    L = linear_native.lanes(torch.float32)
    assert train(big, X, y, epochs=1, lr=torch.full((1,), 1e-3)).extra["engine"] == "eager"
    assert train(big, X, y, epochs=1, lr=torch.full((L,), 1e-3)).extra["engine"] == "native"
    assert 8 * big.layout.size < native.SMALL_WORK
    assert train(big, X, y, epochs=1, batch_size=8).extra["engine"] == "native"  # 8 rows
    small = MLP(64, (4,), 10)
    assert train(small, X[:50], y[:50], epochs=1).extra["engine"] == "native"


def test_nan_and_empty_edge_cases_equal_eager():
    """A NaN hidden pre-activation propagates through ReLU (and the configuration is frozen,
    as torch.relu's NaN makes eager freeze it); a NaN logit wins the argmax (torch.argmax);
    an empty test set gives NaN test metrics with the other metrics under their names."""
    X, labels, _ = _data(4, n=20)
    mlp = MLP(3, (4,), 3)
    kw = dict(lr=torch.full((3,), 0.01), epochs=3, dtype=torch.float64)
    theta0 = train(mlp, X, labels, seed=torch.arange(3), epochs=1, engine="eager").theta0
    relu_nan = theta0.clone()
    relu_nan[1, 0] = float("nan")  # 0.weight[0, 0]: hidden unit 0 is NaN on every row
    logit_nan = theta0.clone()
    logit_nan[2, 28 + 1] = float("nan")  # 2.bias[1]: class 1's logit is NaN
    for th in (relu_nan, logit_nan):
        _assert_same(train(mlp, X, labels, theta0=th, engine="eager", **kw),
                     train(mlp, X, labels, theta0=th, engine="native", **kw))
    empty = dict(X_test=X[:0], y_test=labels[:0])
    a = train(mlp, X, labels, theta0=theta0, engine="eager", **kw, **empty)
    b = train(mlp, X, labels, theta0=theta0, engine="native", **kw, **empty)
    _assert_same(a, b)
    assert bool(b.metrics["test_loss"].isnan().all())
