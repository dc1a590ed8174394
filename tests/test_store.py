"""store: atomic writes that respect the umask (issue 12 item 3)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from wdlab import store

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _plain(tmp_path: Path) -> int:
    """The mode a plain open(..., 'w') gives under the current umask."""
    probe = tmp_path / "plain-open"
    with open(probe, "w") as fh:
        fh.write("x")
    mode = _mode(probe)
    probe.unlink()
    return mode


def test_every_writer_gives_the_mode_of_a_plain_open(tmp_path, umask):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    expected = _plain(tmp_path)
    assert expected == 0o666 & ~umask
    df = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    written = [store.write_text(tmp_path / "t.txt", "x"),
               store.write_bytes(tmp_path / "b.bin", b"x"),
               store.write_json(tmp_path / "m.json", {"a": 1}),
               store.write_table(tmp_path / "tab.parquet", df),
               tmp_path / "tab.csv",
               store.write_table_stream(tmp_path / "s.parquet", [df, df]),
               tmp_path / "s.csv",
               *store.save_figure(fig, tmp_path / "figs" / "f")]
    plt.close(fig)
    for path in written:
        assert _mode(path) == expected, f"{path.name}: {oct(_mode(path))} != {oct(expected)}"
    assert not list(tmp_path.rglob(".*.tmp"))


def test_rewriting_keeps_the_mode_of_the_existing_file(tmp_path, umask):
    target = tmp_path / "r.txt"
    target.write_text("old")
    target.chmod(0o640)
    store.write_text(target, "new")
    assert target.read_text() == "new" and _mode(target) == 0o640


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_a_whole_run_directory_follows_the_umask(tmp_path, mask):
    from wdlab.cli import app

    old = os.umask(mask)
    try:
        out = tmp_path / "run"
        res = CliRunner().invoke(app, ["sweep", str(EXAMPLES / "tiny.toml"), "--epochs", "5",
                                       "--out", str(out)])
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    files = [p for p in out.rglob("*") if p.is_file()]
    assert (out / "report.html") in files and (out / "manifest.json") in files
    for p in files:
        assert _mode(p) == 0o666 & ~mask, f"{p.name}: {oct(_mode(p))}"
