"""Run directory -> the static figures under ``figures/`` (PNG; SVG too on request; atomic).

Reads the run's tables, computes the reference tables (``references``) and calls
``wdlab.plots``; each figure is written only when the run has the axes it needs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wdlab.report.references import (
    data_config,
    double_descent_theory,
    exact_double_descent,
    ridge_coefficients,
    ridge_for,
    theory_reference,
)

_UNSET = object()
#: Set to 1 (``--svg`` on sweep, reproduce and fit) to write SVG beside every PNG.
SVG_ENV = "WDLAB_SVG"


def figure_formats() -> tuple[str, ...]:
    """Static figure formats: PNG, plus SVG when ``WDLAB_SVG=1`` asks for it (issue 20:
    SVG of a 2,000-config run took most of the figure time and is rarely opened)."""
    import os

    return ("png", "svg") if os.environ.get(SVG_ENV, "") not in ("", "0") else ("png",)


def warm_up() -> None:
    """Pay the first figure's one-time costs now (``wdlab.figure_worker`` calls this while the
    engine runs): the modules ``write_figures`` imports lazily (the run loader, parquet, the
    references' theory and grid), the fonts and text layout of a first drawn figure with a
    log axis and a legend, and the PNG encoder. Writes nothing."""
    import io

    import pandas as pd
    from matplotlib.figure import Figure

    import wdlab.exact.theory  # noqa: F401
    import wdlab.experiment  # noqa: F401
    import wdlab.report.run  # noqa: F401
    from wdlab import plots
    from wdlab.store import FIGURE_DPI, _drawn_inside, _write_png

    buf = io.BytesIO()  # a parquet round trip loads pyarrow's reader (its dataset modules)
    pd.DataFrame({"config_id": [0], "x": [0.5], "s": ["a"]}).to_parquet(buf)
    pd.read_parquet(io.BytesIO(buf.getvalue()))
    fig = Figure(figsize=(2.0, 1.5), dpi=FIGURE_DPI, layout="constrained")
    ax = fig.subplots()
    ax.loglog([1e-3, 1.0, 1e2], [1.0, 0.1, 1.0], label="λ = 10⁻³", marker="o")
    ax.fill_between([1e-3, 1e2], [0.5, 0.5], [2.0, 2.0], alpha=0.2, linewidth=0)
    ax.set(xlabel="λ", ylabel="test MSE", title="warm-up")
    ax.legend()
    plots.light_log_axes(fig)
    pixels = _drawn_inside(fig)  # save_figure's own path: one Agg draw, then the PNG encoder
    if pixels is not None:
        _write_png(io.BytesIO(), pixels=pixels)


def write_figures(run_dir: Path | str, run: dict | None = None, *, ridge=_UNSET,
                  theory=_UNSET, formats: tuple[str, ...] | None = None) -> list[Path]:
    """Write every figure the run's axes allow; returns the written paths.

    ``validation``, ``norm_path``, ``coef_path`` (closed-form coefficients, synthetic data)
    for a single n_train; ``heatmaps`` when lr and lam both vary; ``double_descent`` when
    n_train varies. ``ridge``/``theory``: reference tables already computed (else computed).
    ``formats``: default ``figure_formats()``.
    """
    from wdlab import plots
    from wdlab.report.run import load_run
    from wdlab.store import save_figure

    run = run or load_run(run_dir)
    configs, manifest = run["configs"], run["manifest"]
    out_dir = Path(run_dir) / "figures"
    written: list[Path] = []
    fmts = formats or figure_formats()
    sizes = configs["n_train"].nunique() if "n_train" in configs else 1
    if (configs["lam"] > 0).any() and sizes == 1:
        ridge = ridge_for(run) if ridge is _UNSET else ridge
        theory = theory_reference(configs, manifest) if theory is _UNSET else theory
        fig = plots.validation_curve(configs, selection=run["selection"], ridge=ridge,
                                     theory=theory)
        written += save_figure(fig, out_dir / "validation", formats=fmts)
        if "w_norm" in configs and not plots.few_lams(plots.ok_rows(configs)):  # no one-dot path
            written += save_figure(plots.norm_path(configs), out_dir / "norm_path", formats=fmts)
        coefs = ridge_coefficients(run)  # the run's ridge_coefficients.parquet
        if coefs is not None:
            written += save_figure(plots.coef_path(coefs), out_dir / "coef_path", formats=fmts)
    if "lr" in configs and configs["lr"].nunique() > 1 and configs["lam"].nunique() > 1:
        written += save_figure(plots.lr_lam_heatmaps(configs), out_dir / "heatmaps", formats=fmts)
    if sizes > 1 and "n_features" in configs:
        exact, th = size_references(run)
        fig = plots.double_descent(configs, th, exact=exact)
        written += save_figure(fig, out_dir / "double_descent", formats=fmts)
    return written


def size_references(run: dict):
    """(exact, theory) tables of a run over n_train: the closed form per size
    (``exact_double_descent``) and the theory curves (``double_descent_theory``; None unless
    the data is synthetic with one noise level)."""
    configs, manifest = run["configs"], run["manifest"]
    data = data_config(manifest)
    th = None
    if data is not None and "noise" in configs and configs["noise"].nunique() == 1:
        ratios = np.unique(configs["n_train"] / configs["n_features"])
        th = double_descent_theory(int(configs["n_features"].iloc[0]), ratios,
                                   w_star=float(data.get("w_star", 0.01)),
                                   noise=float(configs["noise"].iloc[0]))
    return exact_double_descent(run), th
