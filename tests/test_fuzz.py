"""Issue 19: fuzz the spec values and the CSV cells of ``wdlab sweep`` and ``wdlab fit``.

Every outcome is a success, or exit 2 with one ``error:`` line under 300 characters: never a
traceback, never a 'bug' line, never a ``running`` run directory left behind. Values are
either small (fast runs) or extreme (negative, huge, NaN/inf, the wrong type), so an example
never trains for long. Bounded: ``WDLAB_FUZZ_EXAMPLES`` examples each (default 15),
derandomized so CI sees the same examples every time.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from wdlab.cli import app

runner = CliRunner()
EXAMPLES = int(os.environ.get("WDLAB_FUZZ_EXAMPLES", "15"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
_count = itertools.count()

BASE = {"name": "fuzz", "data": {"n_features": 3, "n_train": 6, "n_test": 4, "seeds": 1},
        "train": {"lam": [0.0, 0.1], "lr": 0.01, "epochs": 3},
        "record": {"every": 1}}

small_ints = st.integers(-3, 12)
extreme_ints = st.sampled_from([-1, 0, 2**31, 2**63 - 1, 2**63, 2**64 - 1, 10**30, 10**12])
small_floats = st.floats(-5, 5, allow_nan=False)
extreme_floats = st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -1e308,
                                  5e-324, 1e16, 1e23])
texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12) | \
    st.sampled_from(["1e-3:1e2:100000000", "0:1:3:lin", "full", "data", "\x1b[31m", "x" * 500])
scalars = small_ints | extreme_ints | small_floats | extreme_floats | texts | st.booleans() | \
    st.none()
values = scalars | st.lists(scalars, max_size=4) | st.dictionaries(st.sampled_from(
    ["start", "stop", "num", "scale", "x"]), scalars, max_size=3)

KEYS = [("data", "n_features"), ("data", "n_train"), ("data", "n_test"), ("data", "seeds"),
        ("data", "w_star"), ("data", "bias"), ("data", "noise"), ("train", "lam"),
        ("train", "lr"), ("train", "epochs"), ("train", "init_seed"), ("train", "init_scale"),
        ("train", "momentum"), ("train", "batch_size"), ("train", "optimizer"),
        ("train", "pairs"), ("record", "every"), ("record", "log_points"),
        ("validation", "method"), ("validation", "folds"), ("execution", "chunk_size"),
        (None, "name"), (None, "preset")]


def _check_outcome(res, out: Path) -> None:
    assert "Traceback" not in res.output, res.output
    assert res.exit_code in (0, 2), (res.exit_code, res.output, res.exception)
    if res.exit_code == 2:
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("error:")]
        assert len(errors) == 1 and lines[-1] == errors[0], res.output
        assert len(errors[0]) < 300 and "internal error" not in errors[0], errors[0]
    if out.exists() and (out / "manifest.json").exists():
        status = json.loads((out / "manifest.json").read_text())["status"]
        assert status == "complete" or res.exit_code == 0, status


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(KEYS), values), min_size=1, max_size=3))
def test_fuzz_spec_values(tmp_path, changes):
    spec = json.loads(json.dumps(BASE))
    for (section, key), value in changes:
        (spec if section is None else spec.setdefault(section, {}))[key] = value
    if spec["train"].get("pairs") is not None:
        spec["train"].pop("optimizer", None)
    n = next(_count)
    path = tmp_path / f"spec{n}.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True))
    out = tmp_path / f"run{n}"
    res = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--no-report", "--no-csv"])
    _check_outcome(res, out)
    if res.exit_code == 2:
        assert not out.exists(), "a refused sweep left a run directory"


cells = st.sampled_from(["", "nan", "inf", "-inf", "1e308", "-1e308", "1e151", "abc", "True",
                         "\x1b[31m", "9" * 400, " ", "0x1p3", "1_000", "2.5"]) | \
    st.floats(allow_nan=True, allow_infinity=True).map(repr)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 11), st.integers(0, 3), cells), min_size=1,
                max_size=4), st.booleans())
def test_fuzz_csv_cells(tmp_path, edits, dropna):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(12, 3)), columns=["a", "b", "c"]).astype(object)
    df["y"] = rng.normal(size=12)
    df = df.astype(object)
    for row, col, cell in edits:
        df.iat[row, col] = cell
    n = next(_count)
    path = tmp_path / f"d{n}.csv"
    df.to_csv(path, index=False)
    out = tmp_path / f"fit{n}"
    argv = ["fit", str(path), "--target", "y", "--lam", "0.1,1", "--epochs", "5", "--folds",
            "2", "--no-report", "--out", str(out), *(["--dropna"] if dropna else [])]
    res = runner.invoke(app, argv)
    _check_outcome(res, out)
    if res.exit_code == 2:
        assert not out.exists(), "a refused fit left a run directory"
