"""The Ray backend: each chunk of a sweep is one Ray task running the same ``run_chunk``.

    driver (this process)                         Ray task (any node, one per chunk)
    plan -> submit (spec JSON ref, index) ----->  run_chunk(spec, index): data regenerated
    ray.wait: first finished chunk   <---------   from the seeds, ONE engine call; returns
    -> ChunkResult -> the same store                the configs/curves tables as Arrow
       (chunks/<i>.*.parquet, atomic)

The executor has the interface of ``wdlab.sweep.local_executor``: it yields a
``ChunkResult`` per finished chunk (in completion order) or a ``ChunkFailure`` for a chunk
that failed for good, and the driver writes each one through the same per-chunk files, so
``--resume`` works with either backend. Only the spec (a few kB, put in the object store
once) and the chunk index travel to a task; data draws are never shipped.

Faults: a task whose worker or node dies is resubmitted by Ray up to ``max_retries`` times;
transient exceptions (``OSError``, ``MemoryError``, CUDA out-of-memory) are retried too.
A deterministic exception is not retried (it would fail the same way); the chunk is
reported failed with a one-line error and the rest of the sweep goes on.

Security: a local instance (no address) listens on 127.0.0.1 only, starts no dashboard
unless asked, and keeps Ray's token authentication at its default (enabled for a new local
instance since Ray 2.5x); nothing here disables it. Ray writes that token to
``~/.ray/auth_token`` (or ``RAY_AUTH_TOKEN_PATH``) with mode 0644, its default; when the
token file appears with a local instance this process started, it is tightened to 0600.

Hygiene: a local instance is torn down with its driver. ``ray.shutdown`` does it on a normal
exit; a watchdog process (its own session, so a kill of the driver's group spares it) kills
the instance's processes and their children (``ray::DashboardAgent``, ``RuntimeEnvAgent``,
workers) within about a second of a SIGKILLed driver. ``--address HOST:PORT`` is probed
first: an unreachable cluster fails in one line within ``CONNECT_TIMEOUT_S`` seconds instead
of Ray's own retries (90 s and more).
"""

from __future__ import annotations

import collections
import ipaddress
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from wdlab.config.schema import SweepSpec
from wdlab.sweep.chunk import ChunkResult, as_spec, run_chunk
from wdlab.sweep.executor import ChunkFailure

#: One line for a missing extra (the CLI turns the ImportError into exit code 2).
INSTALL_HINT = "--backend ray: ray is not installed; pip install 'wdlab[ray]'"
#: Ray's switch for nodes that must not be reachable from other machines: with it off, a
#: node's IP is the loopback address and every Ray server binds 127.0.0.1 only.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
#: TEST-ONLY hooks, read by the driver and passed to the task: ``"<index>:<seconds>"`` makes
#: chunk ``index`` sleep first (so a test can kill its worker mid-task); ``"<index>"`` makes
#: chunk ``index`` raise (a failure for good).
SLOW_CHUNK_ENV = "WDLAB_TEST_RAY_SLOW_CHUNK"
FAIL_CHUNK_ENV = "WDLAB_TEST_RAY_FAIL_CHUNK"
TASK_NAME = "wdlab-chunk-{index:05d}"
#: Seconds to reach the head of ``--address HOST:PORT`` before giving up (one line).
CONNECT_TIMEOUT_S = 10.0


def import_ray():
    """``import ray``, or an ImportError whose one-line message says how to install it."""
    try:
        import ray
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return ray


def _is_loopback(address: str) -> bool:
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loopback_only() -> None:
    """Make this process and the Ray processes it starts use 127.0.0.1 as the node IP."""
    os.environ[LOOPBACK_ENV] = "0"  # inherited by gcs_server, raylet and the workers
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:  # ray was imported before the variable was set
        constants.ENABLE_RAY_CLUSTER = False


