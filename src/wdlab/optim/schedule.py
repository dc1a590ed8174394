"""Learning-rate schedule multipliers eta_t (the base learning rate is scaled by eta_t)."""

from __future__ import annotations

import math

SCHEDULES: tuple[str, ...] = ("constant", "cosine", "warmup_cosine")


def schedule_multiplier(schedule: str, step: int, total: int, warmup: int = 0) -> float:
    """eta_t for 0-based step t of T: 1 (constant) or (1 + cos(pi t / T)) / 2 (cosine).

    ``warmup_cosine`` with W warmup steps: (t + 1) / W for t < W (linear warmup, reaching 1
    at step W - 1), then (1 + cos(pi (t - W) / (T - W))) / 2.
    """
    if schedule == "constant":
        return 1.0
    if schedule == "warmup_cosine":
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))
    return 0.5 * (1.0 + math.cos(math.pi * step / total))
