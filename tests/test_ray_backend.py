"""The Ray backend on a real local Ray instance: identical tables, faults survived, resume.

One instance per module (started by the ``cluster`` fixture through ``wdlab``'s own
``connect``, with the dashboard on 127.0.0.1 because the state API needs it); the CLI
subprocesses join it by address. Tables are compared bitwise with an in-process run of the
local backend.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

ray = pytest.importorskip("ray")

from runs import assert_same_run, cli_env, status  # noqa: E402
from wdlab.config.load import build_spec  # noqa: E402
from wdlab.sweep import SweepEvent, resume_sweep, run_sweep  # noqa: E402
from wdlab.sweep.ray_backend import (  # noqa: E402
    FAIL_CHUNK_ENV,
    SLOW_CHUNK_ENV,
    TASK_NAME,
    RayExecutor,
    connect,
)

pytestmark = pytest.mark.ray

RAW = {"name": "ray", "data": {"n_features": 8, "n_train": 10, "n_test": 6, "noise": 0.1,
                               "seeds": 5},
       "train": {"pairs": ["adam+mean", "sgd+half_sum"], "lam": "0,1e-2:10:3", "lr": [0.01, 0.05],
                 "epochs": 25},
       "record": {"log_points": 8}, "execution": {"chunk_size": 8, "engine": "eager"}}
N_CHUNKS, N_CONFIGS = 10, 80  # 2 groups x 5 seeds, one seed (8 configs) per chunk
SPEC_FILE = """
name = "ray"
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
chunk_size = 8
engine = "eager"
backend = "ray"
address = "{address}"
"""


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance for this module (2 CPUs, 127.0.0.1); its GCS address."""
    if ray.is_initialized():
        ray.shutdown()
    assert connect(None, num_cpus=2, include_dashboard=True)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def spec():
    return build_spec(RAW)


@pytest.fixture(scope="module")
def reference(spec, tmp_path_factory):
    return run_sweep(spec, tmp_path_factory.mktemp("local") / "run", csv=False, report=False)


# ----------------------------------------------------------------------------- security

