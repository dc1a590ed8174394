"""Which parameters a convention decays, and what a torch optimizer's decay does to them.

The decay model behind ``wdlab.audit`` (see its docstring for the math and the sources): the
kind of each parameter, the decay sets of nanoGPT, timm and HF, and each ``torch.optim``
class's first step from a fresh state with zero gradient, the decay alone:

    decoupled          p ← p·(1 − lr·λ)
    coupled, SGD       p ← p·(1 − lr·λ)      (Nesterov: 1 − lr·λ·(1 + μ))
    coupled, RAdam     p ← p·(1 − lr·λ)      (steps 1–5 are un-rectified)
    coupled, Adam      p ← p − c·lr·λp/(|λp| + ε)          (Adamax c = 1, NAdam c > 1)
    coupled, RMSprop   p ← p − lr·λp/(k·|λp| + ε),  k = √(1−α) (centered: √(α(1−α)))
    coupled, Adagrad   p ← p − lr·λp/(√(acc₀ + (λp)²) + ε)

Every formula is checked against torch's own step by ``audit(..., probe=True)`` (tests/test_audit.py).

This module is pure: torch and the standard library only.
"""

from __future__ import annotations

import fnmatch
import math
import re

import torch
from torch import nn

#: optimizers whose step the audit models exactly (first zero-grad step from a fresh state)
SGD_LIKE = (torch.optim.SGD,)
ADAM_FAMILY = (torch.optim.Adam, torch.optim.AdamW, torch.optim.NAdam, torch.optim.RAdam,
               torch.optim.Adamax)
KNOWN = SGD_LIKE + ADAM_FAMILY + (torch.optim.RMSprop, torch.optim.Adagrad)
_NORM_TYPES: tuple[type, ...] = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm,
                                 nn.LocalResponseNorm) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm")
                                                          else ())
