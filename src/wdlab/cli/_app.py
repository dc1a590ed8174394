"""The ``wdlab`` typer app itself: its options and its one-line usage errors. The command
modules register on it (``@app.command()``); ``wdlab.cli`` imports them all, so nothing
imports ``wdlab.cli`` back (no import circle)."""

from __future__ import annotations

import typer

from wdlab.cli._common import OneLineGroup

app = typer.Typer(
    name="wdlab",
    cls=OneLineGroup,  # a usage error is one line, exit 2
    help="A weight-decay laboratory: many small models as one tensor program, exact references.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: no '<bool>' after flags, '[SPEC]' not '[[SPEC]]'
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from wdlab import __version__

        typer.echo(f"wdlab {__version__}")
        raise typer.Exit()


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error."),
         version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit.")) -> None:
    """wdlab: weight decay, precisely. Run ``wdlab COMMAND --help`` for details."""
    from wdlab.cli._common import set_debug

    set_debug(debug)
