"""The report in real headless Chromium (Debian's, driven by Playwright; never downloaded).

Skipped with a reason when /usr/bin/chromium is absent and CI is unset; fails under CI=true.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from browser import launch_browser
from wdlab.config import DataConfig, ExperimentConfig, TrainConfig
from wdlab.config.presets import experiment
from wdlab.experiment import run_experiment
from wdlab.pipeline import reproduce_experiment
from wdlab.report import write_report
from wdlab.store import RunDir, provenance

SEED = experiment("seed")

pytestmark = pytest.mark.browser

PAYLOAD = "<img src=x onerror=alert(1)>"
GROUPS = [("sgd", "weight_decay"), ("adamw", "decoupled")]
LAMS = (0.0, 0.01, 0.1, 1.0)


@pytest.fixture(scope="module")
def browser():
    with launch_browser() as b:
        yield b


def small_sweep(out: Path, name: str = "small-sweep") -> Path:
    """A small sweep's run directory: 2 groups x 2 lr x 4 lam x 2 seeds, real training."""
    configs, curves, ridges = [], [], []
    for opt, reg in GROUPS:
        for lr in (0.02, 0.1):
            for seed in (0, 1):
                cfg = ExperimentConfig(
                    name=name, data=DataConfig(n_features=12, n_train=16, n_test=40, w_star=0.5,
                                               noise=0.5, seed=seed),
                    train=TrainConfig(optimizer=opt, regularizer=reg, lr=lr, epochs=30),
                    lams=LAMS, init_seed=seed)
                res = run_experiment(cfg)
                offset = sum(len(c) for c in configs)
                res.configs["config_id"] += offset
                res.curves["config_id"] += offset
                configs.append(res.configs)
                curves.append(res.curves)
                if res.ridge is not None:  # coupled groups: the closed form, as runs write it
                    ridges.append(res.ridge)
    configs, curves = pd.concat(configs, ignore_index=True), pd.concat(curves, ignore_index=True)
    ok = configs[configs.status == "ok"]
    sel = []
    for (opt, reg), part in ok.groupby(["optimizer", "regularizer"]):
        mean = part[part.lr == 0.02].groupby("lam").test_mse.mean()
        sel.append({"optimizer": opt, "regularizer": reg, "best_lam": mean.idxmin(),
                    "best_val_mse": mean.min(), "best_test_mse": mean.min(),
                    "lam_1se": mean.index.max(), "val_mse_1se": mean.iloc[-1],
                    "test_mse_1se": mean.iloc[-1]})
    run = RunDir(out).create()
    run.table("configs", configs)
    run.table("curves", curves)
    run.table("selection", pd.DataFrame(sel))
    if ridges:  # ridge.parquet as a sweep writes it: the closed form averaged over the draws
        keys = ["loss", "regularizer", "n_train", "noise", "lam", "in_grid"]
        run.table("ridge", pd.concat(ridges).groupby(keys, as_index=False)[
            ["ridge_val_mse", "ridge_test_mse"]].mean())
    run.manifest({"kind": "sweep", "status": "complete", "provenance": provenance(),
                  "spec": {"name": name, "data": {"n_features": 12, "w_star": 0.5, "bias": 0.5}}})
    return out


@pytest.fixture(scope="module")
def sweep_report(tmp_path_factory):
    out = small_sweep(tmp_path_factory.mktemp("runs") / "sweep")
    return out, write_report(out)


