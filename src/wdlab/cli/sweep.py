"""``wdlab sweep SPEC`` / ``wdlab sweep --preset seed --lam 1e-3:1e2:50 --seeds 20``."""

from __future__ import annotations

from pathlib import Path

import typer

from wdlab.cli._app import app
from wdlab.cli._common import EXIT_BAD_INPUT, fail, heavy_imports, one_line_errors
from wdlab.config.presets import SPEC_PRESETS, listed

_AXIS = "Axis flags take a value, a list 'a,b,c' or a log range 'start:stop:num'."


@app.command()
@one_line_errors
def sweep(
    spec_file: Path | None = typer.Argument(None, metavar="SPEC",
                                            help="Sweep spec file (.toml, .yaml); flags override it."),
    preset: str | None = typer.Option(None, help=f"Defaults for data and training: {listed(SPEC_PRESETS)}."),
    lam: str | None = typer.Option(None, help="λ values in the regularizer's convention, e.g. 1e-3:1e2:50 (50 log-spaced) or 0,0.1,3."),
    lr: str | None = typer.Option(None, help="Learning rates (axis)."),
    optimizer: str | None = typer.Option(None, help="Optimizers: sgd, adam, adamw (axis)."),
    regularizer: str | None = typer.Option(None, help="Regularizers: mean, half_sum, sum, weight_decay, decoupled, independent (axis)."),
    pairs: str | None = typer.Option(None, help="Explicit optimizer+regularizer pairs, e.g. adam+mean,adamw+decoupled."),
    loss: str | None = typer.Option(None, help="Losses (axis): mse, half_mse; for nets model.loss, also cross_entropy (the default there)."),
    momentum: str | None = typer.Option(None, help="SGD momentum (axis)."),
    epochs: str | None = typer.Option(None, help="Epochs (axis)."),
    batch_size: str | None = typer.Option(None, "--batch-size", help="Batch sizes, 'full' = full batch (axis)."),
    schedule: str | None = typer.Option(None, help="constant, cosine (axis); for nets model.schedule, also warmup_cosine."),
    init_scale: str | None = typer.Option(None, "--init-scale", help="w0 ~ N(0, init_scale²) (axis)."),
    init_seed: str | None = typer.Option(None, "--init-seed", help="'data' (w0 seed = data seed) or seeds (axis)."),
    seeds: str | None = typer.Option(None, help="Data draws: N (seeds 0..N-1) or a list of seeds."),
    n_train: str | None = typer.Option(None, "--n-train", help="Training samples per draw (axis)."),
    noise: str | None = typer.Option(None, help="Label noise σ (axis)."),
    validation: str | None = typer.Option(None, help="holdout, split or kfold."),
    folds: str | None = typer.Option(None, help="Folds for --validation kfold."),
    n_val: str | None = typer.Option(None, "--n-val", help="Holdout samples per draw (default n_test)."),
    log_points: str | None = typer.Option(None, "--log-points", help="Record ~N log-spaced epochs."),
    record_every: str | None = typer.Option(None, "--record-every", help="Record every k-th epoch."),
    chunk_size: str | None = typer.Option(None, "--chunk-size", help="Models per engine call (default: sized to memory)."),
    memory_gb: str | None = typer.Option(None, "--memory-gb", help="Memory budget per chunk in GiB."),
    device: str | None = typer.Option(None, help="cpu or cuda[:N]."),
    dtype: str | None = typer.Option(None, help="float32 or float64."),
    engine: str | None = typer.Option(None, help="Engine variant: auto, eager, compiled, triton or native (see docs/performance.md)."),
    backend: str | None = typer.Option(None, help="Where chunks run: local (this process) or ray (one Ray task per chunk; pip install 'wdlab[ray]')."),
    address: str | None = typer.Option(None, help="Ray cluster to join: auto, HOST:PORT or ray://HOST:PORT (default: a new local instance on 127.0.0.1)."),
    family: str | None = typer.Option(None, help="Model family: linear (default) or mlp (small MLPs on --dataset)."),
    dataset: str | None = typer.Option(None, help="Nets dataset: digits, iris, wine, breast_cancer, moons, circles, xor, spirals, modular; implies --family mlp (a linear sweep has no dataset)."),
    hidden: str | None = typer.Option(None, help="Nets hidden widths: '64,64' is one architecture, '32;64,64' an axis of two (quote ';' in shells)."),
    activation: str | None = typer.Option(None, help="Nets activations: relu, gelu, tanh, quadratic, identity (axis)."),
    decay: str | None = typer.Option(None, help="Nets decayed tensors: matrices (ndim >= 2) or all (axis)."),
    bias: str | None = typer.Option(None, help="Nets: every Linear has a bias, true or false (axis, e.g. true,false)."),
    label_smoothing: str | None = typer.Option(None, "--label-smoothing", help="Nets cross_entropy label smoothing in [0, 1)."),
    warmup: str | None = typer.Option(None, help="Nets warmup steps of --schedule warmup_cosine."),
    selection_metric: str | None = typer.Option(None, "--selection-metric", help="Rank λ by validation loss (default) or accuracy (nets, classification)."),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default runs/sweep-<name>-<UTC time>)."),
    resume: Path | None = typer.Option(None, "--resume", metavar="RUN_DIR", help="Finish an interrupted sweep."),
    force: bool = typer.Option(False, "--force", help="Overwrite a completed or unfinished run in --out."),
    csv: bool = typer.Option(True, "--csv/--no-csv", help="Also write CSV copies of the tables."),
    report: bool = typer.Option(True, "--report/--no-report", help="Also write report.html."),
    svg: bool = typer.Option(False, "--svg", help="Also write SVG copies of the figures (PNG always)."),
) -> None:
    """Run a grid of configurations as batched chunks; write tables, selection and manifest.

    Axis flags take a value, a list 'a,b,c' or a log range 'start:stop:num'.
    """
    if svg:  # read by wdlab.report.figures.figure_formats
        import os

        os.environ["WDLAB_SVG"] = "1"
    if report:  # matplotlib loads on the other core while torch loads and the engine runs
        from wdlab import figure_worker as worker

        worker.start()
    with heavy_imports():
        from wdlab.cli.flags import flag_overrides
        from wdlab.config.load import build_spec, load_raw, merge
        from wdlab.sweep import resume_sweep, run_sweep

    flags = dict(preset=preset, lam=lam, lr=lr, optimizer=optimizer, regularizer=regularizer,
                 pairs=pairs, loss=loss, momentum=momentum, epochs=epochs,
                 batch_size=batch_size, schedule=schedule, init_scale=init_scale,
                 init_seed=init_seed, seeds=seeds, n_train=n_train, noise=noise,
                 validation=validation, folds=folds, n_val=n_val, log_points=log_points,
                 record_every=record_every, chunk_size=chunk_size, memory_gb=memory_gb,
                 device=device, dtype=dtype, engine=engine, family=family, dataset=dataset,
                 hidden=hidden, activation=activation, decay=decay, bias=bias,
                 label_smoothing=label_smoothing, warmup=warmup,
                 selection_metric=selection_metric)
    given = [k for k, v in flags.items() if v is not None]
    if resume is not None:
        executor = None  # the manifest's backend, unless --backend/--address say otherwise
        if backend is not None or address is not None:
            from wdlab.sweep.backends import executor_for

            executor = executor_for(backend or "ray", address)
        if spec_file is not None or given or out is not None or force:
            what = "SPEC" if spec_file is not None else (
                f"--{given[0].replace('_', '-')}" if given else ("--out" if out else "--force"))
            fail(f"--resume: the spec comes from {resume}/manifest.json; drop {what}")
        bar = _Bar()
        with bar:
            path = resume_sweep(resume, csv=None if csv else False, report=report,
                                executor=executor, on_event=bar.event)
    else:
        flags.update(backend=backend, address=address)
        raw = load_raw(spec_file) if spec_file is not None else {}
        spec = build_spec(merge(raw, flag_overrides(base=raw, **flags)))
        from wdlab.devices import check_device

        check_device(spec.train.device, "--device" if device is not None else "train.device")
        bar = _Bar()
        with bar:
            path = run_sweep(spec, out, force=force, csv=csv, report=report, on_event=bar.event)
    from wdlab.cli.sweep_nets import is_nets_dir

    # a resume of an already complete run trains and writes nothing (no "done" event)
    if not report and bar.trained and bar.status == "complete" and not is_nets_dir(path):
        # --no-report: the static figures, as reproduce
        from wdlab.pipeline import finish_views

        finish_views(Path(path), report=False)
    _finish(Path(path), bar)


