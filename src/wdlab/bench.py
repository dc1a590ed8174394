"""Engine throughput on the seed problem, against baselines measured in the same run.

    throughput(K)  = K * epochs / seconds of one ``train`` call   (configuration-steps/s)
    steady(K)      = K * (E - E/5) / (t(E) - t(E/5)): per-call costs (transfers of theta to
                     and from the device, setup, graph capture) cancel out
    seed loop      = one model, Adam via torch.optim, ``.item()`` on both losses each epoch
    batched peer   = what a competent PyTorch user writes for K models: a (K, D) weight and a
                     (K, 1) bias, lam per configuration in the loss, ONE
                     ``torch.optim.Adam(fused=True)`` over both (``foreach`` where fused is
                     not supported), train and test MSE kept on the device every epoch
    memory floor   = copy bandwidth / (6 * n_features1 * itemsize)  (read + write theta, m, v)
                     once per step; the ``triton`` and ``native`` engines keep theta, m, v in
                     registers or cache across epochs, so they are not bound by this floor and
                     can exceed 100% of it

Every figure comes from this process: the baselines are measured next to the engine, so
ratios are honest on any machine. Functions return plain dicts; printing is the CLI's job.
"""

from __future__ import annotations

import time

import torch

from wdlab.data.synthetic import SEED_DATA, init_weights, make_linear, problem_from_datasets
from wdlab.engine import EngineSpec, Hyper, fast, train
from wdlab.store import device_name

