"""Nets sweeps (``model.family = "mlp"``): plan, chunks as ``wdlab.nets.train`` calls, tables.

The grid of a nets spec (``wdlab.config.nets``) is cut exactly like the linear one
(``wdlab.sweep.plan``), with these groups: one per static structure of the engine --
optimizer pair, architecture (hidden, activation, bias), decay policy, loss, epochs, batch
size, schedule -- and dataset draw (a combination of the dataset's parameter axes and one
dataset seed), so ``Group.n_units == 1`` and ``Group.static`` holds the rest. Its per-draw
configurations are (lr, momentum or beta1, beta2, init_scale, init_seed, lam), lam innermost::

    config_id = group.offset + m

A chunk (at most ``execution.chunk_size`` models) is a range of one group's configurations:

    make_nets_plan(spec) -> SweepPlan      (``make_plan`` dispatches here for nets)
    run_nets_chunk(spec, i) -> ChunkResult (``run_chunk`` dispatches here; no file IO)

Each chunk trains its configurations with per-configuration (lr, lam, beta1, beta2, seed,
init_scale) in ONE ``wdlab.nets.train`` call per training-set shape: one call for
``split``; for ``kfold`` the folds + 1 models of every configuration (k fold models and the
full refit) are the engine's data-draw axis, and since the engine stacks equal-shaped draws
only, draws are grouped by training-set size: at most 3 calls (fold training sets differ by
at most one row, and the refit has all n_train rows).

Data: ``wdlab.nets.datasets.load(name, **params, seed=data_seed)`` (its own named streams);
the validation rows are drawn from the dataset's training rows on the ``split<seed>`` /
``kfold<seed>`` stream of the data seed (``wdlab.sweep.draws.fold_ids``); initial
parameters from ``stream_seed(init_seed, "init")`` (``MLP.init``; init_seed = data seed
unless ``train.init_seed`` lists seeds).

Tables (the linear schema, with the nets metrics):

* configs: the hyperparameters (``family``, ``dataset``, ``data_<param>`` per loader
  parameter, ``hidden`` as "64,64", ``activation``, ``bias``, ``decay``, the ``[train]``
  columns, ``n_train``/``n_val``/``n_test`` rows, ``n_features``, ``n_classes``,
  ``n_params``), ``status`` (ok/diverged), ``diverged_epoch``, ``engine`` (the nets engine that
  ran: "eager" or "native", ``execution.engine``; a resume keeps it), and the
  final metrics ``train_loss, val_loss, test_loss, train_accuracy, val_accuracy,
  test_accuracy`` (accuracy for classification datasets), ``penalty``, ``objective``,
  ``w_norm`` (the l2 norm of all parameters); k-fold adds ``val_loss_se``/``val_accuracy_se``
  (the standard error over folds). Validation metrics are computed once, in float64, from
  each model's final parameters (the engine scores one held-out set per epoch: the test set).
* curves (long form, one row per config and recorded epoch, cut at divergence):
  ``train_loss, test_loss, train_accuracy, test_accuracy, penalty, objective, w_norm`` and
  ``norm/<state_dict name>`` (e.g. ``norm/0.weight``), the l2 norm of each parameter tensor.
  The norm columns are the union over the spec's architectures (NaN where a network has no
  such tensor), so every chunk has the same schema. k-fold curves are the refit's.
"""

from __future__ import annotations

import json
import math
import time
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import torch

from wdlab.config.schema import SweepSpec
from wdlab.results import cut_at_divergence, first_divergence
from wdlab.sweep.grid import (
    Chunk,
    ChunkResult,
    Group,
    SweepPlan,
    as_spec,
    cached_plan,
    group_columns,
    n_per_draw,
    per_draw,
    split_even,
)

#: Final metrics of a nets configuration, in table order (accuracy only for classification).
NETS_METRICS = ("train_loss", "val_loss", "test_loss", "train_accuracy", "val_accuracy",
                "test_accuracy", "penalty", "objective", "w_norm")
#: Curve columns before the per-tensor norms.
NETS_CURVES = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "penalty",
               "objective", "w_norm")
DEFAULT_CHUNK = 1024


