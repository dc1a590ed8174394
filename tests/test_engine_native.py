"""The native C++ kernel (engine ``native``): equals the torch.optim oracles over every PAIRS
entry in float32 and float64, the eager engine over 200 steps (eval sets, reference, several
draws, partial blocks, divergence), is bitwise reproducible whatever the thread count or
epochs per call, and falls back with a warning where it cannot be built.
"""

from __future__ import annotations

import os
import stat
import warnings

import pytest
import torch

from oracle import assert_matches_single_runs, assert_results_f32_close
from wdlab.data.synthetic import init_weights, make_linear, problem_from_datasets
from wdlab.engine import PAIRS, EngineFallbackWarning, EngineSpec, Hyper, build_chain, fast, train
from wdlab.engine.kernels import native
from wdlab.engine.kernels import native_build as _native

needs_compiler = pytest.mark.skipif(_native.compiler() is None,
                                    reason="no C++ compiler to build the native kernel")


@pytest.fixture(scope="module")
def small():
    return make_linear(5, 6, 4, w_star=2.0, bias=0.5, noise=0.1, seed=1)


def _hyper(optimizer: str, k: int, seed: int = 0) -> Hyper:
    g = torch.Generator().manual_seed(seed)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(k, generator=g, dtype=torch.float64)  # noqa: E731
    hi_lr = -1.7 if optimizer == "sgd" else -1.3
    return Hyper(10 ** u(-3, 0), 10 ** u(-3, hi_lr), u(0.5, 0.9), u(0.9, 0.999))


def _train(prob, optimizer, regularizer, engine, *, epochs=30, schedule="constant", k=6,
           hyper=None, dtype=torch.float32, **kw):
    hyper = _hyper(optimizer, k) if hyper is None else hyper
    theta0 = init_weights(torch.arange(k), prob.X.shape[2] - 1, 0.5, dtype=dtype)
    spec = EngineSpec(optimizer, regularizer, "mse", epochs=epochs, schedule=schedule,
                      dtype=dtype)
    return hyper, theta0, train(prob, spec, hyper, theta0, engine=engine, **kw)


