"""Run directory -> one self-contained ``report.html`` (plotly.js inlined; no network).

    write_report(run_dir) -> run_dir / "report.html"

The page is headed by the run's config, the selection table and a plain-language reading
generated from the numbers; below come a zoomable validation curve, a lam slider switching
the training-curve panel, lr x lam heatmaps (when both axes vary) and a sortable results
table. Every user string is HTML-escaped; the embedded JSON cannot close its <script>.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wdlab.figdata import CLIP_PERCENTILE
from wdlab.report import charts
from wdlab.report.html import answer_block, esc, fmt, page, table
from wdlab.report.reading import heatmap_stats, reading
from wdlab.report.run import load_run
from wdlab.report.sections import (
    config_section,
    group_select,
    lam_slider,
    page_header,
    page_title,
    plotly_js,
    results_table,
    setting,
    shared_settings,
)

__all__ = ["build_report", "heatmap_stats", "load_run", "reading", "static_figures",
           "write_report"]


#: Selection-table columns that are results, not settings: (column, header).
ANSWER_COLUMNS = (("best_lam", "best λ"), ("_range", "λ range within CI"),
                  ("_val", "val MSE ± CI"), ("_test", "test MSE ± CI"), ("lam_1se", "1-SE λ"),
                  ("test_mse_1se", "test MSE at 1-SE"), ("alpha_best", "sklearn α"),
                  ("torch_weight_decay_best", "torch weight_decay"), ("ridge_lam", "ridge λ"),
                  ("ridge_test_mse", "ridge test MSE"), ("best_test_r2", "test R²"),
                  ("n_seeds", "seeds"))
_RESULT_PREFIXES = ("best_", "lam_", "val_mse_", "test_mse_", "oracle_", "ridge_", "alpha_",
                    "torch_", "test_r2", "n_lams", "n_seeds", "n_ok", "n_diverged", "n_failed")


def _pm(v: Any, ci: Any) -> str:
    ok = ci is not None and isinstance(ci, (float, int, np.floating)) and np.isfinite(ci)
    return fmt(v) + (f" ± {float(ci):.2g}" if ok else "")


def _selection_html(selection: pd.DataFrame, table_id: str = "selection") -> str:
    """The compact selection table: varying settings, then the λ columns, then the rest."""
    keys = [c for c in selection.columns if not c.startswith(_RESULT_PREFIXES)]
    varying, shared = shared_settings(selection, keys)
    rows = []
    for r in selection.to_dict("records"):
        out = {c: setting(c, r[c]) for c in varying}
        lo, hi = r.get("lam_lo", np.nan), r.get("lam_hi", np.nan)
        extra = {"_range": (f"{fmt(lo)}–{fmt(hi)}" if np.isfinite(lo) and np.isfinite(hi)
                            and lo < hi else fmt(lo)) if lo is not None else "—",
                 "_val": _pm(r.get("best_val_mse"), r.get("best_val_mse_ci95")),
                 "_test": _pm(r.get("best_test_mse"), r.get("best_test_mse_ci95"))}
        for col, head in ANSWER_COLUMNS:
            if col.startswith("_"):
                out[head] = extra[col]
            elif col in r:
                out[head] = r[col]
        rows.append(out)
    df = pd.DataFrame(rows)
    df = df[[c for c in df.columns if df[c].notna().any()]]  # drop all-empty answer columns
    return (f'<p class="meta shared">{esc(shared)}</p>' if shared else "") + \
        f'<div class="wide">{table(df, table_id=table_id)}</div>'


def _answer_section(selection: pd.DataFrame | None, manifest: dict[str, Any]) -> str:
    """"How much weight decay?": one answer per group and every warning of the run."""
    from wdlab.answer import PLUS_MINUS, answer_sentence, as_warnings

    items = []
    if selection is not None and len(selection) and "best_lam" in selection:
        sel = selection
        if "lr" in sel and sel["lr"].nunique() > 1 and {"optimizer", "regularizer"} <= set(sel):
            key = "best_val_mse" if sel["best_val_mse"].notna().any() else "best_test_mse"
            sel = sel.sort_values(key, kind="stable", na_position="last").drop_duplicates(
                ["optimizer", "regularizer"])
        items = [answer_sentence(r) for r in sel.head(8).to_dict("records")]
    elif isinstance(manifest.get("answer"), dict):
        row = {k: (float("nan") if v is None else v) for k, v in manifest["answer"].items()}
        items = [answer_sentence(row)]
    warns = as_warnings(manifest.get("warnings"))
    if not items and not warns:
        return ""
    return answer_block(
        items, warns,
        f"{esc(PLUS_MINUS)}. 1-SE λ: the largest λ whose validation error is within one "
        "standard error of the best. α and weight_decay: the same best λ, where the "
        "translation is exact (wdlab.conventions).",
        "No warning: the optimum is inside the grid and well determined, nothing diverged.")


def static_figures(run_dir: Path, names: tuple[str, ...]) -> str:
    """The run's own PNG figures (``figures/NAME.png``, those that exist, in order), embedded
    as data: URIs in one ``<div class="figs">``; "" when there is none (linear and MLP fits)."""
    import base64

    cells = []
    for name in names:
        png = Path(run_dir) / "figures" / f"{name}.png"
        if png.is_file():
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            cells.append(f'<figure><img alt="{esc(name)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>figures/{esc(name)}.png</figcaption></figure>")
    return f'<div class="figs">{"".join(cells)}</div>' if cells else ""


#: Static figures embedded in the report, by run kind: the ones with no interactive twin.
EMBEDDED = ("coefficients", "cv_curve", "coef_path", "norm_path")


def build_report(run: dict[str, Any], *, ridge: pd.DataFrame | None = None,
                 theory: pd.DataFrame | None = None, exact: pd.DataFrame | None = None,
                 dd_theory: pd.DataFrame | None = None,
                 figures: Callable[[], str] | None = None) -> str:
    """The report page for the tables of ``load_run`` (and optional reference tables).

    ``figures``: returns the embedded static figures' HTML; called last, once every other
    part is built (so the figures can be drawn elsewhere meanwhile; default: read the run's
    ``figures/*.png`` now)."""
    configs, curves = run["configs"], run["curves"]
    selection, manifest = run["selection"], run["manifest"]
    sizes = "n_train" in configs and configs["n_train"].nunique() > 1
    data: dict[str, Any] = {
        "validation": None if sizes else charts.validation(configs, selection, ridge, theory),
        "training": charts.training(curves, configs) if curves is not None else None,
        "heatmaps": charts.heatmaps(configs),
        "double_descent": charts.double_descent(configs, exact, dd_theory) if sizes else None,
    }
    title = page_title(run)
    parts = [page_header(title, run["path"], manifest),
             _answer_section(selection, manifest),
             f'<p class="reading" id="reading">{esc(reading(configs, selection=selection, ridge=ridge))}</p>']
    if selection is not None and len(selection):
        sel_html = _selection_html(_best_lr_rows(selection))
        parts.append("<h2>Model selection</h2>" + sel_html)
        if len(_best_lr_rows(selection)) < len(selection):
            parts.append(f"<details><summary>every (group, lr) row ({len(selection)})</summary>"
                         f"{_selection_html(selection, 'selection-all')}</details>")
    if data["double_descent"]:
        parts.append('<h2>Double descent</h2><div id="double-descent-plot" class="chart"></div>')
    if data["heatmaps"]:
        cells = "".join(f'<div id="heatmap-{i}"></div>' for i in range(len(data["heatmaps"])))
        clipped = any(h.get("clipped") for h in data["heatmaps"])
        circled = any(h.get("circled") for h in data["heatmaps"])
        note = ("Final test MSE, mean over seeds (log colour"
                + (f", clipped at the {CLIP_PERCENTILE}th percentile of the cells so unconverged "
                   "cells do not flatten the good region" if clipped else "") + "); "
                + ("red circles mark the 10 best cells; " if circled else
                   "no circles: the 10 best cells are not clearly better than the median; ")
                + "blank cells diverged for every seed.")
        parts.append(f"<h2>Learning rate × λ</h2><p class=\"meta\">{esc(note)}</p>"
                     f'<div class="heat">{cells}</div>')
    if data["validation"]:
        select = group_select(data["validation"]["groups"])
        parts.append(f'<h2>Validation curve</h2>{select}<div id="validation-plot" class="chart"></div>')
    if data["training"]:
        parts.append(lam_slider("Training curves", len(data["training"]["lams"])))
    at_figures = len(parts)
    parts.append("")  # the figures, filled in last
    coefs = _coefficients_html(run.get("coefficients"), selection)
    if coefs:
        parts.append(coefs)
    parts.append(results_table(configs, run.get("summary")))
    parts.append(config_section(manifest))
    js = plotly_js()
    figs = figures() if figures is not None else static_figures(run["path"], EMBEDDED)
    if figs:
        parts[at_figures] = "<h2>Figures</h2>" + figs
    return page(title=title, body="\n".join(p for p in parts if p), data=data, plotly_js=js)


def _coefficients_html(coefs: pd.DataFrame | None, selection: pd.DataFrame | None,
                       top: int = 30) -> str:
    """``wdlab fit``: each pair's coefficients at its best λ, by feature name (largest
    |coef| first, at most ``top``)."""
    if coefs is None or not len(coefs) or selection is None or not len(selection) \
            or not {"feature", "coef", "lam"} <= set(coefs):
        return ""
    cols = {}
    for r in selection.to_dict("records"):
        part = coefs[(coefs["optimizer"] == r["optimizer"]) & (coefs["regularizer"] == r["regularizer"])
                     & (coefs["lam"] == r["best_lam"])]
        if len(part):
            cols[f"{r['optimizer']}+{r['regularizer']} (λ = {fmt(r['best_lam'])})"] = \
                part.set_index("feature")["coef"]
    if not cols:
        return ""
    df = pd.DataFrame(cols)
    df = df.loc[df.abs().max(axis=1).sort_values(ascending=False).index[:top]]
    df = df.reset_index().rename(columns={"index": "feature", "feature": "feature"})
    return ("<h2>Coefficients at the best λ</h2><p class=\"meta\">Target units per feature "
            "standard deviation; largest first.</p>"
            f'<div class="wide">{table(df, table_id="coefficients")}</div>')


def _best_lr_rows(selection: pd.DataFrame) -> pd.DataFrame:
    """One selection row per optimizer/regularizer (its best lr) when lr was swept."""
    if "lr" not in selection or selection["lr"].nunique() < 2 or len(selection) <= 8 \
            or not {"optimizer", "regularizer"} <= set(selection):
        return selection
    key = "best_val_mse" if selection["best_val_mse"].notna().any() else "best_test_mse"
    return selection.sort_values(key, kind="stable", na_position="last").drop_duplicates(
        ["optimizer", "regularizer"]).sort_index()


def write_report(run_dir: Path | str, *, references: bool = True, figures: bool = True) -> Path:
    """Write ``run_dir/report.html`` atomically and return its path.

    With ``references``, the closed-form ridge curve (the sweep's ``ridge.parquet``, or
    recomputed from the recorded synthetic data config: one SVD per draw) and the theory curve
    are drawn over the trained one. With ``figures``, the static figures under ``figures/``
    are (re)written too (``wdlab.report.figures.write_figures``).
    """
    from wdlab.store import write_text

    run = load_run(run_dir)
    from wdlab.report.nets import is_nets_run, write_nets_report

    if is_nets_run(run):  # a nets sweep: its own sections on the same page (report/nets.py)
        return write_nets_report(run_dir, run)
    if run["manifest"].get("kind") == "fit" and run["manifest"].get("config", {}).get(
            "model") == "mlp":  # wdlab fit --model mlp (report/fit_mlp.py)
        from wdlab.report.fit_mlp import build_fit_mlp_report

        return write_text(Path(run_dir) / "report.html", build_fit_mlp_report(run_dir))
    ridge = theory = None
    if references:
        from wdlab.report.references import ridge_for, theory_reference

        ridge = ridge_for(run)
        theory = theory_reference(run["configs"], run["manifest"])
    exact = dd_theory = None
    configs = run["configs"]
    if "n_train" in configs and configs["n_train"].nunique() > 1 and "n_features" in configs:
        from wdlab.report.figures import size_references

        exact, dd_theory = size_references(run)
    render = _figures_then_embed(run_dir, run, ridge, theory) if figures else None
    return write_text(Path(run_dir) / "report.html",
                      build_report(run, ridge=ridge, theory=theory, exact=exact,
                                   dd_theory=dd_theory, figures=render))


def _figures_then_embed(run_dir: Path | str, run: dict[str, Any], ridge, theory):
    """Hand the figures to the worker process (``wdlab.figure_worker``, when one was started) and
    return the callable that waits for them, or draws them here if the worker could not, and
    then embeds them."""
    from wdlab import figure_worker as worker
    from wdlab.report.figures import figure_formats

    wait = worker.submit(run_dir, figure_formats())

    def render() -> str:
        if wait() is None:
            from wdlab.report.figures import write_figures

            write_figures(run_dir, run, ridge=ridge, theory=theory)
        return static_figures(run_dir, EMBEDDED)

    return render
