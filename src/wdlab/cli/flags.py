"""CLI flags -> raw spec overrides: ``wdlab sweep --lam 1e-3:1e2:50 --seeds 20``.

Each flag names one spec key (``FLAG_KEYS``); its string is parsed with the spec's value
grammar (``wdlab.config.values``), and a bad one is a one-line ``ConfigError`` naming the
flag (``--epochs: '2.5' is not an integer``). The result merges over a spec file's raw dict
and goes through ``wdlab.config.load.build_spec`` like any spec.
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
}
_NUMERIC_LISTS = {"lam", "lr", "momentum", "beta1", "beta2", "init_scale", "noise"}
_INT_LISTS = {"epochs", "n_train"}
_STR_LISTS = {"optimizer", "regularizer", "loss", "schedule"}


def _int_token(flag: str, token: str) -> int:
    try:
        value = float(token)
    except ValueError:
        raise ConfigError(f"--{flag.replace('_', '-')}: {token!r} is not an integer") from None
    if not value.is_integer():
        raise ConfigError(f"--{flag.replace('_', '-')}: {token!r} is not an integer")
    return int(value)


def flag_overrides(**flags: Any) -> dict[str, Any]:
    """Raw spec overrides from CLI flag strings (None = not given).

    ``--lam 1e-3:1e2:50`` (50 log-spaced values), ``--lam 0,0.1,3`` (a list), ``--seeds 20``
    (seeds 0..19), ``--optimizer sgd,adam``, ``--batch-size full,5``, ``--init-seed data``.
    """
    raw: dict[str, Any] = {}
    for flag, value in flags.items():
        if value is None:
            continue
        if flag not in FLAG_KEYS:
            raise ConfigError(f"--{flag.replace('_', '-')}: unknown flag")
        section, key = FLAG_KEYS[flag]
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
                parsed = float(text)
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
    if "record" in raw:  # a flag for one recording mode replaces the file's other one
        other = {"every": "log_points", "log_points": "every"}
        for k in list(raw["record"]):
            raw["record"].setdefault(other[k], None)
    return raw
