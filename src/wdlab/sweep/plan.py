"""The plan of a sweep: the grid expanded into groups and cut into chunks sized to memory.

The grid of a ``SweepSpec`` is the product of its axes. Configurations sharing the engine's
static structure (optimizer, regularizer, loss, epochs, batch size, schedule) form a *group*;
a group is a (data unit) x (per-draw configuration) table, where a data unit is one
(n_train, noise, data seed) draw and a per-draw configuration is one (lr, momentum or
beta1, beta2, init_scale, init_seed, lam), lam innermost. Config ids run draw-major::

    config_id = group.offset + unit * group.n_per_unit + m

A *chunk* is a rectangle of units x per-draw configurations with a contiguous id range: one
engine call whose data draws are the engine's G axis (K = G * M). The plan is a pure function
of the spec with its resolved ``execution.chunk_size``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from wdlab.config.nets import is_nets
from wdlab.config.schema import SweepSpec
from wdlab.conventions import DTYPES
from wdlab.sweep.grid import Chunk, Group, SweepPlan, n_per_draw, per_draw, split_even

#: Final metrics and curve columns, in table order (dist_to_ridge/_limit only when recorded).
LINEAR_METRICS = ("train_mse", "val_mse", "test_mse", "penalty", "objective", "w_norm",
                  "dist_to_ridge", "dist_to_limit")


def make_plan(spec: SweepSpec) -> SweepPlan:
    """Expand the grid and cut it into chunks of at most ``execution.chunk_size`` models."""
    if is_nets(spec):
        from wdlab.sweep.nets_chunk import make_nets_plan

        return make_nets_plan(spec)
    C = spec.execution.chunk_size
    if C is None:
        raise ValueError("execution.chunk_size: resolve the spec first (resolve_spec)")
    d, t = spec.data, spec.train
    units = [(n, s_noise, seed) for n in d.n_train for s_noise in d.noise for seed in d.seeds]
    mpc = spec.validation.folds + 1 if spec.validation.method == "kfold" else 1
    groups: list[Group] = []
    chunks: list[Chunk] = []
    offset = 0
    for opt, reg in t.pair_list():
        for loss in t.loss:
            for epochs in t.epochs:
                for bs in t.batch_size:
                    for sched in t.schedule:
                        g = Group(len(groups), opt, reg, loss, epochs, bs, sched, offset,
                                  len(units), per_draw(spec, opt))
                        groups.append(g)
                        M = g.n_per_unit
                        if M * mpc <= C:
                            for u0, u1 in split_even(g.n_units, C // (M * mpc)):
                                chunks.append(Chunk(len(chunks), g.index, u0, u1, 0, M,
                                                    offset + u0 * M))
                        else:
                            for u in range(g.n_units):
                                for m0, m1 in split_even(M, max(1, C // mpc)):
                                    chunks.append(Chunk(len(chunks), g.index, u, u + 1, m0, m1,
                                                        offset + u * M + m0))
                        offset += g.n_configs
    return SweepPlan(units, groups, chunks, C, mpc)


def _record_rows(spec: SweepSpec) -> int:
    return max(spec.record.n_epochs(e) for e in spec.train.epochs)


def n_configs(spec: SweepSpec) -> int:
    """The number of configurations of the grid, counted without expanding it."""
    if is_nets(spec):
        from wdlab.sweep.nets_chunk import n_nets_configs

        return n_nets_configs(spec)
    t, d = spec.train, spec.data
    units = len(d.n_train) * len(d.noise) * len(d.seeds)
    static = len(t.loss) * len(t.epochs) * len(t.batch_size) * len(t.schedule)
    return units * static * n_per_draw(t)


#: A plan bigger than this is refused whatever the machine (the plan alone would be ~GBs).
MAX_CONFIGS = 10**8


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


def _free_disk(path: Path) -> int | None:
    import shutil

    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def plan_size(spec: SweepSpec) -> dict[str, int]:
    """What a plan will need, estimated from the spec alone (nothing is expanded):
    configurations, recorded rows (configurations x recorded epochs), the bytes of the
    curves table on disk (parquet, and its csv twin) and of the configs table in memory."""
    configs = n_configs(spec)
    mpc = spec.validation.folds + 1 if spec.validation.method == "kfold" else 1
    rows = sum(spec.record.n_epochs(e) for e in spec.train.epochs) * (configs // len(spec.train.epochs))
    n_cols = (len(LINEAR_METRICS) - (0 if spec.record.dist_to_ridge else 1)
              - (0 if spec.record.dist_to_limit else 1) + 2)  # + config_id, epoch
    curves = rows * n_cols * 8 * 2  # parquet + csv (~as large)
    return {"configs": configs, "models": configs * mpc, "rows": rows, "curve_bytes": curves,
            "config_bytes": configs * 1000}  # ~40 columns through pandas


def check_plan_size(spec: SweepSpec, out: Path | str | None = None) -> dict[str, int]:
    """Refuse a plan that cannot fit, before anything is allocated: one line saying how big
    it is and how to shrink it. Bounds: ``MAX_CONFIGS`` configurations, the configs table in
    half the available memory, the curves in the free disk space of ``out``."""
    size = plan_size(spec)
    t, d = spec.train, spec.data
    axes = {"train.lam": len(t.lam), "train.lr": len(t.lr), "data.seeds": len(d.seeds),
            "data.n_train": len(d.n_train), "train.epochs": len(t.epochs)}
    biggest = ", ".join(f"{k} ({v:,})" for k, v in sorted(axes.items(), key=lambda kv: -kv[1])[:3])
    shrink = f"shrink the largest axes: {biggest}"
    if size["configs"] > MAX_CONFIGS:
        raise ValueError(f"plan: {size['configs']:,} configurations, more than the "
                         f"{MAX_CONFIGS:,} a sweep may hold; {shrink}")
    mem = _available_host_bytes()
    if size["config_bytes"] > mem // 2:
        raise ValueError(f"plan: the configs table of {size['configs']:,} configurations needs "
                         f"~{_human(size['config_bytes'])} of memory, more than half the "
                         f"{_human(mem)} available; {shrink}")
    free = _free_disk(out) if out is not None else None
    if free is not None and size["curve_bytes"] > free:
        raise ValueError(f"plan: {size['configs']:,} configurations x recorded epochs = "
                         f"{size['rows']:,} curve rows, ~{_human(size['curve_bytes'])} on disk, "
                         f"more than the {_human(free)} free; record fewer epochs "
                         f"(record.log_points, e.g. --log-points 50) or {shrink}")
    return size


def bytes_per_config(spec: SweepSpec) -> tuple[int, int]:
    """Estimated (device, host) bytes one configuration needs inside a chunk.

    Device: parameters, optimizer state and temporaries (~16 (K, D1) rows), residuals and
    the metric buffers. Host: the curve rows as float64 through torch, numpy, pandas and
    parquet (~4 copies), and the configs row.
    """
    d = spec.data
    D1 = d.n_features + int(spec.train.fit_intercept)
    n_tr = max(d.n_train)
    n_ev = d.n_test + (spec.n_val if spec.validation.method == "holdout" else n_tr)
    item = torch.tensor([], dtype=DTYPES[spec.train.dtype]).element_size()
    R, n_metrics = _record_rows(spec), len(LINEAR_METRICS)
    mpc = spec.validation.folds + 1 if spec.validation.method == "kfold" else 1
    device = item * (16 * D1 + 6 * n_tr + 3 * n_ev + R * n_metrics) * mpc
    host = R * (n_metrics + 2) * 8 * 4 + 600
    return device, host


#: Largest chunk on CPU: beyond this the per-model speed no longer improves (bench_sweep.py),
#: and smaller chunks keep progress and resume fine-grained.
CPU_MAX_CHUNK = 16384
GPU_MAX_CHUNK = 1 << 20


def auto_chunk_size(spec: SweepSpec) -> int:
    """Models per engine call that fit the memory budget (``execution.memory_gb`` or auto).

    Auto budget: a quarter of the available host memory (at most 2 GiB) for the host side,
    and on CUDA half the free device memory for the device side.
    """
    if is_nets(spec):
        from wdlab.sweep.nets_chunk import nets_auto_chunk_size

        return nets_auto_chunk_size(spec)
    dev_b, host_b = bytes_per_config(spec)
    avail = _available_host_bytes()
    if spec.execution.memory_gb is not None:
        budget = spec.execution.memory_gb * 2**30
        host_budget = dev_budget = budget
    else:
        host_budget = min(2 * 2**30, avail // 4)
        dev_budget = host_budget
        if spec.train.device.startswith("cuda") and torch.cuda.is_available():
            free, _ = torch.cuda.mem_get_info(torch.device(spec.train.device))
            dev_budget = free // 2
    cap = GPU_MAX_CHUNK if spec.train.device.startswith("cuda") else CPU_MAX_CHUNK
    if spec.train.device == "cpu":  # device and host memory are the same memory
        n = int(min(host_budget, dev_budget) // (dev_b + host_b))
    else:
        n = int(min(dev_budget // dev_b, host_budget // host_b))
    return max(1, min(n, cap))


def _available_host_bytes() -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 8 * 2**30


def resolve_spec(spec: SweepSpec) -> SweepSpec:
    """The spec with a concrete ``execution.chunk_size`` (sized to this machine's memory).

    The resolved spec is what the manifest stores and what ``run_chunk`` takes, so every
    process that runs a chunk of a sweep agrees on the plan.
    """
    if spec.execution.chunk_size is not None:
        return spec
    ex = spec.execution.replace(chunk_size=auto_chunk_size(spec))
    return spec.replace(execution=ex.model_dump())
