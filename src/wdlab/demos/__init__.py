"""Weight decay where it shows, on networks: demos built on ``wdlab.nets``.

    grokking     ``wdlab reproduce grokking``: modular addition on Gromov's quadratic MLP,
                 AdamW weight decay swept, MSE and cross-entropy (a nets sweep spec)
    playground   ``wdlab reproduce playground``: a TensorFlow-Playground-like offline page
                 of decision boundaries over dataset x lam x optimizer x width x epoch
    adamw-fig2-net  Loshchilov & Hutter Fig. 2 on an MLP (digits): lr x lam grids, slope statistic
    tau-epoch       Wang & Aitchison's tau_epoch rule: best AdamW lam vs digits subset size N
    equilibrium     Kosson et al.'s rotational equilibrium: AdamW neuron norms and angular updates

    figures         (``wdlab.demos.figures``) the linear figure presets adamw-fig2 and double-descent

The names, summaries and runners are the preset registry's (``wdlab.config.presets``, kind
``demo``): ``DEMOS`` is its names, and ``run_demo`` imports a runner only to run it.
"""

from __future__ import annotations

from wdlab.config.presets import DEMO, names

DEMOS = names(DEMO)


def run_demo(name: str, **kwargs):
    """Run the demo preset ``name``; returns its run directory.

    Training runs on one intra-op thread (restored after): these networks are small, and on
    a shared 2-core CPU two threads spin in their barriers (measured: a 7-config chunk of
    grokking at load ~17 took > 30 min with 2 threads; 14 configs x 2000 steps took 17 s of
    CPU with 1).
    """
    from wdlab.engine.threads import one_thread

    with one_thread():
        return _run_demo(name, **kwargs)


def _run_demo(name: str, **kwargs):
    import importlib

    from wdlab.config.presets import lookup

    module, _, function = lookup(name, DEMO, hint=False).runner.partition(":")
    return getattr(importlib.import_module(module), function)(**kwargs)


def print_demo(name: str, run_dir) -> None:
    """The console answer of a demo: its reading (generated from the numbers) and files."""
    import json
    from pathlib import Path

    import typer

    run_dir = Path(run_dir)
    f = run_dir / f"{name}.json"
    if f.is_file():
        for line in json.loads(f.read_text()).get("reading", []):
            typer.echo(line)
    page = run_dir / f"{name}.html"
    typer.echo(f"page: {page}" if page.is_file() else "")
    typer.echo(f"run directory: {run_dir}")
