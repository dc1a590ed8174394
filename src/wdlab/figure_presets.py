"""Shim: removed by the relayout script (issue 13)."""

from wdlab.config.load import preset_spec  # noqa: F401
from wdlab.config.presets import SWEEP_PRESETS  # noqa: F401
from wdlab.demos.figures import run_preset  # noqa: F401
