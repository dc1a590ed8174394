"""Shim: removed by the relayout script (issue 13)."""

from wdlab.cli.flags import flag_overrides  # noqa: F401
from wdlab.config.load import build_spec, load_raw, load_spec, merge, spec_from_json  # noqa: F401
from wdlab.config.schema import (  # noqa: F401
    DEFAULT_LOG_POINTS,
    EVERY_EPOCH_UP_TO,
    Engine,
    SweepRecord,
    SweepSpec,
    SweepTrain,
)
from wdlab.config.values import parse_values, split_count  # noqa: F401
