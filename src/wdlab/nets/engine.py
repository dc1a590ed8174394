"""K small networks trained as one tensor program (``wdlab.nets.train``).

Configuration k (on data draw g(k), configurations draw-major) minimises

    objective_k(theta) = L(f_theta(X), y) + P_k(theta_decayed)

with the data loss L of ``nets.losses`` (cross_entropy, mse, half_mse) and the regularizer's
penalty P (none for the optimizer decays), by the rule chain of ``optim.registry`` -- the
same rules, registry, schedules and divergence rule as the linear engine. The loop runs
over epochs and minibatches, never over configurations.
"""

from __future__ import annotations

import math
import warnings

import torch

from wdlab.conventions import penalty_value_scale
from wdlab.engine import Hyper
from wdlab.engine.fast import DIVERGENCE_FACTOR, EngineFallbackWarning
from wdlab.nets import native
from wdlab.nets.losses import LOSSES, Targets, n_correct
from wdlab.nets.mlp import MLP
from wdlab.nets.program import MLPProgram
from wdlab.nets.result import NetResult
from wdlab.nets.update import ChainUpdate
from wdlab.optim.registry import build_chain, check_pair
from wdlab.optim.schedule import SCHEDULES, schedule_multiplier

Tensor = torch.Tensor

#: Auto cache tile: configurations per tile so that one tile's activations and parameter
#: state (about 4 floats per activation entry, 8 per parameter) stay near this many bytes
#: (tiles of >= 8 configurations). With the preallocated workspace of ``nets.program`` the
#: per-op cost of a tile outweighs cache misses: on the 2-core EPYC (1 thread, load ~10)
#: moons K=1024 ran 1.2x faster as one tile than in tiles of 139, and digits 64-128-10
#: equally fast in tiles of 8 and 64 (0.9x in one tile of 256).
TILE_BYTES = 128 * 2**20


def _as_float(name: str, v) -> Tensor:
    t = torch.as_tensor(v)
    if t.is_complex():
        raise ValueError(f"{name}: expected numbers, got dtype {t.dtype}")
    t = t.to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return t


def _draws(name: str, X) -> Tensor:
    """(G, N, *in) float64 from one array (N, *in) or a list of G arrays."""
    if isinstance(X, list | tuple):
        if not X:
            raise ValueError(f"{name}: an empty list of draws")
        parts = [_as_float(name, x) for x in X]
        if len({tuple(p.shape) for p in parts}) != 1:
            raise ValueError(f"{name}: every draw must have the same shape")
        return torch.stack(parts)
    return _as_float(name, X)[None]


def _targets(name: str, y, G: int, N: int, loss: str, C: int) -> tuple[Targets, bool]:
    """Targets for G draws of N rows, and whether the task is classification."""
    ys = list(y) if isinstance(y, list | tuple) else [y]
    if len(ys) != G:
        raise ValueError(f"{name}: {len(ys)} draws of targets for {G} draws of inputs")
    ts = [torch.as_tensor(v) for v in ys]
    for t in ts:
        if t.shape[:1] != (N,):
            n = t.shape[0] if t.ndim else 0
            raise ValueError(f"{name}: {n} targets for {N} rows of inputs")
    t = torch.stack(ts)  # (G, N, ...)
    integer = not t.is_floating_point() and t.dtype != torch.bool
    if loss == "cross_entropy":
        if t.is_floating_point():
            if not bool(torch.isfinite(t).all()) or bool((t != t.round()).any()):
                raise ValueError(f"{name}: cross_entropy needs integer class labels in "
                                 f"[0, {C}), got non-integer values")
        if t.ndim != 2:
            raise ValueError(f"{name}: cross_entropy needs one class label per row, got "
                             f"shape {tuple(t.shape[1:])} per draw")
        lab = t.to(torch.int64)
        if bool(((lab < 0) | (lab >= C)).any()):
            raise ValueError(f"{name}: class labels must lie in [0, {C}) for "
                             f"out_features={C}, got [{int(lab.min())}, {int(lab.max())}]")
        return Targets(lab, None), True
    if integer and t.ndim == 2 and C > 1:  # class labels -> one-hot targets
        lab = t.to(torch.int64)
        if bool(((lab < 0) | (lab >= C)).any()):
            raise ValueError(f"{name}: class labels must lie in [0, {C}) for "
                             f"out_features={C}")
        onehot = torch.nn.functional.one_hot(lab, C).to(torch.float64)  # (G, N, C)
        return Targets(lab, onehot), True
    v = _as_float(name, t)
    if v.ndim == 2:
        v = v[..., None]
    if v.ndim != 3 or v.shape[-1] != C:
        raise ValueError(f"{name}: regression targets must be (N,) or (N, {C}) for "
                         f"out_features={C}, got {tuple(v.shape[1:])} per draw")
    return Targets(None, v), False


