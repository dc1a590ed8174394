"""The thin ``wdlab`` command line. Each command lives in its own module and registers on
the app of ``wdlab.cli._app``; importing this package registers them all (the entry point
``wdlab = "wdlab.cli:app"``). Heavy imports stay inside the commands so ``wdlab --help`` is
instant."""

from __future__ import annotations

from wdlab.cli._app import app

# Registration order = the order ``wdlab --help`` lists the commands.
# isort: off
from wdlab.cli import reproduce  # noqa: F401
from wdlab.cli import report  # noqa: F401
from wdlab.cli import translate  # noqa: F401
from wdlab.cli import fit  # noqa: F401
from wdlab.cli import sweep  # noqa: F401
from wdlab.cli import bench  # noqa: F401
from wdlab.cli import audit  # noqa: F401
# isort: on

__all__ = ["app"]
