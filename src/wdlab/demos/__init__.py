"""Weight decay where it shows, on networks: demos built on ``wdlab.nets``.

    grokking     ``wdlab reproduce grokking``: modular addition on Gromov's quadratic MLP,
                 AdamW weight decay swept, MSE and cross-entropy (a nets sweep spec)
    playground   ``wdlab reproduce playground``: a TensorFlow-Playground-like offline page
                 of decision boundaries over dataset x lam x optimizer x width x epoch
    adamw-fig2-net  Loshchilov & Hutter Fig. 2 on an MLP (digits): lr x lam grids, slope statistic
    tau-epoch       Wang & Aitchison's tau_epoch rule: best AdamW lam vs digits subset size N
    equilibrium     Kosson et al.'s rotational equilibrium: AdamW neuron norms and angular updates

``DEMOS`` maps each preset name to its runner ``run(out=, force=, report=, reduced=, ...)``.
"""

from __future__ import annotations

DEMOS = ("grokking", "playground", "adamw-fig2-net", "tau-epoch", "equilibrium")


def run_demo(name: str, **kwargs):
    """Run the demo preset ``name``; returns its run directory.

    Training runs on one intra-op thread (restored after): these networks are small, and on
    a shared 2-core CPU two threads spin in their barriers (measured: a 7-config chunk of
    grokking at load ~17 took > 30 min with 2 threads; 14 configs x 2000 steps took 17 s of
    CPU with 1).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_demo(name, **kwargs)
    finally:
        torch.set_num_threads(threads)


def _run_demo(name: str, **kwargs):
    if name == "grokking":
        from wdlab.demos.grokking import run_grokking

        return run_grokking(**kwargs)
    if name == "playground":
        from wdlab.demos.playground import run_playground

        return run_playground(**kwargs)
    if name == "adamw-fig2-net":
        from wdlab.demos.fig2net import run_fig2net

        return run_fig2net(**kwargs)
    if name == "tau-epoch":
        from wdlab.demos.tau_epoch import run_tau_epoch

        return run_tau_epoch(**kwargs)
    if name == "equilibrium":
        from wdlab.demos.equilibrium import run_equilibrium

        return run_equilibrium(**kwargs)
    raise ValueError(f"preset: unknown demo {name!r}; expected one of {DEMOS}")


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
