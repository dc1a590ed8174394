"""``wdlab report RUN_DIR``: write the run's self-contained report.html."""

from __future__ import annotations

from pathlib import Path

import typer

from wdlab.cli._app import app
from wdlab.cli._common import one_line_errors


@app.command()
@one_line_errors
def report(
    run_dir: Path = typer.Argument(..., help="A run directory written by reproduce or sweep."),
    references: bool = typer.Option(True, "--references/--no-references",
                                    help="Overlay the closed-form ridge and theory curves."),
    svg: bool = typer.Option(False, "--svg", help="Also write SVG copies of the figures (PNG always)."),
) -> None:
    """Write RUN_DIR/report.html: one page, plotly embedded, opens offline from file://."""
    if svg:  # read by wdlab.report.figures.figure_formats
        import os

        os.environ["WDLAB_SVG"] = "1"
    from wdlab.report import write_report
    from wdlab.store import MANIFEST, mark_status, read_manifest, run_lock

    if not run_dir.is_dir():
        raise FileNotFoundError(f"RUN_DIR: {run_dir} is not a directory")
    if (run_dir / MANIFEST).exists():
        read_manifest(run_dir, status=False)  # a malformed manifest: one line naming it
    with run_lock(run_dir):  # never while another process writes the run
        path = write_report(run_dir, references=references)
        mark_status(run_dir, "complete")  # a run left 'reporting' is complete with its report
    typer.echo(f"report: {path}")
