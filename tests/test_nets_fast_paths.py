"""The nets engine's fast paths equal the plain ones: the in-place chain update equals
``optim.rules.apply_chain`` for every registry pair, the small-class logsumexp equals
torch's, the workspace gives autograd's gradient across shapes, and k-fold masks over one
design (one draw, per-configuration weights) equal separate single-draw runs."""

from __future__ import annotations

import pytest
import torch

from wdlab.conventions import PAIRS
from wdlab.nets import MLP, train
from wdlab.nets.losses import Targets, _logsumexp, loss_value
from wdlab.nets.program import MLPProgram
from wdlab.nets.update import ChainUpdate
from wdlab.optim.registry import build_chain
from wdlab.optim.rules import StepContext, apply_chain, init_chain


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_chain_update_equals_apply_chain(pair):
    optimizer, regularizer = pair
    gen = torch.Generator().manual_seed(1)
    K, P = 5, 9
    col = lambda lo, hi: (lo + (hi - lo) * torch.rand(K, 1, generator=gen,  # noqa: E731
                                                      dtype=torch.float64))
    lam, lr, b1, b2 = col(0.0, 0.1), col(1e-3, 1e-1), col(0.0, 0.95), col(0.9, 0.999)
    mask = (torch.arange(P) % 3 != 0).double()
    chain = build_chain(optimizer, regularizer, n_decayed=int(mask.sum()), eps=1e-8)
    theta = torch.randn(K, P, generator=gen, dtype=torch.float64)
    ref_theta, states = theta.clone(), init_chain(chain, theta)
    upd = ChainUpdate(chain, theta, mask, lam, lr, b1, b2)
    t = torch.zeros(K, 1, dtype=torch.float64)
    alive = torch.ones(K, 1, dtype=torch.bool)
    for step in range(6):
        if step == 3:
            alive[2] = False  # one configuration frozen from here on
        grad = torch.randn(K, P, generator=gen, dtype=torch.float64)
        eta = 0.5 + 0.1 * step
        t.add_(alive.double())
        ctx = StepContext(lam, lr * eta, eta, b1, b2, t, mask)
        new, states = apply_chain(chain, grad.clone(), ref_theta, states, ctx)
        ref_theta = torch.where(alive, new, ref_theta)
        upd(theta, grad, eta, t, alive, bool(alive.all()))
        torch.testing.assert_close(theta, ref_theta, rtol=1e-14, atol=1e-15)


def test_small_class_logsumexp_equals_torch_with_infinities():
    for C in (1, 2, 3, 4, 7):
        z = torch.randn(4, 6, C, dtype=torch.float64)
        z[0, 0, 0] = float("inf")
        z[1, 1] = float("-inf")
        ref = torch.logsumexp(z, -1, keepdim=True)
        got = _logsumexp(z)
        assert got.shape == ref.shape
        torch.testing.assert_close(got, ref, rtol=1e-15, atol=0.0, equal_nan=True)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "quadratic"])
def test_workspace_gradient_equals_autograd_across_shapes(activation):
    mlp = MLP(3, (5, 4), 6, activation)
    prog = MLPProgram(mlp)
    gen = torch.Generator().manual_seed(2)
    K = 4
    theta = torch.randn(K, mlp.layout.size, generator=gen, dtype=torch.float64)
    for N in (7, 3, 7, 5):  # workspaces are reused and replaced
        x = torch.randn(1, N, 3, generator=gen, dtype=torch.float64)
        tgt = Targets(torch.randint(0, 6, (1, N), generator=gen), None)
        val, _, grad = prog.loss_grad(theta, x, tgt, "cross_entropy", 0.0)
        th = theta.clone().requires_grad_(True)
        ref_val = loss_value(prog.forward(th, x), tgt, "cross_entropy")
        (ref,) = torch.autograd.grad(ref_val.sum(), th)
        torch.testing.assert_close(val, ref_val.detach(), rtol=1e-13, atol=0.0)
        torch.testing.assert_close(grad, ref, rtol=1e-12, atol=1e-14)


def test_fold_masks_over_one_design_equal_separate_runs():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(40, 5, generator=gen, dtype=torch.float64)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()
    W = [(torch.rand(40, generator=gen) > 0.3).double() for _ in range(3)]
    mlp = MLP(5, (7,), 3)
    kw = dict(lr=0.01, epochs=30, dtype=torch.float64)
    joint = train(mlp, [X] * 3, [y] * 3, sample_weight=W, lam=[1e-3, 1e-2] * 3,
                  X_test=[X[:10]] * 3, y_test=[y[:10]] * 3, **kw)
    assert joint.extra["tiles"] == 1  # the three draws ran as one tile
    for g in range(3):
        one = train(mlp, X, y, sample_weight=W[g], lam=[1e-3, 1e-2], X_test=X[:10],
                    y_test=y[:10], **kw)
        sl = slice(2 * g, 2 * g + 2)
        torch.testing.assert_close(joint.theta[sl], one.theta, rtol=1e-12, atol=1e-14)
        for name, v in one.metrics.items():
            torch.testing.assert_close(joint.metrics[name][:, sl], v, rtol=1e-12, atol=1e-14)
