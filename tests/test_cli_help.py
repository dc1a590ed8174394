"""The CLI is thin: ``wdlab --help`` imports neither torch nor scikit-learn."""

from __future__ import annotations

import subprocess
import sys

import wdlab


def test_help_does_not_import_heavy_modules():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom wdlab.cli import app\n"
            "r = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0, r.output\n"
            "assert 'reproduce' in r.output and 'sweep' in r.output\n"
            "print(sorted(m for m in ('torch', 'sklearn', 'pandas', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_public_api_resolves():
    for name in wdlab.__all__:
        assert getattr(wdlab, name) is not None


def test_version_short_help_and_plain_flags():
    from typer.testing import CliRunner

    from wdlab.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"wdlab {wdlab.__version__}"
    top = runner.invoke(app, ["-h"])
    assert top.exit_code == 0 and "--help" in top.output and "-h" in top.output
    sweep = runner.invoke(app, ["sweep", "-h"], env={"COLUMNS": "200"})
    assert sweep.exit_code == 0
    assert "[[SPEC]]" not in sweep.output and "[SPEC]" in sweep.output
    assert "<bool>" not in sweep.output  # flags take no value
    assert "pip install 'wdlab[ray]'" in sweep.output  # brackets not eaten as markup
    for cmd in ("fit", "reproduce", "bench", "report"):
        out = runner.invoke(app, [cmd, "-h"], env={"COLUMNS": "200"})
        assert out.exit_code == 0 and "<bool>" not in out.output, cmd


def test_did_you_mean_and_case_insensitive_names(tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from wdlab.cli import app
    from wdlab.cli.flags import flag_overrides
    from wdlab.config.load import build_spec

    runner = CliRunner()
    res = runner.invoke(app, ["reproduce", "adamw-fg2", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "did you mean 'adamw-fig2'?" in res.output
    res = runner.invoke(app, ["sweep", "--preset", "sed", "--out", str(tmp_path / "s")])
    assert res.exit_code == 2 and "did you mean 'seed'?" in res.output
    data = tmp_path / "d.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "target": [1.0, 0.0, 1.0, 2.0]}).to_csv(data, index=False)
    res = runner.invoke(app, ["fit", str(data), "--target", "targte", "--out", str(tmp_path / "f")])
    assert res.exit_code == 2 and "did you mean 'target'?" in res.output
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()
    spec = build_spec(flag_overrides(preset="seed", optimizer="AdamW", regularizer="Decoupled"))
    assert spec.train.pair_list() == [("adamw", "decoupled")]
