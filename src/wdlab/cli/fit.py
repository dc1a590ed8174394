"""``wdlab fit DATA --target COLUMN``: what weight decay suits my data, and how much does it matter?"""

from __future__ import annotations

from pathlib import Path

import typer

from wdlab.cli._app import app
from wdlab.cli._common import check_fit_size, one_line_errors


def parse_lams(text: str) -> list[float]:
    """The λ grid, in ``wdlab sweep``'s grammar (``wdlab.config.values.parse_values``): ``lo:hi:count``
    (log-spaced, inclusive), ``lo:hi:count:lin`` and/or comma-separated values."""
    from wdlab.config.values import parse_values

    try:
        lams = parse_values(text)
    except ValueError as exc:
        raise ValueError(f"--lam: {exc}") from None
    from wdlab.config import MAX_LAM, shown

    if any(not (0 <= v <= MAX_LAM) for v in lams):
        raise ValueError(f"--lam: every λ must be finite, >= 0 and <= {MAX_LAM:g}, got "
                         f"{shown(text)}")
    return sorted(set(lams))


def _pairs(optimizer: str, regularizer: str) -> list[tuple[str, str]]:
    """Every valid (optimizer, regularizer) pair of the two comma-separated lists."""
    from wdlab.conventions import REGULARIZERS
    from wdlab.engine import OPTIMIZERS

    opts = [s.strip().lower() for s in optimizer.split(",") if s.strip()]  # AdamW = adamw
    regs = [s.strip().lower() for s in regularizer.split(",") if s.strip()]
    for flag, names, allowed in (("optimizer", opts, tuple(OPTIMIZERS)),
                                 ("regularizer", regs, REGULARIZERS)):
        if not names:
            raise ValueError(f"--{flag}: empty list")
        for name in names:
            if name not in allowed:
                raise ValueError(f"--{flag}: unknown name {name!r}; expected one of {allowed}")
    pairs = [(o, r) for o in dict.fromkeys(opts) for r in dict.fromkeys(regs)
             if r in OPTIMIZERS[o]]
    # adam + a decoupled decay is AdamW's update exactly: keep one of the two identical pairs
    pairs = [(o, r) for o, r in pairs if not (o == "adam" and ("adamw", r) in pairs)]
    if not pairs:
        raise ValueError(f"--regularizer: no valid pair in {opts} x {regs}; adamw pairs only "
                         "with decoupled or independent")
    return pairs


@app.command()
@one_line_errors
def fit(
    data: Path = typer.Argument(..., metavar="DATA", help="CSV or Parquet table, one row per sample."),
    target: str = typer.Option(..., "--target", help="Column to predict."),
    features: str | None = typer.Option(None, help="Comma-separated feature columns (default: every other numeric column)."),
    lam: str = typer.Option("1e-3:1e2:30", help="λ grid: lo:hi:count (log-spaced) and/or values, e.g. 0,1e-3:1e2:30."),
    optimizer: str = typer.Option("adam", help="Optimizers, comma-separated: sgd, adam, adamw."),
    regularizer: str = typer.Option("mean", help="Regularizers, comma-separated: mean, half_sum, sum, weight_decay, decoupled, independent."),
    loss: str = typer.Option("mse", help="mse or half_mse."),
    lr: float = typer.Option(0.05, help="Learning rate."),
    epochs: int = typer.Option(2000, help="Epochs per model."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Minibatch size (default full batch)."),
    schedule: str = typer.Option("cosine", help="cosine or constant."),
    test_size: float = typer.Option(0.2, "--test-size", help="Fraction of rows held out for the test MSE."),
    folds: int = typer.Option(5, help="Cross-validation folds on the training rows."),
    standardize: bool = typer.Option(True, "--standardize/--no-standardize", help="Standardize features and target with training statistics."),
    dropna: bool = typer.Option(False, "--dropna", help="Drop rows with NaN/inf instead of failing."),
    seed: int = typer.Option(0, help="Seed of the split, folds, init and minibatches."),
    dtype: str = typer.Option("float64", help="float32 or float64."),
    device: str = typer.Option("cpu", help="cpu or cuda[:N]."),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default runs/fit-<file>-<UTC time>)."),
    force: bool = typer.Option(False, help="Overwrite a completed run in --out."),
    report: bool = typer.Option(True, "--report/--no-report", help="Also write report.html."),
    svg: bool = typer.Option(False, "--svg", help="Also write SVG copies of the figures (PNG always)."),
    model: str = typer.Option("linear", "--model", help="linear, or mlp (a small neural network, wdlab.nets)."),
    hidden: str = typer.Option("64", "--hidden", help="--model mlp: hidden widths, comma-separated, e.g. 64,64."),
    activation: str = typer.Option("relu", "--activation", help="--model mlp: relu, gelu, tanh, quadratic or identity."),
    task: str = typer.Option("auto", "--task", help="--model mlp: auto (classification for a non-numeric target or integers with <= 20 values), classification or regression."),
) -> None:
    """Sweep λ by k-fold CV on your own table; print the best λ (CV and 1-SE), its test
    error, the unregularized baseline and the closed-form ridge answer."""
    if svg:  # read by wdlab.report.figures.figure_formats
        import os

        os.environ["WDLAB_SVG"] = "1"
    import warnings

    from wdlab.data.tables import check_split, load
    from wdlab.fitrun import FitOptions

    # 1. validate every option and the data before anything is created
    lams = parse_lams(lam)
    pairs = _pairs(optimizer, regularizer)
    if loss not in ("mse", "half_mse"):
        raise ValueError(f"--loss: expected 'mse' or 'half_mse', got {loss!r}")
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"--schedule: expected 'cosine' or 'constant', got {schedule!r}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"--dtype: expected 'float32' or 'float64', got {dtype!r}")
    from wdlab.config import MAX_EPOCHS, MAX_LR, MAX_SAMPLES

    if not 0 < lr <= MAX_LR:  # NaN and inf fail too
        raise ValueError(f"--lr: must be finite, > 0 and <= {MAX_LR:g}, got {lr!r}")
    if not 1 <= epochs <= MAX_EPOCHS:
        raise ValueError(f"--epochs: must be in [1, {MAX_EPOCHS:,}], got {epochs}")
    if batch_size is not None and not 1 <= batch_size <= MAX_SAMPLES:
        raise ValueError(f"--batch-size: must be in [1, {MAX_SAMPLES:,}], got {batch_size}")
    if not 0 <= seed < 2**32:  # numpy's seed range (the split and folds)
        raise ValueError(f"--seed: must be in [0, 2**32), got {seed}")
    from wdlab.devices import check_device

    check_device(device, "--device")
    names = None if features is None else [s.strip() for s in features.split(",") if s.strip()]
    options = dict(lams=lams, pairs=pairs, loss=loss, lr=lr, epochs=epochs,  # both models'
                   batch_size=batch_size, schedule=schedule, test_size=test_size, folds=folds,
                   standardize=standardize, seed=seed, dtype=dtype, device=device)
    if model not in ("linear", "mlp"):
        raise ValueError(f"--model: expected 'linear' or 'mlp', got {model!r}")
    if model == "mlp":
        from wdlab.cli.fit_mlp import fit_mlp

        return fit_mlp(data=data, target=target, names=names, options=options, dropna=dropna,
                       out=out, force=force, report=report, hidden=hidden,
                       activation=activation, task=task)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = load(data, target, names, dropna=dropna)
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)
    if table.skipped_non_numeric:
        from wdlab.data.tables import printable

        names = ", ".join(printable(c) for c in table.skipped_non_numeric[:20])
        typer.echo(f"note: skipping non-numeric columns {names} "
                   "(choose columns with --features)", err=True)
    if table.dropped_rows:
        typer.echo(f"note: --dropna dropped {table.dropped_rows} incomplete rows", err=True)
    check_split(table.X.shape[0], test_size, folds)
    check_fit_size(len(lams) * len(pairs) * (folds + 1), table.X.shape[1], table.X.shape[0],
                   dtype)
    from wdlab.fitrun import fit_into_run

    results, run_dir, report_path = fit_into_run(
        table, FitOptions(**options), data=data, target=target, dropna=dropna, out=out,
        force=force, report=report)
    _print(results, run_dir, report_path, report)


