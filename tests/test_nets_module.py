"""from_module: K copies of a user's CNN equal K torch.optim runs; modules that cannot be
stacked are refused in one line."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from nets_reference import torch_run
from oracle import assert_f32_close
from wdlab.nets import from_module, train

K = 6


def cnn():
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 10))


@pytest.fixture(scope="module")
def digits():
    """30 digits with a little pixel noise: no 3x3 patch is zero in every image, so no conv
    feature's relu switches on for all samples at once from a bias at exactly 0 (where
    Adam's float32 step would be decided by the rounding of that bias, not by the data)."""
    d = load_digits()
    gen = torch.Generator().manual_seed(0)
    X = torch.tensor(d.images[:30] / 16.0, dtype=torch.float64)[:, None]  # (30, 1, 8, 8)
    X = X + 0.1 * torch.randn(X.shape, generator=gen, dtype=torch.float64)
    return X, torch.tensor(d.target[:30])


def _flat(sd):
    return torch.cat([v.reshape(-1) for v in sd.values()])


@pytest.mark.parametrize("pair", [("adamw", "decoupled"), ("sgd", "weight_decay"),
                                  ("adam", "mean"), ("adam", "independent")])
@pytest.mark.parametrize("batch", ["full", "mini"])
def test_cnn_matches_torch_optim(digits, pair, batch):
    X, y = digits
    opt, reg = pair
    gen = torch.Generator().manual_seed(7)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(K, generator=gen, dtype=torch.float64)  # noqa: E731
    hp = dict(lr=u(0.02, 0.1) if opt == "sgd" else u(3e-3, 2e-2),
              lam=u(0.0, 0.01 if reg == "independent" else 0.3),
              beta1=u(0.0, 0.8) if opt == "sgd" else u(0.8, 0.95), beta2=u(0.9, 0.999))
    run_kw = dict(loss="cross_entropy", optimizer=opt, regularizer=reg, decay="matrices",
                  schedule="cosine", batch_size=None if batch == "full" else 12, batch_seed=3,
                  epochs=40 if batch == "full" else 14)
    net = from_module(cnn)
    res32 = train(net, X, y, **hp, **run_kw, seed=torch.arange(K), dtype=torch.float32)
    res64 = train(net, X, y, **hp, **run_kw, theta0=res32.theta0.double(), dtype=torch.float64)
    for k in range(K):
        hk = {n: hp[n][k].item() for n in hp}
        sd0 = res32.initial_state_dict(k)
        exact = cnn().double()
        exact.load_state_dict(sd0)
        exact_loss = torch_run(exact, X, y, **hk, **run_kw, dtype=torch.float64)
        exact_theta = _flat(exact.state_dict())
        torch.testing.assert_close(_flat(res64.state_dict(k)), exact_theta, rtol=1e-10,
                                   atol=1e-10 * exact_theta.abs().max().item())
        torch.testing.assert_close(res64.metrics["train_loss"][:, k], exact_loss, rtol=1e-10,
                                   atol=1e-12)
        ref32 = cnn()
        ref32.load_state_dict(sd0)
        ref32_loss = torch_run(ref32, X, y, **hk, **run_kw, dtype=torch.float32)
        assert_f32_close(_flat(res32.state_dict(k)), _flat(ref32.state_dict()), exact_theta,
                         msg=f"configuration {k}, parameters")
        assert_f32_close(res32.metrics["train_loss"][:, k], ref32_loss, exact_loss,
                         msg=f"configuration {k}, train_loss")


def test_init_is_the_factorys_own_seeded_per_configuration():
    net = from_module(cnn)
    th = net.init(torch.tensor([5, 6, 5]), torch.tensor([1.0, 1.0, 2.0]))
    assert torch.equal(th[0] * 2, th[2]) and not torch.equal(th[0], th[1])
    state = torch.random.get_rng_state()
    net.init(torch.tensor([1]))
    assert torch.equal(state, torch.random.get_rng_state())  # the global generator restored


@pytest.mark.parametrize("factory, word", [
    (lambda: nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2)), "BatchNorm1d"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten()), "BatchNorm2d"),
    (lambda: nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5), nn.Linear(3, 2)), "Dropout"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3),
                           nn.InstanceNorm2d(2, track_running_stats=True)), "InstanceNorm2d"),
])
def test_refused_modules_say_why_in_one_line(factory, word):
    with pytest.raises(ValueError) as err:
        from_module(factory)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("model:") and word in msg


def test_eval_mode_batchnorm_and_inactive_dropout_are_accepted(digits):
    def factory():
        m = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.BatchNorm1d(8), nn.ReLU(),
                          nn.Dropout(0.0), nn.Linear(8, 10))
        m[2].eval()
        return m

    X, y = digits
    res = train(from_module(factory), X, y, lr=[1e-2, 2e-2], epochs=3, dtype=torch.float64)
    m = factory().double()
    m.load_state_dict(res.state_dict(1), strict=False)  # buffers are the factory's
    assert res.metrics["train_loss"][-1, 1] == pytest.approx(
        torch.nn.functional.cross_entropy(m(X), y).item(), rel=1e-12)


def test_bad_input_shape_is_one_line(digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"^X: the module cannot take rows shaped \(8, 8\)"):
        train(from_module(cnn), X[:, 0], y, epochs=1)
    with pytest.raises(ValueError, match="^model: factory"):
        from_module(lambda: 3)