def probe_address(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail in one line (naming --address) when ``HOST:PORT`` / ``ray://HOST:PORT`` cannot be
    reached by TCP within ``timeout`` seconds; ``auto`` is left to Ray."""
    import socket

    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--address: expected auto, HOST:PORT or ray://HOST:PORT, got "
                         f"{address[:60]!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ConnectionError(f"--address: cannot reach a Ray cluster at {address[:60]} within "
                              f"{timeout:g} s ({exc.strerror or type(exc).__name__}); is it "
                              "running?") from None


#: The watchdog: waits for the driver to die, then kills the instance's processes (each
#: checked by its creation time, so a reused pid is spared) and their children.
_WATCHDOG = """
import sys, time
sys.path.insert(0, sys.argv[2])  # psutil may be Ray's vendored copy
import psutil
driver = psutil.Process(int(sys.argv[1]))
known = {}
for item in sys.argv[3:]:
    pid, created = item.split("@")
    try:
        p = psutil.Process(int(pid))
        if abs(p.create_time() - float(created)) < 1e-3:
            known[p.pid] = p
    except psutil.Error:
        pass
roots = list(known.values())
while True:
    for root in roots:  # the agents are raylet's children: note them while they are
        try:
            for child in root.children(recursive=True):
                known.setdefault(child.pid, child)
        except psutil.Error:
            pass
    try:
        if driver.status() == psutil.STATUS_ZOMBIE:
            break
    except psutil.NoSuchProcess:
        break
    time.sleep(0.5)
for p in known.values():
    try:
        if p.is_running():  # same pid and creation time: never a reused pid
            p.kill()
    except psutil.Error:
        pass
"""


def _instance_processes(ray) -> list:
    """The processes of the local instance this process started (gcs, raylet, ...)."""
    node = getattr(getattr(ray, "_private", None), "worker", None)
    node = getattr(getattr(node, "_global_node", None), "all_processes", None) or {}
    return [info.process for infos in node.values() for info in infos
            if getattr(info, "process", None) is not None]


def start_watchdog(ray):
    """Start the watchdog of the local instance (see the module docstring); None if psutil
    or the instance's processes are not found."""
    import subprocess

    try:
        import psutil
    except ImportError:
        return None
    pids = []
    for proc in _instance_processes(ray):
        try:
            pids.append(f"{proc.pid}@{psutil.Process(proc.pid).create_time()}")
        except psutil.Error:
            continue
    if not pids:
        return None
    where = os.path.dirname(os.path.dirname(psutil.__file__))
    return subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), where, *pids],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _token_path():
    from pathlib import Path

    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def _tighten_token(existed: bool) -> None:
    """0600 for a token file the local instance just created (Ray writes 0644)."""
    path = _token_path()
    if existed or not path.is_file():
        return
    try:
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except OSError:
        pass


_WATCHDOGS: list = []


def connect(address: str | None = None, *, num_cpus: int | None = None,
            include_dashboard: bool = False) -> bool:
    """Connect this process to Ray; return True when this call started the connection.

    ``address=None`` starts a new local instance with ``num_cpus`` (default: all cores) on
    127.0.0.1 only, without a dashboard unless ``include_dashboard`` (then on 127.0.0.1).
    ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:PORT"`` joins an existing cluster. An
    already connected process is reused as it is (returns False).
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    import logging

    quiet = {"logging_level": logging.WARNING}
    if address is None:
        _loopback_only()
        token_existed = _token_path().exists()
        ctx = ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1,
                       include_dashboard=include_dashboard, dashboard_host="127.0.0.1",
                       _node_ip_address="127.0.0.1", **quiet)
        ip = ctx.address_info.get("node_ip_address", "")
        if not _is_loopback(f"{ip}:0"):
            ray.shutdown()
            raise RuntimeError(f"--backend ray: the local Ray instance did not bind to "
                               f"127.0.0.1 (node IP {ip}); refusing to run on it")
        _tighten_token(token_existed)
        watchdog = start_watchdog(ray)
        if watchdog is not None:
            _WATCHDOGS.append(watchdog)
        return True
    probe_address(address)
    if _is_loopback(address):
        _loopback_only()
    ray.init(address=address, **quiet)
    return True


def shutdown() -> None:
    """``ray.shutdown`` and stop the watchdogs of the instances this process started."""
    ray = import_ray()
    ray.shutdown()
    while _WATCHDOGS:
        proc = _WATCHDOGS.pop()
        proc.kill()
        proc.wait()


def _one_line(exc: BaseException) -> str:
    """``Type: message`` of a task's final error, on one line (the cause, when Ray has it)."""
    cause = getattr(exc, "cause", None)
    err = cause if isinstance(cause, BaseException) else exc
    text = " ".join(str(err).split()) or type(err).__name__
    return f"{type(err).__name__}: {text}"[:500]


def _task_spec(spec_json: str) -> SweepSpec:
    """The spec as a task sees it: ``cuda:N`` becomes ``cuda``, the GPU Ray assigned."""
    spec = as_spec(spec_json)
    device = spec.train.device
    if device.startswith("cuda:"):
        spec = spec.replace(train=spec.train.replace(device="cuda").model_dump())
    return spec


def chunk_task(spec_json: str, index: int, hooks: dict[str, Any] | None = None) -> dict:
    """The body of one Ray task: ``run_chunk`` -> the chunk's tables as Arrow tables."""
    import pyarrow as pa

    hooks = hooks or {}
    if hooks.get("sleep"):
        time.sleep(float(hooks["sleep"]))
    if hooks.get("fail"):
        raise RuntimeError(f"chunk {index}: failure injected by {FAIL_CHUNK_ENV}")
    result = run_chunk(_task_spec(spec_json), index)
    return {"index": result.index, "seconds": result.seconds,
            "configs": pa.Table.from_pandas(result.configs, preserve_index=False),
            "curves": pa.Table.from_pandas(result.curves, preserve_index=False)}


