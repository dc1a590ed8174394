"""What ``weight_decay`` means in each framework, and the value that gives the same decay.

Every framework below decays decoupled from the gradient step. At step t, with base learning
rate ``lr``, schedule multiplier s_t = lr_t / lr (s_0 = 1) and the framework's coefficient λ,
the decay part of the update is

    θ ← θ − d_t·θ,     d_t = c · s_t^p · λ,

with (c, p) per framework:

    framework      update (decay part)                     c                   p
    torch-adamw    θ ← θ(1 − lr_t·λ)                        lr                  1
    optax-adamw    u = −lr_t·(adam + λθ)                    lr                  1
    keras-adamw    θ ← θ − θ·λ·lr_t                         lr                  1
    tfa-adamw      θ ← θ − λθ  (λ a float)                  1                   0
    lh-normalized  θ ← θ − η_t·λ·θ,  λ = λ_norm·√(b/(B·T))  √(b/(B·T))          1
    composer       θ ← θ(1 − (lr_t/lr₀)·λ)                  1                   1

Derivation of each row from the documented update, with lr_t = lr·s_t:
    torch-adamw    θ·(1 − lr_t·λ) = θ − (lr·s_t·λ)·θ                       -> c = lr, p = 1
    optax-adamw    θ + u, u = −lr_t·(adam + λθ): decay part −lr_t·λ·θ      -> c = lr, p = 1
    keras-adamw    θ − θ·λ·lr_t (lr the optimizer's current, scheduled lr)  -> c = lr, p = 1
    tfa-adamw      θ − λ·θ, λ a float fixed at construction                 -> c = 1,  p = 0
    lh-normalized  θ − η_t·λ·θ with η_t = s_t and λ = λ_norm·√(b/(B·T))     -> c = √(b/(B·T)), p = 1
    composer       θ·(1 − (lr_t/lr₀)·λ) = θ − (s_t·λ)·θ                     -> c = 1,  p = 1
The gradient part (Adam's moments, bias correction, lr_t·m̂/(√v̂ + ε)) is the same in all six
(up to each framework's default ε), so equal d_t means equal updates.

Two frameworks give the same d_t at every step exactly when their p agree; then
λ_dst = λ_src·c_src/c_dst. When p differs (×lr_t vs a constant decay under a decaying
schedule), d_t can agree at one step only; ``translate_framework`` matches the first step
(or the mean decay) and reports the largest relative mismatch max_t |d_t^dst/d_t^src − 1|.

Sources read (repository + path), one per row:
    torch 2.13 (installed): torch/optim/adamw.py -> adam.py ``param.mul_(1 - lr * weight_decay)``.
    google-deepmind/optax optax/_src/alias.py: ``adamw = chain(scale_by_adam,
        add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))``, default 1e-4.
    keras-team/keras keras/src/optimizers/adamw.py (default weight_decay=0.004) and
        keras/src/optimizers/base_optimizer.py ``_apply_weight_decay``:
        ``variable.assign(variable - variable * wd * lr)`` with lr the current (scheduled) value.
    tensorflow/addons tensorflow_addons/optimizers/weight_decay_optimizers.py
        ``_decay_weights_op``: ``var.assign_sub(weight_decay * var)``; its docstring: "when
        applying a decay to the learning rate, be sure to manually apply the decay to the
        weight_decay as well" (a callable ``wd = lambda: 1e-4 * schedule(step)``).
    Loshchilov & Hutter 2019 (arXiv 1711.05101), Alg. 2: θ_t ← θ_{t−1} − η_t(α·m̂/(√v̂+ε) +
        λθ_{t−1}) with η_t the schedule multiplier; App. B.1 normalized decay
        λ = λ_norm·√(b/(B·T)) (b batch size, B training points, T epochs).
    mosaicml/composer composer/optim/decoupled_weight_decay.py ``DecoupledAdamW``:
        ``decay_factor = lr / initial_lr; param.mul_(1 - decay_factor * weight_decay)``,
        default weight_decay 1e-5.

Scaling rule (Wang & Aitchison 2024, arXiv 2405.13698): AdamW's weights are an EMA with
timescale τ_iter = 1/(lr·λ) iterations, τ_epoch = τ_iter/(N/B) = B/(lr·λ·N) epochs; keep
τ_epoch fixed when batch size B, dataset size N or lr change.

This module is pure: numpy and the standard library only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Framework:
    """One framework's decoupled decay: d_t = c·s_t^p·λ (see the module docstring)."""

    name: str
    times_lr: bool  # c contains the base lr
    follows_schedule: bool  # p = 1: the decay follows lr_t / lr
    normalized: bool  # c = √(b/(B·T)) (Loshchilov & Hutter's normalized λ)
    default: float | None  # the framework's default weight_decay (None: required)
    update: str  # the documented update, decay part
    source: str  # repository + path read


