"""``wdlab audit FILE.py:FACTORY``: what your torch optimizer does to each parameter's decay."""

from __future__ import annotations

from pathlib import Path

import typer

from wdlab.cli._app import app
from wdlab.cli._common import one_line_errors


def load_factory(target: str):
    """Run FILE.py and return its FACTORY() as (model, optimizer, scheduler or None).

    Raises ValueError (one line, naming FILE or FACTORY) for a missing file, a missing or
    non-callable factory, an exception inside the user's code, or a wrong return type.
    """
    import importlib.util
    import sys

    import torch

    path_text, sep, name = str(target).rpartition(":")
    if not sep or not path_text or not name.isidentifier():
        raise ValueError(f"FILE.py:FACTORY: expected e.g. train.py:make, got {target!r}")
    path = Path(path_text)
    if not path.is_file():
        raise ValueError(f"FILE: no such file {str(path)!r}")
    spec = importlib.util.spec_from_file_location(f"_wdlab_audit_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"FILE: {str(path)!r} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))  # the user's sibling imports
    try:
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:
            raise ValueError(f"FILE: running {str(path)!r} raised {type(exc).__name__}: "
                             f"{exc}") from None
        factory = getattr(module, name, None)
        if not callable(factory):
            raise ValueError(f"FACTORY: {str(path)!r} defines no callable {name!r}")
        try:
            out = factory()
        except (Exception, SystemExit) as exc:
            raise ValueError(f"FACTORY: {name}() raised {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    shape = "(model, optimizer) or (model, optimizer, scheduler)"
    if not isinstance(out, (tuple, list)) or len(out) not in (2, 3):
        raise ValueError(f"FACTORY: {name}() must return {shape}, got {type(out).__name__}")
    model, optimizer, scheduler = (*out, None)[:3]
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"FACTORY: {name}()[0] must be a torch.nn.Module, got "
                         f"{type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"FACTORY: {name}()[1] must be a torch.optim.Optimizer, got "
                         f"{type(optimizer).__name__}")
    if scheduler is not None and not hasattr(scheduler, "step"):
        raise ValueError(f"FACTORY: {name}()[2] must be an lr scheduler, got "
                         f"{type(scheduler).__name__}")
    return model, optimizer, scheduler


@app.command("audit")
@one_line_errors
def audit_command(
    target: str = typer.Argument(..., metavar="FILE.py:FACTORY",
                                 help="FACTORY() returns (model, optimizer[, scheduler])."),
    steps_per_epoch: int | None = typer.Option(None, "--steps-per-epoch", min=1,
                                               help="Optimizer steps per epoch (N/B)."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Planned epochs."),
    scheduler_interval: str = typer.Option("step", "--scheduler-interval",
                                           help="When scheduler.step() runs: step or epoch."),
    probe: bool = typer.Option(False, "--probe",
                               help="Take one real step on copies and check every shrink."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when any warning is flagged."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the table and flags "
                                          "as JSON to this path."),
) -> None:
    """Audit the weight decay your optimizer applies to each parameter.

    Loading FILE.py RUNS ITS CODE (it is imported as Python): audit only files you trust.
    Prints one row per parameter (kind, group, lr, weight_decay, coupled/decoupled/none,
    per-step shrink, EMA timescales) and the flags. Exit 0; with --strict, exit 1 when a
    warning is flagged (info lines do not count).
    """
    from rich.console import Console
    from rich.measure import Measurement

    from wdlab.audit import audit
    from wdlab.store import write_json

    model, optimizer, scheduler = load_factory(target)
    result = audit(model, optimizer, steps_per_epoch=steps_per_epoch, epochs=epochs,
                   scheduler=scheduler, probe=probe, scheduler_interval=scheduler_interval)
    console = Console(highlight=False)
    items = result.renderables()
    table_width = Measurement.get(console, console.options.update_width(10_000), items[0]).maximum
    width = console.width
    console.width = max(width, table_width)  # one line per parameter: the terminal wraps
    console.print(items[0])
    console.width = width
    for item in items[1:]:
        console.print(item)
    if json_path is not None:
        write_json(json_path, result.to_dict())
        console.print(f"wrote {json_path}", markup=False)
    if strict and result.warnings:
        raise typer.Exit(1)
