"""Each framework row simulated with its own documented update rule (numpy, 100 steps).

Every framework's AdamW is written below from its source (see wdlab.frameworks' docstring),
independently of the (c, p) table: translate_framework's value must give the same trajectory
where it claims exact, and the mismatch it reports where it does not.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from wdlab.frameworks import (
    FRAMEWORKS,
    parse_setting,
    scale_weight_decay,
    schedule_multipliers,
    tau_epoch,
    tau_iter,
    translate_framework,
)

LR, STEPS = 1e-2, 100
SIZES = dict(batch_size=128.0, train_size=50_000.0, epochs=30.0)
B1, B2, EPS = 0.9, 0.999, 1e-8


def _adam_dir(g, m, v, t):
    m = B1 * m + (1 - B1) * g
    v = B2 * v + (1 - B2) * g * g
    return (m / (1 - B1 ** t)) / (np.sqrt(v / (1 - B2 ** t)) + EPS), m, v


def simulate(framework: str, wd: float, s: np.ndarray, grad, theta0: np.ndarray) -> np.ndarray:
    """(T+1, D) trajectory of ``framework``'s AdamW, each written as its source does it."""
    theta, m, v = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0)
    out = [theta.copy()]
    for t in range(1, len(s) + 1):
        lr_t = LR * s[t - 1]
        d, m, v = _adam_dir(grad(theta), m, v, t)
        if framework == "torch-adamw":  # param.mul_(1 - lr * wd); param.addcdiv_(..., -lr)
            theta = theta * (1 - lr_t * wd)
            theta = theta - lr_t * d
        elif framework == "optax-adamw":  # chain(scale_by_adam, add_decayed_weights, scale(-lr))
            theta = theta + (-lr_t) * (d + wd * theta)
        elif framework == "keras-adamw":  # variable - variable * wd * lr, then the Adam step
            theta = theta - theta * wd * lr_t
            theta = theta - lr_t * d
        elif framework == "tfa-adamw":  # var.assign_sub(weight_decay * var), then Adam
            theta = theta - wd * theta
            theta = theta - lr_t * d
        elif framework == "lh-normalized":  # θ ← θ − η_t(α·adam + λθ), λ = λ_norm √(b/(B·T))
            lam = wd * math.sqrt(SIZES["batch_size"] / (SIZES["train_size"] * SIZES["epochs"]))
            theta = theta - s[t - 1] * (LR * d + lam * theta)
        elif framework == "composer":  # param.mul_(1 - (lr / initial_lr) * wd), then Adam
            theta = theta * (1 - (lr_t / LR) * wd)
            theta = theta - lr_t * d
        else:
            raise AssertionError(framework)
        out.append(theta.copy())
    return np.array(out)


def _quadratic():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 6))
    A = A @ A.T / 6 + np.eye(6)
    b = rng.normal(size=6)
    return (lambda th: A @ th - b), rng.normal(size=6)


PAIRS = [(a, b) for a, b in itertools.product(FRAMEWORKS, FRAMEWORKS) if a != b]


@pytest.mark.parametrize("schedule", ["constant", "cosine", "linear"])
@pytest.mark.parametrize("src,dst", PAIRS)
def test_translation_is_exact_where_claimed_and_reports_its_mismatch(src, dst, schedule):
    wd_src = 0.05 if FRAMEWORKS[src].times_lr else 5e-4
    s = schedule_multipliers(schedule, STEPS)
    t = translate_framework(wd_src, src, dst, lr=LR, schedule=schedule, steps=STEPS, **SIZES)
    grad, theta0 = _quadratic()
    a = simulate(src, wd_src, s, grad, theta0)
    b = simulate(dst, t.value, s, grad, theta0)
    # the decay alone: zero gradient, so Adam's direction is 0 and θ_{t+1} = (1 − d_t)θ_t
    za = simulate(src, wd_src, s, lambda th: 0 * th, theta0)
    zb = simulate(dst, t.value, s, lambda th: 0 * th, theta0)
    d_a = 1 - za[1:, 0] / za[:-1, 0]  # (T,)
    d_b = 1 - zb[1:, 0] / zb[:-1, 0]  # (T,)
    measured = np.max(np.abs(d_b / d_a - 1))
    if t.exact:
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-13)
        assert np.max(np.abs(d_b - d_a)) < 1e-13 and t.max_rel_mismatch < 1e-12
    else:
        assert schedule != "constant"
        assert measured == pytest.approx(t.max_rel_mismatch, rel=1e-6)
        assert t.max_rel_mismatch > 0.5  # the schedule really separates them
        assert d_b[0] == pytest.approx(d_a[0], rel=1e-9)  # matched at the first step
        assert not np.allclose(b, a, rtol=1e-6)
        # the mean-matched alternative: same mean decay, its own reported mismatch
        zm = simulate(dst, t.value_mean, s, lambda th: 0 * th, theta0)
        d_m = 1 - zm[1:, 0] / zm[:-1, 0]
        assert d_m.mean() == pytest.approx(d_a.mean(), rel=1e-9)
        assert np.max(np.abs(d_m / d_a - 1)) == pytest.approx(t.max_rel_mismatch_mean, rel=1e-6)


