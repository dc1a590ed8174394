"""``wdlab translate``: one lam in every convention, one weight_decay in every framework, and
the new weight_decay when batch size, dataset size or lr change.

    wdlab translate 3 --from seed [--to d2l] [--n-train N] [--n-features D]
    wdlab translate --wd 0.05 --lr 1e-3 --from torch-adamw --to tfa-adamw --schedule cosine --steps N
    wdlab translate --keep tau-epoch --from "lr=1e-3,wd=0.1,batch=256,n=50000" --to "batch=1024"
"""

from __future__ import annotations

import typer

from wdlab.cli._app import app
from wdlab.cli._common import one_line_errors

#: Plain SGD: w ← w − lr(g + λw) (coupled) is w ← w − lr·g − lr·λ·w (SGDW, ×lr): the same.
SGD_EXACT = ("plain SGD without momentum: coupled weight_decay λ, w ← w − lr·(g + λ·w), and "
             "decoupled ×lr (SGDW, the engine's sgd+decoupled), w ← w − lr·g − lr·λ·w, are the "
             "same update, so the torch_mse / torch_half_mse value above is also the SGDW value "
             "(for that loss); with momentum or Adam there is no exact equivalent")


def _needs(src: str, dst: str) -> set[str]:
    """Which sizes the factor src -> dst depends on: n_train cancels unless exactly one side is
    scikit-learn's alpha; n_features cancels unless exactly one side is the ``mean`` penalty."""
    from wdlab.conventions import CONVENTIONS

    (_, ps, _), (_, pd_, _) = CONVENTIONS[src], CONVENTIONS[dst]
    out = set()
    if (src == "sklearn") != (dst == "sklearn"):
        out.add("n_train")
    if (ps == "mean") != (pd_ == "mean"):
        out.add("n_features")
    return out


def _conventions(console, value, src, dst, n_train, n_features) -> None:
    from rich.markup import escape
    from rich.table import Table

    from wdlab.conventions import CONVENTIONS, DECOUPLED_NAMES, conventions_table
    from wdlab.conventions import translate as translate_value

    if value is None:
        raise ValueError("VALUE: give the lam to translate (or --wd/--lr for frameworks, "
                         "--keep tau-epoch for scaling rules)")
    if not value >= 0:
        raise ValueError(f"value: must be >= 0, got {value!r}")
    if src in DECOUPLED_NAMES or src not in CONVENTIONS:
        translate_value(1.0, src, "seed", n_train=1, n_features=1)  # raises the named error
    sizes = {"n_train": n_train, "n_features": n_features}
    placeholder = {k: (v if v is not None else 1) for k, v in sizes.items()}
    out = None
    if dst is not None:
        translate_value(1.0, "seed", dst, n_train=1, n_features=1)  # dst name check first
        missing = sorted(k for k in _needs(src, dst) if sizes[k] is None)
        if missing:
            raise ValueError(f"{missing[0]}: {src} -> {dst} depends on it; pass "
                             f"--{missing[0].replace('_', '-')}")
        out = translate_value(value, src, dst, **placeholder)
    rows = conventions_table(value, src, placeholder["n_train"], placeholder["n_features"])
    shown_sizes = ", ".join(f"{k}={v:g}" for k, v in sizes.items() if v is not None)
    table = Table(title=escape(f"lam = {value:g} in {src!r}" + (f" ({shown_sizes})"
                               if shown_sizes else "") + ": same minimiser in every row"))
    table.add_column("convention")
    table.add_column("value", justify="right")
    table.add_column("objective")
    for row in rows:
        name = row["name"]
        if row["value"] is None:
            shown = ("exact under plain SGD only" if name == "decoupled" else row["note"])
        else:
            lacking = sorted(k for k in _needs(src, name) if sizes[k] is None)
            shown = (f"needs --{lacking[0].replace('_', '-')}" if lacking
                     else f"{row['value']:.6g}")
        style = "bold green" if name == dst else ("dim" if row["value"] is None else None)
        table.add_row(escape(name), escape(shown), escape(row["objective"]), style=style)
    console.print(table)
    console.print(f"note: {SGD_EXACT}", markup=False)
    if out is not None:
        console.print(f"{value:g} ({src}) = {out:.6g} ({dst})", markup=False)


def _frameworks(console, wd, lr, src, dst, schedule, steps, batch_size, train_size,
                epochs) -> None:
    from rich.markup import escape
    from rich.table import Table

    from wdlab.frameworks import FRAMEWORKS, translate_framework

    if wd is None or lr is None:
        raise ValueError("wd: framework translation needs --wd and --lr")
    if schedule != "constant" and steps is None:
        raise ValueError(f"steps: --schedule {schedule} needs --steps (optimizer steps in the run)")
    targets = [dst] if dst is not None else [f for f in FRAMEWORKS if f != src]
    table = Table(title=escape(f"weight_decay {wd:g} in {src} (lr={lr:g}, schedule={schedule}"
                               + (f", {steps} steps" if steps else "") + "): same per-step decay"))
    for c in ("framework", "weight_decay", "exact", "formula", "max rel. mismatch", "update"):
        table.add_column(c, justify="right" if c in ("weight_decay", "max rel. mismatch") else
                         "left")
    results = []
    for name in targets:
        t = translate_framework(wd, src, name, lr=lr, schedule=schedule, steps=steps or 1,
                                batch_size=batch_size, train_size=train_size, epochs=epochs)
        results.append((name, t))
        table.add_row(escape(name), f"{t.value:.6g}", "yes" if t.exact else "no",
                      escape(t.formula), f"{t.max_rel_mismatch:.3g}",
                      escape(FRAMEWORKS[name].update),
                      style="bold green" if name == dst else None)
    console.print(table)
    for name, t in results:
        console.print(f"{name}: {t.note}", markup=False)
        if not t.exact:
            console.print(
                f"  matched at step 0: {t.value:.6g}; largest relative mismatch of the "
                f"per-step decay over the schedule: {t.max_rel_mismatch:.4g} (at step "
                f"{t.worst_step}); matched on the mean decay instead: {t.value_mean:.6g} "
                f"(largest relative mismatch {t.max_rel_mismatch_mean:.4g})", markup=False)
    if dst is not None:
        console.print(f"{wd:g} ({src}) = {results[0][1].value:.6g} ({dst})", markup=False)