def _weights(w, G: int, N: int) -> Tensor:
    """(G, N) float64 row weights >= 0 with a positive sum per draw."""
    t = _draws("sample_weight", w)  # (G or 1, N)
    if t.shape[0] == 1 and not isinstance(w, list | tuple):
        t = t.expand(G, -1)
    if tuple(t.shape) != (G, N):
        raise ValueError(f"sample_weight: expected {G} draw(s) of {N} weights, got shape "
                         f"{tuple(t.shape)}")
    if bool((t < 0).any()) or not bool((t.sum(1) > 0).all()):
        raise ValueError("sample_weight: weights must be >= 0 with a positive sum per draw")
    return t


def _hyper_vectors(K: int | None, **values) -> tuple[int, dict[str, Tensor]]:
    lengths = {n: torch.as_tensor(v).numel() for n, v in values.items()
               if torch.as_tensor(v).ndim > 0}
    if K is None:
        K = max(lengths.values(), default=1)
    for n, ln in lengths.items():
        if ln not in (1, K):
            raise ValueError(f"{n}: {ln} values for K={K} configurations")
    out = {}
    for n, v in values.items():
        t = torch.as_tensor(v, dtype=torch.int64 if n == "seed" else torch.float64).reshape(-1)
        out[n] = t.expand(K).clone()
    return K, out


def _record_list(E: int, record_epochs, record_every) -> list[int]:
    if record_epochs is not None and record_every is not None:
        raise ValueError("record_every: give record_epochs or record_every, not both")
    if record_every is not None:
        if int(record_every) < 1:
            raise ValueError(f"record_every: must be >= 1, got {record_every}")
        rec = set(range(0, E + 1, int(record_every))) | {E}
    else:
        rec = set(range(E + 1)) if record_epochs is None else {int(e) for e in record_epochs}
    rec = sorted(rec)
    if rec and (rec[0] < 0 or rec[-1] > E):
        raise ValueError(f"record_epochs: must lie in [0, {E}]")
    return rec