@needs_compiler
@pytest.mark.parametrize(("optimizer", "regularizer"), PAIRS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_native_equals_single_runs(small, optimizer, regularizer, dtype):
    """k = 19: full 16- or 8-lane float32 blocks and a partial one (float64: 8 or 4 lanes);
    float64 to 1e-10; float32 held to the float64 one-model runs (oracle.assert_f32_close)."""
    hyper, theta0, res = _train(problem_from_datasets([small]), optimizer, regularizer,
                                "native", k=19, dtype=dtype)
    assert res.extra["engine"] == "native"
    assert_matches_single_runs(
        small.X_train, small.y_train, res, hyper, theta0.double(), rtol=1e-10,
        optimizer=optimizer, regularizer=regularizer, loss="mse", epochs=30)


@needs_compiler
@pytest.mark.parametrize(("optimizer", "regularizer", "schedule"),
                         [("adam", "mean", "constant"), ("sgd", "independent", "cosine"),
                          ("adamw", "decoupled", "cosine"), ("sgd", "sum", "constant")])
@pytest.mark.parametrize(("M", "dtype", "rtol", "epochs"), [(3, torch.float32, None, 200),
                                                            (21, torch.float64, 1e-9, 40)])
def test_native_equals_eager(optimizer, regularizer, schedule, M, dtype, rtol, epochs):
    """Two draws with M configurations each, an eval set, the closed-form reference and a
    subset of recorded epochs. 200 float32 steps held to the float64 eager run, bounded by
    eager float32's own error (oracle.assert_results_f32_close; small learning rates keep
    Adam off its rattling fixed point, where rounding is amplified); M = 21 in float64 (two
    8-lane blocks and a partial one per draw) checks the block bookkeeping to rtol 1e-9 over
    40 steps, before any configuration converges."""
    draws = [make_linear(3, 8, 3, w_star=1.5, bias=0.3, noise=0.1, seed=s) for s in (2, 3)]
    prob = problem_from_datasets(draws)
    k = 2 * M
    ref = torch.randn(k, 4, generator=torch.Generator().manual_seed(0))
    h = _hyper(optimizer, k)
    kw = dict(epochs=epochs, schedule=schedule, reference=ref,
              record_epochs=[0, 1, 7, 3 * epochs // 4, epochs],
              hyper=Hyper(h.lam, h.lr / 4, h.beta1, h.beta2), k=k, dtype=dtype)
    _, _, eager = _train(prob, optimizer, regularizer, "eager", **kw)
    _, _, nat = _train(prob, optimizer, regularizer, "native", **kw)
    assert nat.extra["engine"] == "native"
    assert set(nat.metrics) == set(eager.metrics) and "test_mse" in nat.metrics
    assert nat.epochs == eager.epochs
    assert torch.equal(nat.diverged_epoch, eager.diverged_epoch)
    if dtype == torch.float32:
        _, _, exact = _train(prob, optimizer, regularizer, "eager", **{**kw, "dtype": torch.float64})
        assert_results_f32_close(nat, eager, exact, msg="native")
        return
    torch.testing.assert_close(nat.theta, eager.theta, rtol=rtol, atol=rtol)
    for name, v in eager.metrics.items():
        torch.testing.assert_close(nat.metrics[name], v, rtol=rtol, atol=rtol / 10, msg=name)


@needs_compiler
def test_native_equals_eager_on_the_seed_problem_float64():
    """The seed problem (200 features, 10 + 10 samples), Adam + mean L2, 300 epochs."""
    from wdlab.data.synthetic import SEED_DATA

    prob = problem_from_datasets([make_linear(**SEED_DATA, seed=0)])
    hyper = Hyper.of(20, lam=torch.logspace(-3, 1, 20), lr=0.05)
    theta0 = init_weights(torch.arange(20), SEED_DATA["n_features"], dtype=torch.float64)
    spec = EngineSpec("adam", "mean", epochs=300, dtype=torch.float64)
    nat = train(prob, spec, hyper, theta0, engine="native")
    eager = train(prob, spec, hyper, theta0, engine="eager")
    torch.testing.assert_close(nat.theta, eager.theta, rtol=1e-9, atol=1e-9)
    for name, v in eager.metrics.items():
        torch.testing.assert_close(nat.metrics[name], v, rtol=1e-8, atol=1e-12, msg=name)


@needs_compiler
def test_native_freezes_diverged_configs_like_eager(small):
    prob = problem_from_datasets([small])
    k = 20
    lr = torch.full((k,), 1e-2, dtype=torch.float64)
    lr[::2] = 50.0  # plain SGD with a huge step diverges within a few epochs
    h = _hyper("sgd", k)
    hyper = Hyper(h.lam, lr, h.beta1, h.beta2)
    _, _, exact = _train(prob, "sgd", "mean", "eager", hyper=hyper, k=k, dtype=torch.float64)
    _, _, eager = _train(prob, "sgd", "mean", "eager", hyper=hyper, k=k)
    _, _, nat = _train(prob, "sgd", "mean", "native", hyper=hyper, k=k)
    assert (eager.diverged_epoch[::2] > 0).all() and (eager.diverged_epoch[1::2] == -1).all()
    # lr = 50 grows the iterate by orders of magnitude per epoch: the epoch it overflows at
    # does not depend on rounding, so equality holds on any CPU
    assert torch.equal(nat.diverged_epoch, eager.diverged_epoch)
    assert torch.equal(exact.diverged_epoch, eager.diverged_epoch)
    assert_results_f32_close(nat, eager, exact, configs=eager.diverged_epoch == -1)


@needs_compiler
def test_threads_and_epoch_chunks_do_not_change_a_bit(small, monkeypatch):
    """Each configuration's arithmetic is the same whichever thread runs its block, however
    the blocks are grouped and however the epochs are cut into calls (state through memory,
    beta^t restarted)."""
    prob = problem_from_datasets([make_linear(5, 6, 4, seed=s) for s in (1, 2, 3)])
    kw = dict(epochs=40, k=3 * 37, schedule="cosine")
    _, _, one = _train(prob, "adam", "mean", "native", **kw)
    runs = []
    for threads, per_call, work in ((2, 7, 1 << 22), (3, 40, 16 * 40), (5, 1, 1)):
        monkeypatch.setattr(native, "EPOCHS_PER_CALL", per_call)
        monkeypatch.setattr(native, "WORK_PER_CALL", work)
        monkeypatch.setattr(native, "THREADS", threads)
        runs.append(_train(prob, "adam", "mean", "native", **kw)[2])
    for res in runs:
        assert res.extra["engine"] == "native"
        assert torch.equal(res.theta, one.theta)
        for name in one.metrics:
            assert torch.equal(res.metrics[name], one.metrics[name]), name


def test_no_compiler_falls_back_with_warning(small, monkeypatch):
    monkeypatch.setattr(native, "unavailable", lambda chain, dtype: "no C++ compiler (simulated)")
    monkeypatch.setattr(fast, "compiler_available", lambda device: False)
    prob = problem_from_datasets([small])
    with pytest.warns(EngineFallbackWarning, match="simulated"):
        res = _train(prob, "adam", "decoupled", "native")[2]
    eager = _train(prob, "adam", "decoupled", "eager")[2]
    assert res.extra["engine"] == "eager"
    assert torch.equal(res.theta, eager.theta)


def test_kernel_failure_falls_back_with_warning(small, monkeypatch):
    def broken(*args, **kwargs):
        raise MemoryError("scratch (simulated)")

    monkeypatch.setattr(fast, "compiler_available", lambda device: False)
    monkeypatch.setattr(native, "unavailable", lambda chain, dtype: None)
    monkeypatch.setattr(native, "run", broken)
    prob = problem_from_datasets([small])
    with pytest.warns(EngineFallbackWarning, match="simulated"):
        res = _train(prob, "sgd", "sum", "native")[2]
    assert res.extra["engine"] == "eager"


def test_auto_picks_native_on_cpu_when_a_compiler_is_present(small, monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(native, "compiler_present", lambda: True)
    assert fast.choose_engine("auto", cpu, 1, 10, True) == "native"
    assert fast.choose_engine("auto", cpu, 1, 10, False) == "eager"  # minibatch
    assert fast.choose_engine("auto", cuda, 1, 10, True) != "native"
    monkeypatch.setattr(native, "compiler_present", lambda: False)
    monkeypatch.setattr(fast, "compiler_available", lambda device: False)
    assert fast.choose_engine("auto", cpu, 10**6, 100, True) == "eager"
    res = _train(problem_from_datasets([small]), "adam", "mean", "auto")[2]
    assert res.extra["engine"] == "eager"


@needs_compiler
def test_auto_runs_native_untiled_on_cpu(small):
    res = _train(problem_from_datasets([small]), "adam", "mean", "auto", k=5000, epochs=3)[2]
    assert res.extra == {"engine": "native"}  # one call over all K: no cache tiles


@pytest.mark.parametrize(("optimizer", "regularizer"), PAIRS)
@pytest.mark.parametrize("momentum", [True, False])
def test_every_registry_chain_is_covered(optimizer, regularizer, momentum):
    chain = build_chain(optimizer, regularizer, n_decayed=5, momentum=momentum)
    assert native.covers(chain, torch.float32) is None
    assert native.covers(chain, torch.float64) is None
    assert "float16" in native.covers(chain, torch.float16)
    no_lr = [r for r in chain if type(r).__name__ != "ScaleByLearningRate"]
    assert "rule chain" in native.covers(no_lr, torch.float32)


# -- building and caching (wdlab.engine.kernels.native_build) --------------------------------------------------

def _fresh_loader(monkeypatch, tmp_path):
    monkeypatch.setenv("WDLAB_CACHE_DIR", str(tmp_path / "cache"))
    _native._load_cached.cache_clear()
    return tmp_path / "cache" / "native"


@pytest.fixture
def restore_loader():
    yield
    _native._load_cached.cache_clear()


@needs_compiler
def test_build_is_cached_atomically(monkeypatch, tmp_path, restore_loader):
    where = _fresh_loader(monkeypatch, tmp_path)
    path = _native.library_path()
    assert path.parent == where and path.suffix == ".so"
    assert [p.name for p in where.iterdir()] == [path.name]  # no temporary files left
    mtime = path.stat().st_mtime_ns
    assert _native.library_path() == path and path.stat().st_mtime_ns == mtime  # not rebuilt
    lib = _native.load()
    assert lib.wdlab_native_abi() == _native.ABI
    lanes = lib.wdlab_native_lanes_f32()  # one hardware vector: 16 with AVX-512, 8 with AVX2
    assert lanes in (8, 16) and lib.wdlab_native_lanes_f64() == lanes // 2


def test_missing_compiler_is_one_line(monkeypatch, tmp_path, restore_loader):
    _fresh_loader(monkeypatch, tmp_path)
    monkeypatch.delenv("WDLAB_CXX", raising=False)
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert _native.compiler() is None
    with pytest.raises(_native.NativeUnavailable, match="no C.. compiler") as info:
        _native.load()
    assert "\n" not in str(info.value)
    assert native.unavailable(build_chain("adam", "mean", n_decayed=3), torch.float32)


def test_broken_compiler_is_one_line_and_leaves_no_file(monkeypatch, tmp_path, restore_loader):
    where = _fresh_loader(monkeypatch, tmp_path)
    fake = tmp_path / "fakecxx"
    fake.write_text("#!/bin/sh\n[ \"$1\" = --version ] && { echo fake 1.0; exit 0; }\n"
                    "echo 'fatal: no space left (simulated)' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("WDLAB_CXX", str(fake))
    with pytest.raises(_native.NativeUnavailable, match="simulated") as info:
        _native.load()
    assert "\n" not in str(info.value)
    assert list(where.iterdir()) == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EngineFallbackWarning)
        res = _train(problem_from_datasets([make_linear(3, 5, 2, seed=0)]), "adam", "mean",
                     "native")[2]
    assert res.extra["engine"] in ("compiled", "eager")


def test_unwritable_cache_is_one_line(monkeypatch, tmp_path, restore_loader):
    if os.geteuid() == 0:  # root writes anywhere: use a path under a regular file instead
        blocker = tmp_path / "file"
        blocker.write_text("")
        monkeypatch.setenv("WDLAB_CACHE_DIR", str(blocker / "sub"))
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        monkeypatch.setenv("WDLAB_CACHE_DIR", str(ro / "sub"))
    _native._load_cached.cache_clear()
    if _native.compiler() is None:
        pytest.skip("no C++ compiler")
    with pytest.raises(_native.NativeUnavailable, match="cache directory") as info:
        _native.load()
    assert "\n" not in str(info.value)


@needs_compiler
def test_native_flushes_denormals_in_every_thread(monkeypatch):
    """Coordinates whose feature is never active decay geometrically under fully decoupled
    decay (their Adam direction is exactly 0). Unflushed, they sink into float32 denormals;
    the kernel sets FTZ/DAZ in each of its threads, so none does, whichever thread ran the
    block (torch.set_flush_denormal, used around eager and compiled runs, sets the calling
    thread only)."""
    import contextlib

    import wdlab.engine.core as core

    d = make_linear(6, 10, 4, seed=0)
    X = d.X_train.clone()
    X[:, 3:] = 0.0  # three features never active in training
    prob = problem_from_datasets([type(d)(**{**d.__dict__, "X_train": X})])
    kw = dict(epochs=2500, k=48, hyper=Hyper.of(48, lam=torch.linspace(0.04, 0.06, 48),
                                                  lr=0.01), record_epochs=[0, 2500])

    def denormal(theta):
        return int(((theta != 0) & (theta.abs() < torch.finfo(torch.float32).tiny)).sum())

    monkeypatch.setattr(core, "flush_denormals", lambda device: contextlib.nullcontext())
    torch.set_flush_denormal(False)
    control = _train(prob, "adamw", "independent", "eager", **kw)[2]
    # exact counts hold on any CPU: the inactive coordinates only ever see elementwise
    # products (w <- (1 - eta lam) w, no sums), the same IEEE results everywhere
    assert denormal(control.theta) == 48 * 3  # the scenario does produce denormals
    monkeypatch.setattr(native, "THREADS", 3)  # 3 blocks of 16: one per thread
    res = _train(prob, "adamw", "independent", "native", **kw)[2]
    assert res.extra["engine"] == "native"
    assert denormal(res.theta) == 0
    # flushed, the decay step itself underflows to 0, so they stop just above the range
    assert bool((res.theta[:, 3:6].abs() < 1e-35).all())


@needs_compiler
@pytest.mark.parametrize("family", ["linear", "mlp"])
def test_torch_side_runs_on_one_thread_the_kernel_on_torchs_count(small, monkeypatch, family):
    """A small native run (linear or MLP) does its torch ops on one intra-op thread, so
    torch's spin-waiting OpenMP workers leave the cores to the kernel's threads, which still
    number torch's count; torch's count is restored after, a large run keeps it for its
    torch side, and the bits are the same either way."""
    from wdlab.nets import MLP
    from wdlab.nets import train as net_train

    seen = []
    real = native.block_runner

    def spy(kernel, args, opt, n_blocks):
        seen.append(torch.get_num_threads())
        return real(kernel, args, opt, n_blocks)

    monkeypatch.setattr(native, "block_runner", spy)
    monkeypatch.setattr(native, "THREADS", None)
    threads = torch.get_num_threads()
    if family == "linear":
        prob = problem_from_datasets([small])
        run = lambda: _train(prob, "adam", "mean", "native", k=40, epochs=15)[2]  # noqa: E731
    else:
        g = torch.Generator().manual_seed(0)
        X, lab = torch.randn(30, 3, generator=g), torch.randint(0, 3, (30,), generator=g)
        run = lambda: net_train(MLP(3, (5,), 3), X, lab, lam=torch.linspace(0, 0.1, 40),  # noqa: E731
                                lr=0.01, epochs=15, engine="native", dtype=torch.float32)
    kernel_threads = []
    real_threads = native.kernel_threads
    monkeypatch.setattr(native, "kernel_threads",
                        lambda: kernel_threads.append(real_threads()) or kernel_threads[-1])
    try:
        torch.set_num_threads(2)
        a = run()
        assert seen == [1] and kernel_threads == [2]  # torch side serial, kernel on 2
        assert torch.get_num_threads() == 2  # restored
        seen.clear(), kernel_threads.clear()
        monkeypatch.setattr(native, "SERIAL_TORCH_ENTRIES", 0)  # as a large run
        b = run()
        assert seen == [2] and kernel_threads == [2]
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(a.theta, b.theta)
    assert all(torch.equal(a.metrics[n], b.metrics[n]) for n in a.metrics)


@needs_compiler
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_side_on_one_thread_keeps_the_bits_with_many_rows(monkeypatch, dtype):
    """The torch side of a native run (first metrics: a bmm and sums over every row) gives
    the same bits on one thread as on two, also with rows far past torch's parallel grain
    (60,000 train and 20,000 test rows, few configurations): torch_serial is speed only."""
    prob = problem_from_datasets([make_linear(5, 60000, 20000, w_star=2.0, bias=0.5,
                                              noise=0.1, seed=1)])
    theta0 = torch.randn(16, 6, generator=torch.Generator().manual_seed(0))
    hyper = Hyper.of(16, lam=torch.logspace(-3, 0, 16), lr=0.01)
    spec = EngineSpec("adam", "mean", epochs=5, device="cpu", dtype=dtype)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        serial = train(prob, spec, hyper, theta0, engine="native")
        monkeypatch.setattr(native, "SERIAL_TORCH_ENTRIES", 0)  # torch side on 2 threads
        parallel = train(prob, spec, hyper, theta0, engine="native")
    finally:
        torch.set_num_threads(threads)
    assert serial.extra["engine"] == parallel.extra["engine"] == "native"
    assert torch.equal(serial.theta, parallel.theta)
    assert all(torch.equal(serial.metrics[n], parallel.metrics[n]) for n in serial.metrics)
