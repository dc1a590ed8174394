"""``wdlab bench``: engine throughput against the seed's one-model loop, in one run."""

from __future__ import annotations

from pathlib import Path

import typer

from wdlab.cli._app import app
from wdlab.cli._common import one_line_errors


def _parse_ks(text: str) -> list[int]:
    from wdlab.config import shown

    try:
        ks = [int(float(k)) for k in text.split(",") if k.strip()]
    except (ValueError, OverflowError):
        raise ValueError(f"--ks: expected comma-separated integers like 1,100,1e4, got "
                         f"{shown(text)}") from None
    if not ks or min(ks) < 1 or max(ks) > 10**8:
        raise ValueError(f"--ks: every K must be in [1, 1e8], got {shown(text)}")
    return ks


def _num(v) -> str:
    """A rate, or — when the run was too short to measure a steady state (never 'nan')."""
    return "—" if v is None or v != v else f"{v:.4g}"


def _pct(v) -> str:
    return "—" if v is None or v != v else f"{100 * v:.1f}%"


@app.command()
@one_line_errors
def bench(
    device: str = typer.Option("cpu", help="cpu or cuda."),
    engine: str = typer.Option("auto", help="auto (triton on CUDA, native on CPU where a C++ compiler exists, else compiled or eager), eager, compiled, triton or native."),
    ks: str = typer.Option("1,10,100,1e3,1e4,1e5,1e6", help="Comma-separated numbers of configurations."),
    epochs: int = typer.Option(100, min=1, help="Epochs per timed run (all recorded)."),
    record_every: int = typer.Option(1, min=1, help="Record metrics every this many epochs."),
    max_seconds: float = typer.Option(60.0, help="Skip a K whose run would take longer than this."),
    json_path: Path = typer.Option(None, "--json", help="Also write the results to this JSON file."),
) -> None:
    """Configuration-steps/s for each K on the seed problem (Adam, lam*mean(w^2)), the seed's
    one-model loop and the plain batched peer (one fused torch.optim.Adam over a (K, D)
    weight) measured in the same run, the ratios and, on CUDA, the memory floor."""
    import json

    from rich.console import Console
    from rich.table import Table

    from wdlab.bench import run_bench
    from wdlab.devices import check_device

    check_device(device, "--device")
    if not 1 <= epochs <= 10**6 or not 1 <= record_every <= epochs:
        raise ValueError(f"--epochs: must be in [1, 1e6] and >= --record-every, got {epochs}")
    if not 0 < max_seconds < float("inf"):
        raise ValueError(f"--max-seconds: must be finite and > 0, got {max_seconds!r}")
    if json_path is not None:  # before the benchmark, not after it
        from wdlab.store import check_writable

        if json_path.is_dir():
            raise IsADirectoryError(f"--json: {json_path} is a directory; give a file name")
        check_writable(json_path.parent, "--json")
    ks_list = _parse_ks(ks)
    import warnings

    console = Console() if Console().is_terminal else Console(width=160)  # pipes: no cut
    with warnings.catch_warnings(record=True) as caught:  # each warning once, no source line
        warnings.simplefilter("always")
        res = run_bench(device, engine, ks_list, epochs, record_every, max_seconds,
                        progress=lambda r: console.print(
                            f"K={r['K']:>8}: {r['config_steps_per_s']:.4g} config-steps/s",
                            style="dim"))
    for message in dict.fromkeys(str(w.message) for w in caught):
        console.print(f"warning: {message}", style="yellow", highlight=False, soft_wrap=True,
                      markup=False, emoji=False)
    console.print(f"device: {res['device_name']}  engine: {res['engine']}  torch {res['torch']}",
                  soft_wrap=True, highlight=False)
    console.print(f"seed one-model loop: {res['seed_loop_steps_per_s']:.4g} steps/s;  "
                  f"copy {res['copy_bytes_per_s'] / 1e9:.1f} GB/s -> floor "
                  f"{res['floor_config_steps_per_s']:.4g} config-steps/s", soft_wrap=True,
                  highlight=False)
    table = Table("K", "engine", "config-steps/s", "x seed loop", "batched peer", "x peer",
                  "of floor", "steady", "of floor")
    for r in res["rows"]:
        if "skipped" in r:
            table.add_row(f"{r['K']:,}", "-", f"skipped: {r['skipped']}", *[""] * 6)
            continue
        ratio = r.get("ratio_to_peer")
        table.add_row(f"{r['K']:,}", r["engine"], f"{r['config_steps_per_s']:.4g}",
                      f"{r['ratio_to_seed_loop']:.1f}x", _num(r.get("peer_config_steps_per_s")),
                      "—" if ratio is None else f"{ratio:.2f}x",
                      f"{100 * r['fraction_of_floor']:.1f}%",
                      _num(r.get("steady_config_steps_per_s")),
                      _pct(r.get("steady_fraction_of_floor")))
    console.print(table)
    if json_path is not None:
        from wdlab.store import write_text

        write_text(json_path, json.dumps(res, indent=2))
        console.print(f"json: {json_path}")
