"""Issue 19: no input crashes, hangs or silently splits a run.

One test (or a few) per item of the issue: the input, the exit code, the one line, and that
nothing was written or what was kept. Commands run in process (CliRunner), tiny sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from runs import one_line_error
from wdlab.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY = ["--epochs", "5", "--no-report", "--no-csv"]


def _line(res, code: int = 2) -> str:
    """The one short line of a refused command (exit ``code``), never a traceback."""
    line = one_line_error(res, code=code)
    assert len(line) < 300, line
    return line


def _spec(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _csv(tmp_path: Path, name: str = "d.csv", n: int = 40) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["y"] = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=n)
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


FIT_QUICK = ["--lam", "1e-2:1:3", "--epochs", "20", "--folds", "2", "--no-report"]


@pytest.fixture(scope="module")
def unfinished(tmp_path_factory):
    """A sweep stopped after its first chunk (status running, one chunk file on disk)."""
    from wdlab.config.load import load_spec
    from wdlab.sweep import run_sweep
    from wdlab.sweep.chunk import run_chunk

    spec = load_spec(EXAMPLES / "tiny.toml", {"train": {"epochs": 5},
                                               "execution": {"chunk_size": 8}})
    out = tmp_path_factory.mktemp("unfinished") / "run"

    def stop_after_one(spec, indices):
        yield run_chunk(spec, indices[0])
        raise KeyboardInterrupt  # as a kill would: the directory stays for --resume

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out, report=False, csv=False, executor=stop_after_one)
    return out


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


# -- 1. one error boundary: one line, never a traceback ------------------------------------

@pytest.mark.parametrize("text,field", [
    ("[data]\nn_features = 9223372036854775807\n", "data.n_features"),
    ("[train]\ninit_seed = 1e23\n", "train.init_seed"),
    ("[data]\nseeds = [18446744073709551615]\n", "data.seeds.0"),
    ("x = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
], ids=["n_features-int64", "init_seed-1e23", "seed-2**64-1", "toml-5000-deep"])
def test_overflowing_and_deep_specs_are_one_line(tmp_path, text, field):
    out = tmp_path / "run"
    res = runner.invoke(app, ["sweep", str(_spec(tmp_path, text)), "--out", str(out), *TINY])
    assert field in _line(res)
    assert not out.exists()


def test_deep_yaml_and_dev_zero_spec(tmp_path):
    deep = _spec(tmp_path, "x: " + "[" * 5000 + "]" * 5000 + "\n", "deep.yaml")
    assert "nested" in _line(runner.invoke(app, ["sweep", str(deep), *TINY]))
    link = tmp_path / "zero.toml"
    link.symlink_to("/dev/zero")
    assert "is not a regular file" in _line(runner.invoke(app, ["sweep", str(link), *TINY]))
    assert not Path("runs").exists() or not list(Path("runs").glob("sweep-sweep-*"))


def test_manifest_that_is_a_json_list(tmp_path, unfinished):
    run = _copy(unfinished, tmp_path / "run")
    (run / "manifest.json").write_text("[1, 2]")
    expected = f"{run / 'manifest.json'}: expected a JSON object, got a JSON list"
    for argv in (["sweep", "--resume", str(run)], ["report", str(run)],
                 ["fit", str(_csv(tmp_path)), "--target", "y", "--out", str(run), *FIT_QUICK]):
        assert expected in _line(runner.invoke(app, argv)), argv
    assert (run / "manifest.json").read_text() == "[1, 2]"  # nothing rewritten


def test_lam_stored_as_strings_in_configs(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame({"config_id": [0, 1], "lam": ["0.1", "x"], "test_mse": [1.0, 2.0]}).to_parquet(
        run / "configs.parquet")
    line = _line(runner.invoke(app, ["report", str(run)]))
    assert "configs: column 'lam' must be numeric" in line
    assert not (run / "report.html").exists()


def test_an_unexpected_error_is_one_line_saying_bug_and_debug_shows_it(tmp_path, monkeypatch):
    import wdlab.sweep

    def broken(*a, **k):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(wdlab.sweep, "run_sweep", broken)
    argv = ["sweep", str(EXAMPLES / "tiny.toml"), *TINY]
    line = _line(runner.invoke(app, argv), code=1)
    assert line.startswith("error: internal error (TypeError: unsupported operand); this is a bug")
    assert "--debug" in line
    res = runner.invoke(app, ["--debug", *argv])
    assert isinstance(res.exception, TypeError)  # the traceback is there with --debug
    runner.invoke(app, ["translate", "--help"])  # a later command without --debug ...
    assert _line(runner.invoke(app, argv), code=1).startswith("error: internal error")


# -- 2. upper bounds and one plan-size estimate, before allocating -------------------------

def test_huge_epochs_and_ranges_are_refused_before_allocating(tmp_path):
    out = tmp_path / "run"
    base = ["sweep", str(EXAMPLES / "tiny.toml"), "--out", str(out), "--no-report"]
    line = _line(runner.invoke(app, [*base, "--epochs", "1000000000000"]))
    assert "train.epochs.0" in line and "10000000" in line
    line = _line(runner.invoke(app, [*base, "--lam", "1e-3:1e2:100000000"]))
    assert line.startswith("error: --lam: range count must be <= 100,000")
    line = _line(runner.invoke(app, ["fit", str(_csv(tmp_path)), "--target", "y", "--out",
                                     str(out), "--epochs", "1000000000000"]))
    assert line.startswith("error: --epochs: must be in [1, 10,000,000]")
    assert not out.exists()


def test_plan_size_estimate_refuses_what_cannot_fit(tmp_path, monkeypatch):
    from wdlab.sweep import plan

    out = tmp_path / "run"
    base = ["sweep", str(EXAMPLES / "tiny.toml"), "--out", str(out), "--no-report"]
    line = _line(runner.invoke(app, [*base, "--lam", "1e-3:1e2:100000", "--lr",
                                     "1e-3:1:1000"]))
    assert "plan: 600,000,000 configurations" in line and "shrink the largest axes" in line
    monkeypatch.setattr(plan, "_free_disk", lambda path: 10_000)
    line = _line(runner.invoke(app, [*base, "--epochs", "2000"]))
    assert "curve rows" in line and "more than the 10 KB free" in line
    assert "--log-points" in line
    assert not out.exists()
    from wdlab.config.load import load_spec

    spec = plan.resolve_spec(load_spec(EXAMPLES / "tiny.toml", {"train": {"momentum": [0, 0.9]}}))
    assert plan.plan_size(spec)["configs"] == plan.make_plan(spec).n_configs  # not expanded


def test_a_million_column_csv_is_refused_from_its_header(tmp_path):
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(1_000_000)) + "\n" + ",".join(["1"] * 1_000_000) + "\n")
    line = _line(runner.invoke(app, ["fit", str(wide), "--target", "c0", "--out",
                                     str(tmp_path / "run")]))
    assert "1,000,000 columns, more than 100,000" in line
    assert not (tmp_path / "run").exists()


# -- 3. capped echoes, bounded YAML aliases -------------------------------------------------

def test_yaml_alias_bomb_is_a_short_line(tmp_path):
    rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        rows.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = _spec(tmp_path, "\n".join(rows) + "\n", "bomb.yaml")
    assert len(bomb.read_bytes()) < 600
    line = _line(runner.invoke(app, ["sweep", str(bomb), *TINY]))
    assert "expands to more than 1,000,000 values" in line


def test_a_huge_name_is_not_echoed_whole(tmp_path):
    spec = _spec(tmp_path, f'name = "{"x" * 500_000}"\n')
    line = _line(runner.invoke(app, ["sweep", str(spec), *TINY]))
    assert line.startswith("error: name: ") and "(500,000 chars)" in line
    from wdlab.config import shown

    assert len(shown("\x1b[31m" + "y" * 10**6)) < 100 and "\x1b" not in shown("\x1b[31m")


# -- 4 and 7. ownership and the run-directory lock ------------------------------------------

def test_fit_and_reproduce_refuse_an_unfinished_sweep(tmp_path, unfinished):
    run = _copy(unfinished, tmp_path / "run")
    chunks = sorted(p.name for p in (run / "chunks").iterdir())
    for argv in (["fit", str(_csv(tmp_path)), "--target", "y", "--out", str(run), *FIT_QUICK],
                 ["reproduce", "seed", "--epochs", "5", "--out", str(run), "--no-report"]):
        line = _line(runner.invoke(app, argv))
        assert "holds an unfinished sweep run (status 'running')" in line, argv
        assert f"wdlab sweep --resume {run} continues it" in line and "--force" in line
    assert sorted(p.name for p in (run / "chunks").iterdir()) == chunks  # kept
    res = runner.invoke(app, ["sweep", "--resume", str(run), "--no-report"])
    assert res.exit_code == 0, res.output
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"


def test_rundir_refuses_more_than_complete(tmp_path, unfinished):
    from wdlab.store import RunDir

    with pytest.raises(FileExistsError, match="holds an unfinished sweep run"):
        RunDir(unfinished)
    stranger = tmp_path / "home"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not empty and holds no wdlab run"):
        RunDir(stranger)
    RunDir(tmp_path / "fresh")  # a new directory is fine (and not created yet)
    assert not (tmp_path / "fresh").exists()


def _hold_lock(run: Path):
    code = ("import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
            "fcntl.flock(f.fileno(), fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run / ".wdlab.lock")],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_is_told_the_run_is_in_use(tmp_path, unfinished):
    run = _copy(unfinished, tmp_path / "run")
    (run / "chunks" / ".00001.configs.parquet.x.tmp").write_text("in flight")
    before = sorted(p.name for p in run.rglob("*"))
    manifest = (run / "manifest.json").read_bytes()
    proc = _hold_lock(run)
    try:
        for argv in (["sweep", "--resume", str(run), "--no-report"],
                     ["sweep", str(EXAMPLES / "tiny.toml"), "--out", str(run), "--force", *TINY],
                     ["fit", str(_csv(tmp_path)), "--target", "y", "--out", str(run), "--force",
                      *FIT_QUICK]):
            line = _line(runner.invoke(app, argv))
            assert line == (f"error: {run}: the run is in use by another wdlab process (it holds "
                            ".wdlab.lock); wait for it to finish"), argv
    finally:
        proc.kill()
        proc.wait()
    assert sorted(p.name for p in run.rglob("*")) == before  # the other's temp file is kept
    assert (run / "manifest.json").read_bytes() == manifest  # no `resumed` entry lost


# -- 5. the resolved engine is part of the run's identity ----------------------------------

def _stopped_with_engine(tmp_path, engine: str) -> Path:
    from wdlab.config.load import load_spec
    from wdlab.sweep import run_sweep
    from wdlab.sweep.chunk import run_chunk

    spec = load_spec(EXAMPLES / "tiny.toml", {"train": {"epochs": 5, "pairs": ["adam+mean"]},
                                               "execution": {"chunk_size": 8}})
    out = tmp_path / f"run-{engine}"

    def first_chunk_with(spec, indices):
        pinned = spec.replace(execution=spec.execution.replace(engine=engine).model_dump())
        yield run_chunk(pinned, indices[0])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out, report=False, csv=False, executor=first_chunk_with)
    return out


def test_resume_uses_the_engine_the_run_resolved(tmp_path):
    run = _stopped_with_engine(tmp_path, "eager")
    res = runner.invoke(app, ["sweep", "--resume", str(run), "--no-report"])
    assert res.exit_code == 0, res.output
    configs = pd.read_parquet(run / "configs.parquet")
    assert len(configs) > 8 and set(configs["engine"]) == {"eager"}  # one group, one engine
    summary = pd.read_parquet(run / "summary.parquet")
    assert len(summary) == configs.groupby(["lr", "lam"]).ngroups  # not split in two


def test_resume_refuses_when_the_engine_cannot_run_here(tmp_path, monkeypatch):
    from wdlab.sweep import driver

    run = _stopped_with_engine(tmp_path, "eager")
    chunk = run / "chunks" / "00000.configs.parquet"
    table = pd.read_parquet(chunk)
    table["engine"] = "native"  # as if trained where a C++ compiler was found
    table.to_parquet(chunk)
    monkeypatch.setattr(driver, "engine_available", lambda engine, device: engine == "eager")
    manifest = (run / "manifest.json").read_bytes()
    line = _line(runner.invoke(app, ["sweep", "--resume", str(run), "--no-report"]))
    assert f"--resume: {run} trained with engine 'native', which cannot run here" in line
    assert (run / "manifest.json").read_bytes() == manifest
    assert sorted(p.name for p in (run / "chunks").iterdir()) == [
        "00000.configs.parquet", "00000.curves.parquet"]


# -- 6. 'complete' only once report.html exists ---------------------------------------------

def _disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_sweep_report_failure_leaves_reporting_and_resume_writes_it(tmp_path, monkeypatch):
    import wdlab.report

    out = tmp_path / "run"
    monkeypatch.setattr(wdlab.report, "write_report", _disk_full)
    res = runner.invoke(app, ["sweep", str(EXAMPLES / "tiny.toml"), "--epochs", "5",
                              "--out", str(out)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and res.output.rstrip().endswith(errors[0])  # after the progress
    line = errors[0]
    assert "report: not written (No space left on device)" in line
    assert f"wdlab sweep --resume {out} writes the report" in line
    assert json.loads((out / "manifest.json").read_text())["status"] == "reporting"
    assert not (out / "report.html").exists() and (out / "chunks").is_dir()
    monkeypatch.undo()
    res = runner.invoke(app, ["sweep", "--resume", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "report.html").is_file() and not (out / "chunks").exists()
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


def test_fit_report_failure_is_not_complete(tmp_path, monkeypatch):
    import wdlab.report

    out = tmp_path / "run"
    monkeypatch.setattr(wdlab.report, "write_report", _disk_full)
    argv = ["fit", str(_csv(tmp_path)), "--target", "y", "--out", str(out), *FIT_QUICK[:-1]]
    assert "No space left on device" in _line(runner.invoke(app, argv))
    assert json.loads((out / "manifest.json").read_text())["status"] == "reporting"
    monkeypatch.undo()
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


# -- 8. extreme finite values refused at validation, naming the field -----------------------

@pytest.mark.parametrize("text,field", [
    ("[train]\nlam = [1e308]\n", "train.lam.0"),
    ("[data]\nw_star = nan\n", "data.w_star"),
    ("[data]\nbias = inf\n", "data.bias"),
    ("[data]\nw_star = 1e300\n", "data.w_star"),
    ("[train]\ninit_scale = 1e300\n", "train.init_scale.0"),
], ids=["lam-1e308", "w_star-nan", "bias-inf", "w_star-1e300", "init_scale-1e300"])
def test_extreme_spec_values_are_refused_naming_the_field(tmp_path, text, field):
    out = tmp_path / "run"
    res = runner.invoke(app, ["sweep", str(_spec(tmp_path, text)), "--out", str(out), *TINY])
    assert _line(res).startswith(f"error: {field}: ")
    assert not out.exists()


def test_extreme_flags_and_cells_in_fit(tmp_path):
    out = tmp_path / "run"
    data = _csv(tmp_path)
    line = _line(runner.invoke(app, ["fit", str(data), "--target", "y", "--lam", "1e308",
                                     "--out", str(out)]))
    assert line.startswith("error: --lam: every λ must be finite, >= 0 and <= 1e+15")
    df = pd.read_csv(data)
    df.loc[1, "b"] = 1e308
    df.to_csv(tmp_path / "big.csv", index=False)
    line = _line(runner.invoke(app, ["fit", str(tmp_path / "big.csv"), "--target", "y",
                                     "--out", str(out)]))
    assert "feature column 'b' has 1e+308 at row 2" in line
    assert not out.exists()


# -- 9. report escaping of plotly trace names and titles ------------------------------------

def test_plotly_trace_names_and_titles_are_escaped():
    from wdlab.report import charts

    evil = '<a href="http://127.0.0.1:9/phish">Click</a>'
    rows = [{"config_id": i, "optimizer": evil, "regularizer": "mean", "lam": lam, "lr": lr,
             "data_seed": 0, "test_mse": 1.0 + lam, "val_mse": 1.0 + lam, "status": "ok"}
            for i, (lam, lr) in enumerate([(0.1, 0.01), (1.0, 0.01), (0.1, 0.1), (1.0, 0.1)])]
    configs = pd.DataFrame(rows)
    strings = []

    def walk(obj):
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k in ("name", "text", "hovertemplate") and isinstance(v, str):
                    strings.append(v)
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(charts.validation(configs, None, None, None))
    walk(charts.heatmaps(configs))
    assert strings and not [s for s in strings if "<a " in s or "href=\"" in s]
    assert any("&lt;a href=&quot;http://127.0.0.1:9/phish&quot;&gt;Click&lt;/a&gt;" in s
               for s in strings)


# -- 11. messages that name the thing -------------------------------------------------------

def test_invalid_json_manifest_names_the_file(tmp_path, unfinished):
    run = _copy(unfinished, tmp_path / "run")
    (run / "manifest.json").write_text("{not json")
    for argv in (["sweep", "--resume", str(run)], ["report", str(run)]):
        line = _line(runner.invoke(app, argv))
        assert f"{run / 'manifest.json'}: invalid JSON at line 1" in line, argv


def test_fit_lr_inf_names_the_flag(tmp_path):
    line = _line(runner.invoke(app, ["fit", str(_csv(tmp_path)), "--target", "y", "--lr", "inf",
                                     "--out", str(tmp_path / "run")]))
    assert line.startswith("error: --lr: must be finite") and "random_state" not in line


def test_unwritable_out_and_bench_json_dir_fail_before_the_work(tmp_path, monkeypatch):
    import wdlab.bench
    import wdlab.fitrun

    def never(*a, **k):
        raise AssertionError("the work ran before the output was checked")

    monkeypatch.setattr(wdlab.fitrun, "run_fit", never)
    monkeypatch.setattr(wdlab.bench, "run_bench", never)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = _line(runner.invoke(app, ["fit", str(_csv(tmp_path)), "--target", "y",
                                     "--out", str(blocker / "run"), *FIT_QUICK]))
    assert line == f"error: --out: {blocker} is a file, not a directory"
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        line = _line(runner.invoke(app, ["fit", str(_csv(tmp_path)), "--target", "y",
                                         "--out", str(ro / "run"), *FIT_QUICK]))
        assert line == f"error: --out: {ro} is not writable"
    line = _line(runner.invoke(app, ["bench", "--ks", "1", "--json", str(tmp_path)]))
    assert line == f"error: --json: {tmp_path} is a directory; give a file name"


def test_ansi_escapes_in_column_names_are_not_printed_raw(tmp_path):
    df = pd.read_csv(_csv(tmp_path))
    df["\x1b[31mred\x1b[0m"] = ["x"] * len(df)
    df.to_csv(tmp_path / "ansi.csv", index=False)
    res = runner.invoke(app, ["fit", str(tmp_path / "ansi.csv"), "--target", "y", "--out",
                              str(tmp_path / "run"), *FIT_QUICK])
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "\\x1b[31mred\\x1b[0m" in res.output
    line = _line(runner.invoke(app, ["fit", str(tmp_path / "ansi.csv"), "--target",
                                     "\x1b[2Jgone", "--out", str(tmp_path / "run2")]))
    assert "\x1b" not in line and "\\x1b[2Jgone" in line


# -- 12. estimator edge cases ---------------------------------------------------------------

def test_estimator_edge_cases_are_named_errors():
    from wdlab.estimator import WeightDecayRegressor, WeightDecayRegressorCV

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), rng.normal(size=30)
    quick = {"epochs": 5}
    with pytest.raises(ValueError, match="init_scale"):
        WeightDecayRegressor(init_scale=1e300, **quick).fit(X, y)
    with pytest.raises(ValueError, match=r"Input X has \|value\| 1e\+160 > 1e\+150 at row 0"):
        WeightDecayRegressor(**quick).fit(X * 0 + 1e160, y)
    y_obj = y.astype(object)
    y_obj[3] = None
    with pytest.raises(ValueError, match="Input y contains NaN at row 3"):
        WeightDecayRegressor(**quick).fit(X, y_obj)
    with pytest.raises(ValueError, match="epochs: expected an integer, got True"):
        WeightDecayRegressor(epochs=True).fit(X, y)
    w = np.ones(30)
    w[:10] = 0.0  # KFold(3) without shuffle: fold 0 tests rows 0..9, every fold trains
    with pytest.raises(ValueError, match="every test row of CV fold 0 has zero weight"):
        WeightDecayRegressorCV(cv=3, lams=[0.1, 1.0], **quick).fit(X, y, sample_weight=w)


def test_translate_refuses_inf():
    from wdlab.conventions import translate

    line = _line(runner.invoke(app, ["translate", "inf", "--from", "seed", "--to", "d2l",
                                     "--n-train", "10", "--n-features", "3"]))
    assert line == "error: value: every lam must be finite and >= 0, got inf"
    with pytest.raises(ValueError, match="finite and >= 0"):
        translate(np.array([0.1, np.inf]), "seed", "d2l", n_train=10, n_features=3)


def test_click_usage_errors_are_one_line():
    for argv, fragment in ((["fit", "x.csv", "--target", "y", "--epochs", "abc"],
                            "error: Invalid value for '--epochs'"),
                           (["fit"], "error: Missing argument 'DATA'."),
                           (["sweep", "--bogus"], "error: No such option: --bogus")):
        line = _line(runner.invoke(app, argv))
        assert line.startswith(fragment) and line.endswith("-h for help)"), line
    assert runner.invoke(app, ["fit", "-h"]).exit_code == 0


def test_recorded_epoch_count_matches_the_list_without_building_it():
    from wdlab.config.schema import SweepRecord

    for rec in (SweepRecord(), SweepRecord(every=1), SweepRecord(every=7), SweepRecord(log_points=9)):
        for total in (1, 2, 7, 50, 199, 200, 201, 1000, 12345):
            assert rec.n_epochs(total) == len(rec.epochs(total)), (rec, total)
    assert SweepRecord(every=1).n_epochs(10**7) == 10**7 + 1  # counted, not listed


def test_fit_refuses_a_grid_that_cannot_fit_in_memory(tmp_path, monkeypatch):
    from wdlab.sweep import plan

    monkeypatch.setattr(plan, "_available_host_bytes", lambda: 10**6)
    out = tmp_path / "run"
    line = _line(runner.invoke(app, ["fit", str(_csv(tmp_path)), "--target", "y", "--lam",
                                     "1e-3:1e2:5000", "--out", str(out)]))
    assert line.startswith("error: --lam: 30,000 models") and "more than half the 1 MB" in line
    assert not out.exists()