def train(
    model,
    X,
    y,
    *,
    X_test=None,
    y_test=None,
    loss: str = "cross_entropy",
    label_smoothing: float = 0.0,
    optimizer: str = "adamw",
    regularizer: str = "decoupled",
    lam=0.0,
    lr=1e-3,
    beta1=0.9,
    beta2=0.999,
    eps: float = 1e-8,
    seed=0,
    init_scale=1.0,
    epochs: int = 100,
    batch_size: int | None = None,
    batch_seed: int = 0,
    schedule: str = "constant",
    warmup: int = 0,
    decay="matrices",
    sample_weight=None,
    K: int | None = None,
    theta0: Tensor | None = None,
    record_epochs: list[int] | None = None,
    record_every: int | None = None,
    snapshot_epochs: list[int] | None = None,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    tile: int | None = None,
    engine: str = "auto",
) -> NetResult:
    """Train K networks, each with its own hyperparameters, as one tensor program.

    Configuration k minimises ``L_k(theta) + P_k(theta)`` over its parameters theta (the
    network's state_dict tensors, flattened) with

        L = the data loss: cross_entropy  mean_n [logsumexp(z_n) - sum_c q_nc z_nc],
            q = (1 - label_smoothing) onehot(y) + label_smoothing / C (torch's F.cross_entropy);
            mse  mean over samples and outputs of (z - t)^2 (torch's MSELoss);
            half_mse  half of it. Integer labels with mse/half_mse are one-hot targets.
        P = the regularizer on the decayed entries w (``decay``), lam in its convention:
            mean  lam * mean(w^2) over ALL decayed entries of the network (d = their number),
            half_sum  lam/2 ||w||^2,  sum  lam ||w||^2,
            weight_decay  coupled g <- g + lam w (torch.optim SGD/Adam ``weight_decay``),
            decoupled  w <- w - lr_t lam w beside the step (torch.optim.AdamW),
            independent  w <- w - eta_t lam w (Loshchilov & Hutter 2019, Alg. 2; not x lr).

    The update is ``registry.build_chain(optimizer, regularizer)`` applied to the data-loss
    gradient of each step, with lr_t = lr_k * eta_t and the per-step multiplier

        eta_t = 1 (constant);  (1 + cos(pi t / T)) / 2 (cosine);
        warmup_cosine: (t + 1) / W for t < W, then (1 + cos(pi (t - W) / (T - W))) / 2,

    for 0-based step t of T = epochs * batches_per_epoch and W = ``warmup`` steps.

    Batching: full batch when ``batch_size`` is None (or >= N); otherwise each epoch draws
    one permutation of the N rows per data draw, in draw order, from one
    ``torch.Generator().manual_seed(batch_seed)`` (``torch.randperm(N, generator=gen)``)
    and cuts it into consecutive batches perm[i:i+B] (the last may be smaller); the loss is
    the batch mean. All configurations of a draw see the same batches.

    Initialisation: PyTorch's default ``nn.Linear`` init (``MLP.init``) from the named
    stream ``stream_seed(seed_k, "init")``, times ``init_scale_k`` (or the module factory's
    own init under that seed, ``from_module``); or ``theta0`` (K, P) as given.

    Divergence: a configuration whose loss on a step exceeds ``DIVERGENCE_FACTOR`` (1e6)
    times its initial training loss, or is not finite, is frozen at the parameters that gave
    that loss (no further step) and ``diverged_epoch[k]`` is the epoch; the others are
    unaffected bit for bit.

    Args:
        model: an ``MLP`` description, or ``from_module(factory)``.
        X: inputs (N, *in) shared by all K configurations, or a list of G draws (equal
            shapes; K must be a multiple of G, configurations draw-major).
        y: targets (N,) integer class labels, or (N,)/(N, C) floats for regression; a list
            for G draws.
        X_test, y_test: optional held-out set (same form), scored each recorded epoch.
        loss: "cross_entropy", "mse" or "half_mse".
        label_smoothing: cross_entropy's smoothing eps in [0, 1).
        optimizer, regularizer: a pair of ``optim.registry.PAIRS``.
        lam, lr, beta1, beta2: per-configuration hyperparameters, scalars or (K,) sequences
            (beta1 is SGD's momentum); lam in the regularizer's convention.
        eps: Adam's epsilon.
        seed: per-configuration init seed(s); init_scale: per-configuration init multiplier.
        epochs: passes over the training data.
        batch_size, batch_seed: minibatches (see Batching) or None for full batch.
        schedule, warmup: "constant", "cosine" or "warmup_cosine" and its W.
        decay: "matrices" (tensors with ndim >= 2: weights, not biases), "all", or a
            predicate on state_dict names; the decayed entries of P and of the decays.
        sample_weight: optional (N,) row weights >= 0, or a list of G: each batch's mean
            over rows becomes sum_n s_n l_n, s = w / sum(w) over the batch (``nets.losses``);
            0/1 masks train k folds of one design as G draws. Training metrics use them too.
        K: number of configurations (default: the longest hyperparameter sequence).
        theta0: optional (K, P) initial parameters in state_dict order.
        record_epochs / record_every: epochs whose metrics are kept (0 = before training;
            default every epoch).
        snapshot_epochs: optional epochs in [0, epochs] whose parameters (after that many
            epochs, as the metrics) are kept: ``extra["snapshots"]`` (S, K, P) in sorted order,
            ``extra["snapshot_epochs"]`` the epochs.
        dtype, device: where and in what precision to train.
        tile: configurations per cache tile of the eager engine (default: automatic on
            CPU; None elsewhere). Configurations never interact, so tiling changes only speed.
        engine: "eager" (the batched-matmul program ``nets.program``, or torch.func for
            ``from_module``), "native" (``nets.native``: one C++ kernel for all the steps of
            a CPU run of an MLP; falls back to eager with an ``EngineFallbackWarning`` where
            it cannot run) or "auto" (native where it covers the run and a C++ compiler is
            found, else eager). ``extra["engine"]`` says which ran; the two agree to
            rounding, and each is bitwise reproducible.

    Returns:
        A ``NetResult``: metrics (R, K) per recorded epoch, final and initial parameters,
        ``state_dict(k)`` loadable into ``model.to_module()``.
    """
    model_kind = "module" if hasattr(model, "factory") else "mlp"
    if not isinstance(model, MLP) and model_kind != "module":
        raise ValueError(f"model: expected an MLP or from_module(...), got {type(model).__name__}")
    check_pair(optimizer, regularizer)
    if loss not in LOSSES:
        raise ValueError(f"loss: unknown name {loss!r}; expected one of {LOSSES}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule: unknown name {schedule!r}; expected one of {SCHEDULES}")
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs: must be an integer >= 1, got {epochs!r}")
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise ValueError(f"batch_size: must be an integer >= 1 or None, got {batch_size!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing: must be in [0, 1), got {label_smoothing!r}")
    if label_smoothing and loss != "cross_entropy":
        raise ValueError("label_smoothing: applies to loss='cross_entropy' only")
    if warmup < 0 or (warmup and schedule != "warmup_cosine"):
        raise ValueError("warmup: a number of steps >= 0, for schedule='warmup_cosine' only")
    if (X_test is None) != (y_test is None):
        raise ValueError("X_test: give X_test and y_test together")

    Xd = _draws("X", X)  # (G, N, *in)
    G, N = Xd.shape[:2]
    C = model.check_inputs("X", Xd)
    tgt, classification = _targets("y", y, G, N, loss, C)
    if sample_weight is not None:
        tgt = Targets(tgt.labels, tgt.values, _weights(sample_weight, G, N))
    test = None
    if X_test is not None:
        Xt = _draws("X_test", X_test)
        if Xt.shape[0] != G or Xt.shape[2:] != Xd.shape[2:]:
            raise ValueError(f"X_test: expected {G} draw(s) of rows shaped {tuple(Xd.shape[2:])}")
        model.check_inputs("X_test", Xt)
        test = (Xt, _targets("y_test", y_test, G, Xt.shape[1], loss, C)[0])

    K, hp = _hyper_vectors(K if theta0 is None else theta0.shape[0], lam=lam, lr=lr,
                           beta1=beta1, beta2=beta2, seed=seed, init_scale=init_scale)
    hyper = Hyper(hp["lam"], hp["lr"], hp["beta1"], hp["beta2"])
    hyper.validate()
    if bool((hp["init_scale"] <= 0).any()) or not bool(torch.isfinite(hp["init_scale"]).all()):
        raise ValueError("init_scale: must be finite and > 0")
    if K % G:
        raise ValueError(f"K: {K} configurations is not a multiple of the {G} data draws")
    layout = model.layout
    if theta0 is None:
        theta0 = model.init(hp["seed"], hp["init_scale"])  # (K, P) float64
    elif tuple(theta0.shape) != (K, layout.size):
        raise ValueError(f"theta0: expected shape {(K, layout.size)}, got {tuple(theta0.shape)}")
    E = int(epochs)
    rec = _record_list(E, record_epochs, record_every)
    snaps = sorted({int(e) for e in snapshot_epochs or ()})
    if snaps and (snaps[0] < 0 or snaps[-1] > E):
        raise ValueError(f"snapshot_epochs: must lie in [0, {E}]")

    dev = torch.device(device)
    mask = layout.decay_mask(decay, dtype, dev)  # (P,)
    n_decayed = max(int(mask.sum().item()), 1)
    chain = build_chain(optimizer, regularizer, n_decayed=n_decayed, eps=eps,
                        momentum=bool((hyper.beta1 != 0).any()) or optimizer != "sgd")
    program = model.program() if model_kind == "module" else MLPProgram(model)
    run = _Run(program, layout, chain, mask, penalty_value_scale(regularizer, n_decayed),
               loss, float(label_smoothing), classification, E, None if batch_size is None
               else int(batch_size), int(batch_seed), schedule, int(warmup), rec, dtype, dev,
               snaps)
    data = (Xd.to(device=dev, dtype=dtype), tgt.to(dtype, dev))
    test = None if test is None else (test[0].to(device=dev, dtype=dtype), test[1].to(dtype, dev))

    if (G > 1 and tgt.weight is not None and (batch_size is None or batch_size >= N)
            and _same_draws(data, test)):
        # k-fold masks over one design: ONE draw whose K configurations carry their own
        # row weights (the draws differ only in them), so tiles span the folds
        x, t = data
        w = t.weight.repeat_interleave(K // G, 0)[None]  # (1, K, N), draw-major
        data = (x[:1], Targets(None if t.labels is None else t.labels[:1],
                               None if t.values is None else t.values[:1], w))
        test = None if test is None else _draw(test, 0, G)
        G = 1
    M = K // G
    n_rows = N if batch_size is None else min(N, int(batch_size))
    engine_name, why_not = native.resolve(engine, model, chain, dtype, dev, n_rows, M)
    if why_not is not None:
        warnings.warn(f"engine: {why_not}; running eager", EngineFallbackWarning, stacklevel=2)
    if engine_name == "native":
        from wdlab.engine.kernels.native import torch_serial

        with torch_serial(K * layout.size):  # no torch worker spinning on the kernel's cores
            theta, metrics, diverged, shots = native.train_native(run, theta0, hyper, data,
                                                                  test, G)
        extra = {"engine": "native", "tiles": 1, "tile": M, "n_decayed": n_decayed,
                 "classification": classification}
        if snaps:
            extra["snapshot_epochs"] = snaps
            extra["snapshots"] = shots
        return NetResult(rec, metrics, theta, theta0.to(dtype).clone(), diverged, layout, model,
                         extra)
    if tile is None:
        tile = _auto_tile(model, n_rows, layout.size, dtype, dev, M)
    tile = max(1, min(int(tile), M))
    parts = []
    for g in range(G):  # loop over cache tiles of configurations (each within one draw)
        for a in range(g * M, (g + 1) * M, tile):
            b = min(a + tile, (g + 1) * M)
            sl = slice(a, b)
            parts.append(run.tile(
                theta0[sl], Hyper(hyper.lam[sl], hyper.lr[sl], hyper.beta1[sl], hyper.beta2[sl]),
                _configs(_draw(data, g, G), sl), None if test is None else _draw(test, g, G),
                g, G))
    metrics = {n: torch.cat([p[1][n] for p in parts], 1) for n in parts[0][1]}  # (R, K)
    extra = {"engine": "eager", "tiles": len(parts), "tile": tile, "n_decayed": n_decayed,
             "classification": classification}
    if snaps:
        extra["snapshot_epochs"] = snaps
        extra["snapshots"] = torch.cat([p[3] for p in parts], 1)  # (S, K, P)
    return NetResult(rec, metrics, torch.cat([p[0] for p in parts]), theta0.to(dtype).clone(),
                     torch.cat([p[2] for p in parts]), layout, model, extra)


def _draw(data, g: int, G: int):
    x, t = data
    if G == 1:
        return data
    return x[g:g + 1], Targets(None if t.labels is None else t.labels[g:g + 1],
                               None if t.values is None else t.values[g:g + 1],
                               None if t.weight is None else t.weight[g:g + 1])


def _same_draws(data, test) -> bool:
    """Whether every draw has the same inputs and targets (test set included)."""
    for x, t in [data] + ([] if test is None else [test]):
        for v in (x, t.labels, t.values):
            if v is not None and not all(torch.equal(v[0], v[g]) for g in range(1, v.shape[0])):
                return False
    return True


def _configs(data, sl: slice):
    """The tile's rows of per-configuration weights (1, K, N); other data as is."""
    x, t = data
    if t.weight is None or t.weight.ndim != 3:
        return data
    return x, Targets(t.labels, t.values, t.weight[:, sl])


def _auto_tile(model, N: int, P: int, dtype, dev, M: int) -> int:
    """Configurations per tile: one step's activations on N rows (the batch) and the
    optimizer state of a tile within ``TILE_BYTES``."""
    if dev.type != "cpu" or not isinstance(model, MLP):
        return M  # vmap programs pay per call: one tile
    itemsize = torch.empty((), dtype=dtype).element_size()
    act = N * sum(model.widths[1:])  # activation entries per configuration
    per = itemsize * (4 * act + 8 * P)
    return max(8, TILE_BYTES // max(per, 1))


class _Run:
    """The epoch loop for one tile of configurations (all on one data draw)."""

    def __init__(self, program, layout, chain, mask, pen_scale, loss, smoothing,
                 classification, epochs, batch_size, batch_seed, schedule, warmup, rec, dtype,
                 dev, snaps=()):
        self.__dict__.update(locals())
        del self.__dict__["self"]

    def metric_names(self, test: bool) -> list[str]:
        """The metrics of a recorded epoch, in order (the native kernel writes these rows)."""
        names = ["train_loss"] + (["train_accuracy"] if self.classification else [])
        if test:
            names += ["test_loss"] + (["test_accuracy"] if self.classification else [])
        return names + ["penalty", "objective"] + [f"norm/{n}" for n in self.layout.names]

    def _metrics(self, theta, lam, val, z, tgt, test, buf, i):
        buf["train_loss"][i] = val
        if self.classification:
            buf["train_accuracy"][i] = n_correct(z, tgt.labels, tgt.shares())
        if test is not None:
            tv, tz = self.program.loss(theta, test[0], test[1], self.loss, self.smoothing)
            buf["test_loss"][i] = tv
            if self.classification:
                buf["test_accuracy"][i] = n_correct(tz, test[1].labels)
        wd = theta * self.mask  # (K, P) decayed entries
        pen = self.pen_scale * lam[:, 0] * (wd * wd).sum(1)  # (K,)
        buf["penalty"][i] = pen
        buf["objective"][i] = val + pen
        for n in self.layout.names:
            v = self.layout.view(theta, n).reshape(theta.shape[0], -1)
            buf[f"norm/{n}"][i] = torch.linalg.vector_norm(v, dim=1)

    def tile(self, theta0: Tensor, hyper: Hyper, data, test, g: int = 0, n_draws: int = 1):
        dt, dev = self.dtype, self.dev
        K = theta0.shape[0]
        col = lambda v: v.to(device=dev, dtype=dt).reshape(K, 1)  # noqa: E731
        lam, lr, beta1, beta2 = col(hyper.lam), col(hyper.lr), col(hyper.beta1), col(hyper.beta2)
        x, tgt = data
        G, N = x.shape[:2]
        names = self.metric_names(test is not None)
        slot = {e: i for i, e in enumerate(self.rec)}
        snap = {e: i for i, e in enumerate(self.snaps)}
        shots = torch.empty((len(self.snaps),) + tuple(theta0.shape), dtype=dt)  # (S, K, P)
        buf = {n: torch.full((len(self.rec), K), float("nan"), device=dev, dtype=dt)
               for n in names}

        theta = theta0.to(device=dev, dtype=dt).clone()  # (K, P)
        update = ChainUpdate(self.chain, theta, self.mask, lam, lr, beta1, beta2)
        t = torch.zeros(K, 1, device=dev, dtype=dt)
        alive = torch.ones(K, 1, device=dev, dtype=torch.bool)
        all_alive = True  # tracked on CPU only (a host sync per step elsewhere)
        cpu = dev.type == "cpu"
        diverged = torch.full((K,), -1, device=dev, dtype=torch.int64)
        loss0 = None
        B = self.batch_size
        full = B is None or B >= N
        if full and tgt.weight is not None:  # the row shares, formed once
            tgt = Targets(tgt.labels, tgt.values, tgt.weight, tgt.shares())
        nb = 1 if full else math.ceil(N / B)
        total = self.epochs * nb
        gen = torch.Generator().manual_seed(self.batch_seed)
        step_i = 0

        def check(val: Tensor, epoch: int) -> None:
            nonlocal alive, all_alive
            bad = ~(val <= DIVERGENCE_FACTOR * loss0) & alive[:, 0]  # (K,) newly diverged
            if cpu and all_alive and not bool(bad.any()):
                return  # the common case: nothing to flag
            diverged.masked_fill_(bad, epoch)
            alive = alive & ~bad[:, None]
            all_alive = False

        def step(grad: Tensor) -> None:
            nonlocal step_i
            eta = schedule_multiplier(self.schedule, step_i, total, self.warmup)
            step_i += 1
            if all_alive:
                t.add_(1.0)
            else:
                t.add_(alive.to(dt))
            update(theta, grad, eta, t, alive, all_alive)

        for epoch in range(self.epochs):
            if epoch in snap:
                shots[snap[epoch]] = theta.cpu()
            if full:
                val, z, grad = self.program.loss_grad(theta, x, tgt, self.loss, self.smoothing)
                if loss0 is None:
                    loss0 = val.clone()
                if epoch in slot:
                    self._metrics(theta, lam, val, z, tgt, test, buf, slot[epoch])
                check(val, epoch)
                step(grad)
                continue
            if loss0 is None or epoch in slot:
                val, z = self.program.loss(theta, x, tgt, self.loss, self.smoothing)
                if loss0 is None:
                    loss0 = val.clone()
                if epoch in slot:
                    self._metrics(theta, lam, val, z, tgt, test, buf, slot[epoch])
            perms = [torch.randperm(N, generator=gen) for _ in range(n_draws)]  # every draw's
            perm = perms[g][None].to(dev)  # (1, N): this tile's draw
            for b in range(nb):
                idx = perm[:, b * B:(b + 1) * B]  # (G, B)
                xb = x[torch.arange(G, device=dev)[:, None], idx]  # (G, B, *in)
                val, _, grad = self.program.loss_grad(theta, xb, tgt.take(idx), self.loss,
                                                      self.smoothing)
                check(val, epoch)
                step(grad)
        if self.epochs in slot:
            val, z = self.program.loss(theta, x, tgt, self.loss, self.smoothing)
            self._metrics(theta, lam, val, z, tgt, test, buf, slot[self.epochs])
        if self.epochs in snap:
            shots[snap[self.epochs]] = theta.cpu()
        return theta.cpu(), {n: v.cpu() for n, v in buf.items()}, diverged.cpu(), shots