class _Bar:
    """A rich progress bar on stderr: configurations done, configs/s and ETA."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("configs"),
            TextColumn("{task.fields[rate]} configs/s"), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), console=self.console, transient=False,
            speed_estimate_period=3600.0,  # chunks may take minutes: keep their samples
            refresh_per_second=2)  # it moves once a chunk (10/s redraws: ~1% of a sweep's CPU)
        self.task = None
        self.status = "complete"
        self.trained = False  # a "done" event came: this call ran (or finished) the sweep
        self.failed: list[int] = []
        self.notes: list[str] = []
        self._t0 = None
        self._done0 = 0

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def event(self, ev) -> None:
        import time

        if ev.kind == "warning":
            self.console.print(f"[yellow]warning:[/yellow] {ev.message}", markup=True,
                               highlight=False, soft_wrap=True, emoji=False)
        elif ev.kind == "note":
            self.notes.append(ev.message)
        elif ev.kind == "start":
            self._t0, self._done0 = time.perf_counter(), ev.configs_done
            self.task = self.progress.add_task("sweep", total=ev.configs_total,
                                               completed=ev.configs_done, rate="-")
        elif ev.kind in ("chunk", "failed") and self.task is not None:
            dt = time.perf_counter() - self._t0
            rate = (ev.configs_done - self._done0) / dt if dt > 0 else 0.0
            self.progress.update(self.task, completed=ev.configs_done, rate=f"{rate:,.0f}")
            if ev.kind == "failed":
                self.console.print(f"[red]chunk {ev.chunk} failed:[/red] {ev.message}",
                                   highlight=False, soft_wrap=True, emoji=False)
        elif ev.kind == "done":
            self.trained = True
            self.status = ev.extra.get("status", "complete")
            self.failed = ev.extra.get("failed", [])


def _finish(path: Path, bar: _Bar) -> None:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # logs and pipes: wide enough for the selection table
        console = Console(width=160)
    for note in bar.notes:
        console.print(note, highlight=False)
    print_answer(console, path, skip_codes=("unstable_lr",))  # those were printed at the start
    console.print(f"run directory: [bold]{path}[/bold]", highlight=False)
    if bar.status != "complete":
        typer.echo(f"error: {len(bar.failed)} chunk(s) failed ({bar.failed[:5]}...); "
                   f"wdlab sweep --resume {path} retries them", err=True)
        raise typer.Exit(1)


def print_answer(console, path: Path, *, skip_codes: tuple[str, ...] = ()) -> None:
    """The selection table, the answer per group and the run's warnings (manifest.json)."""
    import json

    from wdlab.answer import PLUS_MINUS, answer_sentence, as_warnings
    from wdlab.cli.sweep_nets import is_nets_dir, print_nets_answer

    if is_nets_dir(path):  # a nets sweep ranks by its own metric (wdlab.sweep.nets_answer)
        return print_nets_answer(console, path, skip_codes=skip_codes)
    selection = path / "selection.parquet"
    if selection.exists():
        import pandas as pd

        sel = pd.read_parquet(selection)
        caption = ""
        if len(sel) > 8 and "lr" in sel and sel["lr"].nunique() > 1:  # one row per group
            sel = best_rows(sel)
            caption = "the best lr of each group; every (group, lr) row is in selection.parquet"
        table = selection_table(sel)
        if caption:
            table.caption = caption
        console.print(table)
        console.print(PLUS_MINUS + "; λ 1-SE: the largest λ within one standard error of the "
                      "best; α and weight_decay: the same best λ (exact translations only)",
                      highlight=False, soft_wrap=True, emoji=False)
        for row in sel.head(5).to_dict("records"):
            console.print("answer: " + answer_sentence(row), highlight=False, soft_wrap=True, emoji=False)
    manifest = path / "manifest.json"
    if manifest.exists():
        record = json.loads(manifest.read_text(encoding="utf-8"))
        if not selection.exists() and isinstance(record.get("answer"), dict):
            row = {k: (float("nan") if v is None else v) for k, v in record["answer"].items()}
            console.print("answer: " + answer_sentence(row), highlight=False, soft_wrap=True, emoji=False)
        for w in as_warnings(record.get("warnings")):
            if w["code"] not in skip_codes:
                console.print(f"[yellow]warning[/yellow] ({w['code']}): {w['message']}",
                              markup=True, highlight=False, soft_wrap=True, emoji=False)


