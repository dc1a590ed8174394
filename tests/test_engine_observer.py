"""One metric observer for every engine path (issue 13 item 2).

The minibatch loop and the full-batch engines record metrics through the same observer
(``engine.fast.observe_extra``): ``w_norm`` = ||w|| over the weights only (never the
intercept), ``penalty`` = the regularizer's value on the decayed coordinates (the intercept
too when ``decay_bias``). Checked against float64 numpy on the recorded parameters.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wdlab.conventions import penalty_value_scale
from wdlab.data.synthetic import init_weights, make_linear, problem_from_datasets
from wdlab.engine import EngineSpec, Hyper, train

N_FEATURES, N_TRAIN, EPOCHS = 6, 12, 5


@pytest.fixture(scope="module")
def setup():
    data = make_linear(N_FEATURES, N_TRAIN, 20, w_star=0.3, bias=2.0, noise=0.1, seed=3)
    problem = problem_from_datasets([data])
    theta0 = init_weights(list(range(4)), N_FEATURES, dtype=torch.float64)  # (4, D1)
    theta0[:, -1] = torch.tensor([2.0, -1.5, 0.7, 3.0], dtype=torch.float64)  # a real bias
    hyper = Hyper.of(4, lam=[0.0, 0.1, 1.0, 3.0], lr=0.05)
    return problem, theta0, hyper


def _run(setup, batch_size, decay_bias, regularizer="mean"):
    problem, theta0, hyper = setup
    spec = EngineSpec("adam", regularizer, epochs=EPOCHS, batch_size=batch_size,
                      decay_bias=decay_bias, dtype=torch.float64)
    return train(problem, spec, hyper, theta0, record_epochs=[0, EPOCHS], engine="eager")


@pytest.mark.parametrize("decay_bias", [False, True])
def test_minibatch_and_full_batch_record_the_same_w_norm_at_the_same_theta(setup, decay_bias):
    _, theta0, _ = setup
    full = _run(setup, None, decay_bias)
    mini = _run(setup, 4, decay_bias)  # 3 batches per epoch: the minibatch loop
    assert full.extra["engine"] == "eager" and mini.extra["engine"] == "eager"
    coef0 = theta0[:, :-1].numpy()
    expect0 = np.linalg.norm(coef0, axis=1)  # ||w0||, the intercept excluded
    for res in (full, mini):
        np.testing.assert_allclose(res.metrics["w_norm"][0].numpy(), expect0, rtol=1e-12)
        # the last record is the final parameters: its w_norm is ||coef_||, never the bias
        np.testing.assert_allclose(res.metrics["w_norm"][-1].numpy(),
                                   np.linalg.norm(res.coef.numpy(), axis=1), rtol=1e-12)
    with_bias = np.linalg.norm(theta0.numpy(), axis=1)
    assert np.all(np.abs(mini.metrics["w_norm"][0].numpy() - with_bias) > 0.1)  # the bias matters
    # same theta0: every metric of epoch 0 agrees between the two paths
    for name in full.metrics:
        np.testing.assert_allclose(mini.metrics[name][0].numpy(), full.metrics[name][0].numpy(),
                                   rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("batch_size", [None, 4])
@pytest.mark.parametrize("decay_bias", [False, True])
def test_penalty_covers_the_bias_exactly_when_decay_bias(setup, batch_size, decay_bias):
    _, theta0, hyper = setup
    res = _run(setup, batch_size, decay_bias, regularizer="sum")
    th = theta0.numpy()
    decayed = th if decay_bias else th[:, :-1]
    scale = penalty_value_scale("sum", decayed.shape[1])
    expect = scale * hyper.lam.numpy() * (decayed ** 2).sum(1)
    np.testing.assert_allclose(res.metrics["penalty"][0].numpy(), expect, rtol=1e-12)
    final = res.theta.numpy()
    fd = final if decay_bias else final[:, :-1]
    np.testing.assert_allclose(res.metrics["penalty"][-1].numpy(),
                               scale * hyper.lam.numpy() * (fd ** 2).sum(1), rtol=1e-12)
    obj = res.metrics["train_mse"] + res.metrics["penalty"]
    np.testing.assert_allclose(res.metrics["objective"].numpy(), obj.numpy(), rtol=1e-12)
