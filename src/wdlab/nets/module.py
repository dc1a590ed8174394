"""Bring your own network: K copies of a user's nn.Module, trained by the same rules.

``from_module(factory)`` describes a network by a zero-argument ``factory()`` returning an
``nn.Module``. Its parameters (``named_parameters()`` order, which is the state_dict order)
are flattened into one (K, P) vector, run as

    z = vmap(functional_call(module, (params_k, buffers), (x,)))    (K, N, C)

with params_k views into theta[k], and differentiated by autograd; the optimizer rules,
decay policy and per-configuration hyperparameters are those of ``wdlab.nets.train``.
Buffers are shared by the K copies and never written, so modules that update buffers in
train mode (BatchNorm, InstanceNorm with running statistics) are refused, and so is active
dropout (its masks would need per-configuration randomness that the torch.optim oracle
could not reproduce).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, vmap

from wdlab.data.synthetic import stream_seed
from wdlab.nets.losses import Targets, loss_value
from wdlab.nets.mlp import Layout

Tensor = torch.Tensor

_NORM_WITH_STATS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)
_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
            nn.FeatureAlphaDropout)


def _refuse(module: nn.Module) -> None:
    for name, sub in module.named_modules():
        where = f" ({name!r})" if name else ""
        kind = type(sub).__name__
        if isinstance(sub, _NORM_WITH_STATS) and sub.training and sub.track_running_stats:
            raise ValueError(
                f"model: {kind}{where} updates its running statistics in train mode, which K "
                f"stacked copies cannot share; use GroupNorm or LayerNorm, or put it in eval "
                f"mode (.eval(), fixed statistics)")
        if isinstance(sub, _DROPOUT) and sub.training and sub.p > 0:
            raise ValueError(
                f"model: {kind}{where} draws random masks, which from_module does not "
                f"support; use p=0 or put it in eval mode (.eval())")


class ModuleNet:
    """A user's network, described by its factory (see ``from_module``)."""

    def __init__(self, factory):
        if not callable(factory):
            raise ValueError("model: from_module needs a zero-argument factory returning an "
                             "nn.Module")
        template = factory()
        if not isinstance(template, nn.Module):
            raise ValueError(f"model: factory() returned {type(template).__name__}, not an "
                             f"nn.Module")
        _refuse(template)
        self.factory = factory
        self.template = template
        params = list(template.named_parameters())
        if not params:
            raise ValueError("model: the module has no parameters to train")
        self.layout = Layout.of([(n, tuple(p.shape)) for n, p in params])

    def to_module(self) -> nn.Module:
        """A fresh ``factory()``; ``load_state_dict(result.state_dict(k))`` loads config k
        (``strict=False`` when the module also has buffers)."""
        return self.factory()

    def init(self, seeds: Tensor, init_scale: Tensor | float = 1.0) -> Tensor:
        """theta0 (K, P) float64: the factory's own init under ``torch.manual_seed(
        stream_seed(seed_k, "init"))`` (the global generator is restored afterwards), times
        ``init_scale_k``. Configurations sharing a seed start identically."""
        seeds = torch.as_tensor(seeds, dtype=torch.int64).reshape(-1)
        uniq, inverse = torch.unique(seeds, return_inverse=True)
        draws = torch.empty(len(uniq), self.layout.size, dtype=torch.float64)
        for i, s in enumerate(uniq.tolist()):  # loop over distinct seeds, not configurations
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(stream_seed(s, "init"))
                m = self.factory()
            draws[i] = torch.cat([p.detach().reshape(-1).double() for p in m.parameters()])
        scale = torch.as_tensor(init_scale, dtype=torch.float64).reshape(-1, 1)
        return draws[inverse] * scale  # (K, P)

    def check_inputs(self, name: str, X: Tensor) -> int:
        """Run the template on two rows of X (G, N, *in); returns the output width C."""
        probe = copy.deepcopy(self.template).double()
        try:
            with torch.no_grad():
                out = probe(X[0, :2])
        except Exception as exc:  # noqa: BLE001 - the module's own message, on one line
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"{name}: the module cannot take rows shaped "
                             f"{tuple(X.shape[2:])}: {msg}") from None
        if out.ndim != 2:
            raise ValueError(f"model: the module must return (N, C) outputs, got shape "
                             f"{tuple(out.shape)}")
        return int(out.shape[1])

    def program(self) -> ModuleProgram:
        return ModuleProgram(self)


class ModuleProgram:
    """vmap(functional_call) forward; autograd backward into one (K, P) gradient."""

    def __init__(self, net: ModuleNet):
        self.net = net
        self.layout = net.layout
        self._base: dict = {}

    def _module(self, theta: Tensor):
        key = (theta.dtype, theta.device)
        if key not in self._base:
            base = self.net.factory().to(dtype=theta.dtype, device=theta.device)
            buffers = {n: b for n, b in base.named_buffers()}
            self._base[key] = (base, buffers)
        return self._base[key]

    def forward(self, theta: Tensor, x: Tensor) -> Tensor:
        K = theta.shape[0]
        base, buffers = self._module(theta)
        params = self.layout.views(theta)

        def one(p, xx):
            return functional_call(base, (p, buffers), (xx,))

        G = x.shape[0]
        if G == 1:
            return vmap(one, in_dims=(0, None))(params, x[0])  # (K, N, C)
        xk = x.repeat_interleave(K // G, dim=0)  # (K, N, *in)
        return vmap(one, in_dims=(0, 0))(params, xk)

    def loss_grad(self, theta: Tensor, x: Tensor, tgt: Targets, loss: str, smoothing: float):
        with torch.enable_grad():
            th = theta.detach().requires_grad_(True)
            z = self.forward(th, x)
            val = loss_value(z, tgt, loss, smoothing)  # (K,)
            (grad,) = torch.autograd.grad(val.sum(), th)
        return val.detach(), z.detach(), grad  # configurations are independent: d(sum)/dθ_k

    def loss(self, theta: Tensor, x: Tensor, tgt: Targets, loss: str, smoothing: float):
        with torch.no_grad():
            z = self.forward(theta, x)
            return loss_value(z, tgt, loss, smoothing), z


def from_module(factory) -> ModuleNet:
    """Describe a network by ``factory()`` -> nn.Module, for ``wdlab.nets.train``.

    Every configuration is a copy of the module whose parameters are row k of theta (K, P),
    in ``named_parameters()`` order; ``result.state_dict(k)`` holds them under the module's
    own names. Initialisation is the factory's, seeded per configuration
    (``ModuleNet.init``). Refused with a one-line ``ValueError``: BatchNorm/InstanceNorm
    with running statistics in train mode (use GroupNorm/LayerNorm, or eval-mode BN) and
    active dropout.
    """
    return ModuleNet(factory)
