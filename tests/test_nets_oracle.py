"""The nets oracle: K networks of one wdlab.nets.train call equal K separate torch.optim runs.

Every registry pair x {cross_entropy, mse} x {float64, float32} (in one case) x {full batch, minibatch} x
decay {"matrices", "all"}; K = 6 configurations with randomized lr, lam, betas, init seeds
and init scales; >= 40 steps. Activation, depth and schedule rotate over the cases.
float64: rtol 1e-10. float32: held to the float64 one-network run, with the bound set by
torch.optim's own float32 error (``oracle.assert_f32_close``). Both engines, eager
(batched matmuls) and native (the C++ kernel), are held to the same references.
"""

from __future__ import annotations

import zlib

import pytest
import torch

from nets_reference import torch_run
from oracle import assert_f32_close
from wdlab.engine.kernels import native_build
from wdlab.nets import MLP, train
from wdlab.nets.mlp import ACTIVATIONS
from wdlab.optim.registry import PAIRS

K = 6
N = 24
#: both nets engines against the same references (native: the C++ kernel, nets.native,
#: where a C++ compiler can build it)
ENGINES = ("eager", "native") if native_build.compiler() is not None else ("eager",)
HIDDEN = [(5,), (4, 4), ()]
SCHEDULES = ["constant", "cosine", "warmup_cosine"]


def _hyper(optimizer, regularizer, gen):
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(K, generator=gen, dtype=torch.float64)  # noqa: E731
    if optimizer == "sgd":
        lr = torch.exp(u(torch.log(torch.tensor(0.01)).item(), torch.log(torch.tensor(0.1)).item()))
        beta1 = u(0.0, 0.8)
        beta1[0] = 0.0
    else:
        lr = torch.exp(u(-6.0, -3.5))  # 2.5e-3 .. 3e-2
        beta1 = u(0.8, 0.95)
    lam_hi = {"independent": 0.02, "decoupled": 0.5}.get(regularizer, 0.3)
    lam = u(0.0, lam_hi)
    lam[1] = 0.0
    return dict(lr=lr, lam=lam, beta1=beta1, beta2=u(0.9, 0.999),
                seed=torch.randint(0, 10_000, (K,), generator=gen),
                init_scale=u(0.5, 1.5))


def _data(loss, gen, C):
    X = torch.randn(N, 3, generator=gen, dtype=torch.float64)
    if loss == "cross_entropy":
        return X, torch.randint(0, C, (N,), generator=gen)
    return X, torch.randn(N, C, generator=gen, dtype=torch.float64)


def _flat(sd):
    return torch.cat([v.reshape(-1) for v in sd.values()])


CASES = [(opt, reg, loss, batch, decay)
         for opt, reg in PAIRS
         for loss in ("cross_entropy", "mse")
         for batch in ("full", "mini")
         for decay in ("matrices", "all")]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(c))
def test_nets_match_torch_optim(case):
    """Both dtypes in one case: the float32 run draws its init (seeds, init scales); the
    float64 run starts from the same, float32-representable, parameters, so one float64
    torch.optim run is the exact reference of both."""
    opt, reg, loss, batch, decay = case
    i = CASES.index(case)
    gen = torch.Generator().manual_seed(zlib.crc32("-".join(case).encode()))
    C = 3 if loss == "cross_entropy" else 2
    mlp = MLP(3, HIDDEN[i % 3], C, ACTIVATIONS[(i // 3) % len(ACTIVATIONS)])
    schedule = SCHEDULES[(i // 2) % 3]
    X, y = _data(loss, gen, C)
    hp = _hyper(opt, reg, gen)
    if mlp.activation == "quadratic":  # z^2 layers amplify: keep the steps stable
        hp["lr"], hp["init_scale"] = 0.3 * hp["lr"], 0.5 * hp["init_scale"]
    run_kw = dict(loss=loss, optimizer=opt, regularizer=reg, decay=decay, schedule=schedule,
                  warmup=5 if schedule == "warmup_cosine" else 0,
                  batch_size=None if batch == "full" else 10, batch_seed=int(i),
                  epochs=40 if batch == "full" else 14)  # 40 or 42 steps
    runs = {}  # engine -> (float32 result, float64 result)
    for engine in ENGINES:
        res32 = train(mlp, X, y, **hp, **run_kw, dtype=torch.float32, engine=engine)
        hp64 = {n: hp[n] for n in ("lr", "lam", "beta1", "beta2")}
        res64 = train(mlp, X, y, **hp64, **run_kw, theta0=res32.theta0.double(),
                      dtype=torch.float64, engine=engine)
        assert res32.extra["engine"] == res64.extra["engine"] == engine
        assert res32.theta.dtype == torch.float32 and res64.theta.dtype == torch.float64
        assert not bool(res32.diverged.any() | res64.diverged.any())
        runs[engine] = (res32, res64)
    for k in range(K):
        hk = {n: hp[n][k].item() for n in ("lr", "lam", "beta1", "beta2")}
        sd0 = runs["eager"][0].initial_state_dict(k)  # float32
        exact = mlp.to_module().double()
        exact.load_state_dict(sd0)
        exact_loss = torch_run(exact, X, y, **hk, **run_kw, dtype=torch.float64)
        exact_theta = _flat(exact.state_dict())
        scale = exact_theta.abs().max().item()
        ref32 = mlp.to_module()
        ref32.load_state_dict(sd0)
        ref32_loss = torch_run(ref32, X, y, **hk, **run_kw, dtype=torch.float32)
        for engine, (res32, res64) in runs.items():
            at = f"configuration {k}, engine {engine}"
            torch.testing.assert_close(_flat(res64.state_dict(k)), exact_theta, rtol=1e-10,
                                       atol=1e-10 * scale, msg=f"{at}, float64")
            torch.testing.assert_close(res64.metrics["train_loss"][:, k], exact_loss,
                                       rtol=1e-10, atol=1e-12, msg=f"{at}, float64 train_loss")
            assert_f32_close(_flat(res32.state_dict(k)), _flat(ref32.state_dict()), exact_theta,
                             msg=f"{at}, float32 parameters")
            assert_f32_close(res32.metrics["train_loss"][:, k], ref32_loss, exact_loss,
                             msg=f"{at}, float32 train_loss")
