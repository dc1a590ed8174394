"""Sweep presets that reproduce figures: ``adamw-fig2`` and ``double-descent``.

``wdlab reproduce adamw-fig2``: final test MSE over lr x lam for SGD (momentum 0.9) with
coupled L2 (``weight_decay``) vs decoupled decay (``decoupled``: w <- w - lr*lam*w), and Adam
with coupled L2 vs AdamW (``decoupled``, = torch.optim.AdamW) vs fully decoupled
(``independent``: w <- w - eta_t*lam*w, not x lr) -- Loshchilov & Hutter (2019), Fig. 2,
at toy scale on a linear model.

``wdlab reproduce double-descent``: test MSE against n_train / n_features for lam -> 0 and
for the best lam, trained by full-batch GD from w0 = 0, with the closed-form ridge and the
theory (``wdlab.theory``) overlaid -- Nakkiran, Venkat, Kakade & Ma (2021).

Each is a ``wdlab.sweep`` spec; ``reduced=True`` gives the small version the tests run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ADAMW_FIG2: dict[str, Any] = {
    "name": "adamw-fig2",
    "data": {"n_features": 50, "n_train": 100, "n_test": 500, "w_star": 0.1, "bias": 0.5,
             "noise": 1.0, "seeds": 3},
    "train": {
        "pairs": ["sgd+weight_decay", "sgd+decoupled", "adam+weight_decay", "adamw+decoupled",
                  "adamw+independent"],
        "loss": "mse", "lam": "0,1e-4:1e1:11", "lr": "1e-4:1:9", "momentum": 0.9,
        "epochs": 200, "batch_size": 0, "init_scale": 1.0, "schedule": "constant",
    },
    "validation": {"method": "holdout"},
    "record": {"log_points": 30},
}

DOUBLE_DESCENT: dict[str, Any] = {
    "name": "double-descent",
    "data": {"n_features": 100, "n_train": [20, 40, 60, 80, 90, 100, 110, 125, 150, 200, 300],
             "n_test": 500, "w_star": 0.1, "bias": 0.0, "noise": 0.5, "seeds": 3},
    "train": {
        "pairs": ["sgd+sum"], "loss": "mse", "lam": "1e-6,1e-3:1:7", "lr": 0.08,
        "epochs": 1000, "batch_size": 0, "init_scale": 0.0,
    },
    "validation": {"method": "holdout"},
    "record": {"log_points": 20},
}

#: Changes for the reduced size the tests run end to end.
REDUCED: dict[str, dict[str, Any]] = {
    "adamw-fig2": {"data": {"n_features": 10, "n_train": 20, "n_test": 40, "seeds": 2},
                   "train": {"lam": "0,1e-3:1:4", "lr": "1e-3:1e-1:3", "epochs": 20},
                   "record": {"log_points": 5}},
    "double-descent": {"data": {"n_features": 10, "n_train": [5, 10, 20], "n_test": 40,
                                "seeds": 2},
                       "train": {"lam": "1e-6,1e-2:1:3", "epochs": 60},
                       "record": {"log_points": 5}},
}

SWEEP_PRESETS: dict[str, dict[str, Any]] = {"adamw-fig2": ADAMW_FIG2,
                                            "double-descent": DOUBLE_DESCENT}


def preset_spec(name: str, *, reduced: bool = False, **train: Any):
    """The validated ``SweepSpec`` of a sweep preset; ``train`` overrides (epochs, device...)."""
    from wdlab.spec import build_spec, merge

    if name not in SWEEP_PRESETS:
        raise ValueError(f"preset: unknown sweep preset {name!r}; expected one of "
                         f"{tuple(SWEEP_PRESETS)}")
    raw = SWEEP_PRESETS[name]
    if reduced:
        raw = merge(raw, REDUCED[name])
    if train:
        raw = merge(raw, {"train": {k: v for k, v in train.items() if v is not None}})
    return build_spec(raw)


def run_preset(name: str, *, out: Path | str | None = None, force: bool = False,
               report: bool = True, reduced: bool = False, **train: Any) -> Path:
    """Run a sweep preset into a run directory with its figures (and report.html)."""
    from wdlab.pipeline import finish_views
    from wdlab.sweep import run_sweep

    spec = preset_spec(name, reduced=reduced, **train)
    path = run_sweep(spec, out, force=force, report=False)
    finish_views(Path(path), report=report)
    return Path(path)
