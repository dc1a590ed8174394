"""Sweeps: the plan, one chunk against its oracles, divergence isolation, statistics, selection."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oracle import assert_f32_close
from wdlab.config.load import build_spec
from wdlab.config.presets import experiment
from wdlab.engine import Hyper
from wdlab.experiment import run_experiment
from wdlab.selection import select, summarize
from wdlab.sweep import (
    ChunkFailure,
    chunk_tables,
    closed_form_frame,
    execute_chunk,
    local_executor,
    make_plan,
    prepare_chunk,
    resolve_spec,
    resume_sweep,
    run_chunk,
    run_sweep,
    stability_warnings,
)
from wdlab.sweep.chunk import hyper_frame

SEED = experiment("seed")


def tiny(**over) -> dict:
    """A tall, quick problem: 6 features, 12 samples."""
    raw = {"name": "tiny", "data": {"n_features": 6, "n_train": 12, "n_test": 8, "w_star": 0.5,
                                    "noise": 0.1, "seeds": 2},
           "train": {"lam": [0.0, 0.1, 1.0], "lr": 0.05, "epochs": 20},
           "execution": {"chunk_size": 64, "engine": "eager"}}
    for k, v in over.items():
        raw[k] = {**raw.get(k, {}), **v} if isinstance(v, dict) else v
    return raw


# ----------------------------------------------------------------------------- the plan

@settings(max_examples=40, deadline=None)
@given(n_lam=st.integers(1, 5), n_lr=st.integers(1, 3), n_seeds=st.integers(1, 4),
       n_train=st.sampled_from([[10], [10, 12]]), chunk=st.integers(1, 40),
       kfold=st.booleans(), sgd=st.booleans())
def test_plan_covers_every_config_once_in_contiguous_chunks(n_lam, n_lr, n_seeds, n_train, chunk,
                                                            kfold, sgd):
    raw = tiny(data={"seeds": n_seeds, "n_train": n_train},
               train={"lam": [0.1 * i for i in range(n_lam)],
                      "lr": [0.01 * (i + 1) for i in range(n_lr)],
                      **({"pairs": ["sgd+mean", "adam+sum"]} if sgd else {})},
               execution={"chunk_size": chunk})
    if kfold:
        raw["validation"] = {"method": "kfold", "folds": 3}
    spec = build_spec(raw)
    plan = make_plan(spec)
    ids = []
    for c in plan.chunks:
        frame = hyper_frame(spec, plan, plan.groups[c.group], c)
        got = frame["config_id"].to_numpy()
        assert (got == np.arange(c.first_id, c.first_id + c.n_configs)).all()
        assert c.n_configs * plan.models_per_config <= max(chunk, plan.models_per_config)
        ids.append(got)
    ids = np.concatenate(ids)
    assert (ids == np.arange(plan.n_configs)).all()
    groups = 2 if sgd else 1
    assert plan.n_configs == groups * n_lam * n_lr * n_seeds * len(n_train)


def test_resolved_chunk_size_fits_memory_budget():
    spec = resolve_spec(build_spec(tiny(execution={"chunk_size": None, "memory_gb": 0.001})))
    assert 1 <= spec.execution.chunk_size < 1000
    big = resolve_spec(build_spec(tiny(execution={"chunk_size": None})))
    assert big.execution.chunk_size > spec.execution.chunk_size


# ------------------------------------------------------------------- one chunk vs oracles

def test_seed_chunk_matches_reproduce():
    """The sweep's seed draw gives reproduce's numbers (same draws, same init) and its
    schema: the same columns in the same order, plus val_mse. float64: equal to 1e-10;
    float32 (other batched shapes, so another rounding sequence): held to reproduce's
    float64 run, bounded by reproduce's own float32 error (tests/oracle.py)."""
    raw = {"preset": "seed", "train": {"lam": [0.0, 3.0]}, "record": {"dist_to_ridge": True},
           "execution": {"chunk_size": 64, "engine": "eager"}}
    spec = build_spec(raw)
    res = run_chunk(spec, 0)
    ref = run_experiment(SEED)
    seed64 = SEED.model_copy(update={"train": SEED.train.model_copy(update={"dtype": "float64"})})
    exact = run_experiment(seed64)
    res64 = run_chunk(build_spec({**raw, "train": {**raw["train"], "dtype": "float64"}}), 0)
    cols = ("train_mse", "test_mse", "penalty", "w_norm", "dist_to_ridge")
    for col in cols:
        np.testing.assert_allclose(res64.configs[col], exact.configs[col], rtol=1e-10, err_msg=col)
        assert_f32_close(res.configs[col].to_numpy(), ref.configs[col].to_numpy(),
                         exact.configs[col].to_numpy(), msg=col)
    assert [c for c in res.curves.columns if c != "val_mse"] == list(ref.curves.columns)
    cols = list(ref.configs.columns)
    core = cols[: cols.index("dist_to_ridge") + 1]  # hyperparameters, status, metrics
    assert [c for c in res.configs.columns if c in core] == core
    plain = run_chunk(spec.replace(record={"dist_to_ridge": False}), 0)
    assert list(plain.curves.columns) == ["config_id", "epoch", "train_mse", "val_mse", "test_mse",
                                          "penalty", "objective", "w_norm"]


