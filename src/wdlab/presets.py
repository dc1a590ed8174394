"""Shim: removed by the relayout script (issue 13)."""

from wdlab.config.presets import D2L, EXPERIMENTS, SEED  # noqa: F401
