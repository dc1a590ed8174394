"""``wdlab report RUN_DIR``: write the run's self-contained report.html."""

from __future__ import annotations

from pathlib import Path

import typer

from wdlab.cli import app
from wdlab.cli._common import one_line_errors


@app.command()
@one_line_errors
def report(
    run_dir: Path = typer.Argument(..., help="A run directory written by reproduce or sweep."),
    references: bool = typer.Option(True, "--references/--no-references",
                                    help="Overlay the closed-form ridge and theory curves."),
) -> None:
    """Write RUN_DIR/report.html: one page, plotly embedded, opens offline from file://."""
    from wdlab.report import write_report

    path = write_report(run_dir, references=references)
    typer.echo(f"report: {path}")
