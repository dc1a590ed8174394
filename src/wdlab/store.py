"""Run directories: manifest, parquet + csv tables, atomic writes.

Layout of a run directory::

    manifest.json        full config, seeds, versions, device, git revision, status
    configs.parquet/csv  one row per configuration: hyperparameters + final metrics
    curves.parquet/csv   long form: config_id, epoch, metrics
    figures/*.png|svg    static figures
    report.html          self-contained interactive report

Every file is written to a temporary name in the same folder and moved into place with
``os.replace``, so a reader (or a resumed run) never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import functools
import json
import os
import platform
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

MANIFEST = "manifest.json"
#: The run directory's lock file (hidden: never listed in a manifest, never removed).
LOCK = ".wdlab.lock"
#: Manifest statuses. ``reporting``: the tables are final, report.html is not written yet.
STATUSES = ("running", "incomplete", "reporting", "complete")

#: TEST-ONLY hook: when this environment variable is set to a substring of a target path, the
#: process SIGKILLs itself after writing that file's temporary twin and before ``os.replace``,
#: to test that a kill mid-write never leaves a partial file under the real name. Never set it
#: outside tests.
KILL_BEFORE_REPLACE_ENV = "WDLAB_TEST_KILL_BEFORE_REPLACE"


def _test_kill_point(path: Path) -> None:
    needle = os.environ.get(KILL_BEFORE_REPLACE_ENV)
    if needle and needle in str(path):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _umask() -> int:
    """This process's umask, read without changing it where Linux allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore (the only portable way to read it)
    os.umask(mask)
    return mask


