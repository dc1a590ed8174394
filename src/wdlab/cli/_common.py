"""Shared CLI plumbing: one-line errors with exit code 2, never a traceback."""

from __future__ import annotations

import functools
import sys

import typer

#: Exit code for bad input (config, spec, data); the message names the field/column/row.
EXIT_BAD_INPUT = 2


class UserError(ValueError):
    """Bad user input; its message is one line naming the field, column or row."""


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print ``error: message`` on one line to stderr and exit."""
    line = " ".join(str(message).split())
    typer.echo(f"error: {line}", err=True)
    raise typer.Exit(code)


def one_line_errors(fn):
    """Turn ValueError / ConfigError / OSError / KeyError into a one-line error, exit 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except (ValueError, OSError, KeyError, ImportError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            fail(str(msg) or type(exc).__name__)
        finally:
            sys.stdout.flush()

    return wrapper