def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _listening() -> dict[str, str]:
    """Socket inode -> local address (hex, as in /proc/net/tcp*) of every listening socket."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A":  # TCP_LISTEN
                out[f[9]] = f[1].split(":")[0]
    return out


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_local_instance_listens_on_loopback_only_with_token_auth(cluster):
    listening = _listening()
    seen = []
    for pid in _descendants(os.getpid()) | {os.getpid()}:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            inode = target[len("socket:["):-1] if target.startswith("socket:[") else None
            if inode in listening:
                seen.append((pid, listening[inode]))
    assert len(seen) >= 3, seen  # gcs_server, raylet, workers, ... were found
    assert all(addr in LOOPBACK for _, addr in seen), seen
    assert cluster.split(":")[0] == "127.0.0.1"
    assert os.environ.get("RAY_AUTH_MODE") == "token"  # Ray's default for a new instance


# ----------------------------------------------------------------------------- results

def test_ray_backend_equals_local_bitwise(cluster, spec, reference, tmp_path):
    events: list[SweepEvent] = []
    out = run_sweep(spec, tmp_path / "run", csv=False, report=False, executor=RayExecutor(),
                    on_event=events.append)
    assert_same_run(out, reference, N_CONFIGS)
    done = [e.chunks_done for e in events if e.kind == "chunk"]
    assert done == list(range(1, N_CHUNKS + 1))  # progress advances once per chunk
    assert ray.is_initialized()  # a joined connection is left as it was


def test_worker_sigkill_mid_task_is_retried(cluster, spec, reference, tmp_path, monkeypatch):
    from ray.util.state import list_tasks

    monkeypatch.setenv(SLOW_CHUNK_ENV, "3:3")  # chunk 3 sleeps 3 s before its engine call
    out = tmp_path / "run"
    errors: list[BaseException] = []

    def sweep():
        try:
            run_sweep(spec, out, csv=False, report=False, executor=RayExecutor(max_retries=2))
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the test thread
            errors.append(exc)

    thread = threading.Thread(target=sweep)
    thread.start()
    name = TASK_NAME.format(index=3)
    pid, deadline = None, time.monotonic() + 120
    while pid is None and time.monotonic() < deadline and thread.is_alive():
        running = list_tasks(filters=[("name", "=", name), ("state", "=", "RUNNING")])
        pid = next((t.worker_pid for t in running if t.worker_pid), None)
        time.sleep(0.2)
    assert pid is not None, "chunk 3 was never seen running"
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=240)
    assert not thread.is_alive() and not errors, errors
    assert status(out) == "complete"
    assert_same_run(out, reference, N_CONFIGS)
    attempts = {t.attempt_number for t in list_tasks(filters=[("name", "=", name)], detail=True)}
    assert 1 in attempts  # Ray resubmitted the killed task


def test_failed_chunk_is_marked_and_resume_retries_it(cluster, spec, reference, tmp_path,
                                                      monkeypatch):
    monkeypatch.setenv(FAIL_CHUNK_ENV, "5")
    events: list[SweepEvent] = []
    out = run_sweep(spec, tmp_path / "run", csv=False, report=False, executor=RayExecutor(),
                    on_event=events.append)
    assert status(out) == "incomplete"
    assert [e.chunk for e in events if e.kind == "failed"] == [5]
    configs = pd.read_parquet(out / "configs.parquet")
    ref = pd.read_parquet(reference / "configs.parquet")
    assert len(configs) == N_CONFIGS and configs["config_id"].is_unique
    bad = configs["chunk"] == 5
    assert (configs.loc[bad, "status"] == "failed").all() and bad.sum() == 8
    assert configs.loc[bad, "error"].str.contains("RuntimeError: chunk 5: failure injected").all()
    assert configs.loc[bad, "test_mse"].isna().all()
    good = configs.loc[~bad].drop(columns="error").reset_index(drop=True)
    pd.testing.assert_frame_equal(good, ref.loc[~bad].reset_index(drop=True), check_exact=True)
    monkeypatch.delenv(FAIL_CHUNK_ENV)
    resume_sweep(out, report=False)  # the other backend (local) retries the failed chunk
    assert status(out) == "complete"
    assert_same_run(out, reference, N_CONFIGS)


# ----------------------------------------------------------------------------- the CLI

def _cli(*args: str, **env: str) -> list[str]:
    return [sys.executable, "-c", "from wdlab.cli import app; app(prog_name='wdlab')", "sweep",
            *args]


def _env(**extra: str) -> dict[str, str]:
    env = cli_env(**extra)  # carries RAY_AUTH_MODE=token and the loopback switch
    env.pop(SLOW_CHUNK_ENV, None)
    env.pop(FAIL_CHUNK_ENV, None)
    return env


def test_driver_sigkill_then_resume_with_ray(cluster, reference, tmp_path):
    """The spec file selects the backend; the driver dies after chunk 4's files."""
    spec_path = tmp_path / "ray.toml"
    spec_path.write_text(SPEC_FILE.format(address=cluster))
    out = tmp_path / "run"
    killed = subprocess.run(_cli(str(spec_path), "--out", str(out), "--no-report", "--no-csv"),
                            env=_env(WDLAB_TEST_KILL_AFTER_CHUNK="4"), capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert status(out) == "running"
    done = sorted(p.name for p in (out / "chunks").glob("*.configs.parquet"))
    assert "00004.configs.parquet" in done and len(done) < N_CHUNKS
    resumed = subprocess.run(_cli("--resume", str(out), "--backend", "ray", "--address", cluster,
                                  "--no-report"), env=_env(), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert status(out) == "complete"
    assert_same_run(out, reference, N_CONFIGS)