_EMBEDDING_TYPES = (nn.Embedding, nn.EmbeddingBag)
_HF_PATTERNS = [re.compile(p) for p in
                (r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)")]


# ----------------------------------------------------------------------------------------
# Names and kinds
# ----------------------------------------------------------------------------------------

def _kind(module: nn.Module, local: str, p: torch.Tensor) -> str:
    """weight / bias / norm / embedding / other, by module type first, then by name."""
    mtype = type(module).__name__.lower()
    if isinstance(module, _NORM_TYPES) or "norm" in mtype:
        return "norm"
    if isinstance(module, _EMBEDDING_TYPES):
        return "embedding"
    low = local.lower()
    if low.endswith("bias"):
        return "bias"
    if "norm" in low:
        return "norm"
    if "emb" in low or low in ("wte", "wpe"):
        return "embedding"
    return "weight" if p.dim() >= 2 else "other"


def named_parameters_kinds(model: nn.Module) -> dict[int, tuple[str, str, torch.Tensor]]:
    """id(param) -> (name, kind, param), first name wins for tied parameters."""
    out: dict[int, tuple[str, str, torch.Tensor]] = {}
    for mname, mod in model.named_modules():
        for local, p in mod.named_parameters(recurse=False):
            if id(p) not in out:
                out[id(p)] = (f"{mname}.{local}" if mname else local, _kind(mod, local, p), p)
    return out


def _hf_decay_names(model: nn.Module) -> set[str]:
    """Names HF's Trainer decays (``get_parameter_names(model, [nn.LayerNorm], patterns)``)."""
    def walk(mod: nn.Module) -> list[str]:
        result = []
        for name, child in mod.named_children():
            result += [f"{name}.{n}" for n in walk(child)
                       if not isinstance(child, nn.LayerNorm)
                       and not any(pt.search(f"{name}.{n}".lower()) for pt in _HF_PATTERNS)]
        result += [k for k in mod._parameters
                   if not any(pt.search(k.lower()) for pt in _HF_PATTERNS)]
        return result

    return set(walk(model))


def decay_convention_sets(model: nn.Module) -> dict[str, set[str]]:
    """The trainable parameter names each convention decays: nanoGPT, timm, HF."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    nwd = set()
    if callable(getattr(model, "no_weight_decay", None)):
        nwd = set(model.no_weight_decay())
    hf = _hf_decay_names(model)
    return {
        "nanoGPT": {n for n, p in named if p.dim() >= 2},
        "timm": {n for n, p in named if not (p.ndim <= 1 or n.endswith(".bias")
                                             or any(fnmatch.fnmatch(n, pat) for pat in nwd))},
        "HF": {n for n, _ in named if n in hf},
    }

# ----------------------------------------------------------------------------------------
# The decay model of each optimizer: kind of decay and the first zero-grad step
# ----------------------------------------------------------------------------------------

def num(v) -> float:
    return float(v.item()) if isinstance(v, torch.Tensor) else float(v)


def decay_kind(opt: torch.optim.Optimizer, group: dict) -> str:
    cls = type(opt)
    if cls not in KNOWN:
        return "unknown"
    wd = num(group.get("weight_decay", 0.0))
    if wd == 0:
        return "none"
    if cls is torch.optim.AdamW or (cls in (torch.optim.Adam, torch.optim.NAdam,
                                            torch.optim.RAdam)
                                    and group.get("decoupled_weight_decay", False)):
        return "decoupled"
    return "coupled"


def first_step(opt: torch.optim.Optimizer, group: dict, decay: str):
    """(shrink or NaN, predict(w0)->w1 or None, m, note) for a zero-grad first step."""
    cls, lr = type(opt), num(group.get("lr", float("nan")))
    wd = num(group.get("weight_decay", 0.0)) if decay != "unknown" else float("nan")
    if decay == "none":
        return 1.0, (lambda w: w), 1.0, ""
    if decay == "unknown":
        return float("nan"), None, 1.0, (f"{cls.__name__} is not modelled: its decay is "
                                         "unknown (probe=True measures it)")
    if decay == "decoupled":
        s = 1.0 - lr * wd
        return s, (lambda w: w * s), 1.0, "decoupled: p ← p·(1 − lr·λ), ×lr"
    # coupled: the step sees g = λw
    if cls is torch.optim.SGD:
        mu, damp = num(group.get("momentum", 0.0)), num(group.get("dampening", 0.0))
        nesterov = bool(group.get("nesterov", False))
        first = 1.0 + mu if (nesterov and mu) else 1.0
        s = 1.0 - lr * wd * first
        if mu == 0:
            return s, (lambda w: w * s), 1.0, "coupled L2 under plain SGD: same as SGDW ×lr"
        m = (1.0 + mu * (1 - damp) / (1 - mu)) if nesterov else (1 - damp) / (1 - mu)
        return s, (lambda w: w * s), m, (f"coupled L2 under momentum {mu:g}: first step "
                                         f"{'1 − lr·λ·(1+μ)' if nesterov else '1 − lr·λ'}, "
                                         f"steady state ×{m:.3g} (τ uses it)")
    if cls is torch.optim.RAdam:
        s = 1.0 - lr * wd
        return s, (lambda w: w * s), 1.0, ("coupled L2 under RAdam: steps 1–5 are un-rectified "
                                           "(p·(1 − lr·λ)); from step 6 Adam normalises λp")
    eps = num(group.get("eps", 1e-8))
    if cls in (torch.optim.Adam, torch.optim.AdamW, torch.optim.Adamax):
        c = 1.0
    elif cls is torch.optim.NAdam:
        b1 = num(group["betas"][0])
        psi = num(group.get("momentum_decay", 4e-3))
        mu = b1 * (1.0 - 0.5 * 0.96 ** psi)
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** (2 * psi))
        c = 1.0 + mu_next * (1.0 - b1) / (1.0 - mu * mu_next)
    elif cls is torch.optim.RMSprop:
        a = num(group.get("alpha", 0.99))
        k = math.sqrt(a * (1 - a) if group.get("centered", False) else 1 - a)

        def predict_rms(w):
            return w - lr * wd * w / (k * (wd * w).abs() + eps)
        return float("nan"), predict_rms, float("nan"), (
            "coupled L2 under RMSprop: not a shrink; RMSprop divides λp by its RMS "
            "√(1−α)|λp|, so the first step moves p by ≈ lr·sign(p)/√(1−α)")
    else:  # Adagrad
        acc0 = num(group.get("initial_accumulator_value", 0.0))

        def predict_ada(w):
            return w - lr * wd * w / (torch.sqrt(acc0 + (wd * w) ** 2) + eps)
        return float("nan"), predict_ada, float("nan"), (
            "coupled L2 under Adagrad: not a shrink; Adagrad divides λp by √(Σ(λp)²), so the "
            "first step moves p by ≈ lr·sign(p)")

    def predict_adam(w):
        return w - c * lr * wd * w / ((wd * w).abs() + eps)
    return float("nan"), predict_adam, float("nan"), (
        f"coupled L2 under {cls.__name__}: not a shrink; Adam divides λp by its own RMS |λp|, "
        "so the first step moves each coordinate by ≈ lr·sign(p) whatever λ")


def probe_values(p: torch.Tensor) -> torch.Tensor:
    n = p.numel()
    mag = torch.linspace(0.5, 2.0, n, dtype=torch.float64) if n > 1 else torch.ones(1,
                                                                                    dtype=torch.float64)
    sign = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0).to(torch.float64)
    return (mag * sign).reshape(p.shape).to(p.dtype)