def _scaling(console, keep, src, dst) -> None:
    from rich.markup import escape
    from rich.table import Table

    from wdlab.frameworks import parse_setting, scale_weight_decay, tau_epoch, tau_iter

    if keep != "tau-epoch":
        raise ValueError(f"keep: expected 'tau-epoch', got {keep!r}")
    if dst is None:
        raise ValueError('to: --keep tau-epoch needs --to "batch=..,n=..,lr=.."')
    old, new = parse_setting(src, "from"), parse_setting(dst, "to")
    rows = scale_weight_decay(old, new)
    t_it = tau_iter(old["lr"], old["wd"])
    t_ep = tau_epoch(old["lr"], old["wd"], old["batch"], old["n"])
    console.print(f"from {src}: tau_iter = 1/(lr*wd) = {t_it:.4g} iterations, tau_epoch = "
                  f"B/(lr*wd*N) = {t_ep:.4g} epochs (Wang & Aitchison 2024)", markup=False)
    table = Table(title=escape(f"new weight_decay for {dst}"))
    for c in ("rule", "weight_decay", "tau_iter", "tau_epoch", "formula"):
        table.add_column(c, justify="right" if c.startswith(("weight", "tau")) else "left")
    for i, r in enumerate(rows):
        table.add_row(escape(r.rule), f"{r.weight_decay:.6g}", f"{r.tau_iter:.4g}",
                      f"{r.tau_epoch:.4g}", escape(r.formula),
                      style="bold green" if i == 0 else None)
    console.print(table)
    console.print(f"keep tau_epoch: weight_decay = {rows[0].weight_decay:.6g}", markup=False)


@app.command()
@one_line_errors
def translate(
    value: float | None = typer.Argument(None, help="The lam (or alpha, or weight_decay) to "
                                         "translate between lam conventions."),
    src: str = typer.Option(..., "--from", help="A lam convention (seed, d2l, sklearn, glmnet "
                            "(documented objective; real glmnet's lam: y_scale=s_y), torch_mse, mse+mean, ...), a framework (torch-adamw, optax-adamw, "
                            "keras-adamw, tfa-adamw, lh-normalized, composer), or with --keep "
                            "a setting \"lr=..,wd=..,batch=..,n=..\"."),
    dst: str | None = typer.Option(None, "--to", help="Convention or framework to highlight, "
                                   "or with --keep the new \"batch=..,n=..,lr=..\"."),
    n_train: float | None = typer.Option(None, "--n-train", help="Number of training samples n "
                                         "(only where the translation depends on it)."),
    n_features: int | None = typer.Option(None, "--n-features", help="Number of penalised "
                                          "features d (only where it matters)."),
    wd: float | None = typer.Option(None, "--wd", help="Frameworks: weight_decay in --from."),
    lr: float | None = typer.Option(None, "--lr", help="Frameworks: the base learning rate."),
    schedule: str = typer.Option("constant", "--schedule", help="Frameworks: lr schedule, "
                                 "constant, cosine or linear."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Frameworks: optimizer steps."),
    batch_size: float | None = typer.Option(None, "--batch-size", help="lh-normalized: b."),
    train_size: float | None = typer.Option(None, "--train-size", help="lh-normalized: B."),
    epochs: float | None = typer.Option(None, "--epochs", help="lh-normalized: T."),
    keep: str | None = typer.Option(None, "--keep", help="tau-epoch: Wang & Aitchison's rule "
                                    "for a new batch size, dataset size or lr."),
) -> None:
    """Translate weight decay: between lam conventions (same minimiser), between frameworks
    (same per-step decay), or to a new batch/dataset/lr (same EMA timescale)."""
    from rich.console import Console

    from wdlab.frameworks import FRAMEWORKS

    console = Console(highlight=False)
    console.width = max(console.width, 120)
    if keep is not None:
        _scaling(console, keep, src, dst)
    elif src in FRAMEWORKS or wd is not None:
        if src not in FRAMEWORKS:
            raise ValueError(f"from: unknown framework {src!r}; expected one of {tuple(FRAMEWORKS)}")
        if dst is not None and dst not in FRAMEWORKS:
            raise ValueError(f"to: unknown framework {dst!r}; expected one of {tuple(FRAMEWORKS)}")
        _frameworks(console, wd, lr, src, dst, schedule, steps, batch_size, train_size, epochs)
    else:
        _conventions(console, value, src, dst, n_train, n_features)
