"""K MLPs as batched matmuls: forward and a hand-written backward.

Configuration k's parameters are the row theta[k] (P,) in state_dict order; the weight of
layer l is the view W_l = theta[:, a:b].view(K, out, in), so one (K, P) gradient feeds the
shared optimizer rules. Per layer (h_0 = x, shared by the M configurations of a draw):

    z_l = baddbmm(b_l, h_{l-1}, W_l^T)   (K, N, out)     h_l = act(z_l)
    dW_l = delta_l^T h_{l-1}             (K, out, in)    db_l = sum_n delta_l
    delta_{l-1} = (delta_l W_l) * act'(z_{l-1})
"""

from __future__ import annotations

import torch

from wdlab.nets.losses import Targets, loss_and_grad, loss_value
from wdlab.nets.mlp import MLP

Tensor = torch.Tensor

def _act(name: str, z: Tensor, inplace: bool) -> Tensor:
    """act(z); in place (z is overwritten) when the backward needs only h = act(z)."""
    if name == "relu":
        return torch.relu_(z) if inplace else torch.relu(z)
    if name == "tanh":
        return torch.tanh_(z) if inplace else torch.tanh(z)
    if name == "gelu":
        return torch.nn.functional.gelu(z)
    if name == "quadratic":
        return z * z
    return z


#: activations whose derivative is a function of h = act(z) alone (z need not be kept)
_FROM_OUTPUT = ("relu", "tanh", "identity")


def _act_backward(name: str, delta: Tensor, z: Tensor | None, h: Tensor) -> Tensor:
    """delta * act'(z), with the kernels torch's autograd uses (h = act(z))."""
    if name == "relu":
        return torch.ops.aten.threshold_backward(delta, h, 0.0)
    if name == "gelu":
        return torch.ops.aten.gelu_backward(delta, z)
    if name == "tanh":
        return torch.ops.aten.tanh_backward(delta, h)
    if name == "quadratic":
        return delta * (2.0 * z)
    return delta


class MLPProgram:
    """Forward and backward of K MLPs sharing one description."""

    def __init__(self, mlp: MLP):
        self.mlp = mlp
        self.layout = mlp.layout
        self.names = [mlp.layer_names(layer) for layer in range(mlp.n_layers)]

    def _inputs(self, x: Tensor, K: int) -> Tensor:
        G, N, D = x.shape
        if G == 1:
            return x[0].expand(K, N, D)  # (K, N, D) stride-0 view, no copy
        return x[:, None].expand(G, K // G, N, D).reshape(K, N, D)

    def forward(self, theta: Tensor, x: Tensor, keep: bool = False):
        """Outputs z_L (K, N, C) for inputs x (G, N, D); with ``keep`` also the cache."""
        K = theta.shape[0]
        h = self._inputs(x, K)
        hs, zs = [h], []
        L = len(self.names)
        for layer, (wn, bn) in enumerate(self.names):
            WT = self.layout.view(theta, wn).transpose(1, 2)  # (K, in, out)
            if bn is None:
                z = torch.bmm(h, WT)  # (K, N, out)
            else:
                z = torch.baddbmm(self.layout.view(theta, bn).unsqueeze(1), h, WT)
            if layer < L - 1:
                from_out = self.mlp.activation in _FROM_OUTPUT
                h = _act(self.mlp.activation, z, inplace=from_out)
                if keep:
                    zs.append(None if from_out else z)
                    hs.append(h)
        return (z, (hs, zs)) if keep else z

    def loss_grad(self, theta: Tensor, x: Tensor, tgt: Targets, loss: str, smoothing: float):
        """(loss (K,), outputs (K, N, C), gradient (K, P)) at theta."""
        K = theta.shape[0]
        z, (hs, zs) = self.forward(theta, x, keep=True)
        val, delta = loss_and_grad(z, tgt, loss, smoothing)
        grads: dict[str, Tensor] = {}
        for layer in range(len(self.names) - 1, -1, -1):
            wn, bn = self.names[layer]
            grads[wn] = torch.bmm(delta.transpose(1, 2), hs[layer])  # (K, out, in)
            if bn is not None:
                grads[bn] = delta.sum(1)  # (K, out)
            if layer:
                delta = torch.bmm(delta, self.layout.view(theta, wn))  # (K, N, in)
                delta = _act_backward(self.mlp.activation, delta, zs[layer - 1], hs[layer])
        flat = torch.cat([grads[n].reshape(K, -1) for n in self.layout.names], 1)  # (K, P)
        return val, z, flat

    def loss(self, theta: Tensor, x: Tensor, tgt: Targets, loss: str, smoothing: float):
        z = self.forward(theta, x)
        return loss_value(z, tgt, loss, smoothing), z
