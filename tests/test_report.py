"""Report pieces (escaping, script-safe JSON, the reading, lr x lam shape), ``wdlab report``,
and the figure presets end to end at reduced size."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from wdlab.cli import app
from wdlab.report import heatmap_stats, reading
from wdlab.report.html import esc, safe_json, table

runner = CliRunner()
PAYLOAD = "<img src=x onerror=alert(1)>"


def test_safe_json_cannot_close_the_script():
    obj = {"name": "</script><script>alert(1)</script>", "x": [1.0, float("nan")],
           "c": "<!-- \u2028 &"}
    text = safe_json(obj)
    assert "</" not in text and "<!--" not in text and "<" not in text and "\u2028" not in text
    back = json.loads(text)
    assert back == {"name": obj["name"], "x": [1.0, None], "c": obj["c"]}


def test_tables_escape_cells_and_headers():
    df = pd.DataFrame({PAYLOAD: [PAYLOAD], "lam": [0.5]})
    html = table(df, table_id='x" onclick="y', sortable=True)
    assert "<img" not in html and 'onclick="y"' not in html
    assert esc(PAYLOAD) in html and 'data-v="0.5"' in html


def _grid(fn, lrs, lams):
    rows = [dict(optimizer="adam", regularizer="weight_decay", lr=lr, lam=lam, status="ok",
                 test_mse=fn(np.log10(lr), np.log10(lam)), config_id=i)
            for i, (lr, lam) in enumerate((a, b) for a in lrs for b in lams)]
    return pd.DataFrame(rows)


def test_heatmap_stats_tells_diagonal_from_separable():
    lrs, lams = np.logspace(-4, 0, 9), np.logspace(-4, 1, 11)
    diagonal = heatmap_stats(_grid(lambda a, b: 1 + (a + b + 3) ** 2, lrs, lams))
    separable = heatmap_stats(_grid(lambda a, b: 1 + (b + 1) ** 2 + 0.1 * a ** 2, lrs, lams))
    assert diagonal["slope"].iloc[0] == pytest.approx(-1.0, abs=0.15)
    assert abs(separable["slope"].iloc[0]) < 0.05
    assert separable["best_lam"].iloc[0] == pytest.approx(0.1)
    text = reading(_grid(lambda a, b: 1 + (a + b + 3) ** 2, lrs, lams))
    assert "a diagonal (best λ falls as lr grows)" in text


def test_reading_states_the_numbers():
    configs = pd.DataFrame({"config_id": [0, 1, 2, 3], "optimizer": "adam", "regularizer": "mean",
                            "lam": [0.0, 3.0, 0.0, 3.0], "lr": 0.05, "status": "ok",
                            "test_mse": [170.0, 130.0, 174.0, 142.0], "n_train": 10,
                            "n_features": 200, "init_scale": 1.0})
    text = reading(configs)
    assert "λ = 3 (the largest λ of the grid: the optimum may lie beyond it)" in text
    assert "cut the mean test MSE from 172 at λ = 0 to 136" in text
    assert "init_scale²·(d − n) = 190" in text
    configs.loc[3, ["status", "test_mse"]] = ["diverged", np.nan]
    assert "1 diverged" in reading(configs)


def test_cli_report_errors_are_one_line(tmp_path):
    res = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert res.exit_code == 2 and res.output.startswith("error: RUN_DIR") and "Traceback" not in res.output
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["report", str(tmp_path / "empty")])
    assert res.exit_code == 2 and "configs.parquet" in res.output
    assert not (tmp_path / "empty" / "report.html").exists()


def test_cli_report_on_reproduce_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WDLAB_SVG", "1")  # SVG on request, beside the PNG
    out = tmp_path / "seed"
    res = runner.invoke(app, ["reproduce", "seed", "--out", str(out), "--epochs", "10"])
    assert res.exit_code == 0, res.output
    first = (out / "report.html").read_text()  # --report is the default
    (out / "report.html").unlink()
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    html = (out / "report.html").read_text()
    assert len(html) == len(first) and "plotly" in html.lower()
    assert "<script src" not in html and "<link" not in html  # plotly.js is inline
    for name in ("validation", "coef_path"):
        assert (out / "figures" / f"{name}.png").is_file() and (out / "figures" / f"{name}.svg").is_file()
    assert not (out / "figures" / "norm_path.png").exists()  # λ ∈ {0, 3}: no one-dot path
    manifest = json.loads((out / "manifest.json").read_text())
    listed = set(manifest["files"])
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()
               and not p.name.startswith(".")}  # the lock file is not an output
    assert listed == on_disk  # the manifest lists every file written, report and figures too
    assert {w["code"] for w in manifest["warnings"]} >= {"grid_edge", "few_seeds"}
    assert 'id="answer"' in html and "sklearn Ridge(alpha=" in html


@pytest.mark.slow
def test_preset_adamw_fig2_reduced(tmp_path):
    pytest.importorskip("wdlab.sweep", reason="the presets run on wdlab.sweep (issue 4)")
    from wdlab.demos.figures import run_preset

    out = run_preset("adamw-fig2", out=tmp_path / "fig2", reduced=True)
    configs = pd.read_parquet(out / "configs.parquet")
    groups = set(zip(configs.optimizer, configs.regularizer, strict=True))
    assert groups == {("sgd", "weight_decay"), ("sgd", "decoupled"), ("adam", "weight_decay"),
                      ("adamw", "decoupled"), ("adamw", "independent")}
    assert configs.lr.nunique() == 3 and configs.lam.nunique() == 5
    for name in ("heatmaps", "validation"):
        assert (out / "figures" / f"{name}.png").is_file()
    html = (out / "report.html").read_text()
    assert html.count('id="heatmap-') == 5
    stats = heatmap_stats(configs)
    assert len(stats) == 5 and stats["best_mse"].notna().all()


@pytest.mark.slow
def test_preset_double_descent_reduced(tmp_path):
    pytest.importorskip("wdlab.sweep", reason="the presets run on wdlab.sweep (issue 4)")
    res = runner.invoke(app, ["reproduce", "double-descent", "--reduced",
                              "--out", str(tmp_path / "dd")])
    assert res.exit_code == 0, res.output
    out = tmp_path / "dd"
    configs = pd.read_parquet(out / "configs.parquet")
    assert sorted(configs.n_train.unique()) == [5, 10, 20]
    assert (configs.init_scale == 0).all() and configs.lam.min() == 1e-6
    assert (out / "figures" / "double_descent.png").is_file()
    assert not (out / "figures" / "double_descent.svg").exists()  # PNG only by default
    html = (out / "report.html").read_text()
    assert 'id="double-descent-plot"' in html and '"double_descent":{' in html
    assert "peaks at n_train / n_features" in html


def test_figure_worker_draws_what_the_process_draws_and_falls_back(tmp_path, monkeypatch):
    """The figure worker (wdlab.figure_worker) writes the same figure files as
    write_figures in process; with no worker, a worker not ready in time, or a job it cannot
    do, wait() says None (the caller then draws in process)."""
    import shutil

    from wdlab import figure_worker
    from wdlab.report.figures import write_figures

    monkeypatch.setenv(figure_worker.WORKER_ENV, "0")
    assert not figure_worker.enabled()
    out = tmp_path / "seed"
    res = runner.invoke(app, ["sweep", "--preset", "seed", "--lam", "1e-2:1e1:4", "--seeds", "2",
                              "--epochs", "10", "--no-csv", "--no-report", "--out", str(out)])
    assert res.exit_code == 0, res.output
    twin = tmp_path / "twin"
    shutil.copytree(out, twin)
    monkeypatch.setenv(figure_worker.WORKER_ENV, "1")  # whatever the machine's load
    figure_worker.start()
    monkeypatch.setattr(figure_worker, "READY_GRACE_S", 0.0)  # still importing: not used
    assert figure_worker.submit(out, ("png",))() is None
    monkeypatch.setattr(figure_worker, "READY_GRACE_S", 300.0)  # a busy test machine
    figure_worker.start()
    wait = figure_worker.submit(out, ("png",))
    here = write_figures(twin, formats=("png",))  # meanwhile, in this process
    there = wait()
    assert there is not None and {p.name for p in there} == {p.name for p in here}
    assert {p.name for p in here} >= {"validation.png", "norm_path.png"}
    assert all(p.stat().st_size > 1000 for p in there)
    # the worker's warm-up (fonts, a first draw) changes no pixel: the same bytes
    assert {p.name: p.read_bytes() for p in there} == {p.name: p.read_bytes() for p in here}
    # after answering, the worker ends by itself (os._exit: no teardown to wait for), its
    # stdin still open, with code 0
    figure_worker.start()
    proc = figure_worker._worker
    assert figure_worker._ready(proc, 300.0)
    proc.stdin.write(json.dumps({"run_dir": str(out), "formats": ["png"]}) + "\n")
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["ok"]
    assert proc.wait(timeout=60) == 0 and not proc.stdin.closed
    proc.stdin.close()
    figure_worker._worker = None
    assert figure_worker.submit(out, ("png",))() is None  # one job per worker: none left
    figure_worker.start()
    assert figure_worker.submit(tmp_path / "missing", ("png",))() is None  # an error there


def test_figure_warm_up_covers_write_figures_imports_and_changes_nothing(tmp_path):
    """report.figures.warm_up (run by the figure worker while the engine runs) loads every
    module write_figures would load later (so none is left for the wait), writes no file
    and leaves matplotlib's settings as they were; checked in a fresh process."""
    out = tmp_path / "seed"
    res = runner.invoke(app, ["sweep", "--preset", "seed", "--lam", "1e-2:1e1:4", "--seeds", "2",
                              "--epochs", "10", "--no-csv", "--no-report", "--out", str(out)])
    assert res.exit_code == 0, res.output
    work = tmp_path / "cwd"
    work.mkdir()
    code = (
        "import json, sys, matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import wdlab.plots\n"
        "from wdlab.report.figures import warm_up, write_figures\n"
        "rc = dict(matplotlib.rcParams)\n"
        "warm_up()\n"
        "same = dict(matplotlib.rcParams) == rc\n"
        "before = set(sys.modules)\n"
        f"write_figures({str(out)!r}, formats=('png',))\n"
        "print(json.dumps({'same': same, 'new': sorted(set(sys.modules) - before)}))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["same"]
    assert answer["new"] == [], answer["new"]  # nothing left to import after the warm-up
    assert list(work.iterdir()) == []  # warm_up and the figures wrote nothing here


def test_packed_plotly_is_cached_on_disk_with_the_same_bytes(tmp_path, monkeypatch):
    """report.html.packed: gzip + base64 of plotly.js, computed once and then read from the
    cache directory; the cached text is the computed one, and a bad cache dir is only slower."""
    import base64
    import gzip

    from wdlab.report import html

    monkeypatch.setenv("WDLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(html, "_GZ_CACHE", {})
    js = "var x = 1;" * 1000
    want = base64.b64encode(gzip.compress(js.encode(), 6, mtime=0)).decode()
    assert html.packed(js) == want
    files = list((tmp_path / "cache").glob("js-*.gz.b64"))
    assert len(files) == 1 and files[0].read_text() == want
    monkeypatch.setattr(html, "_GZ_CACHE", {})
    assert html.packed(js) == want  # from the file
    (tmp_path / "blocked").write_text("")
    monkeypatch.setenv("WDLAB_CACHE_DIR", str(tmp_path / "blocked" / "sub"))
    monkeypatch.setattr(html, "_GZ_CACHE", {})
    assert html.packed(js) == want
