"""``wdlab fit --model mlp``: the fit command's network branch (parse, build options, call
``wdlab.fitrun_nets``, print). Every check runs before the run directory is created."""

from __future__ import annotations

from pathlib import Path

import typer


def fit_mlp(*, data: Path, target: str, names, options: dict, dropna: bool, out,
            force: bool, report: bool, hidden: str, activation: str, task: str) -> None:
    """``options``: the linear fit's validated ``FitOptions`` fields (``wdlab.cli.fit``)."""
    import warnings

    from wdlab.cli._common import check_fit_size
    from wdlab.data.tables import check_split
    from wdlab.fitrun_nets import NetFitOptions, load_for_mlp, parse_hidden
    from wdlab.nets.mlp import ACTIVATIONS, MLP

    sizes = parse_hidden(hidden)
    if activation not in ACTIVATIONS:
        raise ValueError(f"--activation: expected one of {ACTIVATIONS}, got {activation!r}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table, task, classes = load_for_mlp(data, target, names, dropna=dropna, task=task)
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)
    if table.dropped_rows:
        typer.echo(f"note: --dropna dropped {table.dropped_rows} incomplete rows", err=True)
    lams, pairs, folds = options["lams"], options["pairs"], options["folds"]
    check_split(table.X.shape[0], options["test_size"], folds)
    n, d = table.X.shape
    widths = (d, *sizes, max(len(classes), 1))
    params = MLP(d, sizes, widths[-1]).layout.size  # with biases
    # per model: ~16 parameter-sized rows (state, moments, grads) and ~4 activations per unit
    check_fit_size(len(lams) * len(pairs) * (folds + 1), params, n * sum(widths[1:]) * 4 // 3,
                   options["dtype"])
    from wdlab.fitrun import fit_into_run
    from wdlab.fitrun_nets import run_fit_mlp, write_fit_run_mlp

    opts = NetFitOptions(**options, hidden=sizes, activation=activation, task=task,
                         classes=classes)
    results, run_dir, report_path = fit_into_run(
        table, opts, data=data, target=target, dropna=dropna, out=out, force=force,
        report=report, train=run_fit_mlp, write=write_fit_run_mlp)
    _print(results, run_dir, report_path, report, task)


def _print(results, run_dir: Path, report_path, report: bool, task: str) -> None:
    from rich.console import Console
    from rich.table import Table

    g = lambda v: "—" if v is None or v != v else f"{v:.4g}"  # noqa: E731
    info = results.info
    clf = task == "classification"
    t = Table(title=f"MLP {task}: weight decay by {results.configs['folds'].iloc[0]}-fold CV "
                    f"on n_train = {info['n_train']} rows (test split: {info['n_test']} rows)")
    metric = ("accuracy", "accuracy") if clf else ("MSE", "mse")
    for col in ("optimizer + regularizer", "λ CV", f"CV {metric[0]}", f"test {metric[0]}",
                "λ 1-SE", f"test {metric[0]}"):
        t.add_column(col, justify="right")
    for r in results.selection.to_dict("records"):
        key = "accuracy" if clf else "mse"
        t.add_row(f"{r['optimizer']} + {r['regularizer']}", g(r["best_lam"]),
                  g(r[f"best_val_{key}"]), g(r[f"best_test_{key}"]), g(r["lam_1se"]),
                  g(r[f"test_{key}_1se"]))
    console = Console(width=160)
    console.print(t)
    b = results.baseline
    word = "test accuracy" if clf else "test MSE"
    value = b.get("test_accuracy", b.get("test_mse"))
    console.print(f"baseline ({b['kind']}): {word} {g(value)}", highlight=False)
    if report and report_path is None:
        console.print("report.html: not written (wdlab.report is not installed)")
    console.print(f"run directory: [bold]{run_dir}[/bold]", highlight=False)
