"""What ``wdlab.nets.train`` returns: metrics tables and every configuration's parameters."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from wdlab.nets.mlp import Layout

Tensor = torch.Tensor


@dataclass
class NetResult:
    """K trained networks, on the host (CPU).

    ``metrics[name]`` is (R, K), one row per recorded epoch (``epochs``, 0 = the initial
    parameters): ``train_loss``/``test_loss`` (the pure data loss, never the penalty),
    ``train_accuracy``/``test_accuracy`` (classification), ``penalty`` (the regularizer's
    objective term, 0 for the decoupled decays), ``objective`` (train_loss + penalty) and
    ``norm/<name>``, the l2 norm of each parameter tensor named as in the state_dict.
    """

    epochs: list[int]  # recorded epochs
    metrics: dict[str, Tensor]  # name -> (R, K)
    theta: Tensor  # (K, P) final parameters, flat in state_dict order
    theta0: Tensor  # (K, P) initial parameters
    diverged_epoch: Tensor  # (K,) int64, -1 when the configuration never diverged
    layout: Layout
    model: object = None  # the MLP (or ModuleNet) description
    extra: dict = field(default_factory=dict)

    @property
    def n_configs(self) -> int:
        return self.theta.shape[0]

    @property
    def diverged(self) -> Tensor:
        return self.diverged_epoch >= 0  # (K,) bool

    def _state(self, theta: Tensor, k: int) -> dict[str, Tensor]:
        if not -self.n_configs <= k < self.n_configs:
            raise IndexError(f"k: configuration {k} out of range for K={self.n_configs}")
        row = theta[k:k + 1]
        return {n: v[0].clone() for n, v in self.layout.views(row).items()}

    def state_dict(self, k: int) -> dict[str, Tensor]:
        """Final parameters of configuration k, loadable into ``model.to_module()``."""
        return self._state(self.theta, k)

    def initial_state_dict(self, k: int) -> dict[str, Tensor]:
        """Initial parameters of configuration k (rerun it in plain PyTorch from here)."""
        return self._state(self.theta0, k)

    def param(self, name: str) -> Tensor:
        """(K, *shape) final values of one named parameter tensor."""
        return self.layout.view(self.theta, name)

    def final(self, name: str) -> Tensor:
        """(K,) the last recorded value of a metric."""
        return self.metrics[name][-1]
