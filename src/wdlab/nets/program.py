"""K MLPs as batched matmuls: forward and a hand-written backward.

Configuration k's parameters are the row theta[k] (P,) in state_dict order; the weight of
layer l is the view W_l = theta[:, a:b].view(K, out, in), so one (K, P) gradient feeds the
shared optimizer rules. Per layer (h_0 = x, shared by the M configurations of a draw):

    z_l = bmm(h_{l-1}, W_l^T) + b_l      (K, N, out)     h_l = act(z_l)
    dW_l = delta_l^T h_{l-1}             (K, out, in)    db_l = sum_n delta_l
    delta_{l-1} = (delta_l W_l) * act'(z_{l-1})

dW_l is formed as (h_{l-1}^T delta_l)^T for a narrow input feeding a wider layer (the first
layer of a 2-D input): the batched GEMM is several times faster with the wider side as its
output's columns (``_transposed_dw``).

Every activation, delta and gradient lives in a workspace allocated once per (K, N) and
reused step after step (``out=`` and in-place ops): a fresh multi-megabyte tensor per op
costs page faults that, at small widths, took longer than the matmuls themselves. (A
feature-major layout, (K, out, N), which makes the first layer one GEMM over the K stacked
weights, was measured slower on CPU at every layer of the moons shape and is not used.)
"""

from __future__ import annotations

import torch

from wdlab.nets.losses import Targets, loss_and_grad, loss_value
from wdlab.nets.mlp import MLP

Tensor = torch.Tensor

def _act(name: str, z: Tensor, out: Tensor | None = None) -> Tensor:
    """h = act(z) written into out: in place when out is z (the backward then needs only h),
    a fresh tensor when out is None."""
    if name == "identity":
        return z if out is None or out is z else out.copy_(z)
    if out is None:
        if name == "gelu":
            return torch.nn.functional.gelu(z)
        return z * z if name == "quadratic" else getattr(torch, name)(z)
    if name == "relu":
        return torch.relu_(z) if out is z else torch.relu(z, out=out)
    if name == "tanh":
        return torch.tanh_(z) if out is z else torch.tanh(z, out=out)
    if name == "gelu":
        return torch.ops.aten.gelu.out(z, out=out)
    return torch.mul(z, z, out=out)  # quadratic


#: activations whose derivative is a function of h = act(z) alone (z need not be kept)
_FROM_OUTPUT = ("relu", "tanh", "identity")


def _act_backward(name: str, delta: Tensor, z: Tensor | None, h: Tensor, out: Tensor) -> Tensor:
    """delta * act'(z) written into out (which may be delta), with the kernels torch's
    autograd uses (h = act(z)). For the quadratic, z is overwritten with 2 z."""
    if name == "relu":
        return torch.ops.aten.threshold_backward.grad_input(delta, h, 0.0, grad_input=out)
    if name == "gelu":
        return torch.ops.aten.gelu_backward.grad_input(delta, z, grad_input=out)
    if name == "tanh":
        return torch.ops.aten.tanh_backward.grad_input(delta, h, grad_input=out)
    if name == "quadratic":
        return torch.mul(delta, z.mul_(2.0), out=out)
    return delta if out is delta else out.copy_(delta)


def _transposed_dw(fan_out: int, fan_in: int) -> bool:
    """Form dW as (h^T delta)^T: for a narrow input (fan_in < 16) feeding a wider layer. On
    the 2-core EPYC, 1 thread: 4.4x faster at moons' 2 -> 16 (K=1024, N=200), 1.3x slower at
    digits' 64 -> 128 (K=256, batch 64), equal at 64 -> 128 full batch."""
    return fan_in < 16 and fan_out > fan_in


class _Workspace:
    """Preallocated buffers of one (K, N) step: pre-activations z_l (K, N, out), activations
    (the same buffer when act is applied in place), deltas of the hidden layers, the weight
    gradients and the flat gradient."""

    def __init__(self, mlp: MLP, K: int, N: int, P: int, dtype, device):
        widths = mlp.widths
        new = lambda *s: torch.empty(*s, dtype=dtype, device=device)  # noqa: E731
        self.z = [new(K, N, w) for w in widths[1:]]  # (K, N, out_l)
        from_out = mlp.activation in _FROM_OUTPUT
        self.h = [z if from_out else new(z.shape) for z in self.z[:-1]]  # (K, N, out_l)
        self.delta = [new(K, N, w) for w in widths[1:-1]]  # (K, N, out_l), hidden layers
        self.dw = [new(K, a, b) if _transposed_dw(b, a) else new(K, b, a)  # (K, out, in)
                   for a, b in zip(widths[:-1], widths[1:], strict=True)]  # or its transpose
        self.grad = new(K, P)  # (K, P); bmm into its strided views would loop per matrix


