"""The report page of a nets sweep (``model.family = "mlp"``): the same self-contained page.

    build_nets_report(run) -> html        (``write_report`` dispatches here for nets runs)

Sections: the answer (best λ per group by the run's selection metric, and the run's
warnings), the compact selection table, the lr x λ heatmaps of the validation loss (when
both vary), the validation curve in loss and accuracy (validation dashed, test solid, ± the
95% CI over seeds), the training curves of the best group at each λ (a slider): loss and
accuracy, train dotted and test solid, and the l2 norm of every parameter tensor over
training, then the results table and the configuration. The page shell, its script (charts,
slider, group selector, sortable tables), the escaping and the shared pieces come from
``wdlab.report`` (``html.page``, ``charts.heatmaps``, ``sections``: header, selector, slider,
results table...): nothing is forked.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wdlab.report import charts, sections
from wdlab.report.html import answer_block, esc, fmt, page, table
from wdlab.report.run import read_run_table
from wdlab.sweep.nets_answer import (
    RESULT_PREFIXES,
    answer_lines,
    best_lr,
    labels,
    metric_of,
    ordered,
)

#: At most this many groups on the validation curve.
MAX_GROUPS = 8
DASH = {"train": "dot", "val": "dash", "test": "solid"}


def is_nets_run(run: dict[str, Any]) -> bool:
    configs = run.get("configs")
    return configs is not None and "family" in configs and (configs["family"] == "mlp").any()


def _keys(selection: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    return [c for c in selection.columns if not c.startswith(RESULT_PREFIXES) and c in summary
            and c != "lam"]


def _match(df: pd.DataFrame, row: dict, keys: list[str]) -> pd.DataFrame:
    mask = np.ones(len(df), dtype=bool)
    for k in keys:
        if k not in df:
            continue
        v = row[k]
        col = df[k]
        mask &= (col.isna() if isinstance(v, float) and math.isnan(v) else col == v).to_numpy()
    return df[mask]


def _lam_label(v: float) -> str:
    return "0" if v == 0 else f"{v:.3g}"


def validation_chart(summary: pd.DataFrame, selection: pd.DataFrame, *, mark_best: bool = False,
                     spread: str = "95% CI over seeds",
                     loss_title: str = "loss (data loss, no penalty)") -> dict | None:
    """Validation and test loss (left) and accuracy (right) against λ, one colour per group.

    ``mark_best`` adds a ★ at each group's selected λ (``best_lam``) on its validation
    curves; ``spread`` names the error bars (``<col>_ci95``), ``loss_title`` the loss axis.
    """
    if summary is None or not len(summary) or selection is None or not len(selection):
        return None
    sel = best_lr(selection).head(MAX_GROUPS)
    keys = _keys(selection, summary)
    names = labels(sel)
    acc = "val_accuracy_mean" in summary
    data = []
    for i, (label, row) in enumerate(zip(names, sel.to_dict("records"), strict=True)):
        grp = _match(summary, row, keys).sort_values("lam", kind="stable")
        x = [_lam_label(v) for v in grp["lam"]]
        color = charts.COLORS[i % len(charts.COLORS)]
        name = charts._esc(label)
        for axis, what in ((1, "loss"), (2, "accuracy")):
            if what == "accuracy" and not acc:
                continue
            for split in ("val", "test"):
                col = f"{split}_{what}"
                ci = grp.get(f"{col}_ci95")
                trace = {"type": "scatter", "mode": "lines+markers", "x": x,
                         "y": charts._r(grp[f"{col}_mean"]), "meta": i,
                         "name": f"{name}: {split}", "legendgroup": str(i),
                         "showlegend": axis == 1,
                         "line": {"color": color, "dash": DASH[split]},
                         "hovertemplate": f"{name}<br>λ = %{{x}}<br>{split} {what} = "
                                          "%{y:.4g}<extra></extra>",
                         "xaxis": f"x{axis}" if axis > 1 else "x",
                         "yaxis": f"y{axis}" if axis > 1 else "y"}
                if split == "val" and ci is not None:
                    trace["error_y"] = {"type": "data", "array": charts._r(ci.fillna(0)),
                                        "visible": True, "thickness": 1}
                data.append(trace)
            best = row.get("best_lam", math.nan)
            hit = grp[np.isclose(grp["lam"], best)] if mark_best and pd.notna(best) else grp[:0]
            if len(hit):
                data.append({"type": "scatter", "mode": "markers", "x": [_lam_label(best)],
                             "y": charts._r(hit[f"val_{what}_mean"].iloc[:1]), "meta": i,
                             "name": f"{name}: chosen λ", "legendgroup": str(i),
                             "showlegend": False,
                             "marker": {"symbol": "star", "size": 14, "color": color,
                                        "line": {"color": "black", "width": 1}},
                             "hovertemplate": f"{name}<br>chosen λ = %{{x}}<br>val {what} = "
                                              "%{y:.4g}<extra></extra>",
                             "xaxis": f"x{axis}" if axis > 1 else "x",
                             "yaxis": f"y{axis}" if axis > 1 else "y"})
    star = ", ★ chosen λ" if mark_best else ""
    layout = {**charts._BASE,
              "title": {"text": f"Validation curve (dashed val ± {spread}, solid test{star})",
                        "font": {"size": 13}},
              "xaxis": {"type": "category", "title": {"text": "λ"},
                        "domain": [0, 0.46] if acc else [0, 1]},
              "yaxis": {"title": {"text": loss_title}}}
    if acc:
        layout.update(xaxis2={"type": "category", "title": {"text": "λ"}, "domain": [0.54, 1],
                              "anchor": "y2"},
                      yaxis2={"title": {"text": "accuracy"}, "anchor": "x2"})
    return {"data": data, "layout": layout, "groups": [charts._esc(x) for x in names]}


def training_chart(curves: pd.DataFrame, configs: pd.DataFrame, selection: pd.DataFrame
                   ) -> dict | None:
    """Per λ of the best group: loss, accuracy (classification; train dotted, test solid) and
    the l2 norm of each parameter tensor over training, means over seeds. ``best``: the
    index in ``lams`` of the group's selected λ (None when it is not among them)."""
    if curves is None or not len(curves) or selection is None or not len(selection):
        return None
    best = ordered(selection).iloc[0].to_dict()
    keys = [k for k in _keys(selection, configs) if k in configs]
    part = _match(configs, best, keys)
    part = part[part["status"] == "ok"]
    if not len(part):
        return None
    norms = [c for c in curves.columns if c.startswith("norm/")]
    acc = "train_accuracy" in curves
    lams, panels = [], []
    for lam in sorted(part["lam"].unique()):
        ids = part.loc[part["lam"] == lam, "config_id"]
        cur = curves[curves["config_id"].isin(ids)]
        mean = cur.groupby("epoch").mean(numeric_only=True)
        keep = charts.decimate(mean.index.to_numpy())
        mean = mean.iloc[keep] if len(keep) < len(mean) else mean
        ep = mean.index.tolist()
        data = []
        for split in ("train", "test"):
            data.append({"type": "scatter", "mode": "lines", "x": ep,
                         "y": charts._r(mean[f"{split}_loss"]), "name": f"{split} loss",
                         "line": {"dash": DASH[split], "color": charts.COLORS[0]}})
            if acc:
                data.append({"type": "scatter", "mode": "lines", "x": ep,
                             "y": charts._r(mean[f"{split}_accuracy"]),
                             "name": f"{split} accuracy", "xaxis": "x2", "yaxis": "y2",
                             "line": {"dash": DASH[split], "color": charts.COLORS[1]}})
        for j, n in enumerate(c for c in norms if mean[c].notna().any()):
            data.append({"type": "scatter", "mode": "lines", "x": ep, "y": charts._r(mean[n]),
                         "name": charts._esc(n.removeprefix("norm/")), "xaxis": "x3",
                         "yaxis": "y3", "line": {"color": charts.COLORS[(j + 2) % 7]}})
        lams.append(_lam_label(float(lam)))
        panels.append(data)
    label = charts._esc(labels(ordered(selection))[0])
    what = "loss, accuracy" if acc else "loss"
    seeds = "means over seeds; " if part.groupby("lam").size().max() > 1 else ""
    norm_x = [0.7, 1] if acc else [0.55, 1]
    layout = {**charts._BASE,
              "title": {"text": f"{label}: {what} and parameter norms ({seeds}dotted train, "
                                "solid test)", "font": {"size": 13}},
              "xaxis": {"domain": [0, 0.3] if acc else [0, 0.45], "title": {"text": "epoch"}},
              "yaxis": {"type": "log", "title": {"text": "loss"}},
              "xaxis3": {"domain": norm_x, "title": {"text": "epoch"}, "anchor": "y3"},
              "yaxis3": {"title": {"text": "‖tensor‖₂"}, "anchor": "x3"}}
    if acc:
        layout.update(xaxis2={"domain": [0.35, 0.65], "title": {"text": "epoch"}, "anchor": "y2"},
                      yaxis2={"title": {"text": "accuracy"}, "anchor": "x2"})
    chosen = [i for i, v in enumerate(sorted(part["lam"].unique()))
              if pd.notna(best.get("best_lam")) and np.isclose(v, best["best_lam"])]
    return {"lams": lams, "panels": panels, "layout": layout,
            "best": chosen[0] if chosen else None}