def test_exactness_follows_the_schedule_dependence():
    kw = dict(lr=LR, schedule="cosine", steps=STEPS, **SIZES)
    assert translate_framework(0.05, "torch-adamw", "optax-adamw", **kw).value == 0.05
    assert translate_framework(0.05, "torch-adamw", "composer", **kw).value == pytest.approx(5e-4)
    assert translate_framework(0.05, "torch-adamw", "composer", **kw).exact
    assert not translate_framework(0.05, "torch-adamw", "tfa-adamw", **kw).exact
    assert translate_framework(0.05, "torch-adamw", "tfa-adamw", lr=LR).exact  # constant lr


def test_sizes_and_names_are_checked():
    with pytest.raises(ValueError, match="batch_size"):
        translate_framework(0.05, "torch-adamw", "lh-normalized", lr=LR)
    with pytest.raises(ValueError, match="to: unknown framework 'jax'"):
        translate_framework(0.05, "torch-adamw", "jax", lr=LR)
    with pytest.raises(ValueError, match="schedule"):
        schedule_multipliers("exp", 10)
    with pytest.raises(ValueError, match="lr"):
        translate_framework(0.05, "torch-adamw", "tfa-adamw", lr=0.0)


def test_torch_adamw_row_matches_torch_itself():
    """torch-adamw's simulated rule is torch.optim.AdamW's (float64, 100 steps)."""
    grad, theta0 = _quadratic()
    s = schedule_multipliers("cosine", STEPS)
    p = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.AdamW([p], lr=LR, betas=(B1, B2), eps=EPS, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: float(s[min(t, STEPS - 1)]))
    for _ in range(STEPS):
        p.grad = torch.tensor(grad(p.detach().numpy()), dtype=torch.float64)
        opt.step()
        sched.step()
    np.testing.assert_allclose(p.detach().numpy(), simulate("torch-adamw", 0.05, s, grad,
                                                            theta0)[-1], rtol=1e-10)


def test_wang_aitchison_rule_keeps_tau_epoch():
    old = parse_setting("lr=1e-3,wd=0.1,batch=256,n=50000", "from")
    new = parse_setting("batch=1024,n=200000,lr=2e-3", "to")
    keep_tau, keep_lam, keep_prod = scale_weight_decay(old, new)
    t_old = tau_epoch(1e-3, 0.1, 256, 50000)
    assert t_old == pytest.approx(256 / (1e-3 * 0.1 * 50000))
    assert keep_tau.tau_epoch == pytest.approx(t_old)
    assert keep_tau.weight_decay == pytest.approx(1024 / (2e-3 * t_old * 200000))
    assert keep_lam.weight_decay == 0.1
    assert keep_prod.tau_iter == pytest.approx(tau_iter(1e-3, 0.1))
    # a change of N alone: λ ∝ 1/N
    rows = scale_weight_decay(old, {"n": 100000.0})
    assert rows[0].weight_decay == pytest.approx(0.05)


@pytest.mark.parametrize("text,match", [
    ("lr=1e-3,wd=0.1,batch=256", "missing n"), ("lr=1e-3,wd=0.1,batch=256,n=5e4,mom=0.9", "mom"),
    ("lr=abc,wd=0.1,batch=256,n=1", "not a number"), ("lr=-1,wd=0.1,batch=2,n=1", "lr must"),
])
def test_settings_are_validated(text, match):
    with pytest.raises(ValueError, match=match):
        scale_weight_decay(parse_setting(text, "from"), {})
