"""Loading a spec into the schema: a file (safe TOML/YAML), a raw dict, a preset, a dump.

Every path ends in ``SweepSpec`` validated through ``wdlab.config.models.validate`` and
``check_spec``, so a bad value raises a ``ConfigError`` whose one-line message names the key
(``train.lr.0: ... (got -1)``). CLI flags become a raw dict in ``wdlab.cli.flags``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from wdlab.config.models import ConfigError, shown, validate
from wdlab.config.nets import route_family
from wdlab.config.presets import EXPERIMENT, REDUCED, SWEEP, SWEEP_PRESETS, experiment, lookup
from wdlab.config.schema import SweepSpec, check_spec


def preset_defaults(name: str) -> dict[str, Any]:
    """The raw data/train defaults of an experiment preset (``wdlab.config.presets``)."""
    exp = experiment(name)
    d, t = exp.data, exp.train
    return {
        "name": name,
        "data": {"n_features": d.n_features, "n_train": d.n_train, "n_test": d.n_test,
                 "w_star": d.w_star, "bias": d.bias, "noise": d.noise, "seeds": [d.seed]},
        "train": {"optimizer": t.optimizer, "regularizer": t.regularizer, "loss": t.loss,
                  "lam": list(exp.lams), "lr": t.lr, "momentum": t.momentum, "beta1": t.beta1,
                  "beta2": t.beta2, "eps": t.eps, "epochs": t.epochs,
                  "batch_size": t.batch_size or 0, "batch_seed": t.batch_seed,
                  "schedule": t.schedule, "init_scale": t.init_scale, "init_seed": "data",
                  "fit_intercept": t.fit_intercept, "decay_bias": t.decay_bias,
                  "dtype": t.dtype, "device": t.device},
    }


def merge(base: dict, over: dict) -> dict:
    """Recursive dict merge: ``over`` wins; non-dict values replace."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def build_spec(raw: dict[str, Any]) -> SweepSpec:
    """Validate a raw spec dict (from a file and/or flags) into a ``SweepSpec``.

    A ``preset`` supplies data and train defaults under the given keys. Raises
    ``ConfigError`` with a one-line message naming the key.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"spec: expected a table of keys, got {type(raw).__name__}")
    user_train = raw.get("train") if isinstance(raw.get("train"), dict) else {}
    if user_train.get("pairs") is not None and ("optimizer" in user_train
                                                 or "regularizer" in user_train):
        raise ConfigError("train.pairs: give pairs or optimizer/regularizer, not both")
    preset = raw.get("preset")
    if preset is not None:
        lookup(preset, EXPERIMENT)  # one line: unknown name, did you mean
        base = preset_defaults(preset)
        if "pairs" in user_train:
            base["train"] = {k: v for k, v in base["train"].items()
                             if k not in ("optimizer", "regularizer")}
        raw = merge(base, raw)
    spec = validate(SweepSpec, route_family(raw))
    check_spec(spec)  # type: ignore[arg-type]
    return spec  # type: ignore[return-value]


def spec_from_json(data: dict[str, Any] | str) -> SweepSpec:
    """A spec from its own dump (``spec.model_dump(mode="json")``, e.g. a manifest's ``spec``).

    Unlike ``build_spec`` no preset is merged in: the dump is complete.
    """
    import json

    if isinstance(data, str):
        data = json.loads(data)
    spec = validate(SweepSpec, data)
    check_spec(spec)  # type: ignore[arg-type]
    return spec  # type: ignore[return-value]


#: A spec is a few lines: larger files (or /dev/zero behind a symlink) are refused unread.
MAX_SPEC_BYTES = 1 << 20
#: Values a spec may expand to (YAML aliases expand: a 463-byte alias bomb is 10^9 values)
#: and how deep it may nest.
MAX_SPEC_NODES = 10**6
MAX_SPEC_DEPTH = 32


def _read_spec_text(path: Path) -> str:
    import stat

    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"spec: {shown(str(path))} is not a regular file")
        with open(path, "rb") as fh:
            data = fh.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"spec: cannot read {shown(str(path))}: {exc.strerror or exc}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise ConfigError(f"spec: {shown(path.name)} is larger than {MAX_SPEC_BYTES >> 20} MiB; "
                          "a spec is a few lines")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"spec: {shown(path.name)} is not UTF-8 text (byte {exc.start})") from None


def check_spec_size(raw: Any, where: str = "spec") -> None:
    """Refuse a loaded spec that nests deeper than ``MAX_SPEC_DEPTH`` or expands (YAML
    aliases) to more than ``MAX_SPEC_NODES`` values; stops counting at the bound."""
    count = 0
    stack = [(raw, 0)]
    while stack:
        obj, depth = stack.pop()
        count += 1
        if count > MAX_SPEC_NODES:
            raise ConfigError(f"{where}: expands to more than {MAX_SPEC_NODES:,} values "
                              "(YAML aliases?); a spec is a few keys")
        if depth > MAX_SPEC_DEPTH:
            raise ConfigError(f"{where}: nested deeper than {MAX_SPEC_DEPTH} levels")
        if isinstance(obj, dict):
            stack.extend((v, depth + 1) for v in obj.values())
        elif isinstance(obj, (list, tuple)):
            stack.extend((v, depth + 1) for v in obj)


def load_raw(path: Path | str) -> dict[str, Any]:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) spec file into a dict, safely.

    Raises ``ConfigError`` with the file name and, for syntax errors, the line. A file that
    is not a regular file, larger than 1 MiB, nested too deep or expanding (YAML aliases)
    past ``MAX_SPEC_NODES`` values is refused.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise ConfigError(f"spec: {shown(path.name)}: expected a .toml, .yaml or .yml file")
    text = _read_spec_text(path)
    if suffix == ".toml":
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"spec: {path.name}: malformed TOML: {exc}") from None
        except RecursionError:
            raise ConfigError(f"spec: {path.name}: nested too deeply") from None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            raw = yaml.safe_load(text)
        except RecursionError:
            raise ConfigError(f"spec: {path.name}: nested too deeply") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise ConfigError(f"spec: {path.name}: malformed YAML{where}: {problem}") from None
        if raw is None:
            raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"spec: {path.name}: the top level must be a table of keys")
    check_spec_size(raw, f"spec: {shown(path.name)}")
    return raw


def load_spec(path: Path | str, overrides: dict[str, Any] | None = None) -> SweepSpec:
    """Load and validate a spec file, with ``overrides`` (e.g. from CLI flags) merged on top."""
    return build_spec(merge(load_raw(path), overrides or {}))


def preset_spec(name: str, *, reduced: bool = False, **train: Any) -> SweepSpec:
    """The validated ``SweepSpec`` of a sweep preset; ``train`` overrides (epochs, device...)."""
    lookup(name, SWEEP, hint=False)
    raw = SWEEP_PRESETS[name]
    if reduced:
        raw = merge(raw, REDUCED[name])
    if train:
        raw = merge(raw, {"train": {k: v for k, v in train.items() if v is not None}})
    return build_spec(raw)
