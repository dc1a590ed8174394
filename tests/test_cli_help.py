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
