"""Run directory -> the static figures under ``figures/`` (PNG + SVG, atomic).

Reads the run's tables, computes the reference tables (``references``) and calls
``wdlab.plots``; each figure is written only when the run has the axes it needs.
"""

from __future__ import annotations

from pathlib import Path

from wdlab.report.references import ridge_coefficients, ridge_reference, theory_reference


def write_figures(run_dir: Path | str, run: dict | None = None) -> list[Path]:
    """Write every figure the run's axes allow; returns the written paths.

    ``validation``: always (when some lam > 0); ``norm_path`` and ``coef_path`` (closed-form
    coefficients, synthetic data); ``heatmaps`` when lr and lam both vary; ``double_descent``
    when n_train varies (that figure's preset writes its own, with theory).
    """
    from wdlab import plots
    from wdlab.report import load_run
    from wdlab.store import save_figure

    run = run or load_run(run_dir)
    configs, manifest = run["configs"], run["manifest"]
    out_dir = Path(run_dir) / "figures"
    written: list[Path] = []
    single_size = "n_train" not in configs or configs["n_train"].nunique() == 1
    if (configs["lam"] > 0).any() and single_size:
        fig = plots.validation_curve(configs, selection=run["selection"],
                                     ridge=ridge_reference(configs, manifest),
                                     theory=theory_reference(configs, manifest))
        written += save_figure(fig, out_dir / "validation")
        if "w_norm" in configs:
            written += save_figure(plots.norm_path(configs), out_dir / "norm_path")
        coefs = ridge_coefficients(configs, manifest)
        if coefs is not None:
            written += save_figure(plots.coef_path(coefs), out_dir / "coef_path")
    if "lr" in configs and configs["lr"].nunique() > 1 and configs["lam"].nunique() > 1:
        written += save_figure(plots.lr_lam_heatmaps(configs), out_dir / "heatmaps")
    return written
