"""nets.train's per-draw sample weights: a 0/1 mask trains exactly the model of the kept rows.

Oracle: the same network trained on the kept rows alone (float64, full batch), and a
weighted loss held to its definition sum_n s_n l_n computed by torch autograd.
"""

from __future__ import annotations

import pytest
import torch

from wdlab.nets import MLP, train


def _data(n=40, d=5, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=g)
    return X, y


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_mask_equals_training_on_kept_rows(loss):
    X, y = _data()
    mlp = MLP(5, [7], 3, activation="tanh")
    masks = [torch.arange(40) % 3 != f for f in range(3)] + [torch.ones(40, dtype=torch.bool)]
    kw = dict(loss=loss, lr=0.05, epochs=25, dtype=torch.float64, seed=4)
    both = train(mlp, [X] * 4, [y] * 4, sample_weight=[m.double() for m in masks],
                 lam=[0.0, 0.3] * 4, **kw)
    for g, m in enumerate(masks):
        alone = train(mlp, X[m], y[m], lam=[0.0, 0.3], **kw)
        torch.testing.assert_close(both.theta[2 * g:2 * g + 2], alone.theta, rtol=0, atol=1e-10)
        torch.testing.assert_close(both.metrics["train_loss"][:, 2 * g:2 * g + 2],
                                   alone.metrics["train_loss"], rtol=0, atol=1e-10)
        torch.testing.assert_close(both.metrics["train_accuracy"][:, 2 * g:2 * g + 2],
                                   alone.metrics["train_accuracy"], rtol=0, atol=1e-12)


def test_weighted_loss_gradient_matches_autograd():
    X, y = _data(seed=1)
    w = torch.rand(40, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mlp = MLP(5, [6], 3, activation="relu")
    res = train(mlp, X, y, sample_weight=w, optimizer="sgd", regularizer="weight_decay", lam=0.0, lr=0.1,
                beta1=0.0, epochs=1, dtype=torch.float64, K=1)
    net = mlp.to_module().double()
    net.load_state_dict(res.initial_state_dict(0))
    per = torch.nn.functional.cross_entropy(net(X), y, reduction="none")
    ((per * w).sum() / w.sum()).backward()
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.1 * p.grad
    for name, v in net.state_dict().items():
        torch.testing.assert_close(res.state_dict(0)[name], v, rtol=0, atol=1e-12)


@pytest.mark.parametrize("bad", [torch.full((40,), -1.0), torch.zeros(40), torch.ones(39)])
def test_bad_weights_one_line(bad):
    X, y = _data()
    with pytest.raises(ValueError, match="^sample_weight: "):
        train(MLP(5, [4], 3), X, y, sample_weight=bad, epochs=1)