def best_rows(sel):
    """The row of lowest best validation (else test) MSE of each optimizer/regularizer pair."""
    key = "best_val_mse" if sel["best_val_mse"].notna().any() else "best_test_mse"
    order = sel.sort_values(key, kind="stable", na_position="last")
    return order.drop_duplicates(["optimizer", "regularizer"]).sort_index()


#: Group keys worth a column in the printed table when they vary across rows.
_VARYING = ("loss", "lr", "momentum", "beta1", "beta2", "epochs", "batch_size", "schedule",
            "init_scale", "n_train", "noise")


def selection_table(sel, max_rows: int = 40):
    """A rich table of the selection: best λ (validation) ± CI, 1-SE λ, their test MSE, the
    best λ as scikit-learn α and torch weight_decay, the closed-form ridge."""
    import numpy as np
    from rich.table import Table

    from wdlab.conventions import describe

    def g(v) -> str:
        return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.4g}"

    def pm(v, ci) -> str:
        return g(v) + (f" ± {ci:.2g}" if ci is not None and np.isfinite(ci) else "")

    varying = [k for k in _VARYING if k in sel and sel[k].nunique(dropna=False) > 1]
    shared = "" if "n_train" in varying or "n_train" not in sel or not len(sel) \
        else f"; n_train = {int(sel['n_train'].iloc[0])}"
    table = Table(title="Model selection (λ in each regularizer's convention; mean over seeds"
                        f"{shared})")
    for col in ["optimizer", "regularizer", *varying, "best λ", "val MSE", "test MSE",
                "λ 1-SE", "test MSE 1-SE", "sklearn α", "torch weight_decay", "ridge λ",
                "ridge test MSE"]:
        table.add_column(col, justify="left" if col in ("optimizer", "regularizer") else "right")
    for row in sel.head(max_rows).to_dict("records"):
        fmt = [("full" if k == "batch_size" and row[k] == 0 else
                g(row[k]) if not isinstance(row[k], str) else row[k]) for k in varying]
        table.add_row(row["optimizer"], f"{row['regularizer']} ({describe(row['regularizer'])})",
                      *fmt, g(row["best_lam"]),
                      pm(row["best_val_mse"], row.get("best_val_mse_ci95")),
                      pm(row["best_test_mse"], row.get("best_test_mse_ci95")), g(row["lam_1se"]),
                      g(row["test_mse_1se"]), g(row.get("alpha_best")),
                      g(row.get("torch_weight_decay_best")), g(row["ridge_lam"]),
                      g(row["ridge_test_mse"]))
    if len(sel) > max_rows:
        table.caption = f"first {max_rows} of {len(sel)} groups; all in selection.parquet"
    return table


__all__ = ["EXIT_BAD_INPUT", "print_answer", "selection_table", "sweep"]