def sweep_engine(engine: str, device: str) -> str:
    """The nets engine a sweep's chunks ask for: ``auto`` is native on CPU where a C++
    compiler is found (a build failure falls back to eager with a warning), else eager --
    decided by the machine alone, never by a chunk's size or shape, so every chunk of a
    group runs one engine (``nets.train``'s own ``auto`` also weighs the block fill)."""
    if engine != "auto":
        return engine
    import torch

    from wdlab.engine import fast

    return "native" if fast.native_possible(torch.device(device)) else "eager"


# ---------------------------------------------------------------------------------- plan


def nets_units(spec: SweepSpec) -> list[tuple[str, int]]:
    """(parameters as sorted JSON, data seed) per dataset draw, seeds innermost."""
    ds = spec.dataset
    return [(json.dumps(c, sort_keys=True), int(s)) for c in ds.combos() for s in ds.seeds]


def n_nets_configs(spec: SweepSpec) -> int:
    t, m = spec.train, spec.model
    static = (len(m.hidden) * len(m.activation) * len(m.bias) * len(m.decay) * len(m.loss)
              * len(t.epochs) * len(t.batch_size) * len(m.schedule))
    return len(nets_units(spec)) * static * n_per_draw(t)


def models_per_config(spec: SweepSpec) -> int:
    return spec.validation.folds + 1 if spec.validation.method == "kfold" else 1


