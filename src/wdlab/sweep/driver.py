"""The driver: chunks through an executor, per-chunk files, resume, assembly, progress.

``run_sweep`` resolves the spec, plans, checks, writes the manifest (status ``running``),
runs the pending chunks through an executor (in process by default; a Ray backend yields
the same ``ChunkResult``s), writes each chunk atomically, then assembles the final tables
in chunk order (= config_id order), so a resumed run is bitwise identical to an
uninterrupted one. Progress goes to an ``on_event`` callback: the library draws no UI.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from wdlab.config.load import spec_from_json
from wdlab.config.nets import is_nets
from wdlab.config.schema import SweepSpec
from wdlab.store import (
    MANIFEST,
    RunDir,
    check_owner,
    check_writable,
    default_run_dir,
    provenance,
    read_manifest,
    run_lock,
    write_json,
    write_table,
    write_table_stream,
)
from wdlab.sweep.chunk import failed_chunk_configs, metric_columns
from wdlab.sweep.executor import ChunkFailure, Executor, local_executor
from wdlab.sweep.files import (
    CHUNK_DIR,
    chunk_done,
    chunk_failure,
    chunk_path,
    clean_temporaries,
    remove_chunks,
    write_chunk,
    write_chunk_failure,
)
from wdlab.sweep.plan import SweepPlan, check_plan_size, make_plan, resolve_spec
from wdlab.sweep.reference import (
    closed_form_coefficients,
    closed_form_frame,
    stability_warnings,
)

#: TEST-ONLY hook: SIGKILL this process right after chunk N's files are written.
KILL_AFTER_CHUNK_ENV = "WDLAB_TEST_KILL_AFTER_CHUNK"
TABLES = ("configs", "curves", "summary", "selection", "ridge")


@dataclass
class SweepEvent:
    """Progress of a sweep, sent to the ``on_event`` callback (the library draws no UI).

    kind: ``start`` (plan made; ``configs_done`` counts chunks already on disk), ``warning``
    (``message``), ``chunk`` (a chunk finished), ``failed`` (a chunk failed), ``assemble``,
    ``done`` (``message`` = run directory) or ``note``.
    """

    kind: str
    configs_done: int = 0
    configs_total: int = 0
    chunks_done: int = 0
    chunks_total: int = 0
    message: str = ""
    chunk: int | None = None
    extra: dict = field(default_factory=dict)


def _seeds_record(spec: SweepSpec) -> dict[str, Any]:
    t, v = spec.train, spec.validation
    return {"data_seeds": list(spec.data.seeds),
            "init_seeds": "data" if t.init_seed == "data" else list(t.init_seed),
            "batch_seed": t.batch_seed, "validation_seed": v.seed,
            "streams": "data: stream 'data', init: 'init', holdout: 'val<seed>', "
                       "split/kfold: '<method><seed>' (wdlab.data.synthetic.stream_seed)"}


def _emit(on_event, event: SweepEvent) -> None:
    if on_event is not None:
        on_event(event)


def _check_out(path: Path, force: bool) -> None:
    """Refuse to start over a completed or unfinished run unless ``force`` (the ownership
    rule of ``wdlab.store.check_owner``), and a folder this process cannot write."""
    check_owner(path, force)
    check_writable(path)


def _clear_run(path: Path) -> None:
    """Remove a previous run's files (known names only) before a forced restart."""
    chunks = path / CHUNK_DIR
    if chunks.is_dir():
        for p in chunks.iterdir():
            if p.suffix in (".parquet", ".json", ".tmp"):
                p.unlink()
        with contextlib.suppress(OSError):
            chunks.rmdir()
    names = [MANIFEST, "report.html"] + [f"{t}.{e}" for t in TABLES for e in ("parquet", "csv")]
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (path / name).unlink()


