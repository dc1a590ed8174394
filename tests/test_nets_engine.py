"""wdlab.nets.train: the MLP description, metrics, losses, divergence, reproducibility,
tiling, data draws and one-line errors on bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nets_reference import torch_run
from wdlab.nets import MLP, train

N = 30


@pytest.fixture(scope="module")
def blobs():
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(N, 4, generator=gen, dtype=torch.float64)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()  # 3 classes
    Xt = torch.randn(12, 4, generator=gen, dtype=torch.float64)
    yt = (Xt[:, 0] > 0).long() + (Xt[:, 1] > 0.5).long()
    return X, y, Xt, yt


def test_to_module_matches_layout_and_forward(blobs):
    X, y, _, _ = blobs
    mlp = MLP(4, (6, 5), 3, "gelu")
    mod = mlp.to_module()
    assert list(mod.state_dict()) == list(mlp.layout.names) == [
        "0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert [tuple(v.shape) for v in mod.state_dict().values()] == list(mlp.layout.shapes)
    res = train(mlp, X, y, lr=[0.01, 0.02], epochs=3, dtype=torch.float64)
    for k in range(2):
        m = mlp.to_module().double()
        m.load_state_dict(res.state_dict(k))
        assert res.metrics["train_loss"][-1, k].item() == pytest.approx(
            F.cross_entropy(m(X), y).item(), rel=1e-13)
    assert res.param("2.weight").shape == (2, 5, 6)


def test_init_is_pytorch_default_linear_init_seeded_per_configuration():
    mlp = MLP(50, (40,), 30)
    th = mlp.init(torch.tensor([1, 2, 1]), torch.tensor([1.0, 1.0, 3.0]))
    assert torch.equal(th[0] * 3, th[2]) and not torch.equal(th[0], th[1])
    lay = mlp.layout
    for name, fan_in in (("0.weight", 50), ("0.bias", 50), ("2.weight", 40), ("2.bias", 40)):
        v = lay.view(th[:1], name).reshape(-1)
        bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) and nn.Linear's bias bound
        assert v.abs().max() <= bound
        assert v.abs().max() > 0.9 * bound
    w = lay.view(th[:1], "0.weight").reshape(-1)  # 2000 draws of U(-b, b): std b / sqrt(3)
    assert w.std().item() == pytest.approx(1 / math.sqrt(50) / math.sqrt(3), rel=0.06)


def test_metrics_are_the_data_loss_accuracy_penalty_and_norms(blobs):
    X, y, Xt, yt = blobs
    mlp = MLP(4, (6,), 3, "tanh")
    lam = torch.tensor([0.0, 0.3, 1.0])
    res = train(mlp, X, y, X_test=Xt, y_test=yt, optimizer="adam", regularizer="mean",
                lam=lam, lr=0.05, epochs=6, record_every=3, dtype=torch.float64)
    assert res.epochs == [0, 3, 6]
    names = {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "penalty",
             "objective", "norm/0.weight", "norm/0.bias", "norm/2.weight", "norm/2.bias"}
    assert set(res.metrics) == names
    for k in range(3):
        m = mlp.to_module().double()
        m.load_state_dict(res.state_dict(k))
        with torch.no_grad():
            out, out_t = m(X), m(Xt)
        assert res.final("train_loss")[k].item() == pytest.approx(F.cross_entropy(out, y).item(),
                                                                 rel=1e-13)
        assert res.final("test_loss")[k].item() == pytest.approx(
            F.cross_entropy(out_t, yt).item(), rel=1e-13)
        assert res.final("test_accuracy")[k].item() == pytest.approx(
            (out_t.argmax(1) == yt).double().mean().item())
        ws = [m[0].weight, m[2].weight]  # "matrices": biases are not decayed
        n_dec = sum(w.numel() for w in ws)
        pen = lam[k].item() * sum((w * w).sum().item() for w in ws) / n_dec  # lam * mean(w^2)
        assert res.final("penalty")[k].item() == pytest.approx(pen, rel=1e-12, abs=1e-300)
        assert res.final("objective")[k].item() == pytest.approx(
            res.final("train_loss")[k].item() + pen, rel=1e-12)
        assert res.final("norm/0.bias")[k].item() == pytest.approx(
            m[0].bias.norm().item(), rel=1e-12)
    assert res.extra["n_decayed"] == 4 * 6 + 6 * 3


@pytest.mark.parametrize("loss, labels, smoothing", [
    ("cross_entropy", True, 0.1), ("mse", True, 0.0), ("half_mse", False, 0.0)])
def test_other_losses_match_torch(blobs, loss, labels, smoothing):
    """label smoothing, mse on one-hot targets (grokking style), half_mse on regression."""
    X, y, _, _ = blobs
    C = 3 if labels else 2
    target = y if labels else torch.stack([X[:, 0] - X[:, 1], X[:, 2] * X[:, 3]], 1)
    mlp = MLP(4, (5,), C, "relu")
    hp = dict(lr=torch.tensor([0.01, 0.03]), lam=torch.tensor([0.1, 0.0]))
    kw = dict(loss=loss, optimizer="adamw", regularizer="decoupled", schedule="warmup_cosine",
              warmup=4, epochs=10, batch_size=8, batch_seed=5)
    res = train(mlp, X, target, **hp, **kw, label_smoothing=smoothing, seed=[3, 4],
                dtype=torch.float64)
    if labels:
        assert "train_accuracy" in res.metrics
    for k in range(2):
        m = mlp.to_module().double()
        m.load_state_dict(res.initial_state_dict(k))
        curve = torch_run(m, X, target, lr=hp["lr"][k].item(), lam=hp["lam"][k].item(),
                          beta1=0.9, beta2=0.999, smoothing=smoothing, **kw)
        torch.testing.assert_close(res.metrics["train_loss"][:, k], curve, rtol=1e-10, atol=0)
        for n, v in m.state_dict().items():
            torch.testing.assert_close(res.state_dict(k)[n], v, rtol=1e-10, atol=1e-12)


def test_bias_free_mlp_and_predicate_decay_policy(blobs):
    X, y, _, _ = blobs
    mlp = MLP(4, (6,), 3, "identity", bias=False)
    assert mlp.layout.names == ("0.weight", "2.weight")
    res = train(mlp, X, y, lam=0.1, regularizer="decoupled", epochs=2,
                decay=lambda name: name.startswith("2."))
    assert res.extra["n_decayed"] == 18


def test_diverging_configuration_is_frozen_and_flagged_others_bitwise_unaffected(blobs):
    X, y, _, _ = blobs
    mlp = MLP(4, (8,), 3, "relu")
    lr = torch.tensor([1e-2, 1e9, 3e-2, 1e-3])
    for kw in (dict(), dict(batch_size=7)):
        bad = train(mlp, X, y, optimizer="adam", regularizer="half_sum", lam=0.01, lr=lr,
                    seed=[0, 1, 2, 3], epochs=8, **kw)
        ok_lr = lr.clone()
        ok_lr[1] = 1e-2
        good = train(mlp, X, y, optimizer="adam", regularizer="half_sum", lam=0.01, lr=ok_lr,
                     seed=[0, 1, 2, 3], epochs=8, **kw)
        assert bad.diverged.tolist() == [False, True, False, False]
        assert bad.diverged_epoch[1] >= 0 and bool(torch.isfinite(bad.theta[1]).all())
        keep = [0, 2, 3]
        assert torch.equal(bad.theta[keep], good.theta[keep])
        for n in bad.metrics:
            assert torch.equal(bad.metrics[n][:, keep], good.metrics[n][:, keep]), n
        e = int(bad.diverged_epoch[1])  # frozen: the parameters stop changing
        assert torch.equal(bad.metrics["norm/0.weight"][e + 1:, 1],
                           bad.metrics["norm/0.weight"][-1:, 1].expand(8 - e))


def test_same_seeds_bitwise_identical_and_tiles_change_only_rounding(blobs):
    """Same call twice: the same bits. Cache tiles change no arithmetic, only where a
    configuration sits in its tensors; torch's vectorized transcendental kernels (pow in
    Adam's bias correction, exp, tanh) round a SIMD tail differently, hence 1-ulp changes."""
    X, y, Xt, yt = blobs
    mlp = MLP(4, (7, 5), 3, "gelu")
    kw = dict(X_test=Xt, y_test=yt, lr=torch.logspace(-3, -1, 10), lam=0.05, beta1=0.85,
              seed=torch.arange(10) % 3, init_scale=torch.linspace(0.5, 2, 10), epochs=5,
              batch_size=9, batch_seed=11)
    for full in (False, True):
        kw["batch_size"] = None if full else 9
        a, b = train(mlp, X, y, **kw), train(mlp, X, y, **kw)
        assert torch.equal(a.theta, b.theta) and torch.equal(a.theta0, b.theta0)
        for n in a.metrics:
            assert torch.equal(a.metrics[n], b.metrics[n]), n
        a64 = train(mlp, X, y, **kw, dtype=torch.float64, engine="eager")  # tiles: eager's
        c64 = train(mlp, X, y, **kw, tile=3, dtype=torch.float64, engine="eager")
        assert c64.extra["tiles"] == 4 and a64.extra["tiles"] == 1
        torch.testing.assert_close(c64.theta, a64.theta, rtol=1e-13, atol=1e-15)
        for n in a.metrics:
            torch.testing.assert_close(c64.metrics[n], a64.metrics[n], rtol=1e-13, atol=1e-15)


