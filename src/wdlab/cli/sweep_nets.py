"""Console output of a nets sweep (``wdlab sweep`` with ``model.family = "mlp"``)."""

from __future__ import annotations

import json
from pathlib import Path


def is_nets_dir(path: Path) -> bool:
    """Does this run directory hold a nets sweep (its manifest's spec says family mlp)?"""
    manifest = Path(path) / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        spec = json.loads(manifest.read_text(encoding="utf-8")).get("spec") or {}
    except (OSError, ValueError):
        return False
    return isinstance(spec, dict) and (spec.get("model") or {}).get("family") == "mlp"


def selection_table(sel, max_rows: int = 40):
    """A rich table: the varying settings, best λ by the selection metric ± CI, its test
    value, the 1-SE λ and the seeds."""
    import math

    from rich.table import Table

    from wdlab.sweep.nets_answer import _g, best_lr, metric_of, varying_keys

    word = metric_of(sel).removeprefix("val_")
    rows = best_lr(sel)
    varying = varying_keys(rows)
    table = Table(title=f"Model selection by validation {word} (λ in each regularizer's "
                        "convention; mean over seeds)")
    for col in ["optimizer", "regularizer", *varying, "best λ", f"val {word}", f"test {word}",
                "λ 1-SE", "seeds"]:
        table.add_column(col, justify="left" if col in ("optimizer", "regularizer") else "right")
    for r in rows.head(max_rows).to_dict("records"):
        ci = r.get(f"best_val_{word}_ci95")
        pm = f" ± {ci:.2g}" if ci is not None and math.isfinite(ci) else ""
        table.add_row(str(r["optimizer"]), str(r["regularizer"]),
                      *[("full" if k == "batch_size" and r[k] == 0 else _g(r[k])) for k in varying],
                      _g(r["best_lam"]), _g(r.get(f"best_val_{word}")) + pm,
                      _g(r.get(f"best_test_{word}")), _g(r.get("lam_1se")), _g(r.get("n_seeds")))
    if len(rows) < len(sel):
        table.caption = "the best lr of each group; every (group, lr) row is in selection.parquet"
    return table


def print_nets_answer(console, path: Path, *, skip_codes: tuple[str, ...] = ()) -> None:
    """The selection table, one answer line per group and the run's warnings."""
    import pandas as pd

    from wdlab.answer import as_warnings
    from wdlab.sweep.nets_answer import answer_lines

    selection = Path(path) / "selection.parquet"
    if selection.exists():
        sel = pd.read_parquet(selection)
        console.print(selection_table(sel))
        for line in answer_lines(sel, 5):
            console.print("answer: " + line, highlight=False, soft_wrap=True, emoji=False)
    record = json.loads((Path(path) / "manifest.json").read_text(encoding="utf-8"))
    for w in as_warnings(record.get("warnings")):
        if w["code"] not in skip_codes:
            console.print(f"[yellow]warning[/yellow] ({w['code']}): {w['message']}",
                          markup=True, highlight=False, soft_wrap=True, emoji=False)