def test_chunking_does_not_change_results_beyond_rounding():
    a = build_spec(tiny(execution={"chunk_size": 3}))
    b = build_spec(tiny(execution={"chunk_size": 64}))
    exact = run_chunk(build_spec(tiny(execution={"chunk_size": 64},
                                      train={"dtype": "float64"})), 0).configs
    ta = pd.concat([run_chunk(a, i).configs for i in range(len(make_plan(a).chunks))])
    tb = run_chunk(b, 0).configs
    assert len(make_plan(a).chunks) == 2 and len(make_plan(b).chunks) == 1
    np.testing.assert_array_equal(ta["config_id"], tb["config_id"])
    np.testing.assert_array_equal(exact["config_id"], tb["config_id"])
    # float32 in other batched shapes: held to the float64 run, bounded by one chunk's own
    # float32 error (tests/oracle.py), so no CPU's rounding order matters
    for col in ("train_mse", "val_mse", "test_mse", "w_norm"):
        assert_f32_close(ta[col].to_numpy(), tb[col].to_numpy(), exact[col].to_numpy(), msg=col)


@pytest.mark.parametrize("method", ["holdout", "split", "kfold"])
def test_converged_sweep_equals_closed_form_ridge(method):
    """Full-batch GD from w0 = 0 converges to ridge: val/test errors equal ``ridge_path``'s
    on the same samples and validation rule, and selection picks the same lam."""
    spec = build_spec(tiny(
        train={"pairs": ["sgd+half_sum"], "lam": [0.0, 0.3, 3.0], "lr": 0.2, "epochs": 600,
               "init_scale": 0.0, "dtype": "float64"},
        data={"seeds": 3, "n_train": 30}, validation={"method": method, "folds": 3},
        execution={"chunk_size": 1000, "engine": "eager"}))
    configs = pd.concat([run_chunk(spec, i).configs for i in range(len(make_plan(spec).chunks))])
    assert (configs["status"] == "ok").all()
    summary = summarize(configs)
    ridge = closed_form_frame(spec)
    on_grid = ridge[ridge["in_grid"]].set_index("lam")
    np.testing.assert_allclose(summary["val_mse_mean"], on_grid.loc[summary["lam"], "ridge_val_mse"],
                               rtol=1e-6)
    np.testing.assert_allclose(summary["test_mse_mean"],
                               on_grid.loc[summary["lam"], "ridge_test_mse"], rtol=1e-6)
    if method == "kfold":
        assert configs["val_mse_se"].notna().all()


def test_dist_to_ridge_recorded_and_shrinks():
    spec = build_spec(tiny(train={"pairs": ["sgd+sum"], "lam": [0.5], "lr": 0.05, "epochs": 400,
                                  "dtype": "float64"},
                           record={"dist_to_ridge": True, "log_points": 10}))
    res = run_chunk(spec, 0)
    assert "dist_to_ridge" in res.curves and res.curves["epoch"].nunique() <= 11
    first = res.curves.groupby("config_id")["dist_to_ridge"].first()
    last = res.curves.groupby("config_id")["dist_to_ridge"].last()
    assert (last < 1e-6 * first).all()


# --------------------------------------------------------------------------- divergence

