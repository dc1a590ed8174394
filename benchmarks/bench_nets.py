"""Issue 14's benchmark: K small nets per second, four ways, measured in the same process.

    python benchmarks/bench_nets.py [--threads 1] [--shapes moons,digits,digits_mb]
                                    [--json benchmarks/results_nets_cpu_1thread.json] [--quick]

(a) loop   the one-model loop: nn.Sequential + torch.optim.AdamW, ``.item()`` on the loss every
           epoch; a few models are timed and the rate extrapolated to K (models are independent).
(b) vmap   the competent peer: torch.func.stack_module_state + vmap(functional_call) and ONE
           torch.optim.AdamW over the stacked leaves (a single shared (lr, weight_decay), which
           is easier than our task); one ``.tolist()`` of the K losses every epoch.
(c) wdlab  wdlab.nets.train with K different (lr, lam) settings (adamw + decoupled decay),
           metrics recorded every epoch, its default engine (auto: native, the C++ kernel,
           where a compiler is found); the eager engine (batched matmuls) is timed beside it.
(d) roof   model-steps/s if every FLOP of a training step ran at the rate of one 1024^3 float32
           GEMM measured in this run. FLOPs per layer of fan_in x fan_out on n rows: forward
           2 n fan_in fan_out, backward 2 n fan_in fan_out for dW plus the same for dX except
           on the first layer (no dX needed). Activations, softmax and optimizer are free.

Rates are model-steps/s (one model, one optimizer step); ratios are (c)/(a), (c)/(b), (c)/(d).
Shapes (issue 14): overhead-bound moons n=200, 2-16-16-2, K=1024, full batch; compute-bound
digits 64-128-10, K=256, full batch; minibatch digits, batch 64, K=256. ``--quick`` runs tiny
versions of the same shapes for a dry run (tests/test_bench_nets.py).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import torch
from torch import nn

from wdlab.store import cpu_model

#: name -> (dataset, widths, K, batch_size or None, epochs for (b)/(c), models and epochs for (a))
SHAPES = {
    "moons": dict(data="moons", widths=(2, 16, 16, 2), K=1024, batch=None, epochs=200,
                  loop_models=3, loop_epochs=100),
    "digits": dict(data="digits", widths=(64, 128, 10), K=256, batch=None, epochs=10,
                   loop_models=2, loop_epochs=20),
    "digits_mb": dict(data="digits", widths=(64, 128, 10), K=256, batch=64, epochs=2,
                      loop_models=1, loop_epochs=2),
}
QUICK = {
    "moons": dict(data="moons", widths=(2, 4, 2), K=8, batch=None, epochs=3,
                  loop_models=2, loop_epochs=2),
    "digits": dict(data="digits", widths=(64, 8, 10), K=4, batch=None, epochs=2,
                   loop_models=1, loop_epochs=2),
    "digits_mb": dict(data="digits", widths=(64, 8, 10), K=4, batch=256, epochs=1,
                      loop_models=1, loop_epochs=1),
}
LR, WD = 1e-3, 1e-2  # the peers' one shared setting


def _sequential(widths) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _batches(n: int, batch: int | None, gen: torch.Generator) -> list[torch.Tensor | None]:
    if batch is None or batch >= n:
        return [None]
    perm = torch.randperm(n, generator=gen)
    return [perm[i:i + batch] for i in range(0, n, batch)]


def steps_per_epoch(n: int, batch: int | None) -> int:
    return 1 if batch is None or batch >= n else math.ceil(n / batch)


def step_flops(widths, n: int, batch: int | None) -> float:
    """Average matmul FLOPs of one training step (forward + backward) of one model."""
    rows = [n] if batch is None or batch >= n else [min(batch, n - i) for i in range(0, n, batch)]
    total = 0.0
    for r in rows:
        for layer, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            total += 2 * r * a * b * (2 if layer == 0 else 3)  # fwd, dW (, dX)
    return total / len(rows)


def gemm_rate(size: int = 1024, repeats: int = 5) -> float:
    """FLOP/s of one size^3 float32 GEMM (best of ``repeats``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best


def _timed(fn, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_loop(X, y, widths, batch, models: int, epochs: int, repeats: int) -> float:
    """(a): model-steps/s of nn.Sequential + torch.optim.AdamW, one model at a time."""
    loss_fn = nn.CrossEntropyLoss()

    def run(n_models, n_epochs):
        for m in range(n_models):  # the baseline: one model after another
            torch.manual_seed(m)
            net = _sequential(widths)
            opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WD)
            gen = torch.Generator().manual_seed(0)
            for _ in range(n_epochs):
                for idx in _batches(len(y), batch, gen):
                    xb, yb = (X, y) if idx is None else (X[idx], y[idx])
                    opt.zero_grad()
                    loss = loss_fn(net(xb), yb)
                    loss.backward()
                    opt.step()
                loss.item()

    run(1, 1)
    seconds = _timed(lambda: run(models, epochs), repeats)
    return models * epochs * steps_per_epoch(len(y), batch) / seconds


def bench_vmap(X, y, widths, batch, K: int, epochs: int, repeats: int) -> float:
    """(b): model-steps/s of stack_module_state + vmap(functional_call) + one AdamW."""
    from torch.func import functional_call, stack_module_state, vmap

    torch.manual_seed(0)
    models = [_sequential(widths) for _ in range(K)]
    base = _sequential(widths).to("meta")

    def one(params, buffers, xb):
        return functional_call(base, (params, buffers), (xb,))

    batched = vmap(one, in_dims=(0, 0, None))

    def run(n_epochs):
        params, buffers = stack_module_state(models)
        opt = torch.optim.AdamW(list(params.values()), lr=LR, weight_decay=WD)
        gen = torch.Generator().manual_seed(0)
        for _ in range(n_epochs):
            for idx in _batches(len(y), batch, gen):
                xb, yb = (X, y) if idx is None else (X[idx], y[idx])
                z = batched(params, buffers, xb)  # (K, B, C)
                per_model = nn.functional.cross_entropy(
                    z.reshape(-1, z.shape[-1]), yb.repeat(K), reduction="none"
                ).reshape(K, -1).mean(1)  # (K,)
                opt.zero_grad()
                per_model.sum().backward()  # each model's gradient is its own loss's
                opt.step()
            per_model.detach().tolist()

    run(1)
    seconds = _timed(lambda: run(epochs), repeats)
    return K * epochs * steps_per_epoch(len(y), batch) / seconds


def bench_wdlab(X, y, widths, batch, K: int, epochs: int, repeats: int, engine: str = "auto"):
    """(c): model-steps/s of wdlab.nets.train with K (lr, lam) settings; None if absent."""
    try:
        from wdlab.nets import MLP, train
    except ImportError:
        return None
    side = max(1, int(math.isqrt(K)))
    lr = torch.logspace(-3.5, -1.5, side).repeat(math.ceil(K / side))[:K]  # (K,)
    lam = torch.logspace(-4, -1, side).repeat_interleave(math.ceil(K / side))[:K]  # (K,)
    model = MLP(widths[0], tuple(widths[1:-1]), widths[-1], activation="relu")

    def run(n_epochs):
        return train(model, X, y, loss="cross_entropy", optimizer="adamw",
                     regularizer="decoupled", lam=lam, lr=lr, seed=torch.arange(K),
                     epochs=n_epochs, batch_size=batch, dtype=torch.float32,
                     engine=engine).extra["engine"]

    ran = run(1)  # the engine this call resolves to (the timed calls are the same call)
    seconds = _timed(lambda: run(epochs), repeats)
    return K * epochs * steps_per_epoch(len(y), batch) / seconds, ran


def _load(name: str, widths):
    from wdlab.nets import datasets

    d = datasets.moons(n_train=200) if name == "moons" else datasets.load(name)
    assert d.n_features == widths[0] and d.n_classes == widths[-1], (name, widths)
    return d.X_train.float(), d.y_train


def run_shapes(shapes: dict, repeats: int) -> dict:
    """Every measurement and ratio, plus the machine it ran on."""
    rate = gemm_rate()
    out = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "load_before": list(os.getloadavg()), "gemm_1024_flops_per_s": rate, "shapes": {}}
    for name, s in shapes.items():
        X, y = _load(s["data"], s["widths"])
        flops = step_flops(s["widths"], len(y), s["batch"])
        row = {**{k: v for k, v in s.items()}, "n_train": len(y), "flops_per_step": flops,
               "loop": bench_loop(X, y, s["widths"], s["batch"], s["loop_models"],
                                  s["loop_epochs"], repeats),
               "vmap": bench_vmap(X, y, s["widths"], s["batch"], s["K"], s["epochs"], repeats),
               "roofline": rate / flops}
        c, row["wdlab_engine"] = bench_wdlab(X, y, s["widths"], s["batch"], s["K"], s["epochs"],
                                             repeats) or (None, None)
        row["wdlab"] = c
        row["wdlab_eager"] = (bench_wdlab(X, y, s["widths"], s["batch"], s["K"], s["epochs"],
                                          repeats, engine="eager") or (None, None))[0]
        c = row["wdlab"]
        row["ratios"] = {k: (None if c is None else c / row[k]) for k in ("loop", "vmap",
                                                                         "roofline")}
        out["shapes"][name] = row
        print(f"measured {name}: load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
    out["load_after"] = list(os.getloadavg())
    return out


def _fmt(v) -> str:
    return "not available" if v is None else f"{v:,.0f}"


def report(res: dict) -> str:
    lines = [f"CPU: {res['cpu']} ({res['cores']} cores), torch threads: {res['torch_threads']}, "
             f"load: {res['load_before'][0]:.2f} -> {res['load_after'][0]:.2f}",
             f"1024^3 float32 GEMM: {res['gemm_1024_flops_per_s'] / 1e9:.1f} GFLOP/s"]
    for name, r in res["shapes"].items():
        widths = "-".join(map(str, r["widths"]))
        batch = "full batch" if r["batch"] is None else f"batch {r['batch']}"
        lines.append(f"\n{name}: {widths}, K={r['K']}, n={r['n_train']}, {batch}, "
                     f"{r['flops_per_step'] / 1e6:.3f} MFLOP/model-step  (model-steps/s)")
        lines.append(f"  (a) one-model loop   {_fmt(r['loop']):>14}")
        lines.append(f"  (b) vmap + AdamW     {_fmt(r['vmap']):>14}")
        lines.append(f"  (c) wdlab.nets       {_fmt(r['wdlab']):>14}   (engine {r['wdlab_engine']})")
        lines.append(f"      wdlab eager      {_fmt(r['wdlab_eager']):>14}   (for reference)")
        lines.append(f"  (d) GEMM roofline    {_fmt(r['roofline']):>14}")
        q = r["ratios"]
        if r["wdlab"] is None:
            lines.append("  ratios: not available (wdlab.nets.train does not import)")
        else:
            lines.append(f"  (c)/(a) = {q['loop']:.1f}x   (c)/(b) = {q['vmap']:.2f}x   "
                         f"(c)/(d) = {100 * q['roofline']:.1f}% of the roofline")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma list of " + ",".join(SHAPES))
    ap.add_argument("--repeats", type=int, default=2, help="best of this many timed runs")
    ap.add_argument("--json", default=None, help="write the results here (atomically)")
    ap.add_argument("--quick", action="store_true", help="tiny shapes, one repeat: a dry run")
    args = ap.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    table = QUICK if args.quick else SHAPES
    names = [s for s in args.shapes.split(",") if s]
    unknown = [s for s in names if s not in table]
    if unknown:
        ap.error(f"--shapes: unknown shape {unknown[0]!r}; expected some of {tuple(table)}")
    res = run_shapes({n: table[n] for n in names}, 1 if args.quick else args.repeats)
    res["quick"] = bool(args.quick)
    print(report(res))
    if args.json:
        from wdlab.store import provenance, write_json

        res["provenance"] = provenance("cpu")
        write_json(args.json, res)
    return res


if __name__ == "__main__":
    main()