def open_page(browser, path: Path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    log = {"errors": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: m.type == "error" and log["errors"].append(m.text))
    page.on("pageerror", lambda e: log["errors"].append(str(e)))
    page.on("request", lambda r: log["requests"].append(r.url))
    page.on("dialog", lambda d: (log["dialogs"].append(d.message), d.dismiss()))
    page.goto(path.resolve().as_uri())
    page.wait_for_function("() => { const v = document.getElementById('validation-plot');"
                           " return v && v.data && v._fullLayout; }")
    return page, log


def test_report_loads_offline_and_charts_render(browser, sweep_report, tmp_path):
    out, report = sweep_report
    page, log = open_page(browser, report)
    try:
        page.wait_for_timeout(300)  # let any late request or error surface
        assert log["errors"] == []
        assert log["requests"] == [report.resolve().as_uri()]
        # validation curve: per group test + test at lam=0 + best + 1-SE; ridge (coupled
        # weight_decay only) and theory (the same) overlays
        names = page.evaluate("document.getElementById('validation-plot').data.map(t => t.name)")
        assert len(names) == len(GROUPS) * 4 + 2, names
        assert sum(n.startswith("closed-form ridge") for n in names) == 1
        assert sum(n.startswith("theory") for n in names) == 1
        assert page.evaluate("document.querySelectorAll('.heat .main-svg').length") > 0
        n_heat = page.evaluate("document.querySelectorAll('.heat > div').length")
        assert n_heat == len(GROUPS)
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    finally:
        page.close()


def test_lam_slider_switches_training_panel(browser, sweep_report, tmp_path):
    out, report = sweep_report
    lams = sorted(pd.read_parquet(out / "configs.parquet").lam.unique())
    page, log = open_page(browser, report)
    try:
        get = "document.getElementById('training-plot').data.map(t => t.y)"
        shown = lambda: float(page.text_content("#lam-value"))  # noqa: E731
        assert shown() == lams[-1]  # the slider starts at the largest lam
        before = page.evaluate(get)
        seen = {}
        for i in range(len(lams)):
            page.eval_on_selector("#lam-slider", "(el, i) => { el.value = i; "
                                  "el.dispatchEvent(new Event('input')); }", i)
            assert shown() == lams[i]  # exactly the value in configs.parquet
            seen[i] = page.evaluate(get)
        assert seen[0] != before and seen[0] != seen[1]
        assert seen[len(lams) - 1] == before
        page.screenshot(path=str(tmp_path / "slider.png"))
        assert log["errors"] == []
    finally:
        page.close()


def test_results_table_sorts(browser, sweep_report):
    out, report = sweep_report
    page, _ = open_page(browser, report)
    try:
        col = page.evaluate("Array.from(document.querySelectorAll('#results th'))"
                            ".findIndex(th => th.textContent === 'lam')")
        values = (f"Array.from(document.querySelectorAll('#results tbody tr'))"
                  f".map(r => Number(r.cells[{col}].getAttribute('data-v')))")
        page.click(f"#results th:nth-child({col + 1})")
        asc = page.evaluate(values)
        assert asc == sorted(asc) and asc[0] < asc[-1]
        page.click(f"#results th:nth-child({col + 1})")
        assert page.evaluate(values) == sorted(asc, reverse=True)
    finally:
        page.close()


def test_hostile_names_are_shown_literally(browser, tmp_path):
    """A run named PAYLOAD, a column named PAYLOAD and a label column holding it."""
    cfg = SEED.replace(name=PAYLOAD, train={**SEED.train.model_dump(), "epochs": 5})
    out = reproduce_experiment(cfg, out=tmp_path / "evil", report=False)
    configs = pd.read_parquet(out / "configs.parquet")
    configs["label"] = [PAYLOAD + "</script><script>alert(2)</script>", "plain"]  # varies:
    configs[PAYLOAD] = [1.0, 2.0]  # a column of the table, not of the shared-settings line
    configs.to_parquet(out / "configs.parquet", index=False)
    report = write_report(out)
    text = report.read_text()
    assert "<img src=x" not in text and "</script><script>alert(2)" not in text
    page, log = open_page(browser, report)
    try:
        # the only images are the run's own figures, as data: URIs
        assert page.evaluate("document.querySelectorAll('img:not([src^=\"data:image/png;"
                             "base64,\"])').length") == 0
        assert page.evaluate("document.querySelectorAll('img[onerror]').length") == 0
        assert page.evaluate("document.querySelectorAll('body script').length") == 3
        assert log["dialogs"] == [] and log["errors"] == []
        body = page.inner_text("body")
        assert PAYLOAD in body  # shown literally: title, config, label cells
        assert page.title() == f"wdlab report: {PAYLOAD}"
        headers = page.evaluate("Array.from(document.querySelectorAll('th')).map(t => t.textContent)")
        assert "label" in headers and PAYLOAD in headers  # a column named PAYLOAD, as text
        data = json.loads(page.text_content("#report-data"))
        assert isinstance(data, dict)
    finally:
        page.close()
    assert np.isfinite(configs["test_mse"]).all()
