"""``wdlab translate``: conventions (sizes only where they matter), frameworks, scaling rules;
and the simulation behind "plain SGD: SGDW and coupled L2 coincide exactly"."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from runs import one_line_error
from wdlab.cli import app
from wdlab.frameworks import translate_framework


def invoke(*args):
    return CliRunner().invoke(app, ["translate", *map(str, args)], terminal_width=200)


def test_seed_to_d2l_needs_no_n_train():
    res = invoke(3, "--from", "seed", "--to", "d2l", "--n-features", 200)
    assert res.exit_code == 0, res.output
    assert "3 (seed) = 0.015 (d2l)" in res.output
    assert "needs --n-train" in res.output  # the sklearn row, which does depend on n
    one_line_error(invoke(3, "--from", "seed", "--to", "sklearn", "--n-features", 200),
                   "n_train", "--n-train")
    one_line_error(invoke(3, "--from", "seed", "--to", "d2l"), "n_features")


def test_n_train_is_a_real_number():
    res = invoke(3, "--from", "seed", "--to", "sklearn", "--n-train", "1e5", "--n-features", 200)
    assert res.exit_code == 0, res.output
    assert "3 (seed) = 1500 (sklearn)" in res.output
    assert invoke(3, "--from", "seed", "--to", "sklearn", "--n-train", 50.5,
                  "--n-features", 200).exit_code == 0


def test_sgd_note_is_printed():
    res = invoke(1, "--from", "d2l", "--n-features", 5)
    assert res.exit_code == 0, res.output
    assert "plain SGD without momentum" in res.output and "same update" in res.output
    assert "exact under plain SGD only" in res.output


def test_plain_sgd_coupled_l2_is_sgdw_exactly():
    """torch.optim.SGD(weight_decay=λ) and SGDW ×lr (w ← w − lr·g − lr·λ·w) on the same data,
    and the engine's sgd+weight_decay vs sgd+decoupled: the same trajectory."""
    from wdlab.data.synthetic import init_weights, make_linear, problem_from_datasets
    from wdlab.engine import EngineSpec, Hyper, train

    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(30, 4, generator=g, dtype=torch.float64), torch.randn(30, generator=g,
                                                                             dtype=torch.float64)
    lr, lam = 0.05, 0.3
    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=lr, weight_decay=lam)
    v = torch.zeros(4, dtype=torch.float64)
    for _ in range(100):
        opt.zero_grad()
        ((X @ w - y) ** 2).mean().backward()
        opt.step()
        grad = 2 * X.T @ (X @ v - y) / 30
        v = v - lr * grad - lr * lam * v  # SGDW, decay ×lr
    torch.testing.assert_close(w.detach(), v, rtol=1e-12, atol=1e-14)

    data = make_linear(5, 40, 10, seed=1)
    prob = problem_from_datasets([data])
    theta0 = init_weights([3, 4], data.n_features, 0.5, dtype=torch.float64)
    hyper = Hyper.of(2, lam=[0.1, 1.0], lr=0.05, beta1=0.0)
    out = [train(prob, EngineSpec("sgd", reg, "mse", epochs=50, dtype=torch.float64,
                                  decay_bias=False), hyper, theta0, engine="eager").theta
           for reg in ("weight_decay", "decoupled")]
    torch.testing.assert_close(out[0], out[1], rtol=1e-12, atol=1e-14)
    momentum = [train(prob, EngineSpec("adam", reg, "mse", epochs=50, dtype=torch.float64),
                      Hyper.of(2, lam=[0.1, 1.0], lr=0.05), theta0, engine="eager").theta
                for reg in ("weight_decay", "decoupled")]
    assert not torch.allclose(momentum[0], momentum[1], rtol=1e-3)  # not so under Adam


def test_framework_translation_prints_value_and_formula():
    res = invoke("--wd", 0.05, "--lr", "1e-3", "--from", "torch-adamw", "--to", "composer")
    assert res.exit_code == 0, res.output
    assert "0.05 (torch-adamw) = 5e-05 (composer)" in res.output
    assert "λ_composer = λ_torch-adamw·lr" in res.output and "exact" in res.output
    res = invoke("--wd", 0.05, "--lr", "1e-3", "--from", "torch-adamw", "--to", "optax-adamw")
    assert "0.05 (torch-adamw) = 0.05 (optax-adamw)" in res.output


def test_framework_translation_under_a_schedule_reports_the_mismatch():
    res = invoke("--wd", 0.05, "--lr", "1e-3", "--from", "torch-adamw", "--to", "tfa-adamw",
                 "--schedule", "cosine", "--steps", 100)
    assert res.exit_code == 0, res.output
    t = translate_framework(0.05, "torch-adamw", "tfa-adamw", lr=1e-3, schedule="cosine",
                            steps=100)  # = the simulated mismatch (tests/test_frameworks.py)
    assert not t.exact and "not exact" in res.output
    assert f"largest relative mismatch of the per-step decay over the schedule: " \
           f"{t.max_rel_mismatch:.4g}" in res.output
    assert "callable" in res.output  # tfa's way to follow the schedule


def test_framework_translation_to_every_framework_and_errors():
    res = invoke("--wd", 0.05, "--lr", "1e-3", "--from", "torch-adamw", "--batch-size", 128,
                 "--train-size", 50000, "--epochs", 100)
    assert res.exit_code == 0, res.output
    for name in ("optax-adamw", "keras-adamw", "tfa-adamw", "lh-normalized", "composer"):
        assert name in res.output
    one_line_error(invoke("--wd", 0.05, "--lr", "1e-3", "--from", "torch-adamw", "--to",
                          "lh-normalized"), "batch_size")
    one_line_error(invoke("--wd", 0.05, "--from", "torch-adamw", "--to", "composer"), "--lr")
    one_line_error(invoke("--wd", 0.05, "--lr", 1e-3, "--from", "torch-adamw", "--to", "jax"),
                   "to", "jax")
    one_line_error(invoke("--wd", 0.05, "--lr", 1e-3, "--from", "torch-adamw", "--to",
                          "tfa-adamw", "--schedule", "cosine"), "steps")


def test_keep_tau_epoch():
    res = invoke("--keep", "tau-epoch", "--from", "lr=1e-3,wd=0.1,batch=256,n=50000",
                 "--to", "batch=1024,n=200000,lr=2e-3")
    assert res.exit_code == 0, res.output
    assert "keep tau_epoch: weight_decay = 0.05" in res.output
    assert "keep lambda" in res.output and "keep lr*lambda" in res.output
    assert "51.2" in res.output  # τ_epoch = 256/(1e-3·0.1·50000)


@pytest.mark.parametrize("args,needles", [
    (["--keep", "tau-iter", "--from", "lr=1,wd=1,batch=1,n=1", "--to", "n=2"], ["keep"]),
    (["--keep", "tau-epoch", "--from", "lr=1e-3,wd=0.1", "--to", "n=2"], ["from", "missing"]),
    (["--keep", "tau-epoch", "--from", "lr=1e-3,wd=0.1,batch=2,n=9", "--to", "wd=2"], ["to"]),
    (["--keep", "tau-epoch", "--from", "lr=1e-3,wd=0.1,batch=2,n=9"], ["to"]),
    (["--from", "seed", "--n-features", 3], ["VALUE"]),
])
def test_bad_inputs_are_one_line_errors(args, needles):
    one_line_error(invoke(*args), *needles)
