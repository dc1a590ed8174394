"""CLI flags -> raw spec overrides: ``wdlab sweep --lam 1e-3:1e2:50 --seeds 20``.

Each flag names one spec key (``FLAG_KEYS``); its string is parsed with the spec's value
grammar (``wdlab.config.values``), and a bad one is a one-line ``ConfigError`` naming the
flag (``--epochs: '2.5' is not an integer``). The result merges over a spec file's raw dict
and goes through ``wdlab.config.load.build_spec`` like any spec.

The nets family (``wdlab.config.nets``) has its own flags: ``--family``, ``--dataset``,
``--hidden`` ("64,64" one architecture, "32;64,64" an axis of two), ``--activation``,
``--decay``, ``--bias``, ``--label-smoothing``, ``--warmup``, ``--selection-metric``.
``--dataset`` alone means ``family = "mlp"`` (unless a family is given), and ``--loss``/
``--schedule`` name ``model.loss``/``model.schedule`` for a nets spec and ``train.*`` for a
linear one (``flag_overrides(base=...)`` sees the spec file's family).
"""

from __future__ import annotations

from typing import Any

from wdlab.config.models import ConfigError
from wdlab.config.values import parse_values

#: CLI flag -> (section, key). Values are strings parsed by ``flag_overrides``.
FLAG_KEYS: dict[str, tuple[str | None, str]] = {
    "preset": (None, "preset"), "name": (None, "name"),
    "lam": ("train", "lam"), "lr": ("train", "lr"), "optimizer": ("train", "optimizer"),
    "regularizer": ("train", "regularizer"), "pairs": ("train", "pairs"),
    "loss": ("train", "loss"), "momentum": ("train", "momentum"), "beta1": ("train", "beta1"),
    "beta2": ("train", "beta2"), "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"), "schedule": ("train", "schedule"),
    "init_scale": ("train", "init_scale"), "init_seed": ("train", "init_seed"),
    "device": ("train", "device"), "dtype": ("train", "dtype"),
    "seeds": ("data", "seeds"), "n_train": ("data", "n_train"), "noise": ("data", "noise"),
    "n_features": ("data", "n_features"), "n_test": ("data", "n_test"),
    "validation": ("validation", "method"), "folds": ("validation", "folds"),
    "n_val": ("validation", "n_val"), "log_points": ("record", "log_points"),
    "record_every": ("record", "every"), "chunk_size": ("execution", "chunk_size"),
    "memory_gb": ("execution", "memory_gb"), "engine": ("execution", "engine"),
    "backend": ("execution", "backend"), "address": ("execution", "address"),
    "family": ("model", "family"), "dataset": ("data", "dataset"), "hidden": ("model", "hidden"),
    "activation": ("model", "activation"), "decay": ("model", "decay"), "bias": ("model", "bias"),
    "label_smoothing": ("model", "label_smoothing"), "warmup": ("model", "warmup"),
    "selection_metric": ("selection", "metric"),
}
#: Flags whose key is another for a nets spec (family = "mlp": ``train.loss`` is refused).
NETS_FLAG_KEYS: dict[str, tuple[str, str]] = {"loss": ("model", "loss"),
                                              "schedule": ("model", "schedule")}
_NUMERIC_LISTS = {"lam", "lr", "momentum", "beta1", "beta2", "init_scale", "noise"}
_INT_LISTS = {"epochs", "n_train"}
_STR_LISTS = {"optimizer", "regularizer", "loss", "schedule", "activation", "decay"}
_NAMES = {"family", "selection_metric", "dataset"}  # one lower-cased name
_BOOLS = {"true": True, "false": False}


def _int_token(flag: str, token: str) -> int:
    try:
        value = float(token)
    except ValueError:
        raise ConfigError(f"--{flag.replace('_', '-')}: {token!r} is not an integer") from None
    if not value.is_integer():
        raise ConfigError(f"--{flag.replace('_', '-')}: {token!r} is not an integer")
    return int(value)


