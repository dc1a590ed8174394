"""Issue 19 item 10: Ray hygiene. An unreachable --address fails in one line within a stated
timeout; a local instance dies with its driver, even a SIGKILLed one; the token is 0600."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from wdlab.cli import app  # noqa: E402
from wdlab.sweep.ray_backend import CONNECT_TIMEOUT_S, probe_address  # noqa: E402

pytestmark = pytest.mark.ray
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_unreachable_address_is_one_line_and_nothing_written(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["sweep", str(EXAMPLES / "tiny.toml"), "--backend", "ray",
                                   "--address", "127.0.0.1:1", "--out", str(out), "--no-report"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert lines == [f"error: --address: cannot reach a Ray cluster at 127.0.0.1:1 within "
                     f"{CONNECT_TIMEOUT_S:g} s (Connection refused); is it running?"]
    assert not out.exists()
    with pytest.raises(ValueError, match="--address: expected auto, HOST:PORT"):
        probe_address("no-port-here")


DRIVER = """
import os, sys, time
from wdlab.sweep.ray_backend import connect
connect(None, num_cpus=1)
import psutil  # after ray: Ray's vendored copy
time.sleep(3)  # let raylet start its agents
kids = psutil.Process().children(recursive=True)
print(" ".join(f"{p.pid}@{p.create_time()}" for p in kids), flush=True)
time.sleep(600)
"""


def test_a_local_instance_dies_with_its_sigkilled_driver(tmp_path):
    token = tmp_path / ".ray" / "auth_token"  # Ray's default place, under a fresh HOME
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH_TOKEN")}
    env["HOME"] = str(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path)
    try:
        line = proc.stdout.readline().split()
        assert line, "the driver printed no Ray processes"
        kids = []
        for item in line:
            pid, created = item.split("@")
            try:
                p = psutil.Process(int(pid))
                if abs(p.create_time() - float(created)) < 1e-3:
                    kids.append(p)
            except psutil.NoSuchProcess:
                pass
        names = " ".join(" ".join(p.cmdline()) for p in kids if p.is_running())
        assert "raylet" in names and "gcs_server" in names
        if token.exists():  # token mode on: the file this instance created is 0600
            assert token.stat().st_mode & 0o777 == 0o600
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 60  # a bound on the wait, not a timing assertion
    alive = kids
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.5)
    assert not alive, [" ".join(p.cmdline())[:80] for p in alive]
