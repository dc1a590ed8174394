"""Data losses of K networks at once, their analytic gradients, and the targets they take.

For outputs z (K, N, C) of configuration k on its draw's batch of N samples:

    cross_entropy   L = mean_n [ logsumexp(z_n) - sum_c q_nc z_nc ],
                    q_n = (1 - eps) onehot(y_n) + eps / C      (label smoothing eps, default 0;
                    exactly torch.nn.functional.cross_entropy(z, y, label_smoothing=eps))
    mse             L = mean_{n,c} (z_nc - t_nc)^2           (torch.nn.MSELoss: mean over N*C)
    half_mse        L = 1/2 mean_{n,c} (z_nc - t_nc)^2

Integer labels with mse/half_mse become one-hot targets t (as in grokking papers). The
gradients are dL/dz: (softmax(z) - q) / N and 2 c (z - t) / (N C).

With per-row weights (``Targets.weight``, (G, N) >= 0) the mean over rows becomes
sum_n s_n l_n with s = w / sum(w) in each batch (a batch whose rows all weigh 0 has loss 0
and gradient 0); k-fold CV trains every fold of one design as a 0/1 weight mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Tensor = torch.Tensor

LOSSES: tuple[str, ...] = ("cross_entropy", "mse", "half_mse")
_MSE_SCALE = {"mse": 1.0, "half_mse": 0.5}


@dataclass(frozen=True)
class Targets:
    """One batch's targets for G draws (configurations draw-major, M = K / G per draw)."""

    labels: Tensor | None  # (G, N) int64 class labels (classification), else None
    values: Tensor | None  # (G, N, C) float targets for mse/half_mse, else None
    weight: Tensor | None = None  # (G, N) row weights >= 0 (None: the plain mean), or
    #: (1, K, N): one weight row per configuration of a single draw (k-fold masks over one X)
    share: Tensor | None = None  # ``shares()`` precomputed (a full-batch run forms it once)

    def take(self, idx: Tensor) -> Targets:
        """Rows ``idx`` (G, B) of every draw."""
        g = torch.arange(idx.shape[0], device=idx.device)[:, None]
        return Targets(None if self.labels is None else self.labels[g, idx],
                       None if self.values is None else self.values[g, idx],
                       None if self.weight is None else self.weight[g, idx])

    def to(self, dtype, device) -> Targets:
        return Targets(None if self.labels is None else self.labels.to(device),
                       None if self.values is None else self.values.to(device=device, dtype=dtype),
                       None if self.weight is None else self.weight.to(device=device, dtype=dtype))

    def shares(self) -> Tensor | None:
        """(G, 1, N) s = w / sum(w) per draw (0 where a draw's rows all weigh 0), or
        (1, K, N) per configuration for per-configuration weights; None without weights."""
        if self.share is not None:
            return self.share
        if self.weight is None:
            return None
        tot = self.weight.sum(-1, keepdim=True)  # (G, 1) or (1, K, 1)
        s = self.weight / torch.where(tot > 0, tot, torch.ones_like(tot))
        return s if s.ndim == 3 else s[:, None]


#: class counts up to which logsumexp runs as per-class element-wise ops: torch's reduction
#: over a last dimension of 2-4 entries is not vectorised and was 3x slower at moons' shape
_SMALL_C = 4


def _logsumexp(z: Tensor) -> Tensor:
    """logsumexp over the last dimension, keepdim, as torch.logsumexp forms it:
    m + log(sum_c exp(z_c - m)), m = max_c z_c (0 where m is infinite)."""
    C = z.shape[-1]
    if C > _SMALL_C:
        return torch.logsumexp(z, -1, keepdim=True)
    zs = z.unbind(-1)  # C views (..., N)
    m = zs[0]
    for c in zs[1:]:
        m = torch.maximum(m, c)
    m = m.masked_fill(torch.isinf(m), 0.0)
    s = None
    if z.requires_grad:  # autograd (from_module): no in-place op on what backward reads
        for c in zs:
            e = torch.exp(c - m)
            s = e if s is None else s + e
        return (torch.log(s) + m)[..., None]
    for c in zs:
        e = torch.exp(c - m)
        s = e if s is None else s.add_(e)
    return torch.log_(s).add_(m)[..., None]


