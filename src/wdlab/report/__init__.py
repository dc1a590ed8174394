"""Run directory -> one self-contained ``report.html`` (plotly.js inlined; no network).

    write_report(run_dir) -> run_dir / "report.html"

The page is headed by the run's config, the selection table and a plain-language reading
generated from the numbers; below come a zoomable validation curve, a lam slider switching
the training-curve panel, lr x lam heatmaps (when both axes vary) and a sortable results
table. Every user string is HTML-escaped; the embedded JSON cannot close its <script>.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from wdlab.report import charts
from wdlab.report.html import esc, page, table
from wdlab.report.reading import heatmap_stats, reading

__all__ = ["build_report", "heatmap_stats", "load_run", "reading", "write_report"]

#: Results-table columns, in order, when present.
RESULT_COLUMNS = ("config_id", "optimizer", "regularizer", "loss", "lam", "lr", "momentum",
                  "init_seed", "data_seed", "n_train", "n_features", "status", "train_mse",
                  "val_mse", "test_mse", "w_norm")
#: At most this many rows in the results table (best first); the rest stay in configs.csv.
MAX_ROWS = 2000


def _read(path: Path) -> pd.DataFrame | None:
    pq = path.with_suffix(".parquet")
    if pq.is_file():
        return pd.read_parquet(pq)
    csv = path.with_suffix(".csv")
    return pd.read_csv(csv) if csv.is_file() else None


def load_run(run_dir: Path | str) -> dict[str, Any]:
    """The tables of a run directory: configs (required), curves, summary, selection, manifest."""
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"RUN_DIR: {run} is not a directory")
    configs = _read(run / "configs")
    if configs is None:
        raise FileNotFoundError(f"RUN_DIR: {run} has no configs.parquet or configs.csv")
    for col in ("config_id", "lam"):
        if col not in configs:
            raise ValueError(f"configs: missing column {col!r} in {run / 'configs.parquet'}")
    manifest = {}
    if (run / "manifest.json").is_file():
        manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    return {"configs": configs, "curves": _read(run / "curves"), "summary": _read(run / "summary"),
            "selection": _read(run / "selection"), "ridge": _read(run / "ridge"),
            "manifest": manifest, "path": run}


def _config_section(manifest: dict[str, Any]) -> str:
    cfg = manifest.get("config", manifest.get("spec"))
    prov = manifest.get("provenance", {}) or {}
    bits = [f"{k}: {prov[k]}" for k in ("wdlab", "torch", "device_name", "git_revision",
                                        "created_utc") if prov.get(k) is not None]
    meta = f'<p class="meta">{esc(" · ".join(bits))}</p>' if bits else ""
    body = esc(json.dumps(cfg, indent=2, ensure_ascii=False, default=str)) if cfg else "—"
    return f"<h2>Configuration</h2>{meta}<details open><summary>config</summary><pre id=\"config\">{body}</pre></details>"


#: Schema columns left out of the results table (all stay in configs.csv); any other column
#: (a dataset name, a label, a user's own) is shown after RESULT_COLUMNS.
HIDDEN = frozenset({"beta1", "beta2", "epochs", "batch_size", "schedule", "init_scale", "n_test",
                    "noise", "decay_bias", "dtype", "diverged_epoch", "penalty", "objective"})


def _results_table(configs: pd.DataFrame) -> str:
    cols = [c for c in RESULT_COLUMNS if c in configs] + \
        [c for c in configs.columns if c not in RESULT_COLUMNS and c not in HIDDEN]
    key = "val_mse" if "val_mse" in configs and configs["val_mse"].notna().any() else "test_mse"
    df = configs[cols]
    if key in df:
        df = df.sort_values(key, na_position="last", kind="stable")
    note = ""
    if len(df) > MAX_ROWS:
        note = f"showing the best {MAX_ROWS} of {len(df)} rows by {key}; all are in configs.csv"
        df = df.iloc[:MAX_ROWS]
    return ("<h2>Results</h2><p class=\"meta\">Click a column header to sort.</p>"
            f'<div class="scroll">{table(df, table_id="results", sortable=True, caption=note)}</div>')


def build_report(run: dict[str, Any], *, ridge: pd.DataFrame | None = None,
                 theory: pd.DataFrame | None = None) -> str:
    """The report page for the tables of ``load_run`` (and optional reference tables)."""
    import plotly.offline

    configs, curves = run["configs"], run["curves"]
    selection, manifest = run["selection"], run["manifest"]
    cfg = manifest.get("config", manifest.get("spec")) or {}
    name = cfg.get("name") if isinstance(cfg, dict) else None
    title = f"wdlab report: {name or Path(run['path']).name}"
    data: dict[str, Any] = {
        "validation": charts.validation(configs, selection, ridge, theory),
        "training": charts.training(curves, configs) if curves is not None else None,
        "heatmaps": charts.heatmaps(configs),
    }
    parts = [f"<h1>{esc(title)}</h1>",
             f'<p class="meta">run directory: {esc(Path(run["path"]).resolve())} · '
             f"kind: {esc(manifest.get('kind', '?'))} · status: {esc(manifest.get('status', '?'))}</p>",
             f'<p class="reading" id="reading">{esc(reading(configs, selection=selection, ridge=ridge))}</p>',
             _config_section(manifest)]
    if selection is not None and len(selection):
        parts.append("<h2>Model selection</h2>" + table(selection, table_id="selection"))
    if data["validation"]:
        parts.append('<h2>Validation curve</h2><div id="validation-plot" class="chart"></div>')
    if data["training"]:
        n = len(data["training"]["lams"])
        parts.append('<h2>Training curves</h2><div class="slider"><label for="lam-slider">λ</label>'
                     f'<input type="range" id="lam-slider" min="0" max="{n - 1}" step="1" '
                     f'value="{n - 1}"><span>λ = <b id="lam-value"></b></span></div>'
                     '<div id="training-plot" class="chart"></div>')
    if data["heatmaps"]:
        cells = "".join(f'<div id="heatmap-{i}"></div>' for i in range(len(data["heatmaps"])))
        parts.append("<h2>Learning rate × λ</h2><p class=\"meta\">Final test MSE, mean over "
                     "seeds; circles mark the 10 best cells; grey cells diverged.</p>"
                     f'<div class="heat">{cells}</div>')
    parts.append(_results_table(configs))
    return page(title=title, body="\n".join(parts), data=data,
                plotly_js=plotly.offline.get_plotlyjs())


def write_report(run_dir: Path | str, *, references: bool = True, figures: bool = True) -> Path:
    """Write ``run_dir/report.html`` atomically and return its path.

    With ``references``, the closed-form ridge curve (the sweep's ``ridge.parquet``, or
    recomputed from the recorded synthetic data config: one SVD per draw) and the theory curve
    are drawn over the trained one. With ``figures``, the static figures under ``figures/``
    are (re)written too (``wdlab.report.figures.write_figures``).
    """
    from wdlab.store import write_text

    run = load_run(run_dir)
    ridge = theory = None
    if references:
        from wdlab.report.references import ridge_for, theory_reference

        ridge = ridge_for(run)
        theory = theory_reference(run["configs"], run["manifest"])
    if figures:
        from wdlab.report.figures import write_figures

        write_figures(run_dir, run, ridge=ridge, theory=theory)
    return write_text(Path(run_dir) / "report.html", build_report(run, ridge=ridge, theory=theory))
