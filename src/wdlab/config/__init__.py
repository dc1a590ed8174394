"""Configuration: validated frozen models, the sweep schema, the value grammar, the presets.

    models    the experiment models (DataConfig, TrainConfig, ExperimentConfig), the bounds,
              ConfigError and the one-line validation errors
    values    the value grammar: ranges ``1e-3:1e2:20``, lists ``0,0.1,3``, axes
    nets      the nets family's schema (``[model]``, the nets ``[data]``, ``[selection]``)
    schema    the sweep schema (SweepSpec and its sections) and its cross-field checks
    load      a spec file (safe TOML/YAML) or raw dict, with a preset, into a SweepSpec
    presets   the one registry of named presets (reproduce, sweep --preset, demos)

Every name is re-exported lazily: ``from wdlab.config import DataConfig`` imports pydantic,
``from wdlab.config.presets import names`` imports nothing heavy (``wdlab --help`` stays
instant).
"""

from __future__ import annotations

import importlib

_MODELS = ("Optimizer", "Regularizer", "Loss", "Schedule", "DType", "OPTIMIZERS",
           "ADAMW_REGULARIZERS", "ConfigError", "MAX_SEED", "MAX_EPOCHS", "MAX_SAMPLES",
           "MAX_FEATURES", "MAX_AXIS", "MAX_LAM", "MAX_SCALE", "MAX_LR", "MAX_ECHO", "shown",
           "seed_axis", "format_validation_error", "validate", "_Frozen", "DataConfig",
           "TrainConfig", "ExperimentConfig")

_SUBMODULES = {
    "values": ("parse_range", "parse_values", "axis_values", "split_count"),
    "nets": ("SweepModel", "SweepDataset", "SweepSelection", "is_nets", "check_model"),
    "schema": ("Engine", "SweepData", "SweepTrain", "SweepValidation", "SweepRecord",
               "SweepExecution", "SweepSpec", "check_spec", "EVERY_EPOCH_UP_TO",
               "DEFAULT_LOG_POINTS"),
    "load": ("build_spec", "load_spec", "load_raw", "merge", "spec_from_json", "preset_spec",
             "preset_defaults", "check_spec_size"),
    "presets": ("Preset", "PRESETS", "SPEC_PRESETS", "lookup", "names", "experiment"),
}

#: public name -> the submodule that defines it
_HOMES: dict[str, str] = {name: "models" for name in _MODELS}
_HOMES.update({name: mod for mod, group in _SUBMODULES.items() for name in group})

__all__ = [n for n in _HOMES if not n.startswith("_")]


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'wdlab.config' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"wdlab.config.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