FRAMEWORKS: dict[str, Framework] = {f.name: f for f in (
    Framework("torch-adamw", True, True, False, 1e-2, "θ ← θ·(1 − lr_t·λ)",
              "torch/optim/adam.py (torch 2.13, decoupled_weight_decay=True)"),
    Framework("optax-adamw", True, True, False, 1e-4, "u = −lr_t·(adam + λ·θ)",
              "google-deepmind/optax optax/_src/alias.py"),
    Framework("keras-adamw", True, True, False, 4e-3, "θ ← θ − θ·λ·lr_t",
              "keras-team/keras keras/src/optimizers/base_optimizer.py"),
    Framework("tfa-adamw", False, False, False, None, "θ ← θ − λ·θ (λ a float: not ×lr, "
              "not scheduled)", "tensorflow/addons tensorflow_addons/optimizers/"
              "weight_decay_optimizers.py"),
    Framework("lh-normalized", False, True, True, None, "θ ← θ − η_t·λ_norm·√(b/(B·T))·θ",
              "Loshchilov & Hutter 2019, Alg. 2 and App. B.1"),
    Framework("composer", False, True, False, 1e-5, "θ ← θ·(1 − (lr_t/lr₀)·λ)",
              "mosaicml/composer composer/optim/decoupled_weight_decay.py"),
)}

SCHEDULES: tuple[str, ...] = ("constant", "cosine", "linear")


def _check_framework(name: str, field: str) -> Framework:
    if name not in FRAMEWORKS:
        raise ValueError(f"{field}: unknown framework {name!r}; expected one of {tuple(FRAMEWORKS)}")
    return FRAMEWORKS[name]


