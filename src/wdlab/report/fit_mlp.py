"""The report page of ``wdlab fit --model mlp``: the nets sweep's charts on the fit's tables.

    build_fit_mlp_report(run_dir) -> html      (``wdlab.fitrun_nets.mlp_report`` writes it)

A fit holds one network per (pair, λ), scored by k-fold CV instead of over seeds, so
``chart_tables`` restates its tables in the nets sweep's columns: a summary with
``{val,test}_{loss,accuracy}_mean`` and ``_ci95`` (Student t over the folds' standard
error, as the fit's own ``best_val_error_ci95``) and a selection ranked by
``selection_metric``. The charts are ``wdlab.report.nets``'s (validation curve in loss and
accuracy with the chosen λ starred, training curves and per-tensor weight norms per λ, lr x λ
heatmaps when both vary) on the page shell of ``wdlab.report.html``: nothing is forked. For
regression the validation chart's loss is the CV's own fold error, the MSE in the target's
units; the training chart's loss is the training loss (standardised target).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wdlab.report import charts, nets, sections
from wdlab.report.html import esc, fmt, page, table
from wdlab.report.run import read_run_table

#: The run's static figures that the interactive charts replace (still in figures/).
STATIC = ("cv_curve", "training")


def chart_tables(configs: pd.DataFrame, selection: pd.DataFrame, classification: bool
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(configs, summary, selection) of a fit in the nets sweep's columns (see the module)."""
    from wdlab.selection import t975

    folds = int(configs["folds"].iloc[0]) if "folds" in configs and len(configs) else 2
    t = float(t975(np.asarray([max(folds - 1, 1)]))[0])
    view = configs.copy()
    if not classification:  # the CV's fold error is the MSE, in the target's units
        view["val_loss"], view["test_loss"] = view["val_mse"], view["test_mse"]
        view["val_loss_sem"] = view["val_sem"]
    summary = view[["optimizer", "regularizer", "lam"]].copy()
    summary["val_loss_mean"] = view["val_loss"]
    summary["val_loss_ci95"] = t * view["val_loss_sem"]
    summary["test_loss_mean"] = view["test_loss"]
    if classification:
        summary["val_accuracy_mean"] = view["val_accuracy"]
        summary["val_accuracy_ci95"] = t * view["val_sem"]  # the SE of 1 - accuracy
        summary["test_accuracy_mean"] = view["test_accuracy"]
    sel = selection.assign(selection_metric="val_accuracy" if classification else "val_mse")
    return view, summary, sel


def chart_data(configs: pd.DataFrame, curves: pd.DataFrame | None, selection: pd.DataFrame,
               classification: bool, target: str) -> dict[str, Any]:
    """The page's ``report-data``: validation, training and heatmaps (``wdlab.report.nets``)."""
    view, summary, sel = chart_tables(configs, selection, classification)
    validation = nets.validation_chart(
        summary, sel, mark_best=True, spread="95% CI over folds",
        loss_title="cross-entropy (data loss, no penalty)" if classification
        else "MSE (target units)")
    if validation is not None:  # the chart names what it predicts (a user string: escaped)
        validation["layout"]["title"]["text"] += f" · target {charts._esc(target)}"
    return {"validation": validation, "training": nets.training_chart(curves, view, sel),
            "heatmaps": nets.heatmaps(view), "double_descent": None}


def _answer(selection: pd.DataFrame, manifest: dict[str, Any], key: str) -> str:
    lines = []
    for r in selection.to_dict("records"):
        lines.append(f"<li>{esc(r['optimizer'])} + {esc(r['regularizer'])}: best λ = "
                     f"{esc(fmt(r['best_lam']))} (CV {esc(key)} {esc(fmt(r[f'best_val_{key}']))}, "
                     f"test {esc(key)} {esc(fmt(r[f'best_test_{key}']))}); 1-SE λ = "
                     f"{esc(fmt(r['lam_1se']))} (test {esc(key)} "
                     f"{esc(fmt(r[f'test_{key}_1se']))})</li>")
    base = manifest.get("baseline", {})
    base_v = base.get("test_accuracy", base.get("test_mse"))
    return (f"<h2>Answer</h2><ul>{''.join(lines)}</ul><p>baseline "
            f"({esc(base.get('kind', '?'))}): test {esc(key)} {esc(fmt(base_v))}</p>")