@pytest.mark.parametrize("pair", ["sgd+mean", "adam+half_sum"])
def test_a_diverging_config_leaves_the_others_bitwise_identical(pair):
    spec = build_spec(tiny(train={"pairs": [pair], "lam": [0.0, 0.1, 1.0], "lr": [0.01, 0.05],
                                  "epochs": 30}, data={"seeds": 3}))
    inputs = prepare_chunk(spec, 0)
    base = chunk_tables(inputs, execute_chunk(inputs))
    victim = 4  # one model of the chunk (draw 0)
    lr = inputs.hyper.lr.clone()
    lr[victim] = 1e9
    h = inputs.hyper
    inputs.hyper = Hyper(h.lam, lr, h.beta1, h.beta2)
    hit = chunk_tables(inputs, execute_chunk(inputs))

    vid = int(base.configs["config_id"].iloc[victim])
    bad = hit.configs.set_index("config_id").loc[vid]
    assert bad["status"] == "diverged" and bad["diverged_epoch"] >= 1
    assert np.isnan(bad["test_mse"])
    others_a = base.configs[base.configs["config_id"] != vid].drop(columns=["lr"])
    others_b = hit.configs[hit.configs["config_id"] != vid].drop(columns=["lr"])
    pd.testing.assert_frame_equal(others_a.reset_index(drop=True), others_b.reset_index(drop=True),
                                  check_exact=True)
    num = others_a.select_dtypes("number").columns
    assert others_a[num].to_numpy().tobytes() == others_b[num].to_numpy().tobytes()
    ca = base.curves[base.curves["config_id"] != vid].to_numpy()
    cb = hit.curves[hit.curves["config_id"] != vid].to_numpy()
    assert ca.tobytes() == cb.tobytes()
    # the diverged run's curve stops before its divergence epoch; no NaN reaches any aggregate
    rows = hit.curves[hit.curves["config_id"] == vid]
    assert rows["epoch"].max() < bad["diverged_epoch"]
    assert np.isfinite(hit.curves.drop(columns=["config_id", "epoch"]).to_numpy()).all()
    summary = summarize(hit.configs.assign(lr=base.configs["lr"].to_numpy()))
    assert summary["n_diverged"].sum() == 1
    assert np.isfinite(summary.filter(like="_mean").to_numpy()).all()


def test_stability_warning_for_full_batch_gd():
    hot = build_spec(tiny(train={"pairs": ["sgd+mean"], "lr": [0.001, 5.0]}))
    lines = stability_warnings(hot)
    assert len(lines) == 1 and "lr=5" in lines[0] and "2(1+μ)/(L+λ_eff)" in lines[0]
    assert stability_warnings(build_spec(tiny(train={"pairs": ["sgd+mean"], "lr": 0.001}))) == []
    assert stability_warnings(build_spec(tiny(train={"pairs": ["adam+mean"], "lr": 50.0}))) == []
    # and such a run does diverge, and is reported as diverged, not as NaN numbers
    res = run_chunk(hot, 0)
    assert set(res.configs.loc[res.configs["lr"] == 5.0, "status"]) == {"diverged"}
    assert set(res.configs.loc[res.configs["lr"] == 0.001, "status"]) == {"ok"}


# ------------------------------------------------------------------ statistics, selection

def _configs(values: dict[float, list[float]], status=None) -> pd.DataFrame:
    rows = []
    for lam, vals in values.items():
        for seed, v in enumerate(vals):
            rows.append({"config_id": len(rows), "optimizer": "adam", "regularizer": "mean",
                         "lam": lam, "data_seed": seed, "init_seed": seed, "status": "ok",
                         "train_mse": v / 2, "val_mse": v, "test_mse": v + 1})
    df = pd.DataFrame(rows)
    if status:
        for cid, s in status.items():
            df.loc[cid, "status"] = s
            df.loc[cid, ["train_mse", "val_mse", "test_mse"]] = np.nan
    return df


def test_summary_statistics_over_seeds():
    from scipy import stats

    vals = [1.0, 2.0, 4.0, 7.0]
    s = summarize(_configs({0.1: vals}))
    assert s.loc[0, "n_seeds"] == 4 and s.loc[0, "n_diverged"] == 0
    assert s.loc[0, "val_mse_mean"] == pytest.approx(np.mean(vals))
    assert s.loc[0, "val_mse_std"] == pytest.approx(np.std(vals, ddof=1))
    half = stats.t.ppf(0.975, 3) * np.std(vals, ddof=1) / 2
    assert s.loc[0, "val_mse_ci95"] == pytest.approx(half)
    assert "data_seed" not in s and "config_id" not in s


def test_summary_excludes_diverged_seeds():
    s = summarize(_configs({0.1: [1.0, 2.0, 3.0]}, status={2: "diverged"}))
    assert s.loc[0, "n_diverged"] == 1 and s.loc[0, "n_ok"] == 2
    assert s.loc[0, "val_mse_mean"] == pytest.approx(1.5)


