"""Shared CLI plumbing: the one error boundary of every command.

Expected errors (bad input, a refused run directory, a missing optional package, a full
disk) print one line, ``error: ...``, and exit 2. Anything else is a bug: one line saying
so, exit 1, and ``wdlab --debug COMMAND`` (or ``WDLAB_DEBUG=1``) shows the traceback.
Never a traceback by default, and the line is capped (``MAX_LINE``) and free of control
characters, whatever the input echoed in it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys

import typer

#: Exit code for bad input (config, spec, data); the message names the field/column/row.
EXIT_BAD_INPUT = 2
#: Exit code for an unexpected error (a bug in wdlab): one line, traceback with --debug.
EXIT_BUG = 1
#: Longest error line printed (the cause is in its first words; echoed input is capped).
MAX_LINE = 280

#: Set by ``wdlab --debug`` (or WDLAB_DEBUG=1): re-raise errors so the traceback shows.
DEBUG = {"on": False}


def set_debug(flag: bool) -> None:
    DEBUG["on"] = bool(flag) or os.environ.get("WDLAB_DEBUG", "") not in ("", "0")


class UserError(ValueError):
    """Bad user input; its message is one line naming the field, column or row."""


def clean_line(message: object, limit: int = MAX_LINE) -> str:
    """``message`` as one printable line of at most ``limit`` characters."""
    text = " ".join(str(message).split())
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[: limit * 2])
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print ``error: message`` on one line to stderr and exit."""
    typer.echo(f"error: {clean_line(message)}", err=True)
    raise typer.Exit(code)


#: Expected errors: the library raises these with a one-line message naming the field.
EXPECTED = (ValueError, OSError, KeyError, ImportError)


def _expected_message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, MemoryError):
        return ("out of memory: the run is too large for this machine; shrink the grid "
                "(fewer λ/lr values or seeds) or record fewer epochs (--log-points)")
    if isinstance(exc, RecursionError):
        return "input nested too deeply"
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def one_line_errors(fn):
    """The error boundary: expected errors -> one line, exit 2; anything else -> one line
    saying it is a bug, exit 1 (``--debug`` re-raises for the traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except (*EXPECTED, MemoryError, RecursionError) as exc:
            if DEBUG["on"]:
                raise
            fail(_expected_message(exc))
        except Exception as exc:  # noqa: BLE001 - the boundary: a bug, said in one line
            if DEBUG["on"]:
                raise
            what = clean_line(f"{type(exc).__name__}: {exc}", 160)
            fail(f"internal error ({what}); this is a bug in wdlab, please report it; "
                 "rerun with wdlab --debug for the traceback", code=EXIT_BUG)
        finally:
            sys.stdout.flush()

    return wrapper


@contextlib.contextmanager
def heavy_imports():
    """Load a command's heavy modules (torch, pandas, ...) without the cyclic garbage collector.

    In a fresh process (torch not loaded yet) the collector is off while they load (it ran
    4 full passes over torch's objects during the import), then their objects are frozen
    (``gc.freeze``: out of every later collection) and the collector is back on; at exit
    everything is frozen again, so the interpreter's last collection does not traverse the
    whole heap (1.6–3.5 s at load 4–7, after a sweep's output was written). Objects are still
    freed by reference counting. A process that already has torch (tests, notebooks) is left
    as it is.
    """
    import gc

    if "torch" in sys.modules or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
        import atexit

        atexit.register(gc.freeze)


class OneLineGroup(typer.core.TyperGroup):
    """The app's click group: a usage error (a flag's value that does not parse, a missing
    argument, an unknown option) is one ``error:`` line, exit 2, not click's usage block."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        try:  # typer >= 0.29 vendors click as typer._click
            from typer._click import exceptions as click
        except ImportError:  # pragma: no cover - older typer: click itself
            from click import exceptions as click

        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except click.NoArgsIsHelpError as exc:  # the help text, as click shows it
            if not standalone_mode:
                raise
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            if not standalone_mode:
                raise
            hint = f" (wdlab {exc.ctx.command_path.split(' ', 1)[-1]} -h for help)" \
                if exc.ctx is not None and " " in exc.ctx.command_path else ""
            typer.echo(f"error: {clean_line(exc.format_message() + hint)}", err=True)
            sys.exit(exc.exit_code)
        except (typer.Abort, KeyboardInterrupt):
            if not standalone_mode:
                raise
            typer.echo("aborted", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            if not standalone_mode:
                raise
            typer.echo(f"error: {clean_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


def check_fit_size(models: int, n_features: int, n_rows: int, dtype: str) -> None:
    """Refuse, before training, a fit whose engine state cannot fit in half the available
    memory: ~16 (K, D+1) rows of parameters, moments and temporaries and ~3 (K, N)
    residual rows, K = lams x pairs x (folds + 1) models."""
    from wdlab.sweep.plan import _available_host_bytes, _human

    item = 4 if dtype == "float32" else 8
    need = models * item * (16 * (n_features + 1) + 3 * n_rows)
    mem = _available_host_bytes()
    if need > mem // 2:
        raise ValueError(f"--lam: {models:,} models (λ values x pairs x (folds + 1)) on "
                         f"{n_features:,} features need ~{_human(need)}, more than half the "
                         f"{_human(mem)} available; use fewer λ values, pairs or folds")