class MLPProgram:
    """Forward and backward of K MLPs sharing one description."""

    def __init__(self, mlp: MLP):
        self.mlp = mlp
        self.layout = mlp.layout
        self.names = [mlp.layer_names(layer) for layer in range(mlp.n_layers)]
        self._ws: dict[tuple, _Workspace] = {}

    def workspace(self, K: int, N: int, dtype, device) -> _Workspace:
        """The buffers for K configurations on N rows (kept for the two latest shapes: a
        full batch and the last, smaller minibatch)."""
        key = (K, N, dtype, str(device))
        ws = self._ws.get(key)
        if ws is None:
            if len(self._ws) >= 2:
                self._ws.pop(next(iter(self._ws)))
            ws = self._ws[key] = _Workspace(self.mlp, K, N, self.layout.size, dtype, device)
        return ws

    def _inputs(self, x: Tensor, K: int) -> Tensor:
        G, N, D = x.shape
        if G == 1:
            return x[0].expand(K, N, D)  # (K, N, D) stride-0 view, no copy
        return x[:, None].expand(G, K // G, N, D).reshape(K, N, D)

    def _forward(self, theta: Tensor, x: Tensor, ws: _Workspace | None = None):
        """z_L (K, N, C), the inputs of every layer [h_0, ..., h_{L-1}] and the
        pre-activations (kept only where act' needs z)."""
        K = theta.shape[0]
        h = self._inputs(x, K)
        L = len(self.names)
        act = self.mlp.activation
        from_out = act in _FROM_OUTPUT
        hs, zs = [h], []
        for layer, (wn, bn) in enumerate(self.names):
            WT = self.layout.view(theta, wn).transpose(1, 2)  # (K, in, out)
            z = torch.bmm(h, WT, out=None if ws is None else ws.z[layer])  # (K, N, out)
            if bn is not None:
                z.add_(self.layout.view(theta, bn).unsqueeze(1))  # + b_l (K, 1, out)
            if layer < L - 1:
                h = _act(act, z, out=z if from_out else None if ws is None else ws.h[layer])
                zs.append(None if from_out else z)
                hs.append(h)
        return z, hs, zs

    def forward(self, theta: Tensor, x: Tensor) -> Tensor:
        """Outputs z_L (K, N, C) for inputs x (G, N, D)."""
        return self._forward(theta, x)[0]

    def loss_grad(self, theta: Tensor, x: Tensor, tgt: Targets, loss: str, smoothing: float):
        """(loss (K,), outputs (K, N, C), gradient (K, P)) at theta.

        The outputs and the gradient live in this program's workspace: they are valid until
        the next call with the same (K, N)."""
        K, N = theta.shape[0], x.shape[1]
        ws = self.workspace(K, N, theta.dtype, theta.device)
        z, hs, zs = self._forward(theta, x, ws)
        val, delta = loss_and_grad(z, tgt, loss, smoothing)  # delta (K, N, C)
        grad, lay, act = ws.grad, self.layout, self.mlp.activation
        for layer in range(len(self.names) - 1, -1, -1):
            wn, bn = self.names[layer]
            gw = lay.view(grad, wn)  # (K, out, in)
            if not _transposed_dw(gw.shape[1], gw.shape[2]):
                gw.copy_(torch.bmm(delta.transpose(1, 2), hs[layer], out=ws.dw[layer]))
            else:  # (h^T delta)^T: the wider side as the output's columns
                gw.copy_(torch.bmm(hs[layer].transpose(1, 2), delta,
                                   out=ws.dw[layer]).transpose(1, 2))
            if bn is not None:
                torch.sum(delta, 1, out=lay.view(grad, bn))  # (K, out)
            if layer:
                d = torch.bmm(delta, lay.view(theta, wn), out=ws.delta[layer - 1])  # (K, N, in)
                delta = _act_backward(act, d, zs[layer - 1], hs[layer], out=d)  # in place
        return val, z, grad

    def loss(self, theta: Tensor, x: Tensor, tgt: Targets, loss: str, smoothing: float):
        z = self.forward(theta, x)
        return loss_value(z, tgt, loss, smoothing), z