def schedule_multipliers(schedule: str, steps: int) -> np.ndarray:
    """s_t = lr_t / lr for t = 0..steps−1.

        constant  s_t = 1
        cosine    s_t = (1 + cos(π t / steps)) / 2      (torch CosineAnnealingLR, eta_min = 0)
        linear    s_t = 1 − t / steps

    Returns:
        (steps,) float64 array with s_0 = 1.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule: unknown name {schedule!r}; expected one of {SCHEDULES}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps: must be an integer >= 1, got {steps!r}")
    t = np.arange(int(steps), dtype=np.float64)
    if schedule == "constant":
        return np.ones_like(t)
    if schedule == "cosine":
        return 0.5 * (1.0 + np.cos(math.pi * t / steps))
    return 1.0 - t / steps


def decay_scale(name: str, *, lr: float, batch_size: float | None = None,
                train_size: float | None = None, epochs: float | None = None) -> float:
    """c in d_t = c·s_t^p·λ: lr (×lr frameworks), √(b/(B·T)) (lh-normalized), else 1."""
    fw = _check_framework(name, "framework")
    if not lr > 0:
        raise ValueError(f"lr: must be > 0, got {lr!r}")
    if fw.times_lr:
        return float(lr)
    if fw.normalized:
        for field, v in (("batch_size", batch_size), ("train_size", train_size),
                         ("epochs", epochs)):
            if v is None:
                raise ValueError(f"{field}: {name} needs --batch-size, --train-size and --epochs "
                                 "(λ = λ_norm·√(b/(B·T)))")
            if not v > 0:
                raise ValueError(f"{field}: must be > 0, got {v!r}")
        return math.sqrt(batch_size / (train_size * epochs))
    return 1.0


def per_step_decay(name: str, weight_decay: float, s: np.ndarray, *, lr: float,
                   batch_size: float | None = None, train_size: float | None = None,
                   epochs: float | None = None) -> np.ndarray:
    """d_t = c·s_t^p·λ: the fraction of θ removed by the decay at each step.

    Args:
        name: a key of ``FRAMEWORKS``.
        weight_decay: that framework's λ.
        s: (T,) schedule multipliers lr_t / lr.
        lr: base learning rate.
    Returns:
        (T,) float64 array.
    """
    fw = _check_framework(name, "framework")
    c = decay_scale(name, lr=lr, batch_size=batch_size, train_size=train_size, epochs=epochs)
    s = np.asarray(s, dtype=np.float64)
    return c * weight_decay * (s if fw.follows_schedule else np.ones_like(s))


@dataclass(frozen=True)
class FrameworkTranslation:
    """The dst value with the same per-step decay as the src value (see ``translate_framework``)."""

    value: float  # λ_dst matching the first step (exact at every step when ``exact``)
    exact: bool  # same d_t at every step of the schedule
    formula: str  # how value was computed
    max_rel_mismatch: float  # max_t |d_t^dst / d_t^src − 1| for ``value`` (0 when exact)
    worst_step: int  # the step t where that mismatch is largest
    value_mean: float  # λ_dst with the same mean decay over the schedule
    max_rel_mismatch_mean: float  # the same mismatch for ``value_mean``
    note: str  # one sentence for users


def translate_framework(weight_decay: float, src: str, dst: str, *, lr: float,
                        schedule: str = "constant", steps: int = 1,
                        batch_size: float | None = None, train_size: float | None = None,
                        epochs: float | None = None) -> FrameworkTranslation:
    """λ_dst with the same per-step decay d_t as λ_src (``d_t = c·s_t^p·λ``, module docstring).

    Same p: λ_dst = λ_src·c_src/c_dst, exact at every step. Different p: d_t agree at the first
    step with λ_dst = λ_src·c_src/c_dst (s_0 = 1), or on average with
    λ_dst = λ_src·c_src·mean(s^p_src)/(c_dst·mean(s^p_dst)); both mismatches are reported.

    Args:
        weight_decay: λ_src (>= 0).
        src, dst: keys of ``FRAMEWORKS``.
        lr: base learning rate (the same in both frameworks).
        schedule, steps: the lr schedule (``schedule_multipliers``).
        batch_size, train_size, epochs: b, B, T for ``lh-normalized``.
    """
    fs, fd = _check_framework(src, "from"), _check_framework(dst, "to")
    if not weight_decay >= 0:
        raise ValueError(f"wd: must be >= 0, got {weight_decay!r}")
    sizes = dict(batch_size=batch_size, train_size=train_size, epochs=epochs)
    c_src = decay_scale(src, lr=lr, **sizes)
    c_dst = decay_scale(dst, lr=lr, **sizes)
    s = schedule_multipliers(schedule, steps)  # (T,)
    value = weight_decay * c_src / c_dst
    d_src = per_step_decay(src, weight_decay, s, lr=lr, **sizes)  # (T,)
    unit_dst = per_step_decay(dst, 1.0, s, lr=lr, **sizes).mean()  # c_dst·mean(s^p_dst)
    value_mean = float(d_src.mean() / unit_dst)

    def mismatch(v: float) -> tuple[float, int]:
        if weight_decay == 0:
            return 0.0, 0
        rel = np.abs(per_step_decay(dst, v, s, lr=lr, **sizes) / d_src - 1.0)  # (T,)
        return float(rel.max()), int(rel.argmax())

    cs = {"torch-adamw": "lr", "optax-adamw": "lr", "keras-adamw": "lr", "tfa-adamw": "1",
          "composer": "1", "lh-normalized": "√(b/(B·T))"}
    formula = (f"λ_{dst} = λ_{src}" if cs[src] == cs[dst]
               else f"λ_{dst} = λ_{src}·{cs[src]}/{cs[dst]}".replace("/1", ""))
    exact = fs.follows_schedule == fd.follows_schedule or schedule == "constant"
    if exact:
        note = "exact: both decays follow the same schedule, so d_t agrees at every step"
        if fs.follows_schedule != fd.follows_schedule:
            note = ("exact under a constant schedule only; under a decaying one the two "
                    "decays agree at one step")
    else:
        scheduled = src if fs.follows_schedule else dst
        note = (f"not exact: {scheduled}'s decay follows lr_t/lr but the other's does not, so "
                "they agree at the first step only")
        if "tfa-adamw" in (src, dst):
            note += ("; exact if tfa's weight_decay is a callable following the schedule "
                     "(wd = lambda: λ·schedule(step))")
    (worst, worst_step), (worst_mean, _) = mismatch(value), mismatch(value_mean)
    return FrameworkTranslation(float(value), bool(exact), formula, worst, worst_step,
                                value_mean, worst_mean, note)


# ----------------------------------------------------------------------------------------
# Scaling rules when batch size, dataset size or lr change (Wang & Aitchison 2024).
# ----------------------------------------------------------------------------------------

SETTING_KEYS: tuple[str, ...] = ("lr", "wd", "batch", "n")


def tau_iter(lr: float, weight_decay: float) -> float:
    """τ_iter = 1/(lr·λ): AdamW's EMA timescale in iterations (inf when λ = 0)."""
    return math.inf if lr * weight_decay == 0 else 1.0 / (lr * weight_decay)