def _grouped(z: Tensor, G: int) -> Tensor:
    K, N, C = z.shape
    return z.view(G, K // G, N, C)  # (G, M, N, C)


def loss_value(z: Tensor, tgt: Targets, loss: str, smoothing: float = 0.0) -> Tensor:
    """(K,) data loss; differentiable (used by the autograd path and for metrics)."""
    G = (tgt.labels if tgt.labels is not None else tgt.values).shape[0]
    zg = _grouped(z, G)  # (G, M, N, C)
    if loss == "cross_entropy":
        lse = _logsumexp(zg)[..., 0]  # (G, M, N)
        lab = tgt.labels[:, None, :, None].expand(*zg.shape[:3], 1)
        zy = torch.gather(zg, -1, lab)[..., 0]  # (G, M, N)
        per = lse - (1.0 - smoothing) * zy
        if smoothing:
            per = per - smoothing * zg.mean(-1)
        s = tgt.shares()
        return (per.mean(-1) if s is None else (per * s).sum(-1)).reshape(-1)  # (K,)
    r = zg - tgt.values[:, None]  # (G, M, N, C)
    s = tgt.shares()
    if s is not None:
        return _MSE_SCALE[loss] * ((r * r).mean(-1) * s).sum(-1).reshape(-1)  # (K,)
    return _MSE_SCALE[loss] * (r * r).mean((-2, -1)).reshape(-1)  # (K,)


def loss_and_grad(z: Tensor, tgt: Targets, loss: str, smoothing: float = 0.0):
    """(loss (K,), dL/dz (K, N, C)), the gradient written out by hand."""
    G = (tgt.labels if tgt.labels is not None else tgt.values).shape[0]
    K, N, C = z.shape
    zg = _grouped(z, G)  # (G, M, N, C)
    if loss == "cross_entropy":
        lse = _logsumexp(zg)  # (G, M, N, 1)
        lab = tgt.labels[:, None, :, None].expand(*zg.shape[:3], 1)
        zy = torch.gather(zg, -1, lab)  # (G, M, N, 1)
        per = lse - (1.0 - smoothing) * zy
        dz = torch.exp(zg - lse)  # softmax
        if smoothing:
            per = per - smoothing * zg.mean(-1, keepdim=True)
            dz = dz - smoothing / C
        dz.scatter_add_(-1, lab, torch.full_like(zy, -(1.0 - smoothing)))
        s = tgt.shares()
        if s is not None:
            return (per[..., 0] * s).sum(-1).reshape(K), (dz * s[..., None]).view(K, N, C)
        return per.mean((-2, -1)).reshape(K), (dz * (1.0 / N)).view(K, N, C)
    c = _MSE_SCALE[loss]
    r = zg - tgt.values[:, None]  # (G, M, N, C)
    s = tgt.shares()
    if s is not None:
        val = c * ((r * r).mean(-1) * s).sum(-1).reshape(K)
        return val, (r * ((2.0 * c / C) * s[..., None])).view(K, N, C)
    val = c * (r * r).mean((-2, -1)).reshape(K)
    return val, (r * (2.0 * c / (N * C))).view(K, N, C)


def n_correct(z: Tensor, labels: Tensor, shares: Tensor | None = None) -> Tensor:
    """(K,) accuracy of argmax(z) against labels (G, N), weighted by shares (G, 1, N)."""
    G = labels.shape[0]
    pred = _grouped(z, G).argmax(-1)  # (G, M, N)
    hit = (pred == labels[:, None]).to(z.dtype)  # (G, M, N)
    return (hit.mean(-1) if shares is None else (hit * shares).sum(-1)).reshape(-1)
