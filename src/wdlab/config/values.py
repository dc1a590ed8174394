"""The value grammar of specs and flags: numbers, lists, ranges and axes.

A value is a number, a list, or a text of comma-separated numbers and ranges
``start:stop:num[:log|lin]`` (``0,1e-3:1e2:50`` = 0 and 50 log-spaced values); a table
``{start, stop, num, scale}`` is a range too. An axis is a deduplicated tuple of values.
Booleans are never numbers. Everything here raises ``ValueError`` with a one-line message;
the schema names the field.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import BeforeValidator, Field

from wdlab.config.models import (
    MAX_AXIS,
    MAX_EPOCHS,
    MAX_LAM,
    MAX_LR,
    MAX_SAMPLES,
    MAX_SCALE,
    MAX_SEED,
)


def no_bool(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError("expected a number, not a boolean")
    return v


Int = Annotated[int, BeforeValidator(no_bool)]
Float = Annotated[float, BeforeValidator(no_bool)]
PosInt = Annotated[int, BeforeValidator(no_bool), Field(ge=1)]
NonNegInt = Annotated[int, BeforeValidator(no_bool), Field(ge=0)]
PosFloat = Annotated[float, BeforeValidator(no_bool), Field(gt=0.0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, BeforeValidator(no_bool), Field(ge=0.0, allow_inf_nan=False)]
UnitFloat = Annotated[float, BeforeValidator(no_bool), Field(ge=0.0, lt=1.0)]
Seed = Annotated[int, BeforeValidator(no_bool), Field(ge=0, le=MAX_SEED)]
Samples = Annotated[int, BeforeValidator(no_bool), Field(ge=1, le=MAX_SAMPLES)]
Epochs = Annotated[int, BeforeValidator(no_bool), Field(ge=1, le=MAX_EPOCHS)]
Lam = Annotated[float, BeforeValidator(no_bool), Field(ge=0.0, le=MAX_LAM, allow_inf_nan=False)]
Scale = Annotated[float, BeforeValidator(no_bool),
                  Field(ge=0.0, le=MAX_SCALE, allow_inf_nan=False)]
Signed = Annotated[float, BeforeValidator(no_bool),
                   Field(ge=-MAX_SCALE, le=MAX_SCALE, allow_inf_nan=False)]
Rate = Annotated[float, BeforeValidator(no_bool), Field(gt=0.0, le=MAX_LR, allow_inf_nan=False)]


# ----------------------------------------------------------------------------------------
# Value lists and ranges: "1e-3:1e2:50", "0,0.1,3", "0,1e-3:1e2:50:log", "0:1:11:lin"
# ----------------------------------------------------------------------------------------

def parse_range(start: float, stop: float, num: int, scale: str = "log") -> list[float]:
    """``num`` values from ``start`` to ``stop`` inclusive, log- (default) or linearly spaced.

    Log ranges use ``numpy.geomspace``, so the endpoints are exact.
    """
    if isinstance(num, float) and not num.is_integer():
        raise ValueError(f"range count must be an integer, got {num!r}")
    if not num <= MAX_AXIS:  # before anything is allocated
        raise ValueError(f"range count must be <= {MAX_AXIS:,}, got {num:.6g}")
    num = int(num)
    if num < 1:
        raise ValueError(f"empty range: count must be >= 1, got {num}")
    if scale not in ("log", "lin"):
        raise ValueError(f"range scale must be 'log' or 'lin', got {scale!r}")
    start, stop = float(start), float(stop)
    if not (math.isfinite(start) and math.isfinite(stop)):
        raise ValueError("range ends must be finite")
    if start > stop:
        raise ValueError(f"empty range: start {start:g} > stop {stop:g}")
    if num == 1:
        if start != stop:
            raise ValueError(f"a 1-point range needs start == stop, got {start:g} and {stop:g}")
        return [start]
    if scale == "log":
        if start <= 0:
            raise ValueError(f"log range needs start > 0, got {start:g} (list 0 separately: '0,{start:g}:...')")
        return [float(v) for v in np.geomspace(start, stop, num)]
    return [float(v) for v in np.linspace(start, stop, num)]


def parse_values(text: str) -> list[float]:
    """Comma-separated numbers and ``start:stop:num[:log|lin]`` ranges, e.g. ``0,1e-3:1e2:50``."""
    out: list[float] = []
    text = str(text).strip()
    if not text:
        raise ValueError("empty value list")
    for token in text.split(","):
        token = token.strip()
        if not token:
            raise ValueError(f"empty item in {text!r}")
        if ":" in token:
            parts = token.split(":")
            if len(parts) not in (3, 4):
                raise ValueError(f"range {token!r}: expected start:stop:num[:log|lin]")
            try:
                a, b, n = float(parts[0]), float(parts[1]), float(parts[2])
            except ValueError:
                raise ValueError(f"range {token!r}: start, stop and num must be numbers") from None
            out.extend(parse_range(a, b, n, parts[3] if len(parts) == 4 else "log"))
        else:
            try:
                out.append(float(token))
            except ValueError:
                raise ValueError(f"{token!r} is not a number") from None
    return out


def _range_table(v: dict) -> list[float]:
    unknown = set(v) - {"start", "stop", "num", "scale"}
    if unknown:
        raise ValueError(f"range table: unknown key {sorted(unknown)[0]!r} (keys: start, stop, num, scale)")
    try:
        return parse_range(v["start"], v["stop"], v["num"], v.get("scale", "log"))
    except KeyError as exc:
        raise ValueError(f"range table needs start, stop and num (missing {exc.args[0]!r})") from None
    except TypeError:
        raise ValueError("range table: start, stop and num must be numbers") from None


def axis_values(v: Any, numeric: bool = True) -> Any:
    """Scalar -> 1-tuple; range strings and {start, stop, num} tables -> values; dedupe."""
    if v is None:
        return v
    items = list(v) if isinstance(v, (list, tuple)) else [v]
    out: list[Any] = []
    for item in items:
        if isinstance(item, str) and "," in item and not numeric:
            out.extend(s.strip() for s in item.split(",") if s.strip())
        elif isinstance(item, str) and (":" in item or "," in item) and numeric:
            out.extend(parse_values(item))
        elif isinstance(item, dict) and numeric:
            out.extend(_range_table(item))
        else:
            out.append(item)
    if not out:
        raise ValueError("empty list: give at least one value")
    if len(out) > MAX_AXIS:
        raise ValueError(f"{len(out):,} values on one axis; at most {MAX_AXIS:,}")
    seen, uniq = set(), []
    for item in out:
        key = (type(item).__name__, item) if not isinstance(item, (int, float)) else item
        try:
            if key in seen:
                continue
            seen.add(key)
        except TypeError:  # unhashable: let validation name it
            pass
        uniq.append(item)
    return tuple(uniq)


def batch_values(v: Any) -> Any:
    """Batch sizes as an axis: ``"full"`` (or None) is 0, the full batch."""
    if v is None or v == "full":
        return (0,)
    items = list(v) if isinstance(v, (list, tuple)) else [v]
    return axis_values([0 if (i is None or i == "full") else i for i in items])


def split_count(n_train: int, fraction: float) -> int:
    """Samples held out by a ``split`` of ``n_train`` (round half up); linear and nets specs
    share it (and the sweep's draws)."""
    return int(math.floor(n_train * fraction + 0.5))
