"""The parts every report page shares (linear and nets runs): the header, the group
selector, the lambda slider, the results table, the configuration section, the status, and
plotly.js itself (read from the plotly package's files: no plotly import)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pandas as pd

from wdlab.report.html import esc, fmt, table

#: Results-table columns, in order, when present.
RESULT_COLUMNS = ("config_id", "optimizer", "regularizer", "loss", "lam", "lr", "momentum",
                  "init_seed", "data_seed", "n_train", "n_features", "status", "train_mse",
                  "val_mse", "test_mse", "w_norm")
#: At most this many rows in the results table (best first); the rest stay in configs.csv.
MAX_ROWS = 500


#: Schema columns left out of the results table (all stay in configs.csv); any other column
#: (a dataset name, a label, a user's own) is shown after RESULT_COLUMNS.
HIDDEN = frozenset({"beta1", "beta2", "epochs", "batch_size", "schedule", "init_scale", "n_test",
                    "noise", "decay_bias", "dtype", "diverged_epoch", "penalty", "objective",
                    "chunk", "engine", "batch_seed"})


#: The group's own name columns (always shown).
NAME_COLUMNS = ("optimizer", "regularizer")


def setting(col: str, value: Any) -> str:
    """A setting's value for a table or the shared-settings line (batch_size 0 is 'full')."""
    if col == "batch_size" and value in (0, None):
        return "full"
    return fmt(value)


def shared_settings(df: pd.DataFrame, cols: list[str]) -> tuple[list[str], str]:
    """Split ``cols`` into those that vary across the rows of ``df`` and a one-line
    ``shared settings: a = 1 · b = full · ...`` for the constant ones."""
    varying, const = [], []
    for c in cols:
        if c in NAME_COLUMNS or df[c].nunique(dropna=False) > 1:
            varying.append(c)
        elif len(df):
            const.append(f"{c} = {setting(c, df[c].iloc[0])}")
    return varying, ("shared settings: " + " · ".join(const)) if const else ""


def config_section(manifest: dict[str, Any]) -> str:
    cfg = manifest.get("config", manifest.get("spec"))
    prov = manifest.get("provenance", {}) or {}
    bits = [f"{k}: {prov[k]}" for k in ("wdlab", "torch", "device_name", "git_revision",
                                        "created_utc") if prov.get(k) is not None]
    meta = f'<p class="meta">{esc(" · ".join(bits))}</p>' if bits else ""
    body = esc(json.dumps(cfg, indent=2, ensure_ascii=False, default=str)) if cfg else "—"
    return (f"<h2>Configuration</h2>{meta}<details><summary>config (click to open)</summary>"
            f'<pre id="config">{body}</pre></details>')


def results_table(configs: pd.DataFrame, summary: pd.DataFrame | None) -> str:
    """Per (group, λ) means over seeds when the run has a summary, else per configuration;
    constant columns go to the shared-settings line; at most ``MAX_ROWS`` rows."""
    if summary is not None and len(summary) and "lam" in summary:
        keep = [c for c in summary.columns if not c.endswith(("_std", "_ci95"))
                and not c.startswith(("penalty", "objective"))]
        df, what = summary[keep], "mean over seeds per group and λ"
    else:
        cols = [c for c in RESULT_COLUMNS if c in configs] + \
            [c for c in configs.columns if c not in RESULT_COLUMNS and c not in HIDDEN]
        df, what = configs[cols], "one row per configuration"
    metric_like = [c for c in df.columns if c.endswith("_mean") or c.endswith(("_mse", "_r2"))
                   or c in ("w_norm", "status", "lam", "config_id")]
    keys = [c for c in df.columns if c not in metric_like and not c.startswith("n_")
            or c in ("n_train", "n_features", "n_test")]
    varying, shared = shared_settings(df, keys)
    df = df[[c for c in df.columns if c in varying or c not in keys]]
    key = next((c for c in ("val_mse_mean", "val_mse", "test_mse_mean", "test_mse")
                if c in df and df[c].notna().any()), None)
    if key:
        df = df.sort_values(key, na_position="last", kind="stable")
    note = f"{what}, best first"
    if len(df) > MAX_ROWS:
        note += f"; showing the best {MAX_ROWS} of {len(df)} rows; all are in the parquet tables"
        df = df.iloc[:MAX_ROWS]
    df = df.assign(**{c: df[c].map(lambda v: setting("batch_size", v))
                      for c in ("batch_size",) if c in df})
    return ("<h2>Results</h2><p class=\"meta\">Click a column header to sort. "
            f"{esc(shared)}</p>"
            f'<div class="scroll">{table(df, table_id="results", sortable=True, caption=note)}</div>')


def run_status(manifest: dict[str, Any]) -> str:
    """The run's status as the finished page sees it: a run whose report is being written
    (``reporting``) is complete once the page exists."""
    status = manifest.get("status", "?")
    return "complete" if status == "reporting" else str(status)


def page_header(title: str, run_path: Path | str, manifest: dict[str, Any],
                kind_note: str = "") -> str:
    """The page's title and its run-directory / kind / status line (``kind_note``: already
    escaped HTML after the kind, e.g. the nets dataset)."""
    return (f"<h1>{esc(title)}</h1>"
            f'<p class="meta">run directory: {esc(Path(run_path).resolve())} · '
            f"kind: {esc(manifest.get('kind', '?'))}{kind_note} · "
            f"status: {esc(run_status(manifest))}</p>")


def page_title(run: dict[str, Any]) -> str:
    """``wdlab report: NAME`` from the manifest's config or spec name, else the folder."""
    manifest = run["manifest"]
    cfg = manifest.get("config", manifest.get("spec")) or {}
    name = cfg.get("name") if isinstance(cfg, dict) else None
    return f"wdlab report: {name or Path(run['path']).name}"


def group_select(groups: list[str]) -> str:
    """The validation chart's group selector (nothing for a single group)."""
    if len(groups) <= 1:
        return ""
    opts = "".join(f'<option value="{i}">{esc(g)}</option>' for i, g in enumerate(groups))
    return ('<div class="slider"><label for="group-select">group</label><select '
            f'id="group-select"><option value="all">all groups</option>{opts}'
            "</select></div>")


def lam_slider(heading: str, n: int, start: int | None = None) -> str:
    """A section with the lambda slider over ``n`` values (at ``start``, default the last)
    and the training chart."""
    start = n - 1 if start is None else start
    return (f'<h2>{esc(heading)}</h2><div class="slider"><label for="lam-slider">λ</label>'
            f'<input type="range" id="lam-slider" min="0" max="{n - 1}" step="1" '
            f'value="{start}"><span>λ = <b id="lam-value"></b></span></div>'
            '<div id="training-plot" class="chart"></div>')


def plotly_js() -> str:
    """plotly.js (``plotly/package_data/plotly.min.js``) read from the installed package's
    files, as ``plotly.offline.get_plotlyjs()`` does, without importing plotly (~0.4 s)."""
    spec = importlib.util.find_spec("plotly")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    import plotly.offline  # an unusual install (zipped): ask plotly itself

    return plotly.offline.get_plotlyjs()