def heatmaps(configs: pd.DataFrame) -> list[dict]:
    """lr x λ heatmaps of the final validation loss (``charts.heatmaps``), when both vary."""
    if "val_loss" not in configs:
        return []
    maps = charts.heatmaps(configs, metric="val_loss")
    for h in maps:
        for tr in h["data"]:
            if tr.get("type") == "heatmap":
                tr["colorbar"]["title"]["text"] = "log10 val loss" + (
                    " (clipped)" if h.get("clipped") else "")
    return maps


def _answer_section(selection: pd.DataFrame | None, manifest: dict[str, Any]) -> str:
    from wdlab.answer import as_warnings

    items = answer_lines(selection)
    warns = as_warnings(manifest.get("warnings"))
    return answer_block(
        items, warns,
        f"Selection by {esc(metric_of(selection).replace('_', ' '))} (± the 95% CI over "
        "seeds). 1-SE λ: the largest λ within one standard error of the best.",
        "No warning: the optimum is inside the grid and nothing diverged.")


def _selection_html(selection: pd.DataFrame) -> str:
    sel = ordered(selection)
    word = metric_of(selection).removeprefix("val_")
    keys = [c for c in sel.columns if not c.startswith(
        ("best_", "lam_", "val_", "test_", "oracle_", "n_lams", "n_seeds", "selection_"))]
    varying, shared = sections.shared_settings(sel, keys)
    rows = []
    for r in sel.to_dict("records"):
        out = {c: sections.setting(c, r[c]) for c in varying}
        out["best λ"] = r.get("best_lam")
        ci = r.get(f"best_val_{word}_ci95")
        out[f"val {word} ± CI"] = fmt(r.get(f"best_val_{word}")) + (
            f" ± {ci:.2g}" if ci is not None and math.isfinite(ci) else "")
        out[f"test {word}"] = r.get(f"best_test_{word}")
        out["1-SE λ"] = r.get("lam_1se")
        out["seeds"] = r.get("n_seeds")
        rows.append(out)
    df = pd.DataFrame(rows)
    return ((f'<p class="meta shared">{esc(shared)}</p>' if shared else "")
            + f'<div class="wide">{table(df, table_id="selection")}</div>')