def test_selection_best_and_one_se_rule():
    # lam 1 is best (mean 2.0, se = 1/sqrt(3)); lam 3 has mean 2.5 <= 2.577: the 1-SE choice;
    # lam 10 is worse, lam 30 has a diverged seed and is not eligible despite its low mean
    table = {0.0: [4.0, 5.0, 6.0], 1.0: [1.0, 2.0, 3.0], 3.0: [1.5, 2.5, 3.5],
             10.0: [3.0, 4.0, 5.0], 30.0: [0.1, 0.1, 0.1]}
    configs = _configs(table, status={14: "diverged"})
    sel = select(summarize(configs))
    row = sel.iloc[0]
    assert row["best_lam"] == 1.0 and row["best_val_mse"] == pytest.approx(2.0)
    assert row["best_test_mse"] == pytest.approx(3.0)
    assert row["lam_1se"] == 3.0 and row["test_mse_1se"] == pytest.approx(3.5)
    assert np.isnan(row["ridge_lam"])


def test_selection_uses_closed_form_for_l2_groups():
    spec = build_spec(tiny(train={"pairs": ["adam+mean", "adamw+decoupled"], "lam": [0.1, 1.0]}))
    configs = pd.concat([run_chunk(spec, i).configs for i in range(len(make_plan(spec).chunks))])
    sel = select(summarize(configs), closed_form_frame(spec))
    l2 = sel[sel["regularizer"] == "mean"].iloc[0]
    dec = sel[sel["regularizer"] == "decoupled"].iloc[0]
    assert np.isfinite(l2["ridge_lam"]) and np.isfinite(l2["ridge_test_mse"])
    assert np.isnan(dec["ridge_lam"])


# ----------------------------------------------------------------------- run directories

def test_run_directory_tables_and_manifest(tmp_path):
    spec = build_spec(tiny(execution={"chunk_size": 3}))
    events = []
    out = run_sweep(spec, tmp_path / "run", report=False, on_event=events.append)
    for name in ("configs", "curves", "summary", "selection"):
        assert (out / f"{name}.parquet").is_file() and (out / f"{name}.csv").is_file()
    assert not (out / "chunks").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["kind"] == "sweep"
    assert manifest["plan"]["n_chunks"] == 2 and manifest["seeds"]["data_seeds"] == [0, 1]
    assert manifest["spec"]["execution"]["chunk_size"] == 3
    configs = pd.read_parquet(out / "configs.parquet")
    assert configs["config_id"].tolist() == list(range(6))
    for col in ("optimizer", "regularizer", "loss", "lam", "lr", "momentum", "beta1", "beta2",
                "epochs", "batch_size", "schedule", "init_scale", "init_seed", "data_seed",
                "n_train", "n_test", "n_features", "noise", "status", "diverged_epoch",
                "train_mse", "val_mse", "test_mse", "penalty", "objective", "w_norm"):
        assert col in configs, col
    assert (configs["engine"] == "eager").all()  # the engine that trained each configuration
    curves = pd.read_parquet(out / "curves.parquet")
    assert len(curves) == 6 * 21
    pd.testing.assert_frame_equal(curves, pd.read_csv(out / "curves.csv"), check_dtype=False)
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds.count("chunk") == 2 and kinds[-1] == "done"
    assert events[-2].configs_done == 6


def test_failed_chunk_is_marked_and_retried_on_resume(tmp_path):
    spec = build_spec(tiny(execution={"chunk_size": 3}))

    def flaky(spec, indices):
        for i in indices:
            yield ChunkFailure(i, "worker lost") if i == 1 else run_chunk(spec, i)

    out = run_sweep(spec, tmp_path / "run", report=False, csv=False, executor=flaky)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "incomplete" and manifest["failed_chunks"] == [1]
    configs = pd.read_parquet(out / "configs.parquet")
    assert (configs["status"] == "failed").sum() == 3
    assert set(configs.loc[configs["status"] == "failed", "error"]) == {"worker lost"}
    assert configs.loc[configs["status"] == "failed", "engine"].isna().all()  # never trained
    assert (configs.loc[configs["status"] != "failed", "engine"] == "eager").all()
    resume_sweep(out, report=False, executor=local_executor)
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
    ref = run_sweep(spec, tmp_path / "ref", report=False, csv=False)
    for name in ("configs", "curves", "summary", "selection"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / f"{name}.parquet"),
                                      pd.read_parquet(ref / f"{name}.parquet"), check_exact=True)


def test_completed_run_is_never_overwritten_without_force(tmp_path):
    spec = build_spec(tiny())
    out = run_sweep(spec, tmp_path / "run", report=False, csv=False)
    before = (out / "configs.parquet").read_bytes()
    with pytest.raises(FileExistsError, match="--force"):
        run_sweep(spec, out, report=False)
    assert (out / "configs.parquet").read_bytes() == before
    notes = []
    resume_sweep(out, on_event=lambda e: notes.append(e.message) if e.kind == "note" else None)
    assert notes and "already complete" in notes[0]
    assert (out / "configs.parquet").read_bytes() == before
    run_sweep(spec.replace(train={**spec.train.model_dump(), "lam": (5.0,)}), out, force=True,
              report=False, csv=False)
    assert pd.read_parquet(out / "configs.parquet")["lam"].tolist() == [5.0, 5.0]


