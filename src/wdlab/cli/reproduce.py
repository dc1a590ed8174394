"""``wdlab reproduce PRESET``: run a named experiment into a run directory."""

from __future__ import annotations

from pathlib import Path

import typer

from wdlab.cli._app import app
from wdlab.cli._common import one_line_errors
from wdlab.config.presets import listed, names


@app.command()
@one_line_errors
def reproduce(
    preset: str = typer.Argument(..., help=f"Experiment to run: {listed(names())}."),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default runs/<preset>-<UTC time>)."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    dtype: str = typer.Option("float32", help="float32 or float64."),
    epochs: int | None = typer.Option(None, help="Override the preset's number of epochs."),
    force: bool = typer.Option(False, help="Overwrite a completed run in --out."),
    report: bool = typer.Option(True, "--report/--no-report", help="Also write report.html."),
    svg: bool = typer.Option(False, "--svg", help="Also write SVG copies of the figures (PNG always)."),
    reduced: bool = typer.Option(False, "--reduced", hidden=True,
                                 help="Sweep presets only: the small size the tests run."),
) -> None:
    """Reproduce a preset experiment: tables, figures and manifest in one run directory."""
    if svg:  # read by wdlab.report.figures.figure_formats
        import os

        os.environ["WDLAB_SVG"] = "1"
    from wdlab.devices import check_device

    check_device(device, "--device")  # before any run directory exists
    from wdlab.config.presets import DEMO, SWEEP, experiment, lookup
    from wdlab.demos import print_demo, run_demo
    from wdlab.demos.figures import run_preset
    from wdlab.pipeline import reproduce_experiment, summary_table

    kind = lookup(preset).kind  # the one registry; unknown: one line, did you mean
    if kind == DEMO:  # networks (wdlab.demos): grokking, playground, ...
        run_dir = run_demo(preset, out=out, force=force, report=report, reduced=reduced,
                           epochs=epochs, device=device, dtype=dtype)
        print_demo(preset, run_dir)
        return
    if kind == SWEEP:  # a sweep: lr x lam grids or an n_train axis
        run_dir = run_preset(preset, out=out, force=force, report=report, reduced=reduced,
                             epochs=epochs, device=device, dtype=dtype)
        from rich.console import Console

        from wdlab.cli.sweep import print_answer

        console = Console() if Console().is_terminal else Console(width=160)
        print_answer(console, Path(run_dir))
        console.print(f"run directory: [bold]{run_dir}[/bold]", highlight=False)
        return
    changes = {"device": device, "dtype": dtype}
    if epochs is not None:
        changes["epochs"] = epochs
    cfg = experiment(preset)
    cfg = cfg.replace(train={**cfg.train.model_dump(), **changes})
    run_dir = reproduce_experiment(cfg, out=out, force=force, report=report)
    from rich.console import Console

    from wdlab.cli.sweep import print_answer

    console = Console() if Console().is_terminal else Console(width=160)
    console.print(summary_table(run_dir))
    print_answer(console, Path(run_dir))
    console.print(f"run directory: [bold]{run_dir}[/bold]", highlight=False)