def build_nets_report(run: dict[str, Any]) -> str:
    """The report page of a nets run (the tables of ``wdlab.report.load_run``)."""
    configs, curves = run["configs"], run["curves"]
    selection, summary, manifest = run["selection"], run["summary"], run["manifest"]
    title = sections.page_title(run)
    data = {"validation": validation_chart(summary, selection),
            "training": training_chart(curves, configs, selection),
            "heatmaps": heatmaps(configs), "double_descent": None}
    ds = configs["dataset"].iloc[0] if "dataset" in configs and len(configs) else "?"
    parts = [sections.page_header(title, run["path"], manifest,
                         f" (neural networks, dataset {esc(ds)})"),
             _answer_section(selection, manifest)]
    if selection is not None and len(selection):
        parts.append("<h2>Model selection</h2>" + _selection_html(selection))
    if data["heatmaps"]:
        cells = "".join(f'<div id="heatmap-{i}"></div>' for i in range(len(data["heatmaps"])))
        parts.append('<h2>Learning rate × λ</h2><p class="meta">Final validation loss, mean '
                     "over seeds (log colour); blank cells diverged for every seed.</p>"
                     f'<div class="heat">{cells}</div>')
    if data["validation"]:
        select = sections.group_select(data["validation"]["groups"])
        parts.append(f'<h2>Validation curve</h2>{select}'
                     '<div id="validation-plot" class="chart"></div>')
    if data["training"]:
        parts.append(sections.lam_slider("Training curves and weight norms",
                                len(data["training"]["lams"])))
    parts.append(sections.results_table(configs, summary))
    parts.append(sections.config_section(manifest))
    return page(title=title, body="\n".join(p for p in parts if p), data=data,
                plotly_js=sections.plotly_js())


def write_nets_report(run_dir: Path | str, run: dict[str, Any]) -> Path:
    """Write ``run_dir/report.html`` of a nets run (every curve column is read: the norms)."""
    from wdlab.store import write_text

    run = {**run, "curves": read_run_table(Path(run_dir) / "curves")}
    return write_text(Path(run_dir) / "report.html", build_nets_report(run))