def plain_mode(path: Path) -> int:
    """The mode ``open(path, "w")`` would leave: an existing file keeps its mode, a new one
    gets 0o666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def temp_twin(path: Path) -> Path:
    """An empty temporary file next to ``path`` with the mode ``path`` will get.

    ``mkstemp`` creates 0600 files; without the chmod every file wdlab writes would stay 0600
    whatever the umask, and a report could not be shared from a group directory.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, plain_mode(path))
    finally:
        os.close(fd)
    return Path(tmp)


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_twin(path)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        _test_kill_point(path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_bytes(path: Path | str, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``."""
    return _atomic(Path(path), lambda p: p.write_bytes(data))


def write_text(path: Path | str, text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path | str, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (NaN is written as null)."""
    return write_text(path, json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n")


def read_json(path: Path | str) -> Any:
    """Parsed JSON; a malformed file raises a one-line ValueError naming it."""
    with open(path, encoding="utf-8") as fh:
        try:
            return json.load(fh)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            why = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
            where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise ValueError(f"{path}: invalid JSON{where}: {why}") from None


def read_manifest(path: Path | str, *, status: bool = True) -> dict[str, Any]:
    """The manifest of run directory ``path``: a JSON object with a known ``status``.

    Raises a one-line ValueError naming the file when it is not one (a list, a bad status;
    the status is not checked with ``status=False``).
    """
    file = Path(path) / MANIFEST
    manifest = read_json(file)
    if not isinstance(manifest, dict):
        raise ValueError(f"{file}: expected a JSON object, got a JSON {type(manifest).__name__}")
    if status and manifest.get("status") not in STATUSES:
        shown = repr(manifest.get("status"))[:40]
        raise ValueError(f"{file}: status must be one of {STATUSES}, got {shown}")
    return manifest


def mark_status(path: Path | str, status: str) -> None:
    """Set a finished run's manifest status: ``reporting`` before report.html is written,
    ``complete`` after it (a run whose status is running or incomplete is left alone)."""
    if status not in STATUSES:
        raise ValueError(f"status: expected one of {STATUSES}, got {status!r}")
    file = Path(path) / MANIFEST
    if not file.is_file():
        return
    manifest = read_manifest(path, status=False)
    if manifest.get("status") in ("complete", "reporting") and manifest["status"] != status:
        manifest["status"] = status
        write_json(file, manifest)


class RunInUseError(OSError):
    """Another process holds the run directory's lock."""


#: Locks this process holds: resolved path -> [open lock file, depth]. Re-entrant, because
#: flock locks belong to an open file: a second open in the same process would block itself.
_HELD: dict[str, list] = {}


@contextlib.contextmanager
def run_lock(path: Path | str):
    """Hold the exclusive lock of run directory ``path`` (created if missing).

    A second process gets ``RunInUseError`` at once (one line: the run is in use), never a
    wait: two processes must not write the same run's files.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield path
        finally:
            _HELD[key][1] -= 1
        return
    fh = open(path / LOCK, "a")  # noqa: SIM115 - held for the whole block
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise RunInUseError(f"{path}: the run is in use by another wdlab process (it holds "
                            f"{LOCK}); wait for it to finish") from None
    _HELD[key] = [fh, 1]
    try:
        yield path
    finally:
        if _HELD[key][1] == 1:
            del _HELD[key]
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()
        else:
            _HELD[key][1] -= 1


def check_writable(path: Path | str, field: str = "--out") -> None:
    """Fail early (one line naming ``field``) when ``path``'s nearest existing folder is
    not writable, so a read-only --out is found before any training."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    if p.exists() and not p.is_dir():
        raise NotADirectoryError(f"{field}: {p} is a file, not a directory")
    if not os.access(p, os.W_OK | os.X_OK):
        raise PermissionError(f"{field}: {p} is not writable")


def dictionary_columns(schema) -> list[str]:
    """Columns worth parquet dictionary encoding: everything but floating point.

    Float metrics are almost all distinct, so pyarrow's default (try a dictionary, give up
    when it overflows) wastes time: a 1e6-row curves table wrote in 0.26 s with it and 0.07 s
    without, and came out smaller (labels, ids and epochs keep their dictionaries).
    """
    import pyarrow as pa

    return [f.name for f in schema if not pa.types.is_floating(f.type)]


def _to_parquet(df: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path, use_dictionary=dictionary_columns(table.schema))


def write_table(path: Path | str, df: pd.DataFrame, *, csv: bool = True) -> Path:
    """Atomically write ``df`` to ``path`` (.parquet) and, with ``csv``, its .csv twin."""
    path = Path(path).with_suffix(".parquet")
    _atomic(path, lambda p: _to_parquet(df, p))
    if csv:
        _atomic(path.with_suffix(".csv"), lambda p: df.to_csv(p, index=False))
    return path


def write_table_stream(path: Path | str, parts: Iterable[Any], *, csv: bool = True) -> Path:
    """Atomically write a table given as parts (pyarrow Tables or DataFrames, same columns).

    Memory stays bounded by one part: each part becomes one parquet row group (and is
    appended to the .csv twin, formatted like ``write_table``). Both files are written to
    temporary names and moved into place at the end; an empty ``parts`` is an error.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path).with_suffix(".parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    targets = [path] + ([path.with_suffix(".csv")] if csv else [])
    tmps = [temp_twin(target) for target in targets]
    writer = None
    try:
        with contextlib.ExitStack() as stack:
            fh = stack.enter_context(open(tmps[1], "w", encoding="utf-8", newline="")) if csv else None
            for part in parts:
                table = part if isinstance(part, pa.Table) else pa.Table.from_pandas(
                    part, preserve_index=False)
                if writer is None:
                    schema = table.schema
                    writer = stack.enter_context(pq.ParquetWriter(
                        tmps[0], schema, use_dictionary=dictionary_columns(schema)))
                table = table.select(schema.names).cast(schema)
                writer.write_table(table)
                if fh is not None:
                    frame = table.to_pandas()
                    frame.to_csv(fh, index=False, header=fh.tell() == 0)
            if writer is None:
                raise ValueError(f"{path.name}: no parts to write")
        for tmp, target in zip(tmps, targets, strict=True):
            with open(tmp, "rb") as fb:
                os.fsync(fb.fileno())
            _test_kill_point(target)
            os.replace(tmp, target)
    except BaseException:
        for tmp in tmps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    return path


def read_table(path: Path | str) -> pd.DataFrame:
    return pd.read_parquet(Path(path).with_suffix(".parquet"))


#: Resolution of the static figures written by ``save_figure``.
FIGURE_DPI = 130


def save_figure(fig, path: Path | str, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Atomically save a matplotlib figure under ``path`` with each suffix in ``formats``.

    A figure with a layout engine (every ``wdlab.plots`` figure is constrained) whose drawn
    content stays inside it is laid out and drawn once, on an Agg canvas at ``FIGURE_DPI``:
    its PNG is that canvas's pixels, the bytes ``savefig(dpi=FIGURE_DPI)`` writes, without
    savefig's dry-run draw and tight-bounding-box pass (about a third of a sweep's figure
    time); other formats are saved in the same layout. A figure whose content leaves its
    bounds, or that has no layout engine, is saved with ``bbox_inches="tight"`` as before,
    so nothing is cut off.
    """
    pixels = _drawn_inside(fig) if fig.get_layout_engine() is not None else None
    out = []
    for ext in formats:
        target = Path(path).with_suffix(f".{ext}")
        if pixels is not None and ext == "png":
            write = functools.partial(_write_png, pixels=pixels)
        else:
            tight = {} if pixels is not None else {"bbox_inches": "tight"}
            write = functools.partial(fig.savefig, format=ext, dpi=FIGURE_DPI, **tight)
        out.append(_atomic(target, write))
    return out


def _drawn_inside(fig):
    """(H, W, 4) uint8 RGBA of ``fig`` drawn once on an Agg canvas at ``FIGURE_DPI`` (its
    layout engine runs in that draw), or None when the drawn content leaves the figure (or
    the figure lives on another backend's canvas)."""
    import numpy as np
    from matplotlib.backend_bases import FigureCanvasBase
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if type(fig.canvas) is FigureCanvasBase:  # a bare Figure(), as wdlab.plots makes
        canvas = FigureCanvasAgg(fig)
    elif isinstance(fig.canvas, FigureCanvasAgg):  # pyplot's Agg figures
        canvas = fig.canvas
    else:
        return None
    dpi = fig.dpi
    fig.set_dpi(FIGURE_DPI)
    try:
        canvas.draw()
        box = fig.get_tightbbox(canvas.get_renderer())  # inches
        width, height = fig.get_size_inches()
        tol = 0.5 / FIGURE_DPI  # half a pixel
        if box.x0 < -tol or box.y0 < -tol or box.x1 > width + tol or box.y1 > height + tol:
            return None
        return np.array(canvas.buffer_rgba())  # (H, W, 4), a copy
    finally:
        fig.set_dpi(dpi)


def _write_png(path: Path, *, pixels) -> None:
    import matplotlib.image

    matplotlib.image.imsave(path, pixels, format="png", dpi=FIGURE_DPI, origin="upper")


def save_png(fig, path: Path | str, dpi: int = 100) -> bytes:
    """Render ``fig`` as PNG, write it atomically to ``path`` (its folder made if needed) and
    return the bytes (for pages that embed the image)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, buf.getvalue())
    return buf.getvalue()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and obj != obj:
        return None
    if hasattr(obj, "item") and callable(obj.item):
        return _jsonable(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def utc_stamp() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def default_run_dir(prefix: str, base: Path | str = "runs") -> Path:
    """``runs/<prefix>-<UTC timestamp>``, made unique with a suffix if it exists."""
    root = Path(base) / f"{prefix}-{utc_stamp()}"
    path, i = root, 1
    while path.exists():
        path, i = Path(f"{root}-{i}"), i + 1
    return path


def git_revision() -> str | None:
    """The git revision of the wdlab source tree, with ``-dirty`` when modified; None if none."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_name(device: str) -> str:
    """A readable name for ``device``: the GPU model, or the CPU model and core count."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"{cpu_model()} ({os.cpu_count()} cores)"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s, as ``lscpu`` prints it), else platform's."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def provenance(device: str = "cpu") -> dict[str, Any]:
    """Versions, device, git revision, command line and time: enough to rerun a result."""
    import numpy
    import torch

    import wdlab

    return {
        "wdlab": wdlab.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pandas": pd.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "device_name": device_name(device),
        "torch_threads": torch.get_num_threads(),
        "git_revision": git_revision(),
        "argv": list(sys.argv),
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def check_owner(path: Path | str, force: bool, field: str = "--out") -> None:
    """The ownership rule: a command writes into ``path`` only when it holds no run, or with
    ``force``. A completed run and an unfinished one (a sweep that can still be resumed) are
    refused alike; so is a non-empty folder that holds no run."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{field}: {path} is a file, not a run directory")
    if not (path / MANIFEST).exists():
        if force or not path.is_dir():
            return
        others = [p.name for p in path.iterdir() if p.name != LOCK]
        if others:
            raise FileExistsError(f"{field}: {path} is not empty and holds no wdlab run; "
                                  "choose a new directory or pass --force")
        return
    if force:
        return
    manifest = read_manifest(path)
    status, kind = manifest.get("status"), manifest.get("kind")
    if status == "complete":
        raise FileExistsError(f"{field}: {path} already holds a completed run; pass --force "
                              "to overwrite")
    hint = f"wdlab sweep --resume {path} continues it, " if kind == "sweep" else ""
    raise FileExistsError(f"{field}: {path} holds an unfinished {kind or 'wdlab'} run (status "
                          f"{status!r}); {hint}pass --force to overwrite")


class RunDir:
    """A run directory. Creating it never clobbers a run (complete or not) unless ``force``;
    ``create`` takes the directory's lock for the life of this object."""

    def __init__(self, path: Path | str, *, force: bool = False, csv: bool = True):
        self.path = Path(path)
        self.csv = csv
        self.force = force
        self._lock = None
        check_owner(self.path, force)
        check_writable(self.path)
        if self.path.is_dir():  # another process writing it: say so now, not after training
            with run_lock(self.path):
                pass

    def create(self) -> RunDir:
        if self._lock is None:
            lock = run_lock(self.path)
            lock.__enter__()  # released when this object is collected or the process ends
            self._lock = lock
            check_owner(self.path, self.force)  # again, under the lock
        (self.path / "figures").mkdir(parents=True, exist_ok=True)
        return self

    def release(self) -> None:
        """Release the lock ``create`` took."""
        if self._lock is not None:
            lock, self._lock = self._lock, None
            lock.__exit__(None, None, None)

    def __del__(self):
        with contextlib.suppress(Exception):
            self.release()

    def file(self, name: str) -> Path:
        return self.path / name

    def table(self, name: str, df: pd.DataFrame) -> Path:
        return write_table(self.path / name, df, csv=self.csv)

    def manifest(self, content: dict[str, Any]) -> Path:
        return write_json(self.path / MANIFEST, content)

    def figure(self, name: str, fig, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
        return save_figure(fig, self.path / "figures" / name, formats)
