"""Kill a real ``wdlab sweep`` subprocess with SIGKILL, resume it, compare bitwise.

Kill points: after a random chunk (``WDLAB_TEST_KILL_AFTER_CHUNK``), mid-write of a chunk's
done-marker and of the final table (``WDLAB_TEST_KILL_BEFORE_REPLACE``: after the temporary
file is written, before ``os.replace``), and an external SIGKILL from this process while
chunks are being written. Both hooks are test-only.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from runs import assert_same_run, cli_env, status
from wdlab.cli import app
from wdlab.config.load import load_spec
from wdlab.sweep import run_sweep

runner = CliRunner()

SPEC = """
name = "killme"
[data]
n_features = 8
n_train = 10
n_test = 6
noise = 0.1
seeds = 5
[train]
pairs = ["adam+mean", "sgd+half_sum"]
lam = "0,1e-2:10:3"
lr = [0.01, 0.05]
epochs = 25
[record]
log_points = 8
[execution]
chunk_size = {chunk}
engine = "eager"
"""
N_CHUNKS, N_CONFIGS = 10, 80  # 2 groups x 5 seeds, one seed (8 configs) per chunk


def _cmd(spec_path, out) -> list[str]:
    return [sys.executable, "-c", "from wdlab.cli import app; app(prog_name='wdlab')", "sweep",
            str(spec_path), "--out", str(out), "--no-report", "--no-csv"]


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "kill.toml"
    path.write_text(SPEC.format(chunk=8))
    return path


@pytest.fixture(scope="module")
def reference(spec_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    run_sweep(load_spec(spec_path), out, csv=False, report=False)
    return out


def _resume(out):
    res = runner.invoke(app, ["sweep", "--resume", str(out), "--no-report"])
    assert res.exit_code == 0, res.output
    assert status(out) == "complete"
    return res


def _killed(spec_path, out, **env):
    proc = subprocess.run(_cmd(spec_path, out), env=cli_env(**env), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert status(out) == "running"
    return proc


def test_kill_at_a_random_chunk_boundary(spec_path, reference, tmp_path):
    k = random.Random(4).randrange(N_CHUNKS - 1)
    out = tmp_path / "run"
    _killed(spec_path, out, WDLAB_TEST_KILL_AFTER_CHUNK=str(k))
    done = sorted(p.name for p in (out / "chunks").glob("*.configs.parquet"))
    assert done == [f"{i:05d}.configs.parquet" for i in range(k + 1)]
    _resume(out)
    assert_same_run(out, reference, N_CONFIGS)


def test_kill_mid_write_of_a_chunk(spec_path, reference, tmp_path):
    out = tmp_path / "run"
    _killed(spec_path, out, WDLAB_TEST_KILL_BEFORE_REPLACE="00003.configs")
    chunks = out / "chunks"
    assert (chunks / "00003.curves.parquet").exists()  # written; the done-marker is not
    assert not (chunks / "00003.configs.parquet").exists()
    assert list(chunks.glob(".00003.configs.parquet.*.tmp"))  # the interrupted write
    _resume(out)
    assert not (out / "chunks").exists()
    assert_same_run(out, reference, N_CONFIGS)


def test_kill_mid_write_of_the_final_table(spec_path, reference, tmp_path):
    out = tmp_path / "run"
    _killed(spec_path, out, WDLAB_TEST_KILL_BEFORE_REPLACE="/curves.parquet")
    assert not (out / "curves.parquet").exists()
    assert len(list((out / "chunks").glob("*.configs.parquet"))) == N_CHUNKS
    _resume(out)
    assert_same_run(out, reference, N_CONFIGS)


def test_external_sigkill_while_chunks_are_written(tmp_path):
    """A kill from outside at a time the process does not choose (chunks of 2 configs)."""
    spec_path = tmp_path / "small.toml"
    spec_path.write_text(SPEC.format(chunk=2))
    ref = run_sweep(load_spec(spec_path), tmp_path / "ref", csv=False, report=False)
    out = tmp_path / "run"
    proc = subprocess.Popen(_cmd(spec_path, out), env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    target = random.Random(7).randrange(2, 12)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((out / "chunks").glob("*.configs.parquet"))) >= target:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=60)
    if proc.returncode == -signal.SIGKILL:
        assert status(out) == "running"
    _resume(out)
    assert_same_run(out, ref, N_CONFIGS)


def test_resume_of_a_complete_run_is_a_no_op(reference):
    before = {p.name: p.read_bytes() for p in reference.iterdir() if p.is_file()}
    res = _resume(reference)
    assert "already complete" in res.output
    after = {p.name: p.read_bytes() for p in reference.iterdir() if p.is_file()}
    assert before == after


def test_new_run_over_an_unfinished_one_is_refused(spec_path, tmp_path):
    out = tmp_path / "run"
    _killed(spec_path, out, WDLAB_TEST_KILL_AFTER_CHUNK="0")
    res = runner.invoke(app, ["sweep", str(spec_path), "--out", str(out), "--no-report"])
    assert res.exit_code == 2 and "--resume" in res.output
    assert np.array_equal(sorted(p.name for p in (out / "chunks").iterdir()),
                          ["00000.configs.parquet", "00000.curves.parquet"])
