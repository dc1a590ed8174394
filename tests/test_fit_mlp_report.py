"""The report of ``wdlab fit --model mlp``: the nets report's charts on a fit's tables.

A wine classification fit (2 pairs; a hostile target column, class label and file name) and
a diabetes regression fit: the page's chart data equal the run's tables (the CV loss checked
against scikit-learn's log_loss of single-network fits on each fold), every user string is
escaped, and the page renders offline in Debian's Chromium with no console error and no
request.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from tests.test_fit_cli import _run, diabetes_csv  # noqa: F401 (fixture)

from wdlab.report.nets import _lam_label

HOSTILE = "<script>alert(1)</script>"
LABEL = "<img src=x onerror=alert(2)>"
FILE = "<b>wine.csv"
LAMS = [1e-3, 1e-2, 1.0]
ARGS = ["--model", "mlp", "--hidden", "8", "--epochs", "20", "--lr", "0.05", "--folds", "3",
        "--lam", ",".join(map(str, LAMS))]


@pytest.fixture(scope="module")
def clf_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("clf")
    wine = load_wine(as_frame=True)
    names = np.array(["class_0", LABEL, "class_2"])
    frame = wine.frame.assign(target=names[wine.target]).rename(columns={"target": HOSTILE})
    frame.to_csv(d / FILE, index=False)
    out = d / "run"
    result, text = _run(["fit", d / FILE, "--target", HOSTILE, "--out", out, *ARGS,
                         "--optimizer", "adam,sgd"])
    assert result.exit_code == 0, text
    return out


@pytest.fixture(scope="module")
def reg_run(tmp_path_factory, diabetes_csv):  # noqa: F811
    out = tmp_path_factory.mktemp("reg") / "run"
    result, text = _run(["fit", diabetes_csv, "--target", "target", "--out", out, *ARGS])
    assert result.exit_code == 0, text
    return out


def _data(run) -> tuple[str, dict]:
    html = (run / "report.html").read_text(encoding="utf-8")
    raw = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html,
                    re.S).group(1)
    return html, json.loads(raw)


def _close(shown, exact) -> bool:  # the page rounds to 5 significant digits
    return np.allclose(np.asarray(shown, float), np.asarray(exact, float), rtol=1e-4)


def _training_checks(run, data, clf: bool):
    configs = pd.read_parquet(run / "configs.parquet")
    curves = pd.read_parquet(run / "curves.parquet")
    sel = pd.read_parquet(run / "selection.parquet")
    best = sel.sort_values("best_val_accuracy" if clf else "best_val_mse",
                           ascending=not clf, kind="stable").iloc[0]
    tr = data["training"]
    assert tr["lams"] == [_lam_label(v) for v in LAMS]
    assert tr["best"] == LAMS.index(best["best_lam"])
    norms = [c for c in curves if c.startswith("norm/")]
    assert norms == ["norm/0.weight", "norm/0.bias", "norm/2.weight", "norm/2.bias"]
    mine = configs[(configs.optimizer == best.optimizer)
                   & (configs.regularizer == best.regularizer)]
    for lam, panel in zip(LAMS, tr["panels"], strict=True):
        cid = mine.loc[mine.lam == lam, "config_id"].item()
        cur = curves[curves.config_id == cid].sort_values("epoch")
        by = {t["name"]: t for t in panel}
        want = {"train loss", "test loss", *(n.removeprefix("norm/") for n in norms)}
        want |= {"train accuracy", "test accuracy"} if clf else set()
        assert set(by) == want
        for name, t in by.items():
            col = "norm/" + name if name[0].isdigit() else name.replace(" ", "_")
            assert t["x"] == cur["epoch"].tolist() and _close(t["y"], cur[col]), name
    return configs, sel


def test_classification_page_holds_the_charts_data(clf_run):
    html, data = _data(clf_run)
    configs, sel = _training_checks(clf_run, data, clf=True)
    val = data["validation"]
    assert len(sel) == 2 and val["groups"] == ["adam+mean", "sgd+mean"]
    # per group: (loss, accuracy) x (val, test) curves and a star on each val curve
    assert len(val["data"]) == 2 * (4 + 2)
    for i, row in enumerate(sel.to_dict("records")):
        part = configs[(configs.optimizer == row["optimizer"])].sort_values("lam")
        traces = {t["name"]: t for t in val["data"] if t["meta"] == i and t["yaxis"] == "y"}
        acc = {t["name"]: t for t in val["data"] if t["meta"] == i and t["yaxis"] == "y2"}
        name = val["groups"][i]
        assert _close(traces[f"{name}: val"]["y"], part["val_loss"])
        assert _close(traces[f"{name}: test"]["y"], part["test_loss"])
        assert _close(acc[f"{name}: val"]["y"], part["val_accuracy"])
        assert _close(acc[f"{name}: test"]["y"], part["test_accuracy"])
        star = acc[f"{name}: chosen λ"]
        assert star["x"] == [_lam_label(row["best_lam"])]
        assert _close(star["y"], [row["best_val_accuracy"]])
    assert data["heatmaps"] == []  # one lr: no lr x λ heatmap
    assert f'value="{data["training"]["best"]}"' in html  # the slider starts at the chosen λ
    # every user string escaped: page text, plotly labels (the chart's title), the JSON
    for raw in (HOSTILE, LABEL, FILE, "alert(1)</script>"):
        assert raw not in html, raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html  # the class label, in the data line
    assert "&lt;b&gt;wine.csv" in html
    assert val["layout"]["title"]["text"].endswith("target &lt;script&gt;alert(1)&lt;/script&gt;")
    assert 'src="data:image/png' not in html  # no static PNG embedded (figures/ keeps them)
    assert (clf_run / "figures" / "cv_curve.png").is_file()


def test_cv_loss_is_the_folds_log_loss_of_single_networks(clf_run):
    """val_loss = mean over the CV folds of scikit-learn's log_loss of the single estimator
    fitted on each fold's rows (the batched CV's fold networks are those networks)."""
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    from wdlab.estimator_nets import WeightDecayMLPClassifier
    from wdlab.fitrun import split
    from wdlab.fitrun_nets import NetFitOptions, load_for_mlp

    manifest = json.loads((clf_run / "manifest.json").read_text())
    table, task, classes = load_for_mlp(manifest["config"]["data"], HOSTILE, None,
                                        dropna=False, task="auto")
    opts = NetFitOptions(lams=LAMS, pairs=[("adam", "mean")], lr=0.05, epochs=20, folds=3,
                         hidden=(8,), task=task, classes=classes)
    X_tr, _, _, _, _, tr, _ = split(table, opts)
    y_tr = table.y[tr].astype(np.int64)
    lam = 1e-2
    losses = []
    for fold, va in StratifiedKFold(3, shuffle=True, random_state=0).split(X_tr, y_tr):
        net = WeightDecayMLPClassifier((8,), lam=lam, regularizer="mean", optimizer="adam",
                                       lr=0.05, epochs=20, schedule="cosine", random_state=0)
        net.fit(X_tr[fold], y_tr[fold])
        losses.append(log_loss(y_tr[va], net.predict_proba(X_tr[va]), labels=[0, 1, 2]))
    configs = pd.read_parquet(clf_run / "configs.parquet")
    got = configs.loc[(configs.optimizer == "adam") & (configs.lam == lam), "val_loss"].item()
    assert abs(got - np.mean(losses)) < 1e-9 * max(1.0, abs(got))


def test_regression_page_holds_the_charts_data(reg_run):
    html, data = _data(reg_run)
    configs, sel = _training_checks(reg_run, data, clf=False)
    val = data["validation"]
    assert len(val["data"]) == 3 and "xaxis2" not in val["layout"]  # no accuracy panel
    assert "xaxis2" not in data["training"]["layout"]
    by = {t["name"]: t for t in val["data"]}
    part = configs.sort_values("lam")
    assert _close(by["adam+mean: val"]["y"], part["val_mse"])
    assert _close(by["adam+mean: test"]["y"], part["test_mse"])
    assert by["adam+mean: chosen λ"]["x"] == [_lam_label(sel["best_lam"].iloc[0])]
    assert val["layout"]["yaxis"]["title"]["text"] == "MSE (target units)"


def test_heatmap_appears_when_lr_and_lam_both_vary(clf_run):
    """The fit's --lr is one value; the page's heatmap builder is the nets sweep's, so two
    lrs in the table (the same rows at a second lr) give one lr x λ heatmap per pair."""
    from wdlab.report.fit_mlp import chart_data

    configs = pd.read_parquet(clf_run / "configs.parquet")
    second = configs.assign(lr=0.5, config_id=configs.config_id + len(configs),
                            val_loss=configs.val_loss * 2)
    both = pd.concat([configs, second], ignore_index=True)
    sel = pd.read_parquet(clf_run / "selection.parquet")
    maps = chart_data(both, None, sel, True, HOSTILE)["heatmaps"]
    assert len(maps) == 2
    adam_map = next(m for m in maps if m["layout"]["title"]["text"].startswith("Adam"))
    z = np.asarray(adam_map["data"][0]["z"], float)  # (λ, lr) log10 validation loss
    adam = configs[configs.optimizer == "adam"].sort_values("lam")["val_loss"].to_numpy()
    assert np.allclose(z[:, 0], np.log10(adam), atol=1e-3)
    assert np.allclose(z[:, 1], np.log10(2 * adam), atol=1e-3)


@pytest.mark.browser
def test_pages_render_offline_in_chromium(clf_run, reg_run):
    from browser import launch_browser
    from test_report_browser import open_page

    with launch_browser() as browser:
        for run, n_plots in ((clf_run, 2), (reg_run, 2)):
            report = run / "report.html"
            page, log = open_page(browser, report)
            try:
                page.wait_for_function("() => { const t = document.getElementById("
                                       "'training-plot'); return t && t.data && t._fullLayout; }")
                page.wait_for_timeout(200)  # let any late request or error surface
                rendered = page.evaluate("Array.from(document.querySelectorAll('.js-plotly-plot'))"
                                         ".filter(p => p.querySelector('svg')).length")
                assert rendered == n_plots
                assert log["errors"] == [] and log["dialogs"] == []
                assert log["requests"] == [report.resolve().as_uri()]
                best = json.loads(page.text_content("#report-data"))["training"]["best"]
                assert page.text_content("#lam-value") == _lam_label(LAMS[best])
                page.eval_on_selector("#lam-slider", "el => { el.value = 0; "
                                      "el.dispatchEvent(new Event('input')); }")
                assert page.text_content("#lam-value") == _lam_label(LAMS[0])
                if run is clf_run:
                    assert HOSTILE in page.inner_text("body")  # shown literally, as text
            finally:
                page.close()


def test_wdlab_report_rewrites_the_same_page(clf_run, tmp_path):
    """``wdlab report RUN_DIR`` on an MLP fit writes the page the fit wrote."""
    import shutil

    from wdlab.report import write_report

    first = (clf_run / "report.html").read_bytes()
    copy = tmp_path / clf_run.name  # same name: the page's title
    shutil.copytree(clf_run, copy)
    (copy / "report.html").unlink()
    page = write_report(copy).read_bytes()
    assert page == first.replace(str(clf_run.resolve()).encode(), str(copy.resolve()).encode())
