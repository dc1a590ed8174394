"""Learning-rate schedule multipliers eta_t (the base learning rate is scaled by eta_t)."""

from __future__ import annotations

import math


def schedule_multiplier(schedule: str, step: int, total: int) -> float:
    """eta_t for 0-based step t of T: 1 (constant) or (1 + cos(pi t / T)) / 2 (cosine)."""
    if schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * step / total))
