"""Glue for commands: run an experiment and write its run directory (tables, figures,
manifest). Library functions the thin CLI calls."""

from __future__ import annotations

from pathlib import Path

from wdlab.config import ExperimentConfig
from wdlab.experiment import Results, run_experiment, run_files, run_manifest
from wdlab.store import RunDir, default_run_dir, read_json, read_table


def write_results(run: RunDir, results: Results, *, kind: str, seeds: dict) -> None:
    """Write tables, the training-curve figure and the manifest (last, status complete)."""
    from wdlab.plots import training_curves
    from wdlab.report.figures import figure_formats
    from wdlab.selection import experiment_answer

    device = results.config.get("train", {}).get("device", "cpu")
    run.create()
    run.manifest(run_manifest(kind, config=results.config, seeds=seeds, device=device,
                              status="running"))
    run.table("configs", results.configs)
    run.table("curves", results.curves)
    for name in ("ridge", "ridge_coefficients"):  # the closed form, so views only read
        if getattr(results, name) is not None:
            run.table(name, getattr(results, name))
    fig = training_curves(results.curves, results.configs)
    run.figure("curves", fig, formats=figure_formats())
    answer, warnings = experiment_answer(results.configs, str(results.config.get("name", "seed")))
    run.manifest(run_manifest(kind, config=results.config, seeds=seeds, device=device,
                              status="complete", answer=answer, warnings=warnings,
                              files=run_files(run.path)))


def answer_warnings(run_dir: Path, previous=(), *, folds: int = 0) -> list[dict]:
    """The run's named checks (``wdlab.selection.run_warnings``) from its tables, after the
    checks made before training (``previous``: the GD stability lines, any manifest version).
    A run without a summary or selection table keeps ``previous`` only."""
    from wdlab.answer import as_warnings, merge_warnings
    from wdlab.selection import run_warnings

    run_dir = Path(run_dir)
    before = [w for w in as_warnings(previous) if w["code"] == "unstable_lr"]
    tables = {}
    for name in ("summary", "selection", "ridge"):
        if (run_dir / f"{name}.parquet").is_file():
            tables[name] = read_table(run_dir / name)
    if "summary" not in tables or "selection" not in tables:
        return before
    return merge_warnings(before, run_warnings(tables["summary"], tables["selection"],
                                               tables.get("ridge"), folds=folds))


def reproduce_experiment(cfg: ExperimentConfig, *, out: Path | None = None, force: bool = False,
                         report: bool = True) -> Path:
    """Run ``cfg`` and write its run directory; returns the directory."""
    path = Path(out) if out is not None else default_run_dir(cfg.name)
    run = RunDir(path, force=force)  # refuses a completed run before any training
    results = run_experiment(cfg)
    write_results(run, results, kind="reproduce",
                  seeds={"data_seed": cfg.data.seed, "init_seed": cfg.init_seed,
                         "batch_seed": cfg.train.batch_seed})
    finish_views(run.path, report=report)
    return run.path


def finish_views(run_dir: Path, *, report: bool = True) -> None:
    """The views of a written run directory: the static figures (always; PNG, SVG on request)
    and report.html with ``report``; then the manifest's ``files`` lists every file written.

    ``wdlab sweep``, ``reproduce`` and ``fit`` all behave this way: ``--no-report`` skips only
    report.html (``wdlab report RUN_DIR`` writes it later).
    """
    from wdlab.report import write_report
    from wdlab.report.figures import write_figures

    if report:
        from wdlab.store import mark_status

        mark_status(run_dir, "reporting")  # 'complete' only once report.html exists
        write_report(run_dir)  # writes the figures too
        mark_status(run_dir, "complete")
    else:
        write_figures(run_dir)
    refresh_files(run_dir)


def refresh_files(run_dir: Path) -> None:
    """Rewrite manifest.json's ``files``: every file under the run directory (no dotfiles,
    no chunk directory), so a reader knows everything the run wrote."""
    from wdlab.store import MANIFEST, write_json

    run_dir = Path(run_dir)
    if not (run_dir / MANIFEST).is_file():
        return
    manifest = read_json(run_dir / MANIFEST)
    manifest["files"] = run_files(run_dir)
    write_json(run_dir / MANIFEST, manifest)


def summary_table(run_dir: Path):
    """A rich table: lam, final train MSE, final test MSE, ||w||, per configuration."""
    from rich.table import Table

    from wdlab.conventions import describe

    configs = read_table(Path(run_dir) / "configs")
    manifest = read_json(Path(run_dir) / "manifest.json")
    reg = manifest["config"]["train"]["regularizer"]
    table = Table(title=f"{manifest['config'].get('name', '')}: penalty {describe(reg)}")
    for col in ("λ", "train MSE", "test MSE", "‖w‖", "status"):
        table.add_column(col, justify="right")
    for row in configs.itertuples():
        table.add_row(f"{row.lam:g}", f"{row.train_mse:.4g}", f"{row.test_mse:.4g}",
                      f"{row.w_norm:.4g}", row.status)
    return table
