"""``wdlab translate VALUE --from A --to B``: one lam in every known convention."""

from __future__ import annotations

import typer

from wdlab.cli import app
from wdlab.cli._common import one_line_errors


@app.command()
@one_line_errors
def translate(
    value: float = typer.Argument(..., help="The lam (or alpha, or weight_decay) to translate."),
    src: str = typer.Option(..., "--from", help="Its convention, e.g. seed, d2l, sklearn, "
                            "glmnet, torch_mse, mse+mean."),
    dst: str | None = typer.Option(None, "--to", help="Convention to highlight and print."),
    n_train: int = typer.Option(..., "--n-train", help="Number of training samples n."),
    n_features: int = typer.Option(..., "--n-features", help="Number of penalised features d."),
) -> None:
    """Print VALUE in every lam convention (same minimiser); decoupled decays have none."""
    from rich.console import Console
    from rich.table import Table

    from wdlab.conventions import conventions_table
    from wdlab.conventions import translate as translate_value

    if not value >= 0:
        raise ValueError(f"value: must be >= 0, got {value!r}")
    out = None
    if dst is not None:
        out = translate_value(value, src, dst, n_train=n_train, n_features=n_features)
    rows = conventions_table(value, src, n_train, n_features)
    table = Table(title=f"lam = {value:g} in {src!r} (n_train={n_train}, "
                  f"n_features={n_features}): same minimiser in every row")
    table.add_column("convention")
    table.add_column("value", justify="right")
    table.add_column("objective")
    for row in rows:
        shown = row["note"] if row["value"] is None else f"{row['value']:.6g}"
        style = "bold green" if row["name"] == dst else ("dim" if row["value"] is None else None)
        table.add_row(row["name"], shown, row["objective"], style=style)
    console = Console()
    console.print(table)
    if out is not None:
        console.print(f"{value:g} ({src}) = [bold]{out:.6g}[/bold] ({dst})")