def _hooks(index: int) -> dict[str, Any]:
    """TEST-ONLY: the hooks of chunk ``index`` from the driver's environment."""
    out: dict[str, Any] = {}
    slow = os.environ.get(SLOW_CHUNK_ENV, "")
    if slow and slow.split(":")[0] == str(index):
        out["sleep"] = float(slow.split(":")[1])
    if os.environ.get(FAIL_CHUNK_ENV, "") == str(index):
        out["fail"] = True
    return out


def _retryable() -> list[type[BaseException]]:
    import torch

    return [OSError, MemoryError, torch.OutOfMemoryError]


class RayExecutor:
    """A sweep executor that runs each chunk as one Ray task (see the module docstring).

    Args:
        address: None (start a local instance on 127.0.0.1), ``"auto"``, ``"HOST:PORT"``
            or ``"ray://HOST:PORT"`` (join an existing cluster).
        num_cpus: cores of a local instance (default: all); CPUs per task is ``task_cpus``.
        task_cpus: CPUs each task asks for (Ray sets its ``OMP_NUM_THREADS`` to match).
        max_retries: resubmissions of a task whose worker or node died (bounded).
        max_in_flight: tasks submitted but not yet collected (default: 2 x the cluster's
            CPUs, or GPUs for a CUDA spec), which bounds the object store's share of results.
        include_dashboard: start Ray's dashboard with a local instance (on 127.0.0.1).

    A CUDA spec (``train.device`` = ``cuda`` or ``cuda:N``) asks for ``num_gpus=1`` per task
    and runs on the GPU Ray assigns to it.
    """

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None,
                 task_cpus: float = 1, max_retries: int = 3, max_in_flight: int | None = None,
                 include_dashboard: bool = False):
        import_ray()  # fail before anything is written when the extra is missing
        if address is not None:
            probe_address(address)  # and when the cluster cannot be reached
        if max_retries < 0:
            raise ValueError(f"max_retries: must be >= 0, got {max_retries}")
        self.address = address
        self.num_cpus = num_cpus
        self.task_cpus = task_cpus
        self.max_retries = max_retries
        self.max_in_flight = max_in_flight
        self.include_dashboard = include_dashboard

    def _remote(self, ray, spec: SweepSpec):
        gpu = spec.train.device.startswith("cuda")
        return ray.remote(num_cpus=self.task_cpus, num_gpus=1 if gpu else 0,
                          max_retries=self.max_retries,
                          retry_exceptions=_retryable())(chunk_task)

    def _cap(self, ray, spec: SweepSpec) -> int:
        if self.max_in_flight is not None:
            return max(1, self.max_in_flight)
        kind = "GPU" if spec.train.device.startswith("cuda") else "CPU"
        return max(2, 2 * int(ray.cluster_resources().get(kind, 1)))

    def __call__(self, spec: SweepSpec, indices: list[int]
                 ) -> Iterator[ChunkResult | ChunkFailure]:
        if not indices:
            return
        ray = import_ray()
        owned = connect(self.address, num_cpus=self.num_cpus,
                        include_dashboard=self.include_dashboard)
        in_flight: dict[Any, int] = {}
        try:
            if spec.train.device.startswith("cuda") and not ray.cluster_resources().get("GPU"):
                raise ValueError(f"--device {spec.train.device}: the Ray cluster has no GPUs; "
                                 f"use --device cpu or a cluster with GPU nodes")
            remote = self._remote(ray, spec)
            spec_ref = ray.put(spec.model_dump_json())  # shipped once, not per task
            pending = collections.deque(indices)
            cap = self._cap(ray, spec)
            while pending or in_flight:
                while pending and len(in_flight) < cap:
                    i = pending.popleft()
                    ref = remote.options(name=TASK_NAME.format(index=i)).remote(
                        spec_ref, i, _hooks(i))
                    in_flight[ref] = i
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in ready:
                    i = in_flight.pop(ref)
                    try:
                        out = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        yield ChunkFailure(i, _one_line(exc))
                        continue
                    yield ChunkResult(i, out["configs"].to_pandas(), out["curves"].to_pandas(),
                                      float(out["seconds"]))
        finally:
            for ref in in_flight:  # the driver stopped early: do not leave work behind
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - best effort; the task may have finished
                    pass
            if owned:
                shutdown()


__all__ = ["CONNECT_TIMEOUT_S", "FAIL_CHUNK_ENV", "INSTALL_HINT", "LOOPBACK_ENV", "SLOW_CHUNK_ENV", "TASK_NAME",
           "RayExecutor", "chunk_task", "connect", "import_ray", "probe_address", "shutdown",
           "start_watchdog"]