def run_sweep(
    spec: SweepSpec,
    out: Path | str | None = None,
    *,
    force: bool = False,
    csv: bool = True,
    report: bool = True,
    executor: Executor | None = None,
    on_event: Callable[[SweepEvent], None] | None = None,
    keep_chunks: bool = False,
) -> Path:
    """Run a sweep into a run directory and return it.

    Everything that can fail on the spec fails before anything is written. A completed
    (or unfinished) run in ``out`` is refused unless ``force``.
    """
    from wdlab.devices import check_device
    check_device(spec.train.device, "train.device")  # before anything is written
    path = Path(out) if out is not None else default_run_dir(f"sweep-{spec.name}")
    check_plan_size(spec, path)  # before anything is allocated
    spec = resolve_spec(spec)
    executor = executor or _spec_executor(spec)
    plan = make_plan(spec)
    warnings = [] if is_nets(spec) else stability_warnings(spec)  # GD bound: linear only
    _check_out(path, force)
    created = not path.exists()
    with run_lock(path):
        _check_out(path, force)  # again, under the lock
        try:
            if force:
                _clear_run(path)
            manifest = _new_manifest(spec, plan, warnings, csv)
            run = RunDir(path, force=True, csv=csv).create()
            run.manifest(manifest)
            for line in warnings:
                _emit(on_event, SweepEvent("warning", message=line))
            return _drive(run.path, spec, plan, manifest, executor=executor,
                          on_event=on_event, report=report, keep_chunks=keep_chunks)
        except Exception:
            # A run this call created and that holds no finished chunk is worth nothing:
            # leave no `running` directory behind. Finished chunks stay for --resume.
            if created and not any(chunk_done(path, i) for i in range(len(plan.chunks))):
                import shutil

                shutil.rmtree(path, ignore_errors=True)
            raise


def resume_sweep(
    run_dir: Path | str,
    *,
    csv: bool | None = None,
    report: bool = True,
    executor: Executor | None = None,
    on_event: Callable[[SweepEvent], None] | None = None,
    keep_chunks: bool = False,
) -> Path:
    """Finish an interrupted sweep from its manifest; a completed run is left as it is."""
    path = Path(run_dir)
    if not (path / MANIFEST).is_file():
        raise FileNotFoundError(f"--resume: {path} has no {MANIFEST}; nothing to resume "
                                f"(start the sweep again without --resume)")
    with run_lock(path):
        return _resume_locked(path, csv=csv, report=report, executor=executor,
                              on_event=on_event, keep_chunks=keep_chunks)


def _resume_locked(path: Path, *, csv, report, executor, on_event, keep_chunks) -> Path:
    from wdlab.devices import check_device
    manifest = read_manifest(path)
    if manifest.get("kind") != "sweep":
        kind = repr(manifest.get("kind"))[:40]
        raise ValueError(f"--resume: {path} is not a sweep run (kind {kind})")
    if manifest.get("status") == "complete":
        _emit(on_event, SweepEvent("note", message=f"{path} is already complete; nothing to do"))
        return path
    plan_record = manifest.get("plan")
    if not isinstance(manifest.get("spec"), dict) or not isinstance(plan_record, dict):
        raise ValueError(f"--resume: {path / MANIFEST} has no spec or plan; rerun with --force")
    spec = spec_from_json(manifest["spec"])
    check_device(spec.train.device, "train.device")
    plan = make_plan(spec)
    if plan.fingerprint() != plan_record.get("fingerprint"):
        theirs = repr(plan_record.get("fingerprint"))[:20]
        raise ValueError(f"--resume: the chunk plan of {path} differs from this wdlab's "
                         f"({theirs} vs {plan.fingerprint()}); rerun with --force")
    specs = pinned_specs(path, spec, plan)  # the engines this run resolved, or a refusal
    executor = executor or _spec_executor(spec)
    if csv is not None:
        manifest["csv"] = csv
    manifest.setdefault("resumed", []).append(provenance(spec.train.device))
    write_json(path / MANIFEST, manifest)
    from wdlab.answer import as_warnings

    for w in as_warnings(manifest.get("warnings", [])):
        _emit(on_event, SweepEvent("warning", message=w["message"]))
    return _drive(path, spec, plan, manifest, executor=executor, on_event=on_event,
                  report=report, keep_chunks=keep_chunks, specs=specs)


def engine_available(engine: str, device: str) -> bool:
    """Can ``engine`` run on ``device`` here (a C++ compiler for native, Triton...)?"""
    import torch

    from wdlab.engine import fast
    from wdlab.engine.kernels import triton as fused

    dev = torch.device(device)
    if engine == "native":
        return fast.native_possible(dev)
    if engine == "compiled":
        return fast.compiler_available(dev)
    if engine == "triton":
        return fused.available(dev)
    return engine in ("eager", "nets")  # "nets": runs written before the nets engines had names


