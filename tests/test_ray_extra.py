"""``--backend ray`` without ray installed: exit code 2, one line naming the extra, nothing
written. Ray's absence is simulated (``sys.modules['ray'] = None`` makes ``import ray`` fail),
so these tests run whether or not the extra is installed. Backend flag validation too.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from wdlab.sweep.backends import executor_for
from wdlab.sweep.driver import local_executor
from wdlab.sweep.ray_backend import INSTALL_HINT

pytestmark = pytest.mark.ray

NO_RAY = ("import sys; sys.modules['ray'] = None; "
          "from wdlab.cli import app; app(prog_name='wdlab')")
SPEC = """
name = "noray"
[data]
n_features = 4
n_train = 6
n_test = 4
seeds = 1
[train]
lam = [0.1]
epochs = 2
[execution]
backend = "ray"
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_RAY, "sweep", *args], capture_output=True,
                          text=True, timeout=120)


def _assert_one_line_hint(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"error: {INSTALL_HINT}"], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "pip install 'wdlab[ray]'" in lines[0]


@pytest.mark.parametrize("how", ["flag", "spec file"])
def test_backend_ray_without_ray_is_one_line_exit_2(tmp_path, how):
    out = tmp_path / "run"
    if how == "flag":
        proc = _run("--lam", "0.1", "--seeds", "1", "--epochs", "2", "--backend", "ray",
                    "--out", str(out))
    else:
        spec = tmp_path / "spec.toml"
        spec.write_text(SPEC)
        proc = _run(str(spec), "--out", str(out))
    _assert_one_line_hint(proc)
    assert not out.exists()  # nothing was written


def test_resume_with_backend_ray_without_ray(tmp_path):
    proc = _run("--resume", str(tmp_path), "--backend", "ray")
    _assert_one_line_hint(proc)


def test_executor_for(monkeypatch):
    assert executor_for("local") is local_executor
    with pytest.raises(ValueError, match="--backend: expected one of"):
        executor_for("spark")
    with pytest.raises(ValueError, match="--address: only with --backend ray"):
        executor_for("local", "auto")
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'wdlab\[ray\]'"):
        executor_for("ray")


def test_address_without_ray_backend_is_a_spec_error(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace('backend = "ray"', 'address = "auto"'))
    proc = _run(str(spec), "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        'error: execution.address: only with backend = "ray"']
