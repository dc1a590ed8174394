"""``nets.train(snapshot_epochs=...)``: the parameters after e epochs equal a run of e epochs.

Oracle: with a constant schedule and the same batch_seed, the first e epochs of a long run
are exactly a run of ``epochs=e`` (same batches, same optimizer state), so a snapshot must
equal that run's final parameters bit for bit; the last snapshot equals the final theta.
"""

from __future__ import annotations

import pytest
import torch

from wdlab.nets import MLP, train
from wdlab.nets.datasets import moons


@pytest.mark.parametrize("opt,reg,batch", [("adamw", "decoupled", 16), ("adam", "weight_decay", None),
                                           ("sgd", "weight_decay", 16)])
def test_snapshots_equal_shorter_runs(opt, reg, batch):
    d = moons(n_train=40, n_test=10, seed=1)
    m = MLP(2, (5,), 2, "tanh")
    kw = dict(loss="cross_entropy", optimizer=opt, regularizer=reg, lam=[0.0, 1e-2, 1e-1],
              lr=0.05, beta1=0.9, seed=[0, 1, 2], batch_size=batch, dtype=torch.float64)
    r = train(m, d.X_train, d.y_train, epochs=7, snapshot_epochs=[0, 3, 7], **kw)
    assert r.extra["snapshot_epochs"] == [0, 3, 7]
    shots = r.extra["snapshots"]  # (S, K, P)
    assert shots.shape == (3, 3, m.layout.size)
    assert torch.equal(shots[0], r.theta0)
    assert torch.equal(shots[2], r.theta)
    short = train(m, d.X_train, d.y_train, epochs=3, **kw)
    assert torch.equal(shots[1], short.theta)
    assert not torch.equal(shots[1], shots[2])


def test_snapshot_epochs_out_of_range():
    d = moons(n_train=20, n_test=5)
    with pytest.raises(ValueError, match="^snapshot_epochs: must lie in"):
        train(MLP(2, (3,), 2), d.X_train, d.y_train, epochs=2, snapshot_epochs=[3])