def test_data_draws_are_draw_major(blobs):
    X, y, _, _ = blobs
    X2, y2 = X.flip(0) * 0.5, y.flip(0)
    mlp = MLP(4, (5,), 3, "tanh")
    kw = dict(lr=[0.01, 0.02, 0.01, 0.02], seed=[0, 1, 0, 1], epochs=4, dtype=torch.float64)
    both = train(mlp, [X, X2], [y, y2], **kw)
    one = train(mlp, X2, y2, **{**kw, "lr": [0.01, 0.02], "seed": [0, 1]})
    torch.testing.assert_close(both.theta[2:], one.theta, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="^K: 3 configurations is not a multiple of the 2"):
        train(mlp, [X, X2], [y, y2], lr=[0.1, 0.2, 0.3], epochs=1)


@pytest.mark.parametrize("call, match", [
    (lambda X, y: train(MLP(4, (3,), 3, "swish"), X, y), "^activation: unknown name 'swish'"),
    (lambda X, y: train(MLP(4, (3,), 3), X, y[:-1]), "^y: 29 targets for 30 rows"),
    (lambda X, y: train(MLP(4, (3,), 3), X, y + 0.5), "^y: cross_entropy needs integer class"),
    (lambda X, y: train(MLP(4, (3,), 3), X, y + 3), r"^y: class labels must lie in \[0, 3\)"),
    (lambda X, y: train(MLP(4, (3,), 3), X.index_put((torch.tensor([2]), torch.tensor([1])),
                                                     torch.tensor(float("nan"),
                                                                  dtype=torch.float64)), y),
     "^X: contains NaN"),
    (lambda X, y: train(MLP(5, (3,), 3), X, y), "^X: rows must have in_features=5"),
    (lambda X, y: train(MLP(4, (3,), 3), X, y, loss="hinge"), "^loss: unknown name"),
    (lambda X, y: train(MLP(4, (3,), 3), X, y, decay="biases"), "^decay: expected"),
    (lambda X, y: train(MLP(4, (3,), 3), X, y, optimizer="adamw", regularizer="mean"),
     "^regularizer: 'adamw' pairs only with"),
    (lambda X, y: train(MLP(4, (3,), 3), X, y, lr=[0.1, 0.2], lam=[0.1, 0.2, 0.3]),
     "^lr: 2 values for K=3"),
    (lambda X, y: train(MLP(4, (3,), 3), X, y, lr=-1.0), "^lr: must be > 0"),
    (lambda X, y: train(MLP(4, (3,), 3), X, y, schedule="step"), "^schedule: unknown name"),
    (lambda X, y: train(MLP(4, (3,), 3), X, y, X_test=X), "^X_test: give X_test and y_test"),
])
def test_bad_input_is_one_line_naming_the_field(blobs, call, match):
    X, y, _, _ = blobs
    with pytest.raises(ValueError, match=match) as err:
        call(X, y)
    assert "\n" not in str(err.value)
