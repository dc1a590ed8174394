"""The MLP description: a network as data, its parameter layout, init and nn.Module twin.

An ``MLP(in_features, hidden=(H1, ..., Hm), out_features, activation, bias)`` is

    h_0 = x,   z_l = h_{l-1} W_l^T + b_l,   h_l = act(z_l)  (l < L),   out = z_L,

with L = m + 1 linear layers; ``hidden=()`` is a linear (or, with cross_entropy, logistic)
model. ``to_module()`` is the equivalent ``nn.Sequential`` (Linear, act, Linear, ...), so its
``state_dict()`` keys are "0.weight", "0.bias", "2.weight", ... and the engine's flat
parameter vector is exactly those tensors, flattened in state_dict order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from wdlab.data.synthetic import stream_seed

Tensor = torch.Tensor

ACTIVATIONS: tuple[str, ...] = ("relu", "gelu", "tanh", "quadratic", "identity")


class Square(nn.Module):
    """act(z) = z^2 (the quadratic activation), an nn.Module without parameters."""

    def forward(self, z: Tensor) -> Tensor:
        return z * z


def activation_module(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "quadratic": Square,
            "identity": nn.Identity}[name]()


@dataclass(frozen=True)
class Layout:
    """Where each named parameter tensor lives in the flat (K, P) parameter vector."""

    names: tuple[str, ...]  # state_dict names, in order
    shapes: tuple[tuple[int, ...], ...]  # state_dict shapes
    offsets: tuple[int, ...]  # start column of each tensor

    @staticmethod
    def of(named_shapes: list[tuple[str, tuple[int, ...]]]) -> Layout:
        offsets, at = [], 0
        for _, shape in named_shapes:
            offsets.append(at)
            at += math.prod(shape)
        return Layout(tuple(n for n, _ in named_shapes), tuple(tuple(s) for _, s in named_shapes),
                      tuple(offsets))

    @property
    def size(self) -> int:
        """P, the number of parameters of one configuration."""
        if not self.names:
            return 0
        return self.offsets[-1] + math.prod(self.shapes[-1])

    def view(self, theta: Tensor, name: str) -> Tensor:
        """(K, *shape) view of tensor ``name`` inside theta (K, P)."""
        i = self.names.index(name)
        a = self.offsets[i]
        return theta[:, a:a + math.prod(self.shapes[i])].view(theta.shape[0], *self.shapes[i])

    def views(self, theta: Tensor) -> dict[str, Tensor]:
        return {n: self.view(theta, n) for n in self.names}

    def decay_mask(self, decay, dtype: torch.dtype, device) -> Tensor:
        """(P,) 1 on decayed entries. ``decay``: "matrices" (tensors with ndim >= 2, the
        nanoGPT/timm rule: biases and norm gains are not decayed), "all", or a predicate
        ``decay(name) -> bool`` on state_dict names."""
        if decay == "matrices":
            pick = lambda n, s: len(s) >= 2  # noqa: E731
        elif decay == "all":
            pick = lambda n, s: True  # noqa: E731
        elif callable(decay):
            pick = lambda n, s: bool(decay(n))  # noqa: E731
        else:
            raise ValueError(f"decay: expected 'matrices', 'all' or a predicate on parameter "
                             f"names, got {decay!r}")
        mask = torch.zeros(self.size, dtype=dtype, device=device)
        for n, s, a in zip(self.names, self.shapes, self.offsets, strict=True):
            if pick(n, s):
                mask[a:a + math.prod(s)] = 1.0
        return mask


@dataclass(frozen=True)
class MLP:
    """A multilayer perceptron, described (the engine trains K of them at once).

    Args:
        in_features: input width D.
        hidden: widths of the hidden layers; () is a linear/logistic model.
        out_features: output width C (classes, or regression targets).
        activation: "relu", "gelu" (erf form, as nn.GELU), "tanh", "quadratic" (z^2) or
            "identity".
        bias: every Linear has a bias.
    """

    in_features: int
    hidden: tuple[int, ...] = ()
    out_features: int = 1
    activation: str = "relu"
    bias: bool = True

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: unknown name {self.activation!r}; expected one of "
                             f"{ACTIVATIONS}")
        for name, v in (("in_features", self.in_features), ("out_features", self.out_features)):
            if int(v) != v or v < 1:
                raise ValueError(f"{name}: must be a positive integer, got {v!r}")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden: widths must be positive integers, got {self.hidden!r}")

    @property
    def widths(self) -> tuple[int, ...]:
        return (int(self.in_features), *self.hidden, int(self.out_features))

    @property
    def n_layers(self) -> int:
        return len(self.widths) - 1

    def layer_names(self, layer: int) -> tuple[str, str | None]:
        """state_dict names of layer l's (weight, bias); Sequential index 2l."""
        return f"{2 * layer}.weight", (f"{2 * layer}.bias" if self.bias else None)

    @property
    def layout(self) -> Layout:
        shapes = []
        w = self.widths
        for layer in range(self.n_layers):
            wn, bn = self.layer_names(layer)
            shapes.append((wn, (w[layer + 1], w[layer])))
            if bn:
                shapes.append((bn, (w[layer + 1],)))
        return Layout.of(shapes)

    def check_inputs(self, name: str, X: Tensor) -> int:
        """Check inputs (G, N, D) against the description; returns out_features."""
        if X.ndim != 3 or X.shape[2] != self.in_features:
            got = X.shape[2] if X.ndim == 3 else tuple(X.shape[1:])
            raise ValueError(f"{name}: rows must have in_features={self.in_features} columns, "
                             f"got {got}")
        return int(self.out_features)

    def to_module(self) -> nn.Sequential:
        """The equivalent ``nn.Sequential``; ``load_state_dict(result.state_dict(k))`` works."""
        mods: list[nn.Module] = []
        w = self.widths
        for layer in range(self.n_layers):
            if layer:
                mods.append(activation_module(self.activation))
            mods.append(nn.Linear(w[layer], w[layer + 1], bias=self.bias))
        return nn.Sequential(*mods)

    def init(self, seeds: Tensor, init_scale: Tensor | float = 1.0) -> Tensor:
        """theta0 (K, P), float64: PyTorch's default nn.Linear init times ``init_scale``.

        Every weight and bias of a layer with fan_in f is drawn U(-1/sqrt(f), 1/sqrt(f))
        (``kaiming_uniform_(a=sqrt(5))`` for the weight), tensors in state_dict order, from a
        generator seeded by ``stream_seed(seed_k, "init")``: configuration k's start depends on
        its own seed only, and configurations sharing a seed start identically. Then every
        parameter is multiplied by ``init_scale_k`` (Omnigrok's init-scale knob).
        """
        seeds = torch.as_tensor(seeds, dtype=torch.int64).reshape(-1)
        lay = self.layout
        uniq, inverse = torch.unique(seeds, return_inverse=True)
        fans = {}  # offset -> fan_in of the layer the tensor belongs to
        for layer in range(self.n_layers):
            for name in self.layer_names(layer):
                if name:
                    fans[lay.offsets[lay.names.index(name)]] = self.widths[layer]
        draws = torch.empty(len(uniq), lay.size, dtype=torch.float64)
        for i, s in enumerate(uniq.tolist()):  # loop over distinct seeds, not configurations
            gen = torch.Generator().manual_seed(stream_seed(s, "init"))
            for shape, a in zip(lay.shapes, lay.offsets, strict=True):
                n = math.prod(shape)
                bound = 1.0 / math.sqrt(fans[a])
                draws[i, a:a + n] = torch.empty(n, dtype=torch.float64).uniform_(
                    -bound, bound, generator=gen)
        scale = torch.as_tensor(init_scale, dtype=torch.float64).reshape(-1, 1)
        return draws[inverse] * scale  # (K, P)

