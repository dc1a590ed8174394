"""The linear figure presets (``adamw-fig2``, ``double-descent``): their sweep and views.

Their specs are in the preset registry (``wdlab.config.presets``); ``reduced=True`` gives the
small version the tests run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_preset(name: str, *, out: Path | str | None = None, force: bool = False,
               report: bool = True, reduced: bool = False, **train: Any) -> Path:
    """Run a sweep preset into a run directory with its figures (and report.html)."""
    from wdlab.config.load import preset_spec
    from wdlab.pipeline import finish_views
    from wdlab.sweep import run_sweep

    spec = preset_spec(name, reduced=reduced, **train)
    path = run_sweep(spec, out, force=force, report=False)
    finish_views(Path(path), report=report)
    return Path(path)
