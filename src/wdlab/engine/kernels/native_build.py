"""Build and load the CPU kernel of engine ``native`` (``engine/kernels/native.cpp``).

The kernel is compiled once per machine by the system C++ compiler and cached, like
``torch.compile``'s and Triton's caches:

    <cache>/native/wdlab_cpu_<key>.so     key = hash(source, compiler version, flags, CPU)

``<cache>`` is ``$WDLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/wdlab``, else ``~/.cache/wdlab``.
The compiler is ``$WDLAB_CXX``, else ``$CXX``, else the first of g++, c++, clang++ on PATH.
A build is written to a temporary file and moved into place with ``os.replace``, so processes
building at once (Ray workers, parallel tests) never load a half-written library.

Anything that goes wrong raises ``NativeUnavailable`` with a one-line reason; the engine
then falls back to ``compiled`` or ``eager`` with an ``EngineFallbackWarning``.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

SOURCE = Path(__file__).resolve().with_name("native.cpp")
#: Must equal ``wdlab_native_abi()`` in the source (the layout of ``Args`` below).
ABI = 2
FLAGS = ("-O3", "-fno-math-errno", "-fPIC", "-shared", "-std=c++17")
ARCH_FLAGS = ("-march=native",)  # dropped when the compiler refuses it


class NativeUnavailable(RuntimeError):
    """The native kernel cannot be built or loaded here (the message says why, in one line)."""


class Args(ctypes.Structure):
    """Mirror of ``Args<T>`` in native.cpp (pointers to T, scalars as double)."""

    _fields_ = [(name, ctypes.c_void_p) for name in (
        "theta", "m", "v", "a", "aT", "y", "w", "c", "bounds", "lam", "lr", "b1", "b2", "l2",
        "lampen", "mask", "ref", "loss0", "alive", "div", "eta", "slots", "met")] + [
        (name, ctypes.c_int64) for name in (
            "K", "M", "D1", "NA", "N", "S", "n_w", "RK", "e0", "e1", "coupled", "decoupled",
            "independent")] + [
        (name, ctypes.c_double) for name in ("eps", "c_val", "div_factor")]


class NetArgs(ctypes.Structure):
    """Mirror of ``NetArgs<T>`` in native.cpp (the MLP kernel of ``wdlab.nets.native``)."""

    _fields_ = [(name, ctypes.c_void_p) for name in (
        "theta", "m", "v", "x", "lab", "val", "wt", "xt", "labt", "valt", "perm", "widths",
        "woff", "boff", "toff", "lam", "lr", "b1", "b2", "l2", "lampen", "mask", "loss0",
        "alive", "div", "eta", "slots", "met")] + [
        (name, ctypes.c_int64) for name in (
            "K", "M", "P", "N", "NT", "D", "C", "NL", "NTENS", "B", "NB", "RK", "E", "e0", "e1",
            "act", "loss", "classify", "wt_per_config", "coupled", "decoupled",
            "independent")] + [
        (name, ctypes.c_double) for name in ("eps", "smoothing", "mse_scale", "div_factor")]


def compiler() -> str | None:
    """Path of the C++ compiler to use, or None (looked up once per environment: ``auto``
    asks on every ``train`` call, and a PATH scan costs more than a small run)."""
    return _find_compiler(os.environ.get("WDLAB_CXX"), os.environ.get("CXX"),
                          os.environ.get("PATH"))


@functools.lru_cache(maxsize=16)
def _find_compiler(wdlab_cxx: str | None, cxx: str | None, path: str | None) -> str | None:
    for name in (wdlab_cxx, cxx, "g++", "c++", "clang++"):
        found = shutil.which(name, path=path) if name else None
        if found:
            return found
    return None


def cache_dir() -> Path:
    if os.environ.get("WDLAB_CACHE_DIR"):
        root = Path(os.environ["WDLAB_CACHE_DIR"])
    elif os.environ.get("XDG_CACHE_HOME"):
        root = Path(os.environ["XDG_CACHE_HOME"]) / "wdlab"
    else:
        root = Path.home() / ".cache" / "wdlab"
    return root / "native"


def _cpu_id() -> str:
    """What -march=native depends on: the machine and its CPU model and feature flags."""
    parts = [platform.machine()]
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("model name", "flags", "Features", "CPU part")):
                    parts.append(line.strip())
                if line.strip() == "":  # the first processor's block is enough
                    break
    except OSError:
        parts.append(platform.processor())
    return "\n".join(parts)


def _version(cxx: str) -> str:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise NativeUnavailable(f"the compiler {cxx} does not run ({exc})") from None
    return out.stdout


def _compile(cxx: str, flags: tuple[str, ...], dest: Path) -> str | None:
    """Compile to a temporary file beside ``dest`` and move it into place; None or an error."""
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        out = subprocess.run([cxx, *flags, "-o", tmp, str(SOURCE)], capture_output=True,
                             text=True, timeout=300)
        if out.returncode != 0:
            lines = [ln for ln in (out.stderr or out.stdout).splitlines() if ln.strip()]
            return lines[0][:200] if lines else f"exit status {out.returncode}"
        os.replace(tmp, dest)
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def library_path() -> Path:
    """Path of the built library for this source, compiler and CPU (building it if needed)."""
    cxx = compiler()
    if cxx is None:
        raise NativeUnavailable("no C++ compiler found (set WDLAB_CXX or CXX)")
    if not SOURCE.exists():
        raise NativeUnavailable(f"kernel source missing: {SOURCE}")
    version = _version(cxx)
    src = SOURCE.read_bytes()
    errors = []
    for flags in (FLAGS + ARCH_FLAGS, FLAGS):
        key = hashlib.sha256(b"\0".join(
            [src, cxx.encode(), version.encode(), " ".join(flags).encode(),
             _cpu_id().encode()])).hexdigest()[:20]
        dest = cache_dir() / f"wdlab_cpu_{key}.so"
        if dest.exists():
            return dest
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NativeUnavailable(f"cache directory {dest.parent}: {exc.strerror}") from None
        err = _compile(cxx, flags, dest)
        if err is None:
            return dest
        errors.append(err)
    raise NativeUnavailable(f"compiling {SOURCE.name} failed: {errors[-1]}")


_lock = threading.Lock()


@functools.cache
def _load_cached() -> ctypes.CDLL | NativeUnavailable:
    try:
        lib = ctypes.CDLL(str(library_path()))
    except NativeUnavailable as exc:
        return exc
    except OSError as exc:
        return NativeUnavailable(f"loading the kernel failed: {exc}")
    lib.wdlab_native_abi.restype = ctypes.c_int64
    if lib.wdlab_native_abi() != ABI:
        return NativeUnavailable("the cached kernel has another ABI version")
    for suffix in ("f32", "f64"):
        getattr(lib, f"wdlab_native_lanes_{suffix}").restype = ctypes.c_int64
        fn = getattr(lib, f"wdlab_native_run_{suffix}")
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.POINTER(Args), ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
        fn = getattr(lib, f"wdlab_native_net_{suffix}")
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.POINTER(NetArgs), ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
    return lib


def load() -> ctypes.CDLL:
    """The loaded kernel library (built on first use; the outcome is remembered)."""
    with _lock:
        out = _load_cached()
    if isinstance(out, NativeUnavailable):
        raise out
    return out