def _print(results, run_dir: Path, report_path, report: bool) -> None:
    import json

    from rich.console import Console
    from rich.table import Table

    from wdlab.answer import PLUS_MINUS, answer_sentence, as_warnings

    g = lambda v: "—" if v is None or v != v else f"{v:.4g}"  # noqa: E731
    info = results.info
    t = Table(title=f"weight decay by {results.configs['folds'].iloc[0]}-fold CV on "
                    f"n_train = {info['n_train']} rows (test split: {info['n_test']} rows held out)")
    for col in ("optimizer + regularizer", "λ CV", "CV MSE", "test MSE", "R²", "λ 1-SE",
                "test MSE", "R²", "sklearn α", "torch weight_decay", "ridge λ (closed form)",
                "test MSE", "R²"):
        t.add_column(col, justify="right")
    for r in results.selection.itertuples(index=False):
        ci = getattr(r, "best_val_mse_ci95", float("nan"))
        t.add_row(f"{r.optimizer} + {r.regularizer}", g(r.best_lam),
                  g(r.best_val_mse) + (f" ± {ci:.2g}" if ci == ci else ""), g(r.best_test_mse),
                  g(r.best_test_r2), g(r.lam_1se), g(r.test_mse_1se), g(r.test_r2_1se),
                  g(getattr(r, "alpha_best", None)), g(getattr(r, "torch_weight_decay_best", None)),
                  g(r.ridge_lam), g(r.ridge_test_mse), g(r.ridge_test_r2))
    console = Console(width=160)
    console.print(t)
    console.print(PLUS_MINUS.replace("over seeds", "over the CV folds") + "; α and "
                  "weight_decay: the best λ in scikit-learn's and torch's terms (exact "
                  "translations only), for this n_train", highlight=False, soft_wrap=True, emoji=False)
    for row in results.selection.to_dict("records"):
        console.print("answer: " + answer_sentence(row), highlight=False, soft_wrap=True, emoji=False)
    b = results.baseline
    console.print(f"unregularized baseline ({b['kind']}, closed form): test MSE {g(b['test_mse'])}, "
                  f"R² {g(b['test_r2'])}")
    console.print("ridge λ: the closed-form k-fold CV choice on the same folds, same convention "
                  "(— for the decoupled decays, which have no ridge equivalent)")
    manifest = Path(run_dir) / "manifest.json"
    if manifest.is_file():
        for w in as_warnings(json.loads(manifest.read_text(encoding="utf-8")).get("warnings")):
            console.print(f"[yellow]warning[/yellow] ({w['code']}): {w['message']}",
                          markup=True, highlight=False, soft_wrap=True, emoji=False)
    if report and report_path is None:
        console.print("report.html: not written (wdlab.report is not installed)")
    console.print(f"run directory: [bold]{run_dir}[/bold]", highlight=False)
