"""Shim: removed by the relayout script (issue 13)."""

from wdlab.config.nets import is_nets  # noqa: F401