def tau_epoch(lr: float, weight_decay: float, batch: float, n: float) -> float:
    """τ_epoch = τ_iter/(N/B) = B/(lr·λ·N): the timescale in epochs (Wang & Aitchison 2024)."""
    return tau_iter(lr, weight_decay) * batch / n


def parse_setting(text: str, field: str) -> dict[str, float]:
    """``"lr=1e-3,wd=0.1,batch=256,n=50000"`` -> {"lr": 1e-3, ...}; unknown keys are errors."""
    out: dict[str, float] = {}
    for part in [p.strip() for p in str(text).split(",") if p.strip()]:
        key, sep, val = part.partition("=")
        key = key.strip()
        if not sep or key not in SETTING_KEYS:
            raise ValueError(f"{field}: {part!r} is not KEY=VALUE with KEY one of {SETTING_KEYS}")
        try:
            v = float(val)
        except ValueError:
            raise ValueError(f"{field}: {key}={val!r} is not a number") from None
        if not (math.isfinite(v) and (v > 0 or (key == "wd" and v >= 0))):
            raise ValueError(f"{field}: {key} must be > 0, got {val!r}")
        out[key] = v
    return out


@dataclass(frozen=True)
class ScalingRule:
    """One rule for the new λ: its name, the new λ and the timescales it gives."""

    rule: str
    weight_decay: float
    tau_iter: float
    tau_epoch: float
    formula: str


def scale_weight_decay(old: dict[str, float], new: dict[str, float]) -> list[ScalingRule]:
    """The new λ under three rules, Wang & Aitchison's first.

        keep τ_epoch  (Wang & Aitchison)  λ' = λ·(B'/B)·(lr/lr')·(N/N')
        keep λ                           λ' = λ
        keep lr·λ  (= keep τ_iter)       λ' = λ·lr/lr'

    Args:
        old: lr, wd, batch, n (all required).
        new: any of lr, batch, n (missing ones are kept); wd is not allowed.
    """
    missing = [k for k in SETTING_KEYS if k not in old]
    if missing:
        raise ValueError(f"from: missing {', '.join(missing)} (need lr, wd, batch, n)")
    if "wd" in new:
        raise ValueError("to: wd is what is computed; give only lr, batch and n")
    lr, wd, b, n = old["lr"], old["wd"], old["batch"], old["n"]
    lr2, b2, n2 = new.get("lr", lr), new.get("batch", b), new.get("n", n)
    rows = []
    for rule, w, formula in (
        ("keep tau_epoch (Wang & Aitchison 2024)", wd * (b2 / b) * (lr / lr2) * (n / n2),
         "λ' = λ·(B'/B)·(lr/lr')·(N/N')"),
        ("keep lambda", wd, "λ' = λ"),
        ("keep lr*lambda (= keep tau_iter)", wd * lr / lr2, "λ' = λ·lr/lr'"),
    ):
        rows.append(ScalingRule(rule, float(w), tau_iter(lr2, w), tau_epoch(lr2, w, b2, n2),
                                formula))
    return rows