def pinned_specs(path: Path, spec: SweepSpec, plan: SweepPlan) -> dict[int, SweepSpec]:
    """Per group, the spec that trains its pending chunks with the engine its finished chunks
    used: the engine a run resolved is part of its identity, so a resume never mixes engines
    within a group (summary and selection would split it in two). Raises a one-line
    ValueError when that engine cannot run here."""
    import pyarrow.parquet as pq

    used: dict[int, set[str]] = {}
    for i, c in enumerate(plan.chunks):
        if chunk_done(path, i):
            col = pq.read_table(chunk_path(path, i, "configs"), columns=["engine"]).column(0)
            used.setdefault(c.group, set()).update(e for e in col.to_pylist() if e)
    specs: dict[int, SweepSpec] = {}
    for group, engines in sorted(used.items()):
        for engine in sorted(engines):
            if not engine_available(engine, spec.train.device):
                raise ValueError(
                    f"--resume: {path} trained with engine {engine!r}, which cannot run here "
                    f"(execution.engine; native needs a C++ compiler, triton needs Triton); "
                    f"resume where it can, or start over with --force")
        if len(engines) == 1 and spec.execution.engine == "auto":
            engine = next(iter(engines))
            if is_nets(spec) and engine == "nets":
                engine = "eager"  # written by the one nets engine of before: the eager program
            ex = spec.execution.replace(engine=engine)
            specs[group] = spec.replace(execution=ex.model_dump())
    return specs


def _spec_executor(spec: SweepSpec) -> Executor:
    """The executor of the spec's ``execution.backend`` (local, or Ray at ``address``)."""
    from wdlab.sweep.backends import executor_for

    return executor_for(spec.execution.backend, spec.execution.address)


def _new_manifest(spec: SweepSpec, plan: SweepPlan, warnings: list[str], csv: bool) -> dict:
    return {"kind": "sweep", "status": "running", "spec": spec.model_dump(mode="json"),
            "seeds": _seeds_record(spec), "provenance": provenance(spec.train.device),
            "plan": {**plan.to_json(), "fingerprint": plan.fingerprint()},
            "warnings": [{"code": "unstable_lr", "message": w} for w in warnings], "csv": csv}


def _run_pending(executor, spec: SweepSpec, plan: SweepPlan, pending: list[int],
                 specs: dict[int, SweepSpec]):
    """The executor over the pending chunks, each group with its pinned spec (if any); one
    executor call per distinct spec (a Ray instance is not started once per group)."""
    batches: dict[str | None, tuple[SweepSpec, list[int]]] = {}
    for i in pending:
        pinned = specs.get(plan.chunks[i].group)
        key = None if pinned is None else pinned.execution.engine
        batches.setdefault(key, (pinned or spec, []))[1].append(i)
    for batch_spec, indices in batches.values():
        yield from executor(batch_spec, indices)


def _drive(path: Path, spec: SweepSpec, plan: SweepPlan, manifest: dict, *, executor, on_event,
           report: bool, keep_chunks: bool, specs: dict[int, SweepSpec] | None = None) -> Path:
    clean_temporaries(path)
    total = plan.n_configs
    done = [i for i in range(len(plan.chunks)) if chunk_done(path, i)]
    pending = [i for i in range(len(plan.chunks)) if not chunk_done(path, i)]
    configs_done = sum(plan.chunks[i].n_configs for i in done)
    _emit(on_event, SweepEvent("start", configs_done, total, len(done), len(plan.chunks)))
    kill_after = os.environ.get(KILL_AFTER_CHUNK_ENV)
    start = time.perf_counter()
    n_run, failed = 0, []
    for item in _run_pending(executor or local_executor, spec, plan, pending, specs or {}):
        if isinstance(item, ChunkFailure):
            write_chunk_failure(path, item.index, item.error)
            failed.append(item.index)
            _emit(on_event, SweepEvent("failed", configs_done, total, len(done), len(plan.chunks),
                                       message=item.error, chunk=item.index))
            continue
        write_chunk(path, item)
        done.append(item.index)
        n_run += plan.chunks[item.index].n_configs
        configs_done += plan.chunks[item.index].n_configs
        _emit(on_event, SweepEvent("chunk", configs_done, total, len(done), len(plan.chunks),
                                   chunk=item.index, extra={"seconds": item.seconds}))
        if kill_after is not None and str(item.index) == kill_after:  # TEST-ONLY hook
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
    elapsed = time.perf_counter() - start
    _emit(on_event, SweepEvent("assemble", configs_done, total, len(done), len(plan.chunks)))
    failures = {i: chunk_failure(path, i) for i in range(len(plan.chunks))
                if not chunk_done(path, i)}
    csv = bool(manifest.get("csv", True))
    assemble(path, spec, plan, failures, csv=csv)
    from wdlab.pipeline import answer_warnings  # the run's named checks (wdlab.answer)

    if is_nets(spec):
        from wdlab.sweep.nets_answer import run_nets_warnings

        manifest["warnings"] = run_nets_warnings(path, manifest.get("warnings", []))
    else:
        manifest["warnings"] = answer_warnings(path, manifest.get("warnings", []))
    status = "complete" if not failures else "incomplete"
    manifest.update({
        "status": status,
        "timing": {"seconds_this_process": round(elapsed, 3), "configs_this_process": n_run,
                   "configs_per_second": round(n_run / elapsed, 1) if elapsed > 0 else None},
        "failed_chunks": sorted(failures),
    })
    if report and status == "complete" and _report_available():
        # 'complete' only once report.html exists: a kill or a full disk while the report is
        # written leaves 'reporting', and --resume (chunks kept until then) writes it.
        manifest.update(status="reporting", files=_files(path))
        write_json(path / MANIFEST, manifest)
        _write_report(path)
        manifest["status"] = status
    elif report:
        _write_report(path)  # an incomplete run's report shows what finished
    manifest["files"] = _files(path)
    write_json(path / MANIFEST, manifest)
    if status == "complete" and not keep_chunks:
        remove_chunks(path)
    _emit(on_event, SweepEvent("done", configs_done, total, len(done), len(plan.chunks),
                               message=str(path), extra={"status": status,
                                                         "failed": sorted(failures)}))
    return path


