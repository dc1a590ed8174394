"""THE one registry of named presets: every name ``wdlab reproduce``, ``wdlab sweep --preset``,
a spec's ``preset`` key and the CLI's help accept comes from ``PRESETS``.

Three kinds, one lookup (``lookup``):

    experiment  one data draw, one recipe, several lam (``wdlab.pipeline``): seed, d2l;
                also a sweep spec's ``preset`` (its data and train defaults, ``SPEC_PRESETS``)
    sweep       a ``wdlab.sweep`` spec that reproduces a figure: adamw-fig2, double-descent
    demo        weight decay on networks (``wdlab.demos``): grokking, playground, ...

``seed``: the article's; ``d2l``: d2l.ai's "Weight Decay" chapter. ``adamw-fig2``: final test
MSE over lr x lam for SGD (momentum 0.9) with coupled L2 (``weight_decay``) vs decoupled decay
(``decoupled``: w <- w - lr*lam*w), and Adam with coupled L2 vs AdamW (``decoupled``, =
torch.optim.AdamW) vs fully decoupled (``independent``: w <- w - eta_t*lam*w, not x lr) --
Loshchilov & Hutter (2019), Fig. 2, at toy scale on a linear model. ``double-descent``: test
MSE against n_train / n_features for lam -> 0 and for the best lam, trained by full-batch GD
from w0 = 0, with the closed-form ridge and the theory (``wdlab.exact.theory``) overlaid --
Nakkiran, Venkat, Kakade & Ma (2021).

Importing this module imports nothing heavy (no pydantic, torch or demo code), so the CLI's
help can list the names: the experiments' configs are built on first use
(``experiment(name)``), and a preset's ``runner`` is a ``module:function`` path its caller
imports only to run it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXPERIMENT, SWEEP, DEMO = "experiment", "sweep", "demo"
KINDS = (EXPERIMENT, SWEEP, DEMO)


@dataclass(frozen=True)
class Preset:
    """A named preset: its kind, a one-line summary and the ``module:function`` that runs it."""

    name: str
    kind: str  # experiment, sweep or demo
    summary: str  # one line, shown in the CLI's help
    runner: str  # "module:function", imported by the caller only when it runs the preset


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("seed", EXPERIMENT, "the seed article: Adam lr 0.05, full batch, 100 epochs, "
           "mean(r^2) + lam mean(w^2)", "wdlab.pipeline:reproduce_experiment"),
    Preset("d2l", EXPERIMENT, "d2l.ai: minibatch SGD lr 0.003, batch 5, 100 epochs, "
           "1/2 mean(r^2) + lam/2 ||w||^2", "wdlab.pipeline:reproduce_experiment"),
    Preset("adamw-fig2", SWEEP, "Loshchilov & Hutter Fig. 2 on a linear model: lr x lam, "
           "coupled vs decoupled decay", "wdlab.demos.figures:run_preset"),
    Preset("double-descent", SWEEP, "test MSE vs n_train / n_features, lam -> 0 and the best "
           "lam, ridge and theory overlaid", "wdlab.demos.figures:run_preset"),
    Preset("grokking", DEMO, "modular addition on Gromov's quadratic MLP, AdamW weight decay "
           "swept", "wdlab.demos.grokking:run_grokking"),
    Preset("playground", DEMO, "an offline page of decision boundaries over dataset x lam x "
           "optimizer x width x epoch", "wdlab.demos.playground:run_playground"),
    Preset("adamw-fig2-net", DEMO, "Loshchilov & Hutter Fig. 2 on an MLP (digits): lr x lam "
           "grids, slope statistic", "wdlab.demos.fig2net:run_fig2net"),
    Preset("tau-epoch", DEMO, "Wang & Aitchison's tau_epoch rule: best AdamW lam vs digits "
           "subset size N", "wdlab.demos.tau_epoch:run_tau_epoch"),
    Preset("equilibrium", DEMO, "Kosson et al.'s rotational equilibrium: AdamW neuron norms "
           "and angular updates", "wdlab.demos.equilibrium:run_equilibrium"),
)}


def names(kind: str | None = None) -> tuple[str, ...]:
    """The registry's names, in order; only those of ``kind`` when given."""
    return tuple(n for n, p in PRESETS.items() if kind is None or p.kind == kind)


#: What a spec's ``preset`` key and ``wdlab sweep --preset`` accept: the experiments.
SPEC_PRESETS: tuple[str, ...] = names(EXPERIMENT)


def listed(choices: tuple[str, ...]) -> str:
    """``a, b or c``: the names as the CLI's help lists them."""
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"


def lookup(name: Any, kind: str | None = None, *, hint: bool = True) -> Preset:
    """The preset ``name`` (of ``kind`` when given); else a one-line ``ConfigError``
    ``preset: unknown name 'x'; expected one of (...); did you mean 'y'?``."""
    choices = names(kind)
    if isinstance(name, str) and name in choices:
        return PRESETS[name]
    import difflib

    from wdlab.config.models import ConfigError, shown

    close = difflib.get_close_matches(str(name).lower(), choices, n=1) if hint else []
    tail = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"preset: unknown name {shown(name)}; expected one of {choices}{tail}")


# ----------------------------------------------------------------------------------------
# kind = experiment: the configs, built on first use (wdlab.data imports torch)
# ----------------------------------------------------------------------------------------

_BUILT: dict[str, Any] = {}


def experiment(name: str):
    """The ``ExperimentConfig`` of the experiment preset ``name`` (``seed`` or ``d2l``)."""
    lookup(name, EXPERIMENT, hint=False)
    if name not in _BUILT:
        from wdlab.config.models import DataConfig, ExperimentConfig, TrainConfig
        from wdlab.data.synthetic import D2L_DATA, SEED_DATA

        if name == "seed":  # Adam lr 0.05, full batch, 100 epochs, mean(r^2) + lam * mean(w^2)
            cfg = ExperimentConfig(
                name="seed",
                data=DataConfig(**SEED_DATA, seed=0),
                train=TrainConfig(optimizer="adam", regularizer="mean", loss="mse", lr=0.05,
                                  epochs=100, init_scale=1.0),
                lams=(0.0, 3.0),
                init_seed=0,
            )
        else:  # d2l.ai: minibatch SGD lr 0.003, batch 5, 100 epochs, 1/2 mean(r^2) + lam/2 ||w||^2
            cfg = ExperimentConfig(
                name="d2l",
                data=DataConfig(**D2L_DATA, seed=0),
                train=TrainConfig(optimizer="sgd", regularizer="half_sum", loss="half_mse",
                                  lr=0.003, epochs=100, batch_size=5, init_scale=1.0),
                lams=(0.0, 3.0),
                init_seed=0,
            )
        _BUILT[name] = cfg
    return _BUILT[name]


# ----------------------------------------------------------------------------------------
# kind = sweep: raw sweep specs (validated by wdlab.config.load.preset_spec)
# ----------------------------------------------------------------------------------------

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

#: The raw spec of each sweep preset (the same names as ``names(SWEEP)``).
SWEEP_PRESETS: dict[str, dict[str, Any]] = {"adamw-fig2": ADAMW_FIG2,
                                            "double-descent": DOUBLE_DESCENT}
