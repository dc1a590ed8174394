"""``wdlab reproduce playground``: a tiny real run, its arrays, its page in Debian Chromium.

The page is checked in headless Chromium (Playwright, never downloaded): moving each control
(dataset, lam, optimizer, width, epoch) changes the boundary canvas's pixels; no console
errors; no network request of any kind. Skipped without /usr/bin/chromium unless CI=true.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from browser import launch_browser
from wdlab.cli import app
from wdlab.demos.playground import DATASETS, playground_config, run_playground


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return run_playground(out=tmp_path_factory.mktemp("pg") / "run", reduced=True)


def test_run_writes_page_and_real_results(run_dir):
    cfg = playground_config(reduced=True)
    summ = json.loads((run_dir / "playground.json").read_text())
    n = len(DATASETS) * len(cfg["optimizers"]) * len(cfg["widths"])
    assert len(summ["rows"]) == n
    acc = np.array([r["test_accuracy"] for r in summ["rows"]])  # (n, L)
    assert acc.shape == (n, len(cfg["lams"])) and np.all((acc >= 0) & (acc <= 1))
    assert acc.std() > 0  # different configurations really differ
    html = (run_dir / "playground.html").read_text()
    assert summ["html_bytes"] == len(html.encode())
    assert "http://" not in html and "https://" not in html
    assert (run_dir / "figures" / "playground.png").stat().st_size > 1000
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and "playground.html" in manifest["files"]


def test_bad_config_one_line():
    with pytest.raises(ValueError, match="^grid: must be in"):
        playground_config(grid=2)
    res = CliRunner().invoke(app, ["reproduce", "playground", "--epochs", "0", "--out",
                                   "/tmp/wdlab-never-written"])
    assert res.exit_code == 2 and "epochs" in res.output
    assert not Path("/tmp/wdlab-never-written").exists()


@pytest.mark.browser
def test_page_controls_redraw_offline(run_dir):
    with launch_browser() as browser:
        page = browser.new_page()
        errors, requests = [], []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url)
                if not r.url.startswith(("file:", "data:", "blob:")) else None)
        page.goto((run_dir / "playground.html").as_uri())
        page.wait_for_function("document.body.dataset.ready === '1'")

        def pixels() -> str:
            return page.evaluate("document.getElementById('boundary').toDataURL()")

        def curve() -> str:
            return page.evaluate("document.getElementById('loss').toDataURL()")

        before = pixels()
        for control, value in (("dataset", "2"), ("optimizer", "2"), ("width", "1")):
            old = pixels()
            page.select_option(f"#{control}", value)
            assert pixels() != old, control
        for control, value in (("lam", "2"), ("epoch", "0")):
            old, old_curve = pixels(), curve()
            page.eval_on_selector(f"#{control}", "(e, v) => { e.value = v; "
                                  "e.dispatchEvent(new Event('input')); }", value)
            assert pixels() != old, control
            if control == "lam":
                assert curve() != old_curve  # another configuration's loss curves
        assert pixels() != before
        assert "epoch 0:" in page.text_content("#stats")
    assert errors == []
    assert requests == []
