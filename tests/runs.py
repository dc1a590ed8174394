"""Helpers for tests that run the CLI or a sweep: a run directory's status, the bitwise
comparison of two run directories, the environment of a CLI subprocess, and the one-line
error rule (exit 2, one line starting with ``error: ``, no traceback)."""

from __future__ import annotations

import json
import os

import pandas as pd
import torch

#: The tables a sweep run directory holds, each compared by ``assert_same_run``.
TABLES = ("configs", "curves", "summary", "selection")


def status(out) -> str:
    """The ``status`` of the run directory ``out`` (from its manifest)."""
    return json.loads((out / "manifest.json").read_text())["status"]


def assert_same_run(out, ref, n_configs: int) -> None:
    """Every table of run ``out`` equals ``ref``'s bitwise (same columns in the same order,
    same bytes in every numeric column); ``n_configs`` unique configurations, each with curve
    rows, and no (config_id, epoch) twice."""
    for name in TABLES:
        a = pd.read_parquet(out / f"{name}.parquet")
        b = pd.read_parquet(ref / f"{name}.parquet")
        assert list(a.columns) == list(b.columns), name
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)
        num = a.select_dtypes("number").columns
        assert a[num].to_numpy().tobytes() == b[num].to_numpy().tobytes(), name
    configs = pd.read_parquet(out / "configs.parquet")
    assert configs["config_id"].is_unique and len(configs) == n_configs
    curves = pd.read_parquet(out / "curves.parquet")
    assert not curves.duplicated(["config_id", "epoch"]).any()
    assert set(curves["config_id"]) == set(configs["config_id"])


def cli_env(**extra: str) -> dict[str, str]:
    """This process's environment for a CLI subprocess, with this process's thread count
    (so its results match an in-process run bitwise) and ``extra`` set."""
    out = dict(os.environ)
    n = str(torch.get_num_threads())
    out.update(OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, **extra)
    return out


def one_line_error(res, *needles: str, code: int = 2, what: str = "") -> str:
    """Assert a refused command (a ``click.testing.Result``) exited with ``code`` and printed
    one line starting with ``error: `` that holds every needle (no traceback, no other line,
    blank or not); returns that line. ``what`` names the case in a failure message."""
    out = res.output.strip()
    assert res.exit_code == code, (what, res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output, (what, res.output)
    assert out.startswith("error: ") and out.count("\n") == 0, (what, res.output)
    for n in needles:
        assert n in out, (what, out)
    return out