DEFAULT_KS: tuple[int, ...] = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seed_epoch(X, y, Xt, yt, w, b, opt, lam: float) -> None:
    """One epoch of the seed article's loop, the baseline of every benchmark: a full-batch
    Adam step on mean(r^2) + lam * mean(w^2), then train and test MSE read with ``.item()``."""
    loss = ((X @ w + b - y) ** 2).mean() + lam * (w**2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        ((X @ w + b - y) ** 2).mean().item()
        ((Xt @ w + b - yt) ** 2).mean().item()


def seed_loop_rate(device: torch.device, epochs: int = 300, seed: int = 0) -> float:
    """Steps/s of the seed article's loop: one model, torch.optim.Adam, lam * mean(w^2),
    train and test MSE read with ``.item()`` every epoch."""
    data = make_linear(**SEED_DATA, seed=seed)
    X, y = data.X_train.float().to(device), data.y_train.float().to(device)[:, None]
    Xt, yt = data.X_test.float().to(device), data.y_test.float().to(device)[:, None]
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(X.shape[1], 1, generator=g).to(device).requires_grad_(True)
    b = torch.zeros(1, device=device, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)

    def run(n: int) -> None:
        for _ in range(n):
            seed_epoch(X, y, Xt, yt, w, b, opt, 3.0)

    run(20)
    t0 = time.perf_counter()
    run(epochs)
    return epochs / (time.perf_counter() - t0)


def peer_rate(K: int, device: torch.device, epochs: int = 100, min_seconds: float = 0.3,
              seed: int = 0) -> float:
    """Configuration-steps/s of the plain batched PyTorch peer on K seed configurations:

        loss = sum_k [ mean_n (W_k . x_n + b_k - y_n)^2 + lam_k mean_d W_kd^2 ]

    minimised by one ``torch.optim.Adam(fused=True)`` over W (K, D) and b (K, 1); the train
    MSE (from the forward pass) and the test MSE are written to (E, K) device buffers every
    epoch. Best of a few timed runs after a short warm-up; the host copy of the buffers is
    included."""
    data = make_linear(**SEED_DATA, seed=seed)
    X, y = data.X_train.float().to(device), data.y_train.float().to(device)  # (N, D) (N,)
    Xt, yt = data.X_test.float().to(device), data.y_test.float().to(device)
    theta0 = init_weights(torch.arange(K) % 1000, SEED_DATA["n_features"]).to(device)
    lam = torch.full((K,), 3.0, device=device)  # (K,)

    def run(n: int) -> None:
        W = theta0[:, :-1].clone().requires_grad_(True)  # (K, D)
        b = theta0[:, -1:].clone().requires_grad_(True)  # (K, 1)
        try:
            opt = torch.optim.Adam([W, b], lr=0.05, fused=True)
        except (RuntimeError, TypeError):  # fused not supported for this device here
            opt = torch.optim.Adam([W, b], lr=0.05, foreach=True)
        train_mse = torch.empty(n, K, device=device)  # (E, K)
        test_mse = torch.empty(n, K, device=device)  # (E, K)
        for e in range(n):
            r = W @ X.T + b - y  # (K, N)
            mse = (r * r).mean(1)  # (K,)
            loss = (mse + lam * (W * W).mean(1)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                train_mse[e] = mse.detach()
                rt = W @ Xt.T + b - yt  # (K, N_test)
                test_mse[e] = (rt * rt).mean(1)
        train_mse.cpu(), test_mse.cpu()

    run(min(epochs, 5))
    best, total, calls = float("inf"), 0.0, 0
    while calls < 1 or (total < min_seconds and calls < 5):
        _sync(device)
        t0 = time.perf_counter()
        run(epochs)
        _sync(device)
        dt = time.perf_counter() - t0
        best, total, calls = min(best, dt), total + dt, calls + 1
    return K * epochs / best


def copy_bandwidth(device: torch.device, nbytes: int = 1 << 30) -> float:
    """Bytes/s moved by a same-device tensor copy, counting bytes read plus bytes written."""
    if device.type == "cpu":
        nbytes = min(nbytes, 1 << 28)
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).fill_(1.0)
    dst = torch.empty_like(src)
    dst.copy_(src)
    _sync(device)
    reps, t0 = 0, time.perf_counter()
    while reps < 5 or time.perf_counter() - t0 < 0.2:
        dst.copy_(src)
        reps += 1
        if reps % 5 == 0:
            _sync(device)
    _sync(device)
    return 2 * nbytes * reps / (time.perf_counter() - t0)


def bytes_needed(K: int, n_features: int, records: int, n_metrics: int = 5, itemsize: int = 4):
    """Upper estimate of one run's device memory: ~12 (K, D1) tensors (theta, two moments,
    gradient, temporaries) plus the metric buffer (and its host copy on CPU)."""
    return itemsize * K * (12 * (n_features + 1) + 2 * records * n_metrics)


def free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def engine_rate(K: int, device: torch.device, engine: str, epochs: int, record_every: int = 1,
                min_seconds: float = 0.3) -> dict:
    """Configuration-steps/s of ``train`` on K seed configurations (best of a few calls,
    after one warm-up call that compiles; the host copy of the metrics is included)."""
    prob = problem_from_datasets([make_linear(**SEED_DATA, seed=0)])
    theta0 = init_weights(torch.arange(K) % 1000, SEED_DATA["n_features"])
    hyper = Hyper.of(K, lam=3.0, lr=0.05)
    rec = list(range(0, epochs + 1, record_every))
    spec = EngineSpec("adam", "mean", epochs=epochs, device=str(device))
    short = max(1, epochs // 5)
    spec_s = EngineSpec("adam", "mean", epochs=short, device=str(device))
    rec_s = list(range(0, short + 1, record_every))
    train(prob, spec_s, hyper, theta0, record_epochs=rec_s, engine=engine)  # warm-up, compile

    def timed(sp, rc):
        best, total, calls = float("inf"), 0.0, 0
        while calls < 1 or (total < min_seconds and calls < 5):
            _sync(device)
            t0 = time.perf_counter()
            res = train(prob, sp, hyper, theta0, record_epochs=rc, engine=engine)
            _sync(device)
            dt = time.perf_counter() - t0
            best, total, calls = min(best, dt), total + dt, calls + 1
        return best, res

    best, res = timed(spec, rec)
    best_s, _ = timed(spec_s, rec_s)
    steady = K * (epochs - short) / max(best - best_s, 1e-9)
    return {"K": K, "engine": res.extra.get("engine"), "seconds": best,
            "config_steps_per_s": K * epochs / best,
            "steady_config_steps_per_s": steady if best > best_s else None}


def run_bench(device: str = "cpu", engine: str = "auto", ks=DEFAULT_KS, epochs: int = 100,
              record_every: int = 1, max_seconds: float = 60.0, progress=None,
              peer: bool = True) -> dict:
    """Throughput for each K (skipping sizes that would not fit or would take too long),
    the seed loop and the plain batched peer (``peer_rate``) on the same device, ratios and,
    on CUDA, the fraction of the memory floor. The peer is measured at each K where its run
    is predicted to take at most ``max_seconds / 4`` (else ``peer_config_steps_per_s`` is
    None).

    ``engine="auto"`` means the fused Triton kernel on CUDA where Triton imports, the
    native C++ kernel on CPU where a C++ compiler is present, else compiled wherever a
    compiler is available (warm-up is excluded from the timing, so the
    steady state decides), else eager. Each row names the engine that actually ran.
    """
    from wdlab.devices import check_device

    dev = torch.device(check_device(device, "device"))
    fast.check_engine(engine)
    if engine == "auto":  # the engine auto resolves to for the seed run (engine.dispatch)
        from wdlab.engine import build_chain
        from wdlab.engine.dispatch import resolve

        chain = build_chain("adam", "mean", n_decayed=SEED_DATA["n_features"])
        engine = resolve("auto", dev, max(int(k) for k in ks), epochs, True, chain,
                         torch.float32, SEED_DATA["n_features"] + 1).name
    d1 = SEED_DATA["n_features"] + 1
    seed = seed_loop_rate(dev)
    bw = copy_bandwidth(dev)
    floor = bw / (6 * d1 * 4)
    out = {"device": str(dev), "device_name": device_name(str(dev)), "engine": engine,
           "epochs": epochs, "record_every": record_every, "torch": torch.__version__,
           "threads": torch.get_num_threads(), "seed_loop_steps_per_s": seed,
           "copy_bytes_per_s": bw, "floor_config_steps_per_s": floor, "rows": []}
    last, last_s, peer_last = None, 0.0, None
    for K in sorted(int(k) for k in ks):
        need = bytes_needed(K, d1 - 1, epochs // record_every + 1)
        if need > 0.7 * free_bytes(dev):
            out["rows"].append({"K": K, "skipped": f"needs ~{need / 2**30:.1f} GiB"})
            continue
        # extrapolating at the last rate is pessimistic (rates grow with K), so only a last
        # run that itself took a second or more can rule a larger K out
        if last is not None and last_s >= 1.0 and K * epochs / last > max_seconds:
            out["rows"].append({"K": K, "skipped": f"would take > {max_seconds:.0f} s"})
            continue
        row = engine_rate(K, dev, engine, epochs, record_every)
        row["ratio_to_seed_loop"] = row["config_steps_per_s"] / seed
        row["peer_config_steps_per_s"] = row["ratio_to_peer"] = None
        if peer and (peer_last is None or K * epochs / peer_last <= max_seconds / 4):
            peer_last = peer_rate(K, dev, epochs)
            row["peer_config_steps_per_s"] = peer_last
            row["ratio_to_peer"] = row["config_steps_per_s"] / peer_last
        row["fraction_of_floor"] = row["config_steps_per_s"] / floor
        if row["steady_config_steps_per_s"]:
            row["steady_fraction_of_floor"] = row["steady_config_steps_per_s"] / floor
        last, last_s = row["config_steps_per_s"], row["seconds"]
        out["rows"].append(row)
        if progress is not None:
            progress(row)
    return out
