"""Debian's Chromium driven by Playwright, for every browser test (never a downloaded browser).

Without /usr/bin/chromium the tests skip, except under CI=true, where they must run.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextlib.contextmanager
def launch_browser():
    """Yield a launched Playwright Chromium (Debian's), closed afterwards."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {CHROMIUM} is missing: the browser tests must run in CI")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium); CI unset, so skipped")
    sync = pytest.importorskip("playwright.sync_api")
    with sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