def _float_token(flag: str, token: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise ConfigError(f"--{flag.replace('_', '-')}: {token!r} is not a number") from None


def _hidden(text: str) -> list[list[int]]:
    """``--hidden``: architectures separated by ';', each comma-separated widths:
    "64,64" -> [[64, 64]] (one architecture), "32;64,64" -> [[32], [64, 64]] (an axis), an
    empty one is no hidden layer as in a spec (``config.nets``: "" -> ()): ";64" -> [[], [64]]."""
    archs = []
    for part in text.split(";"):
        widths = [s.strip() for s in part.split(",")]
        if not any(widths):
            archs.append([])  # no hidden layer: the softmax / linear baseline
            continue
        arch = []
        for w in widths:
            if not w:
                raise ConfigError(f"--hidden: empty width in {text!r}")
            width = _int_token("hidden", w)
            if width < 1:
                raise ConfigError(f"--hidden: width {w!r} must be a positive integer")
            arch.append(width)
        archs.append(arch)
    return archs


def _is_nets(flags: dict[str, Any], base: dict[str, Any] | None) -> bool:
    """Will the merged spec be a nets one? ``--family``, else the spec file's family, else
    ``--dataset`` (a linear sweep has no dataset) means mlp."""
    if flags.get("family") is not None:
        return str(flags["family"]).strip().lower() != "linear"
    model = (base or {}).get("model")
    if isinstance(model, dict) and "family" in model:
        return model["family"] != "linear"
    return flags.get("dataset") is not None


def flag_overrides(*, base: dict[str, Any] | None = None, **flags: Any) -> dict[str, Any]:
    """Raw spec overrides from CLI flag strings (None = not given).

    ``--lam 1e-3:1e2:50`` (50 log-spaced values), ``--lam 0,0.1,3`` (a list), ``--seeds 20``
    (seeds 0..19), ``--optimizer sgd,adam``, ``--batch-size full,5``, ``--init-seed data``,
    ``--hidden "32;64,64"`` (two architectures), ``--bias true,false``. ``base`` is the raw
    spec the overrides merge over (a spec file's): its ``model.family`` decides, with
    ``--family`` and ``--dataset``, where ``--loss``/``--schedule`` go (``NETS_FLAG_KEYS``).
    """
    raw: dict[str, Any] = {}
    nets = _is_nets(flags, base)
    if flags.get("dataset") is not None and not nets:
        raise ConfigError("--dataset: a dataset is for nets sweeps (--family mlp); a linear "
                          "sweep draws synthetic data (--n-train, --noise)")
    preset = flags.get("preset") or (base or {}).get("preset")
    if nets and preset is not None:
        what = "--dataset" if flags.get("dataset") is not None else "--family"
        raise ConfigError(f"{what}: --preset {preset} sets a linear sweep's synthetic data; "
                          "drop --preset for a nets sweep")
    for flag, value in flags.items():
        if value is None:
            continue
        if flag not in FLAG_KEYS:
            raise ConfigError(f"--{flag.replace('_', '-')}: unknown flag")
        section, key = NETS_FLAG_KEYS[flag] if nets and flag in NETS_FLAG_KEYS else FLAG_KEYS[flag]
        text = str(value)
        name = f"--{flag.replace('_', '-')}"
        try:
            if flag in _NUMERIC_LISTS:
                parsed: Any = parse_values(text)
            elif flag in _INT_LISTS:
                parsed = [_int_token(flag, s) for s in text.split(",")]
            elif flag in _STR_LISTS or flag == "pairs":  # registry names: AdamW = adamw
                parsed = [s.strip().lower() for s in text.split(",") if s.strip()]
            elif flag == "batch_size":
                parsed = [s if s.strip() == "full" else _int_token(flag, s) for s in text.split(",")]
            elif flag == "init_seed":
                parsed = text if text == "data" else [_int_token(flag, s) for s in text.split(",")]
            elif flag == "seeds":
                parsed = (_int_token(flag, text) if "," not in text
                          else [_int_token(flag, s) for s in text.split(",")])
            elif flag in ("folds", "n_val", "log_points", "record_every", "chunk_size",
                          "n_features", "n_test"):
                parsed = _int_token(flag, text)
            elif flag == "memory_gb":
                parsed = _float_token(flag, text)
            elif flag in _NAMES:
                parsed = text.strip().lower()
                if not parsed:
                    raise ConfigError(f"{name}: empty; give a name")
            elif flag == "hidden":
                parsed = _hidden(text)
            elif flag == "bias":
                parsed = []
                for s in text.split(","):
                    if s.strip().lower() not in _BOOLS:
                        raise ConfigError(f"--bias: {s.strip()!r} is not true or false")
                    parsed.append(_BOOLS[s.strip().lower()])
            elif flag == "warmup":
                parsed = _int_token(flag, text)
            elif flag == "label_smoothing":
                parsed = _float_token(flag, text)
            else:
                parsed = text
        except ConfigError:
            raise  # already names the flag
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None
        if section is None:
            raw[key] = parsed
        else:
            raw.setdefault(section, {})[key] = parsed
    if nets and flags.get("dataset") is not None and flags.get("family") is None:
        raw.setdefault("model", {}).setdefault("family", "mlp")  # kept if the file names one
    if "record" in raw:  # a flag for one recording mode replaces the file's other one
        other = {"every": "log_points", "log_points": "every"}
        for k in list(raw["record"]):
            raw["record"].setdefault(other[k], None)
    return raw
