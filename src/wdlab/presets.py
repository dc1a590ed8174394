"""Named experiments. ``seed``: the article's; ``d2l``: d2l.ai's "Weight Decay" chapter."""

from __future__ import annotations

from wdlab.config import DataConfig, ExperimentConfig, TrainConfig
from wdlab.data import D2L_DATA, SEED_DATA

#: The seed article: Adam lr 0.05, full batch, 100 epochs, mean(r^2) + lam * mean(w^2).
SEED = ExperimentConfig(
    name="seed",
    data=DataConfig(**SEED_DATA, seed=0),
    train=TrainConfig(optimizer="adam", regularizer="mean", loss="mse", lr=0.05, epochs=100,
                      init_scale=1.0),
    lams=(0.0, 3.0),
    init_seed=0,
)

#: d2l.ai: minibatch SGD lr 0.003, batch 5, 100 epochs, 1/2 mean(r^2) + lam/2 ||w||^2.
D2L = ExperimentConfig(
    name="d2l",
    data=DataConfig(**D2L_DATA, seed=0),
    train=TrainConfig(optimizer="sgd", regularizer="half_sum", loss="half_mse", lr=0.003,
                      epochs=100, batch_size=5, init_scale=1.0),
    lams=(0.0, 3.0),
    init_seed=0,
)

EXPERIMENTS: dict[str, ExperimentConfig] = {"seed": SEED, "d2l": D2L}