def _data_line(manifest: dict[str, Any]) -> str:
    """File, target, classes and split sizes, every one escaped."""
    cfg, split = manifest.get("config", {}), manifest.get("split", {})
    bits = [f"data: {Path(str(cfg.get('data', '?'))).name}",
            f"target: {split.get('target', cfg.get('target', '?'))}",
            f"n_train = {split.get('n_train', '?')}", f"n_test = {split.get('n_test', '?')}",
            f"features: {len(split.get('features', []))}"]
    classes = split.get("classes") or []
    if classes:
        shown = ", ".join(str(c) for c in classes[:20]) + (" …" if len(classes) > 20 else "")
        bits.append(f"{len(classes)} classes: {shown}")
    return f'<p class="meta" id="data-line">{esc(" · ".join(bits))}</p>'


def build_fit_mlp_report(run_dir: Path | str) -> str:
    """The self-contained report page of an MLP fit's run directory."""
    run_dir = Path(run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    configs = pd.read_parquet(run_dir / "configs.parquet")
    selection = pd.read_parquet(run_dir / "selection.parquet")
    curves = read_run_table(run_dir / "curves")
    cfg = manifest.get("config", {})
    task = manifest.get("split", {}).get("task", "?")
    clf = task == "classification"
    key = "accuracy" if clf else "mse"
    target = manifest.get("split", {}).get("target", cfg.get("target", "?"))
    data = chart_data(configs, curves, selection, clf, str(target))
    title = f"wdlab report: {run_dir.name}"
    warn = "".join(f"<li>{esc(w.get('code', ''))}: {esc(w.get('message', ''))}</li>"
                   for w in manifest.get("warnings", []))
    settings = {k: cfg.get(k) for k in ("data", "target", "model", "hidden", "activation",
                                        "lr", "epochs", "batch_size", "schedule", "folds",
                                        "test_size", "standardize", "seed", "dtype")}
    parts = [sections.page_header(title, run_dir, manifest, f" (MLP {esc(task)})"),
             _data_line(manifest), _answer(selection, manifest, key),
             f"<h2>Warnings</h2><ul>{warn}</ul>" if warn else "",
             "<h2>Model selection</h2>" + table(selection, table_id="selection")]
    if data["heatmaps"]:
        cells = "".join(f'<div id="heatmap-{i}"></div>' for i in range(len(data["heatmaps"])))
        parts.append('<h2>Learning rate × λ</h2><p class="meta">Validation loss (log colour); '
                     f'blank cells diverged.</p><div class="heat">{cells}</div>')
    if data["validation"]:
        select = sections.group_select(data["validation"]["groups"])
        parts.append(f"<h2>Validation curve</h2>{select}"
                     '<div id="validation-plot" class="chart"></div>')
    if data["training"]:
        tr = data["training"]
        parts.append(sections.lam_slider("Training curves and weight norms", len(tr["lams"]),
                                         start=tr.get("best")))
    static = [f"figures/{n}.png" for n in STATIC if (run_dir / "figures" / f"{n}.png").is_file()]
    if static:
        parts.append(f'<p class="meta">Static versions: {esc(", ".join(static))}</p>')
    parts += ["<h2>Every configuration</h2>"
              + f'<div class="wide">{table(configs, table_id="results", sortable=True)}</div>',
              "<h2>Configuration</h2>" + table(
                  pd.DataFrame({"setting": list(settings),
                                "value": [str(v) for v in settings.values()]}),
                  table_id="config")]
    return page(title=title, body="\n".join(p for p in parts if p), data=data,
                plotly_js=sections.plotly_js())
