"""Nets sweeps (``model.family = "mlp"``): spec validation, oracles, resume, Ray, report.

Oracles: every trained configuration of a chunk against ``torch.optim`` training a plain
``nn.Module`` one configuration at a time (tests/nets_reference.py), float64 to 1e-9 and
float32 held to float64 with the bound set by torch.optim's own float32 error; validation
metrics against ``F.cross_entropy`` on the held-out rows; k-fold's mean over folds and refit
recomputed fold by fold. Resume: SIGKILL at 3 points, then ``--resume`` equals the
uninterrupted run bitwise. Ray equals local bitwise. The report opens offline in Chromium.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from browser import launch_browser
from nets_reference import torch_run
from oracle import assert_f32_close
from runs import assert_same_run, cli_env, one_line_error, status
from wdlab.cli import app
from wdlab.config import ConfigError
from wdlab.config.load import build_spec, load_spec, spec_from_json
from wdlab.nets import MLP
from wdlab.nets.datasets import load
from wdlab.sweep import make_plan, resolve_spec, run_chunk, run_sweep
from wdlab.sweep.draws import fold_ids

runner = CliRunner()
XOR = {"dataset": "xor", "n_train": 30, "n_test": 12, "noise": 0.2}


def raw_spec(**over) -> dict:
    raw = {"name": "nets", "model": {"family": "mlp", "hidden": [5]}, "data": dict(XOR),
           "train": {"pairs": ["adamw+decoupled", "sgd+weight_decay"], "lam": [0.0, 0.05],
                     "lr": [0.02, 0.1], "epochs": 12, "dtype": "float64"},
           "record": {"every": 1}, "execution": {"chunk_size": 64}}
    for k, v in over.items():
        new_data = k == "data" and "dataset" in v  # another dataset: not merged with xor's
        raw[k] = {**raw.get(k, {}), **v} if isinstance(v, dict) and not new_data else v
    return raw


# ----------------------------------------------------------------------------- the spec


def test_defaults_round_trip_and_linear_untouched():
    spec = build_spec(raw_spec(model={"hidden": "4,3", "activation": ["relu", "tanh"]}))
    assert spec.model.hidden == ((4, 3),) and spec.model.activation == ("relu", "tanh")
    assert spec.validation.method == "split"  # holdout needs fresh samples: nets default
    assert spec.dataset.name == "xor" and spec.dataset.params == {"n_train": 30, "n_test": 12,
                                                                  "noise": 0.2}
    assert spec_from_json(spec.model_dump(mode="json")) == spec
    axis = build_spec(raw_spec(model={"hidden": [[4], "4,4", []]}))
    assert axis.model.hidden == ((4,), (4, 4), ())
    linear = build_spec({"train": {"lam": [0, 1]}})
    assert linear.model.family == "linear" and linear.dataset is None
    assert linear.validation.method == "holdout"


@pytest.mark.parametrize("over, key", [
    ({"model": {"activation": "sigmoid"}}, "model.activation.0"),
    ({"model": {"hidden": "4,x"}}, "model.hidden"),
    ({"model": {"decay": "biases"}}, "model.decay.0"),
    ({"model": {"loss": "hinge"}}, "model.loss.0"),
    ({"model": {"bogus": 1}}, "model.bogus"),
    ({"model": {"warmup": 3}}, "model.warmup"),
    ({"data": {"bogus": 1}}, "data.bogus"),
    ({"data": {"noise": -1.0}}, "data.noise"),
    ({"data": {"dataset": "nope"}}, "data.dataset"),
    ({"validation": {"method": "holdout"}}, "validation.method"),
    ({"validation": {"method": "kfold", "folds": 31}}, "validation.folds"),
    ({"train": {"fit_intercept": False}}, "train.fit_intercept"),
    ({"record": {"dist_to_ridge": True}}, "record.dist_to_ridge"),
    ({"selection": {"metric": "auc"}}, "selection.metric"),
    ({"execution": {"engine": "triton"}}, "execution.engine"),
])
def test_bad_values_fail_in_one_line_naming_the_key(over, key):
    with pytest.raises(ConfigError) as exc:
        build_spec(raw_spec(**over))
    msg = str(exc.value)
    assert msg.startswith(key) and "\n" not in msg, msg


def test_mlp_keys_refused_for_linear_and_accuracy_for_regression(tmp_path):
    with pytest.raises(ConfigError, match=r"^model\.hidden: only with family"):
        build_spec({"model": {"hidden": [4]}})
    with pytest.raises(ConfigError, match=r"^selection\.metric"):
        build_spec({"selection": {"metric": "accuracy"}})
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i * 0.5}\n" for i in range(20)))
    table = {"dataset": "table", "path": str(csv), "target": "y", "task": "regression"}
    with pytest.raises(ConfigError, match=r"^model\.loss: cross_entropy"):
        build_spec(raw_spec(data=table))
    with pytest.raises(ConfigError, match=r"^selection\.metric"):
        build_spec({**raw_spec(data=table, model={"loss": "mse"}),
                    "selection": {"metric": "accuracy"}})


def test_plan_groups_by_structure_and_dataset_draw():
    spec = resolve_spec(build_spec(raw_spec(
        model={"hidden": [[4], [4, 4]]}, data={"seeds": 2, "noise": [0.1, 0.2]},
        execution={"chunk_size": 3})))
    plan = make_plan(spec)
    assert len(plan.units) == 4  # 2 noise values x 2 seeds
    assert len(plan.groups) == 2 * 2 * 4  # pairs x architectures x dataset draws
    assert plan.n_configs == 16 * 4 and all(g.n_units == 1 for g in plan.groups)
    assert all(c.n_configs <= 3 for c in plan.chunks)
    ids = np.concatenate([np.arange(c.first_id, c.first_id + c.n_configs) for c in plan.chunks])
    assert np.array_equal(ids, np.arange(plan.n_configs))
    kf = resolve_spec(build_spec(raw_spec(validation={"method": "kfold", "folds": 3},
                                          execution={"chunk_size": 8})))
    assert make_plan(kf).models_per_config == 4
    assert all(c.n_configs * 4 <= 8 for c in make_plan(kf).chunks)


# ----------------------------------------------------------------------------- oracles


def _module(spec, cfg, ds):
    mlp = MLP(ds.n_features, tuple(int(h) for h in str(cfg["hidden"]).split(",") if h),
              ds.out_features, cfg["activation"], bool(cfg["bias"]))
    theta0 = mlp.init(torch.tensor([int(cfg["init_seed"])]), float(cfg["init_scale"]))
    module = mlp.to_module().double()
    module.load_state_dict({n: v[0] for n, v in mlp.layout.views(theta0).items()})
    return module


def _torch(spec, cfg, X, y, dtype=torch.float64):
    ds = load("xor", **spec.dataset.params, seed=int(cfg["data_seed"]))
    module = _module(spec, cfg, ds)
    sgd = cfg["optimizer"] == "sgd"
    losses = torch_run(module, X, y, loss=cfg["loss"], optimizer=cfg["optimizer"],
                       regularizer=cfg["regularizer"], lam=float(cfg["lam"]),
                       lr=float(cfg["lr"]), beta1=float(cfg["momentum" if sgd else "beta1"]),
                       beta2=0.0 if sgd else float(cfg["beta2"]), epochs=int(cfg["epochs"]),
                       batch_size=int(cfg["batch_size"]) or None, decay=cfg["decay"],
                       dtype=dtype)
    return module, losses


def _split(spec, seed):
    ds = load("xor", **spec.dataset.params, seed=seed)
    ids = fold_ids(spec, ds.n_train, seed)
    return ds, ids


@pytest.mark.parametrize("batch_size", [0, 8])
def test_chunk_matches_torch_optim_one_config_at_a_time(batch_size):
    spec = resolve_spec(build_spec(raw_spec(train={"batch_size": batch_size})))
    res = run_chunk(spec, 0)  # adamw+decoupled: 4 configs, one engine call
    res1 = run_chunk(spec, 1)  # sgd+weight_decay
    ds, ids = _split(spec, 0)
    tr, va = ids == 0, ids == 1
    for r in (res, res1):
        for cfg in r.configs.to_dict("records"):
            module, losses = _torch(spec, cfg, ds.X_train[tr], ds.y_train[tr])
            curve = r.curves[r.curves.config_id == cfg["config_id"]]["train_loss"].to_numpy()
            np.testing.assert_allclose(curve, losses.numpy(), rtol=1e-9, atol=0)
            with torch.no_grad():
                out = module(ds.X_train[va])
                val = F.cross_entropy(out, ds.y_train[va]).item()
                acc = (out.argmax(1) == ds.y_train[va]).double().mean().item()
                test = F.cross_entropy(module(ds.X_test), ds.y_test).item()
            assert math.isclose(cfg["val_loss"], val, rel_tol=1e-9)
            assert cfg["val_accuracy"] == acc
            assert math.isclose(cfg["test_loss"], test, rel_tol=1e-9)
            assert cfg["n_train"] == int(tr.sum()) and cfg["n_val"] == int(va.sum())


def test_float32_chunk_is_held_to_float64_by_torch_optims_float32_error():
    spec = resolve_spec(build_spec(raw_spec(train={"dtype": "float32", "pairs": ["adam+mean"]})))
    res = run_chunk(spec, 0)
    ds, ids = _split(spec, 0)
    tr = ids == 0
    for cfg in res.configs.to_dict("records"):
        curve = res.curves[res.curves.config_id == cfg["config_id"]]["train_loss"].to_numpy()
        _, exact = _torch(spec, cfg, ds.X_train[tr], ds.y_train[tr], torch.float64)
        _, f32 = _torch(spec, cfg, ds.X_train[tr], ds.y_train[tr], torch.float32)
        assert_f32_close(torch.as_tensor(curve), f32, exact, msg=f"nets sweep {cfg['lam']}")


def test_kfold_is_the_mean_over_folds_and_the_refit_reports_test():
    spec = resolve_spec(build_spec(raw_spec(validation={"method": "kfold", "folds": 4},
                                            train={"pairs": ["adamw+decoupled"]})))
    res = run_chunk(spec, 0)
    ds = load("xor", **spec.dataset.params, seed=0)
    ids = fold_ids(spec, ds.n_train, 0)
    assert len(set(np.bincount(ids.numpy()))) == 2  # unequal folds: 2 shapes + the refit
    for cfg in res.configs.to_dict("records"):
        vals = []
        for f in range(4):
            module, _ = _torch(spec, cfg, ds.X_train[ids != f], ds.y_train[ids != f])
            with torch.no_grad():
                vals.append(F.cross_entropy(module(ds.X_train[ids == f]),
                                            ds.y_train[ids == f]).item())
        assert math.isclose(cfg["val_loss"], np.mean(vals), rel_tol=1e-9)
        assert math.isclose(cfg["val_loss_se"], np.std(vals, ddof=1) / 2, rel_tol=1e-7)
        module, losses = _torch(spec, cfg, ds.X_train, ds.y_train)
        with torch.no_grad():
            test = F.cross_entropy(module(ds.X_test), ds.y_test).item()
        assert math.isclose(cfg["test_loss"], test, rel_tol=1e-9)
        assert math.isclose(cfg["train_loss"], losses[-1].item(), rel_tol=1e-9)
        assert cfg["n_train"] == ds.n_train


def test_sweep_summary_selection_and_divergence(tmp_path):
    raw = raw_spec(data={"seeds": 3}, train={"pairs": ["sgd+weight_decay"], "lr": [0.05, 1e4],
                                            "lam": [0.0, 0.01, 0.1]},
                   selection={"metric": "accuracy"}, record={"every": 4})
    out = run_sweep(build_spec(raw), tmp_path / "run", csv=False, report=False)
    configs = pd.read_parquet(out / "configs.parquet")
    summary = pd.read_parquet(out / "summary.parquet")
    selection = pd.read_parquet(out / "selection.parquet")
    curves = pd.read_parquet(out / "curves.parquet")
    assert len(configs) == 18 and configs["config_id"].is_unique
    big = configs[configs.lr == 1e4]
    assert (big.status == "diverged").all() and big.val_loss.isna().all()
    for cid, ep in big[["config_id", "diverged_epoch"]].itertuples(index=False):
        assert (curves[curves.config_id == cid].epoch < ep).all()
    assert not curves.duplicated(["config_id", "epoch"]).any()
    assert {"norm/0.weight", "norm/0.bias", "norm/2.weight", "norm/2.bias"} <= set(curves)
    from scipy.stats import t as student_t

    ok = configs[(configs.lr == 0.05) & (configs.lam == 0.01)]
    row = summary[(summary.lr == 0.05) & (summary.lam == 0.01)].iloc[0]
    v = ok.val_accuracy.to_numpy()
    assert math.isclose(row.val_accuracy_mean, v.mean(), rel_tol=1e-12)
    assert math.isclose(row.val_accuracy_ci95,
                        student_t.ppf(0.975, 2) * v.std(ddof=1) / math.sqrt(3), rel_tol=1e-9)
    good = selection[selection.lr == 0.05].iloc[0]
    means = summary[summary.lr == 0.05].set_index("lam").val_accuracy_mean
    assert good.selection_metric == "val_accuracy"
    assert good.best_val_accuracy == means.max()
    assert good.best_lam == means[means == means.max()].index.min()  # ties: smaller λ
    manifest = json.loads((out / "manifest.json").read_text())
    assert any(w["code"] == "diverged" for w in manifest["warnings"])


# ----------------------------------------------------------------------------- resume

KILL_SPEC = """
name = "killnets"
[model]
family = "mlp"
hidden = [4]
[data]
dataset = "xor"
n_train = 24
n_test = 8
seeds = 2
[train]
pairs = ["adamw+decoupled", "sgd+half_sum"]
lam = [0, 0.01]
lr = [0.01, 0.05]
epochs = 8
batch_size = 10
[record]
every = 2
[execution]
chunk_size = 2
"""
N_KILL_CHUNKS = 8  # 2 pairs x 2 seeds x 2 chunks of 2 configs


@pytest.fixture(scope="module")
def kill_spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "killnets.toml"
    path.write_text(KILL_SPEC)
    ref = run_sweep(load_spec(path), tmp_path_factory.mktemp("ref") / "run", csv=False,
                    report=False)
    return path, ref


@pytest.mark.parametrize("env, left", [
    ({"WDLAB_TEST_KILL_AFTER_CHUNK": "4"}, "chunk"),
    ({"WDLAB_TEST_KILL_BEFORE_REPLACE": "00002.configs"}, "mid-chunk"),
    ({"WDLAB_TEST_KILL_BEFORE_REPLACE": "/curves.parquet"}, "final"),
], ids=["after-chunk", "mid-write-of-a-chunk", "mid-write-of-the-final-table"])
def test_mlp_sweep_killed_and_resumed_equals_uninterrupted(kill_spec, tmp_path, env, left):
    path, ref = kill_spec
    out = tmp_path / "run"
    cmd = [sys.executable, "-c", "from wdlab.cli import app; app(prog_name='wdlab')", "sweep",
           str(path), "--out", str(out), "--no-report", "--no-csv"]
    proc = subprocess.run(cmd, env=cli_env(**env), capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert status(out) == "running"
    done = sorted(p.name for p in (out / "chunks").glob("*.configs.parquet"))
    expect = {"chunk": 5, "mid-chunk": 2, "final": N_KILL_CHUNKS}[left]
    assert len(done) == expect
    res = runner.invoke(app, ["sweep", "--resume", str(out), "--no-report"])
    assert res.exit_code == 0, res.output
    assert status(out) == "complete"
    assert_same_run(out, ref, 16)


def test_engines_are_recorded_agree_and_are_pinned_on_resume(tmp_path, monkeypatch):
    """execution.engine picks the nets engine (auto: native where it can run); the configs
    record which ran; eager and native agree to float64 rounding; a resume keeps the
    engine of the finished chunks and refuses, in one line, where it cannot run."""
    from wdlab.engine.kernels import native_build
    from wdlab.sweep import driver

    with pytest.raises(ConfigError, match="^execution.engine: 'compiled' is a linear engine"):
        build_spec(raw_spec(execution={"engine": "compiled"}))
    eager = run_sweep(build_spec(raw_spec(execution={"chunk_size": 64, "engine": "eager"})),
                      tmp_path / "eager", csv=False, report=False)
    e = pd.read_parquet(eager / "configs.parquet")
    assert set(e.engine) == {"eager"}
    if native_build.compiler() is None:
        return
    auto = run_sweep(build_spec(raw_spec()), tmp_path / "auto", csv=False, report=False)
    a = pd.read_parquet(auto / "configs.parquet")
    assert set(a.engine) == {"native"}
    for col in ("train_loss", "val_loss", "test_loss", "val_accuracy", "w_norm"):
        np.testing.assert_allclose(a[col], e[col], rtol=1e-9, atol=1e-12, err_msg=col)
    # stopped after its first chunk (native), resumed: the pending chunks keep native; a
    # resume where native cannot run is refused in one line and writes nothing
    spec = build_spec(raw_spec(execution={"chunk_size": 4}))

    def first_chunk(spec, indices):
        yield run_chunk(spec, indices[0])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path / "stopped", csv=False, report=False, executor=first_chunk)
    run = tmp_path / "stopped"
    manifest = (run / "manifest.json").read_bytes()
    with monkeypatch.context() as m:
        m.setattr(driver, "engine_available", lambda engine, device: engine != "native")
        res = runner.invoke(app, ["sweep", "--resume", str(run), "--no-report"])
    one_line_error(res, "trained with engine 'native', which cannot run here")
    assert (run / "manifest.json").read_bytes() == manifest
    res = runner.invoke(app, ["sweep", "--resume", str(run), "--no-report"])
    assert res.exit_code == 0, res.output
    full = run_sweep(spec, tmp_path / "full", csv=False, report=False)  # never stopped
    assert_same_run(run, full, len(a))


# ----------------------------------------------------------------------------- Ray


@pytest.mark.ray
def test_mlp_sweep_on_ray_equals_local_bitwise(kill_spec, tmp_path):
    ray = pytest.importorskip("ray")
    from wdlab.sweep.ray_backend import RayExecutor, connect

    path, ref = kill_spec
    if ray.is_initialized():
        ray.shutdown()
    assert connect(None, num_cpus=2)
    try:
        out = run_sweep(load_spec(path), tmp_path / "run", csv=False, report=False,
                        executor=RayExecutor())
    finally:
        ray.shutdown()
    assert_same_run(out, ref, 16)


# ----------------------------------------------------------------------------- report

PAYLOAD = "<img src=x onerror=alert(1)>"


@pytest.mark.browser
def test_nets_report_offline_charts_render_and_strings_escaped(tmp_path):
    folder = tmp_path / PAYLOAD
    folder.mkdir()
    csv = folder / "data.csv"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    csv.write_text(f"a,b,{PAYLOAD}\n" + "".join(
        f"{x0:.6f},{x1:.6f},{int(x0 * x1 > 0)}\n" for x0, x1 in X))
    raw = raw_spec(data={"dataset": "table", "path": str(csv), "target": PAYLOAD},
                   train={"pairs": ["adamw+decoupled"], "lam": [0.0, 0.01, 0.1],
                          "lr": [0.02, 0.1]}, record={"every": 3})
    out = run_sweep(build_spec(raw), tmp_path / "run", csv=False, report=True)
    html = (out / "report.html").read_text()
    assert PAYLOAD not in html  # escaped everywhere
    with launch_browser() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        log = {"errors": [], "requests": [], "dialogs": []}
        page.on("console", lambda m: m.type == "error" and log["errors"].append(m.text))
        page.on("pageerror", lambda e: log["errors"].append(str(e)))
        page.on("request", lambda r: log["requests"].append(r.url))
        page.on("dialog", lambda d: (log["dialogs"].append(d.message), d.dismiss()))
        page.goto((out / "report.html").resolve().as_uri())
        page.wait_for_function("() => ['validation-plot', 'training-plot', 'heatmap-0'].every("
                               "id => { const v = document.getElementById(id);"
                               " return v && v.data && v._fullLayout; })")
        n_traces = page.evaluate("() => document.getElementById('validation-plot').data.length")
        panel = page.evaluate("() => document.getElementById('training-plot').data.map("
                              "t => t.name)")
        page.fill("#lam-slider", "0")
        page.dispatch_event("#lam-slider", "input")
        lam0 = page.text_content("#lam-value")
        shown = page.text_content("#config")
    assert log["errors"] == [] and log["dialogs"] == []
    assert all(u.startswith(("file://", "data:", "blob:")) for u in log["requests"]), log
    assert n_traces == 4  # the best lr's group x (val, test) x (loss, accuracy)
    assert {"train loss", "test loss", "train accuracy", "test accuracy", "0.weight",
            "2.bias"} <= set(panel)
    assert lam0 == "0"
    assert PAYLOAD in shown  # the user's string is shown literally, never markup
