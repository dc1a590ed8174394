"""Chunk files of a run directory: written atomically, curves first, configs last.

A chunk is done iff both ``chunks/<index>.curves.parquet`` and ``chunks/<index>.configs.parquet``
exist; ``chunks/<index>.failed.json`` records a chunk a backend gave up on.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from wdlab.sweep.chunk import ChunkResult

CHUNK_DIR = "chunks"


def chunk_path(run_dir: Path | str, index: int, table: str) -> Path:
    """``chunks/00012.configs.parquet`` (or ``.curves.parquet``, ``.failed.json``)."""
    ext = "json" if table == "failed" else "parquet"
    return Path(run_dir) / CHUNK_DIR / f"{index:05d}.{table}.{ext}"


def chunk_done(run_dir: Path | str, index: int) -> bool:
    """A chunk is done iff both of its table files exist (configs is written last)."""
    return (chunk_path(run_dir, index, "configs").exists()
            and chunk_path(run_dir, index, "curves").exists())


def compact_curves(curves, configs):
    """Curves stored at the run's precision: float metrics as float32 when every
    configuration of the chunk trained in float32 (the values are float32 numbers, so this
    loses nothing), except a k-fold ``val_mse``, a float64 mean over folds. Ids and epochs
    stay int64 (parquet dictionary-encodes them, ``store.dictionary_columns``)."""
    import numpy as np

    if "dtype" not in configs.columns or not (configs["dtype"] == "float32").all() or not len(
            configs):
        return curves
    keep64 = {"val_mse"} if "val_mse_se" in configs.columns else set()
    cast = {c: np.float32 for c in curves.columns
            if curves[c].dtype == np.float64 and c not in keep64}
    return curves.astype(cast) if cast else curves


def write_chunk(run_dir: Path | str, result: ChunkResult) -> None:
    """Write a finished chunk atomically: curves first, then configs (the done marker)."""
    from wdlab.store import write_table

    write_table(chunk_path(run_dir, result.index, "curves"),
                compact_curves(result.curves, result.configs), csv=False)
    write_table(chunk_path(run_dir, result.index, "configs"), result.configs, csv=False)
    with contextlib.suppress(FileNotFoundError):
        chunk_path(run_dir, result.index, "failed").unlink()


def write_chunk_failure(run_dir: Path | str, index: int, error: str) -> None:
    """Mark chunk ``index`` as failed for good (a remote backend's final error)."""
    from wdlab.store import write_json

    write_json(chunk_path(run_dir, index, "failed"), {"chunk": index, "error": str(error)})


def chunk_failure(run_dir: Path | str, index: int) -> str | None:
    """The recorded error of a failed chunk, or None."""
    path = chunk_path(run_dir, index, "failed")
    if not path.exists():
        return None
    from wdlab.store import read_json

    return str(read_json(path).get("error", "failed"))


def clean_temporaries(run_dir: Path) -> None:
    """Remove the temporary files of writes a kill interrupted (they never have a real name)."""
    for folder in (run_dir, run_dir / CHUNK_DIR):
        if folder.is_dir():
            for p in folder.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    p.unlink()


def remove_chunks(path: Path) -> None:
    """Delete the chunk files of a completed run (the final tables hold their rows)."""
    chunks = path / CHUNK_DIR
    if chunks.is_dir():
        for p in chunks.iterdir():
            with contextlib.suppress(OSError):
                p.unlink()
        with contextlib.suppress(OSError):
            chunks.rmdir()