def make_nets_plan(spec: SweepSpec) -> SweepPlan:
    """The nets grid cut into chunks of at most ``execution.chunk_size`` models."""
    C = spec.execution.chunk_size
    if C is None:
        raise ValueError("execution.chunk_size: resolve the spec first (resolve_spec)")
    t, m = spec.train, spec.model
    units = nets_units(spec)
    mpc = models_per_config(spec)
    groups: list[Group] = []
    chunks: list[Chunk] = []
    offset = 0
    for opt, reg in t.pair_list():
        per = per_draw(spec, opt)
        for hidden in m.hidden:
            for act in m.activation:
                for bias in m.bias:
                    for decay in m.decay:
                        for loss in m.loss:
                            for epochs in t.epochs:
                                for bs in t.batch_size:
                                    for sched in m.schedule:
                                        for u in range(len(units)):
                                            static = {"unit": u, "hidden": list(hidden),
                                                      "activation": act, "bias": bool(bias),
                                                      "decay": decay}
                                            g = Group(len(groups), opt, reg, loss, epochs, bs,
                                                      sched, offset, 1, per, static)
                                            groups.append(g)
                                            M = g.n_per_unit
                                            for m0, m1 in split_even(M, max(1, C // mpc)):
                                                chunks.append(Chunk(len(chunks), g.index, 0, 1,
                                                                    m0, m1, offset + m0))
                                            offset += M
    return SweepPlan(units, groups, chunks, C, mpc)  # type: ignore[arg-type]


def nets_auto_chunk_size(spec: SweepSpec, budget: int = 1 << 30) -> int:
    """Models per call so that parameters, optimizer state and activations of the chunk stay
    within ``budget`` bytes (about 8 floats per parameter, 4 per activation entry)."""
    from wdlab.nets.mlp import MLP

    ds = load_unit(spec, 0)
    N = ds.n_train + ds.n_test
    item = 4 if spec.train.dtype == "float32" else 8
    worst = 1
    for hidden in spec.model.hidden:
        widths = (ds.n_features, *hidden, ds.out_features)
        P = MLP(ds.n_features, tuple(hidden), ds.out_features).layout.size  # biases counted
        worst = max(worst, item * (8 * P + 4 * N * sum(widths[1:])))
    return int(max(1, min(DEFAULT_CHUNK * 16, budget // worst)))


# ---------------------------------------------------------------------------------- data


@lru_cache(maxsize=8)
def _load(name: str, params: str, seed: int):
    from wdlab.nets.datasets import load

    return load(name, **json.loads(params), seed=seed)


def load_unit(spec: SweepSpec, u: int):
    """The ``NetDataset`` of dataset draw ``u`` (cached: a chunk's draws are reloaded once)."""
    params, seed = nets_units(spec)[u]
    return _load(spec.dataset.name, params, seed)


def unit_splits(spec: SweepSpec, n_train: int, seed: int) -> list[tuple[torch.Tensor, Any]]:
    """(training rows, validation rows or None) of each model of a configuration: split ->
    one model; kfold -> k fold models, then the full refit (no validation rows)."""
    from wdlab.sweep.draws import fold_ids

    v = spec.validation
    ids = fold_ids(spec, n_train, seed)  # (N,) seeded on the '<method><seed>' stream
    if v.method == "split":
        return [(torch.nonzero(ids == 0).reshape(-1), torch.nonzero(ids == 1).reshape(-1))]
    out = [(torch.nonzero(ids != f).reshape(-1), torch.nonzero(ids == f).reshape(-1))
           for f in range(v.folds)]
    return out + [(torch.arange(n_train), None)]


def norm_names(spec: SweepSpec) -> list[str]:
    """``norm/<name>`` columns: every state_dict tensor of the spec's deepest network."""
    depth = max(len(h) for h in spec.model.hidden) + 1
    bias = any(spec.model.bias)
    out = []
    for layer in range(depth):
        out.append(f"norm/{2 * layer}.weight")
        if bias:
            out.append(f"norm/{2 * layer}.bias")
    return out


def _classification(spec: SweepSpec) -> bool:
    return load_unit(spec, 0).task == "classification"


def nets_metric_columns(spec: SweepSpec) -> list[str]:
    """Final-metric columns of the configs table."""
    acc = _classification(spec)
    return [m for m in NETS_METRICS if acc or "accuracy" not in m]


def curve_columns(spec: SweepSpec) -> list[str]:
    acc = _classification(spec)
    return [m for m in NETS_CURVES if acc or "accuracy" not in m] + norm_names(spec)


# ---------------------------------------------------------------------------------- frames


def _param_kind(values: tuple) -> str:
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values):
        return "float"
    if all(isinstance(v, bool) for v in values):
        return "bool"
    return "str"


def _param_value(kind: str, v: Any):
    if kind == "int":
        return np.int64(v)
    if kind == "float":
        return np.float64(v)
    if kind == "bool":
        return bool(v)
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def nets_hyper_frame(spec: SweepSpec, plan: SweepPlan, group: Group, chunk: Chunk,
                     splits: list[tuple[torch.Tensor, Any]] | None = None) -> pd.DataFrame:
    """Hyperparameter columns of the chunk's configurations (config_id order). ``splits``:
    the draw's ``unit_splits`` where the caller has them (formed here when None)."""
    from wdlab.nets.mlp import MLP

    t, m, st = spec.train, spec.model, group.static
    ds = load_unit(spec, st["unit"])
    params_json, data_seed = plan.units[st["unit"]]
    params = json.loads(params_json)
    if splits is None:
        splits = unit_splits(spec, ds.n_train, data_seed)
    n_rows = splits[-1]
    n_fit = int(n_rows[0].numel())
    n_val = 0 if n_rows[1] is None else int(n_rows[1].numel())
    if spec.validation.method == "kfold":
        n_val = int(splits[0][1].numel())
    per = {k: v[chunk.m0:chunk.m1] for k, v in group.per_draw.items()}
    K = chunk.m1 - chunk.m0
    init_seed = np.where(per["init_seed"] < 0, data_seed, per["init_seed"]).astype(np.int64)
    P = MLP(ds.n_features, tuple(st["hidden"]), ds.out_features, bias=st["bias"]).layout.size
    frame: dict[str, Any] = {
        "config_id": np.arange(group.offset + chunk.m0, group.offset + chunk.m1, dtype=np.int64),
        "family": m.family, "dataset": spec.dataset.name}
    for k, vals in spec.dataset.param_axes().items():
        kind = _param_kind(vals)
        frame[f"data_{k}"] = [_param_value(kind, params[k])] * K
    frame.update({
        "hidden": ",".join(map(str, st["hidden"])), "activation": st["activation"],
        "bias": np.full(K, st["bias"]), "decay": st["decay"], **group_columns(group, per, K),
        "warmup": np.full(K, m.warmup if group.schedule == "warmup_cosine" else 0, dtype=np.int64),
        "label_smoothing": np.full(K, m.label_smoothing),
        "init_scale": per["init_scale"], "init_seed": init_seed,
        "data_seed": np.full(K, data_seed, dtype=np.int64),
        "n_train": np.full(K, n_fit, dtype=np.int64), "n_val": np.full(K, n_val, dtype=np.int64),
        "n_test": np.full(K, ds.n_test, dtype=np.int64),
        "n_features": np.full(K, ds.n_features, dtype=np.int64),
        "n_classes": np.full(K, ds.n_classes, dtype=np.int64),
        "n_params": np.full(K, P, dtype=np.int64),
        "dtype": t.dtype, "eps": np.full(K, t.eps),
        "batch_seed": np.full(K, t.batch_seed, dtype=np.int64),
        "chunk": np.full(K, chunk.index, dtype=np.int64),
    })
    from wdlab.experiment import hyper_table

    return hyper_table(frame, lead=tuple(frame)[1:tuple(frame).index("optimizer")])


# ---------------------------------------------------------------------------------- chunk


def _val_metrics(mlp, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, loss: str,
                 smoothing: float, classification: bool) -> tuple[np.ndarray, np.ndarray]:
    """(loss (M,), accuracy (M,)) of M networks theta (M, P) on rows X, in float64."""
    from wdlab.nets.engine import _targets
    from wdlab.nets.losses import n_correct
    from wdlab.nets.program import MLPProgram

    tgt, _ = _targets("y_val", y, 1, X.shape[0], loss, mlp.out_features)
    th = theta.to(torch.float64)
    val, z = MLPProgram(mlp).loss(th, X.to(torch.float64)[None], tgt.to(torch.float64, "cpu"),
                                  loss, smoothing)  # (M,), (M, N_v, C)
    acc = n_correct(z, tgt.labels) if classification else torch.full_like(val, float("nan"))
    return val.numpy(), acc.numpy()


def run_nets_chunk(spec: SweepSpec | dict | str, index: int) -> ChunkResult:
    """Train chunk ``index`` of a resolved nets spec and return its tables. No file IO."""
    from wdlab.conventions import DTYPES
    from wdlab.nets import MLP, train

    start = time.perf_counter()
    spec = as_spec(spec)
    plan = cached_plan(spec, make_nets_plan)
    if not 0 <= index < len(plan.chunks):
        raise ValueError(f"chunk: index {index} out of range [0, {len(plan.chunks)})")
    chunk = plan.chunks[index]
    group = plan.groups[chunk.group]
    st, t, m = group.static, spec.train, spec.model
    ds = load_unit(spec, st["unit"])
    data_seed = plan.units[st["unit"]][1]
    classification = ds.task == "classification"
    mlp = MLP(ds.n_features, tuple(st["hidden"]), ds.out_features, st["activation"], st["bias"])
    splits = unit_splits(spec, ds.n_train, data_seed)
    M = chunk.m1 - chunk.m0
    per = {k: v[chunk.m0:chunk.m1] for k, v in group.per_draw.items()}
    init_seed = np.where(per["init_seed"] < 0, data_seed, per["init_seed"]).astype(np.int64)
    rec = spec.record.epochs(group.epochs)
    by_shape: dict[int, list[int]] = {}
    for i, (rows, _) in enumerate(splits):
        by_shape.setdefault(int(rows.numel()), []).append(i)
    models: dict[int, tuple[Any, slice]] = {}  # draw -> (result, its columns)
    calls = 0
    engines: set[str] = set()
    engine = sweep_engine(spec.execution.engine, t.device)
    for draws in by_shape.values():  # one engine call per training-set shape
        g = len(draws)
        tile = lambda v, g=g: np.tile(v, g)  # noqa: E731
        result = train(
            mlp, [ds.X_train[splits[i][0]] for i in draws],
            [ds.y_train[splits[i][0]] for i in draws],
            X_test=[ds.X_test] * g, y_test=[ds.y_test] * g, loss=group.loss,
            label_smoothing=m.label_smoothing, optimizer=group.optimizer,
            regularizer=group.regularizer, lam=tile(per["lam"]), lr=tile(per["lr"]),
            beta1=tile(per["m1"]), beta2=tile(np.nan_to_num(per["beta2"], nan=0.0)),
            eps=t.eps, seed=tile(init_seed), init_scale=tile(per["init_scale"]),
            epochs=group.epochs, batch_size=group.batch_size or None, batch_seed=t.batch_seed,
            schedule=group.schedule,
            warmup=m.warmup if group.schedule == "warmup_cosine" else 0, decay=st["decay"],
            K=g * M, record_epochs=rec, dtype=DTYPES[t.dtype], device=t.device, engine=engine)
        engines.add(result.extra["engine"])
        calls += 1
        for j, i in enumerate(draws):
            models[i] = (result, slice(j * M, (j + 1) * M))
    last = len(splits) - 1  # the model whose curves and test metrics are reported
    res, cols = models[last]
    diverged = first_divergence(np.stack([models[i][0].diverged_epoch[models[i][1]].numpy()
                                          for i in range(len(splits))]), axis=0)  # (M,)
    vals, accs = [], []
    for i, (_, vrows) in enumerate(splits):
        if vrows is None:
            continue
        r, c = models[i]
        v, a = _val_metrics(mlp, r.theta[c], ds.X_train[vrows], ds.y_train[vrows], group.loss,
                            m.label_smoothing, classification)
        vals.append(v)
        accs.append(a)
    vals, accs = np.stack(vals), np.stack(accs)  # (folds, M)

    curve_cols = curve_columns(spec)
    R = len(res.epochs)
    metric = {}
    for name in curve_cols:
        if name == "w_norm":
            continue
        if name in res.metrics:
            metric[name] = res.metrics[name][:, cols].double().numpy()  # (R, M)
        else:
            metric[name] = np.full((R, M), np.nan)
    norms = [metric[n] for n in curve_cols if n.startswith("norm/") and n[5:] in mlp.layout.names]
    metric["w_norm"] = np.sqrt(sum(v * v for v in norms))
    ids = np.arange(group.offset + chunk.m0, group.offset + chunk.m1, dtype=np.int64)
    curves = cut_at_divergence(pd.DataFrame({
        "config_id": np.repeat(ids, R), "epoch": np.tile(np.asarray(res.epochs, dtype=np.int64), M),
        **{n: metric[n].T.reshape(-1) for n in curve_cols}}), diverged, R)

    configs = nets_hyper_frame(spec, plan, group, chunk, splits)
    ok = diverged < 0
    configs["status"] = np.where(ok, "ok", "diverged")
    configs["diverged_epoch"] = pd.array(diverged, dtype="int64")
    (ran,) = engines  # one engine per chunk (sweep_engine), recorded: a resume pins it
    configs["engine"] = ran
    k = vals.shape[0]
    final = {n: metric[n][-1] for n in metric}
    final["val_loss"] = vals.mean(0)
    final["val_accuracy"] = accs.mean(0)
    for name in nets_metric_columns(spec):
        configs[name] = np.where(ok, final[name], np.nan)
    if spec.validation.method == "kfold":
        for name, v in (("val_loss_se", vals), ("val_accuracy_se", accs)):
            if name == "val_accuracy_se" and not classification:
                continue
            configs[name] = np.where(ok, v.std(0, ddof=1) / math.sqrt(k), np.nan)
    return ChunkResult(index, configs, curves, time.perf_counter() - start)


def failed_nets_configs(spec: SweepSpec, index: int, error: str) -> pd.DataFrame:
    """Configs rows of a failed nets chunk: hyperparameters, status ``failed``, NaN metrics."""
    spec = as_spec(spec)
    plan = cached_plan(spec, make_nets_plan)
    chunk = plan.chunks[index]
    df = nets_hyper_frame(spec, plan, plan.groups[chunk.group], chunk)
    df["status"] = "failed"
    df["diverged_epoch"] = np.full(len(df), -1, dtype=np.int64)
    df["engine"] = None
    for name in nets_metric_columns(spec):
        df[name] = np.nan
    if spec.validation.method == "kfold":
        df["val_loss_se"] = np.nan
        if _classification(spec):
            df["val_accuracy_se"] = np.nan
    df["error"] = str(error)
    return df