def test_kfold_models_per_config():
    spec = build_spec(tiny(validation={"method": "kfold", "folds": 4}))
    inputs = prepare_chunk(spec, 0)
    assert inputs.theta0.shape[0] == 2 * 5 * 3  # seeds x (folds + full) x lams
    res = chunk_tables(inputs, execute_chunk(inputs))
    assert len(res.configs) == 6 and res.configs["val_mse"].notna().all()
    assert math.isfinite(res.configs["val_mse_se"].iloc[0])
    assert torch.equal(inputs.theta0[0], inputs.theta0[3])  # folds of a draw share w0


@pytest.mark.parametrize(("method", "fit_intercept"), [("holdout", True), ("kfold", True),
                                                        ("split", False)])
def test_closed_form_frame_matches_ridge_path_per_draw(method, fit_intercept):
    """The batched ridge paths equal ``wdlab.exact.ridge.ridge_path`` draw by draw (wide problem)."""
    from wdlab.exact.ridge import ridge_path
    from wdlab.sweep.draws import unit_draws

    spec = build_spec(tiny(data={"n_features": 30, "seeds": 3},
                           train={"pairs": ["adam+sum"], "lam": [0.0, 0.1, 10.0],
                                  "fit_intercept": fit_intercept},
                           validation={"method": method, "folds": 3}))
    frame = closed_form_frame(spec, n_dense=5).set_index("lam")
    lams = torch.tensor(frame.index.to_numpy(copy=True))
    vals, tests = [], []
    for seed in spec.data.seeds:
        draws = unit_draws(spec, 12, 0.1, seed)
        v = []
        for dr in draws:
            keep = dr.w > 0
            path = ridge_path(dr.X[keep], dr.y[keep], lams, "mse", "sum", X_test=dr.X_test,
                              y_test=dr.y_test, fit_intercept=fit_intercept)
            if dr.w_val.sum() > 0:
                r = dr.X_val @ path.coef.T + path.intercept - dr.y_val[:, None]
                v.append((dr.w_val[:, None] * r**2).sum(0) / dr.w_val.sum())
        vals.append(torch.stack(v).mean(0))
        tests.append(path.test_mse)  # holdout/split: the one model; kfold: the full refit
    np.testing.assert_allclose(frame["ridge_val_mse"], torch.stack(vals).mean(0), rtol=1e-9)
    np.testing.assert_allclose(frame["ridge_test_mse"], torch.stack(tests).mean(0), rtol=1e-9)


def test_a_chunk_spanning_several_n_train_pads_its_draws():
    """Units of different n_train in one engine call (zero-padded, weight 0) give the same
    numbers as a sweep of each n_train alone, dist_to_ridge included."""
    both = build_spec(tiny(data={"n_train": [8, 12]}, record={"dist_to_ridge": True},
                           train={"dtype": "float64"}))
    alone = build_spec(tiny(data={"n_train": [8]}, record={"dist_to_ridge": True},
                            train={"dtype": "float64"}))
    assert len(make_plan(both).chunks) == 1
    a = run_chunk(both, 0).configs
    b = run_chunk(alone, 0).configs
    a8 = a[a["n_train"] == 8].reset_index(drop=True)
    for col in ("train_mse", "val_mse", "test_mse", "w_norm", "dist_to_ridge"):
        np.testing.assert_allclose(a8[col], b[col], rtol=1e-10, err_msg=col)


def test_configs_name_the_engine_auto_resolved_to(tmp_path, monkeypatch):
    """``auto`` resolves per machine (native where a C++ compiler is present); each row of
    configs says which engine trained it."""
    from wdlab.engine.kernels import native

    monkeypatch.setattr(native, "compiler_present", lambda: False)
    out = run_sweep(build_spec(tiny(execution={"engine": "auto"})), tmp_path / "a",
                    report=False, csv=False)
    assert set(pd.read_parquet(out / "configs.parquet")["engine"]) == {"eager"}  # small run
    monkeypatch.undo()
    if native.compiler_present():
        out = run_sweep(build_spec(tiny(execution={"engine": "auto"})), tmp_path / "b",
                        report=False, csv=False)
        assert set(pd.read_parquet(out / "configs.parquet")["engine"]) == {"native"}