def _files(path: Path) -> list[str]:
    from wdlab.experiment import run_files  # the one manifest file list of every run

    return run_files(path)


def _report_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("wdlab.report") is not None


def _write_report(path: Path) -> None:
    """Write report.html; a full disk or a permission error says how to finish the run."""
    if not _report_available():
        return
    from wdlab.report import write_report  # type: ignore[attr-defined]

    try:
        write_report(path)
    except OSError as exc:
        raise OSError(f"report: not written ({exc.strerror or exc}); the tables are final: "
                      f"wdlab sweep --resume {path} writes the report") from None


def _chunk_parts(path: Path, spec: SweepSpec, plan: SweepPlan, table: str,
                 failures: dict[int, str | None]) -> Iterator[Any]:
    """Each chunk's table in chunk order (= config_id order), as Arrow tables read straight
    from the chunk files; with failures, configs as DataFrames with an ``error`` column and
    the failed chunks' rows marked ``failed``."""
    import pyarrow.parquet as pq

    any_failed = bool(failures)
    for i in range(len(plan.chunks)):
        if i in failures:
            if table == "configs":
                yield failed_chunk_configs(spec, i, failures[i] or "not run")
            continue
        part = pq.read_table(chunk_path(path, i, table))
        if table == "configs" and any_failed:
            part = part.to_pandas()
            part["error"] = ""
        yield part


def assemble(path: Path, spec: SweepSpec, plan: SweepPlan, failures: dict[int, str | None],
             *, csv: bool = True) -> None:
    """Write configs, curves, summary and selection from the chunk files, in chunk order."""
    from wdlab.selection import select, summarize
    empty = pd.DataFrame({c: pd.Series(dtype="int64" if c in ("config_id", "epoch") else "float64")
                          for c in ["config_id", "epoch", *metric_columns(spec)]})
    write_table_stream(path / "curves.parquet",
                       _or_default(_chunk_parts(path, spec, plan, "curves", failures), empty),
                       csv=csv)
    write_table_stream(path / "configs.parquet", _chunk_parts(path, spec, plan, "configs", failures),
                       csv=csv)
    configs = pd.read_parquet(path / "configs.parquet")
    summary = summarize(configs)
    write_table(path / "summary.parquet", summary, csv=csv)
    ridge = None
    if not is_nets(spec):
        from wdlab.engine.threads import one_thread

        # the closed form is many tiny SVDs: a second thread buys nothing, and on a busy
        # machine its spin-waits cost seconds (5-7 s instead of 0.3 s for the 2,000-config
        # seed sweep at load ~12); same values on any thread count (the seed sweep's
        # ridge.parquet is bitwise what 2 threads gave)
        with one_thread():
            ridge = closed_form_frame(spec)
    if ridge is not None:
        write_table(path / "ridge.parquet", ridge, csv=False)
    coefs = None if is_nets(spec) else closed_form_coefficients(spec)  # views only read
    if coefs is not None:
        write_table(path / "ridge_coefficients.parquet", coefs, csv=False)
    write_table(path / "selection.parquet", select(summary, ridge, metric=selection_metric(spec)),
                csv=csv)


def selection_metric(spec: SweepSpec) -> str:
    """The summary column selection ranks by: val_mse (linear), val_loss or val_accuracy."""
    if not is_nets(spec):
        return "val_mse"
    return "val_accuracy" if spec.selection.metric == "accuracy" else "val_loss"


def _or_default(parts: Iterator[Any], default: pd.DataFrame) -> Iterator[Any]:
    """``parts``, or ``[default]`` when there are none (every chunk failed)."""
    first = next(parts, None)
    if first is None:
        yield default
        return
    yield first
    yield from parts
