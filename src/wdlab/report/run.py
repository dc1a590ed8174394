"""A run directory's tables, read for the views: configs (required), curves (the drawn
columns only), summary, selection, ridge, coefficients and the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["CURVE_COLUMNS", "load_run", "read_run_table"]

#: The curves columns the page draws (the rest stay in curves.parquet, unread).
CURVE_COLUMNS = ("config_id", "epoch", "train_mse", "test_mse")


def read_run_table(path: Path, columns: tuple[str, ...] | None = None) -> pd.DataFrame | None:
    """``path``.parquet (only ``columns`` of it, those present), else ``path``.csv, else None."""
    pq = path.with_suffix(".parquet")
    if pq.is_file():
        if columns is not None:
            import pyarrow.parquet as papq

            names = set(papq.read_schema(pq).names)
            return pd.read_parquet(pq, columns=[c for c in columns if c in names])
        return pd.read_parquet(pq)
    csv = path.with_suffix(".csv")
    return pd.read_csv(csv) if csv.is_file() else None


def load_run(run_dir: Path | str) -> dict[str, Any]:
    """The tables of a run directory: configs (required), curves, summary, selection, manifest."""
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"RUN_DIR: {run} is not a directory")
    configs = read_run_table(run / "configs")
    if configs is None:
        raise FileNotFoundError(f"RUN_DIR: {run} has no configs.parquet or configs.csv")
    for col in ("config_id", "lam"):
        if col not in configs:
            raise ValueError(f"configs: missing column {col!r} in {run / 'configs.parquet'}")
        if not pd.api.types.is_numeric_dtype(configs[col]):
            raise ValueError(f"configs: column {col!r} must be numeric, got {configs[col].dtype}"
                             f" in {run / 'configs.parquet'}")
    manifest = {}
    if (run / "manifest.json").is_file():
        from wdlab.store import read_manifest

        manifest = read_manifest(run, status=False)
    return {"configs": configs, "curves": read_run_table(run / "curves", CURVE_COLUMNS),
            "summary": read_run_table(run / "summary"),
            "selection": read_run_table(run / "selection"), "ridge": read_run_table(run / "ridge"),
            "coefficients": read_run_table(run / "coefficients"),
            "manifest": manifest, "path": run}
