"""The answer and the named checks of a nets sweep, from its summary and selection tables.

    answer_lines(selection) -> ["adamw+decoupled (lr=0.1): best λ = 0.01 by validation loss ...]
    nets_warnings(summary, selection) -> [{"code", "message"}, ...]   (``wdlab.answer`` checks)

Rows are ranked by the run's selection metric (``selection_metric``: val_loss lower is better,
val_accuracy higher); when lr is swept, the answer and the grid-edge check use each group's
best lr. Shared by the report (``wdlab.report.nets``) and the console (``wdlab sweep``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

#: Settings that name a group when they vary (in this order).
NAME_KEYS = ("optimizer", "regularizer", "hidden", "activation", "bias", "decay", "loss", "lr",
             "momentum", "beta1", "beta2", "epochs", "batch_size", "schedule", "init_scale",
             "data_seed")
#: Result columns of a nets selection row (the rest are settings).
RESULT_PREFIXES = ("best_", "lam_", "val_", "test_", "oracle_", "n_lams", "n_seeds",
                   "selection_")
MAX_GROUPS = 8


def _g(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    return f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)


def metric_of(selection: pd.DataFrame | None) -> str:
    if selection is not None and "selection_metric" in selection and len(selection):
        return str(selection["selection_metric"].iloc[0])
    return "val_loss"


def ordered(selection: pd.DataFrame) -> pd.DataFrame:
    """Selection rows, best first by the run's metric."""
    word = metric_of(selection).removeprefix("val_")
    col = f"best_val_{word}"
    if col not in selection:
        return selection
    return selection.sort_values(col, ascending=word != "accuracy", kind="stable",
                                 na_position="last")


def best_lr(selection: pd.DataFrame) -> pd.DataFrame:
    """Each group's best-lr row when lr is swept (best first), else every row (best first)."""
    sel = ordered(selection)
    if "lr" not in sel or sel["lr"].nunique() < 2:
        return sel
    others = [k for k in NAME_KEYS if k in sel and k != "lr"]
    return sel.drop_duplicates(others)


def varying_keys(selection: pd.DataFrame) -> list[str]:
    """Settings (not the pair) whose values differ across rows (NaN, not applicable, aside)."""
    return [k for k in NAME_KEYS if k in selection and k not in ("optimizer", "regularizer")
            and selection[k].dropna().nunique() > 1]


def labels(selection: pd.DataFrame) -> list[str]:
    varying = varying_keys(selection)
    out = []
    for r in selection.to_dict("records"):
        extra = ", ".join(f"{k}={_g(r[k])}" for k in varying
                          if not (isinstance(r[k], float) and math.isnan(r[k])))
        out.append(f"{r.get('optimizer')}+{r.get('regularizer')}" + (f" ({extra})" if extra else ""))
    return out


def answer_lines(selection: pd.DataFrame | None, n: int = MAX_GROUPS) -> list[str]:
    """One line per group (its best lr): best λ by the selection metric ± its 95% CI."""
    if selection is None or not len(selection):
        return []
    word = metric_of(selection).removeprefix("val_")
    sel = best_lr(selection).head(n)
    swept = "lr" in selection and selection["lr"].nunique() > 1
    out = []
    for label, r in zip(labels(sel), sel.to_dict("records"), strict=True):
        best = r.get("best_lam", math.nan)
        if best is None or not math.isfinite(best):
            out.append(f"{label}: no λ to recommend (every configuration diverged or failed)")
            continue
        ci = r.get(f"best_val_{word}_ci95", math.nan)
        pm = f" ± {ci:.2g}" if ci is not None and math.isfinite(ci) else ""
        if swept:
            label += f" at its best lr = {_g(r['lr'])}"
        text = (f"{label}: best λ = {_g(best)} by validation {word} "
                f"{_g(r.get(f'best_val_{word}'))}{pm}; test {word} {_g(r.get(f'best_test_{word}'))}")
        one = r.get("lam_1se", math.nan)
        if one is not None and math.isfinite(one):
            text += f"; 1-SE λ = {_g(one)}"
        out.append(text)
    return out


def nets_warnings(summary: pd.DataFrame, selection: pd.DataFrame, previous=(),
                  max_per_code: int = 4) -> list[dict]:
    """``grid_edge`` (per group at its best lr), ``diverged`` and ``few_seeds``."""
    from wdlab.answer import (
        diverged_check,
        edge_check,
        few_seeds_check,
        merge_warnings,
        warning,
    )

    found: dict[str, list[dict]] = {}
    if len(selection) and len(summary):
        sel = best_lr(selection)
        for label, row in zip(labels(sel), sel.to_dict("records"), strict=True):
            w = edge_check(summary["lam"].to_numpy(np.float64), row.get("best_lam", np.nan),
                           group=label)
            if w is not None:
                found.setdefault(w["code"], []).append(w)
        glabel = (summary["optimizer"].astype(str) + "+" + summary["regularizer"].astype(str))
        for w in (diverged_check(list(glabel), summary["n_diverged"].to_numpy(),
                                 int(summary["n_seeds"].sum()),
                                 summary["lam"].to_numpy(np.float64),
                                 summary["lr"].to_numpy(np.float64)),
                  few_seeds_check(int(summary["n_seeds"].max()))):
            if w is not None:
                found.setdefault(w["code"], []).append(w)
    out = []
    for code in ("grid_edge", "diverged", "few_seeds"):
        items = found.get(code, [])
        out += items[:max_per_code]
        if len(items) > max_per_code:
            out.append(warning(code, f"… and {len(items) - max_per_code} more groups with the "
                                     f"same {code.replace('_', ' ')} warning (see selection)"))
    return merge_warnings(previous, out)


def run_nets_warnings(run_dir: Path, previous=()) -> list[dict]:
    """``nets_warnings`` of a run directory's summary and selection tables."""
    run_dir = Path(run_dir)
    if not (run_dir / "summary.parquet").is_file() or not (run_dir / "selection.parquet").is_file():
        return list(previous)
    return nets_warnings(pd.read_parquet(run_dir / "summary.parquet"),
                         pd.read_parquet(run_dir / "selection.parquet"), previous)
