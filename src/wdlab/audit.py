"""What a user's torch optimizer really does to each parameter's weight decay.

For every parameter p in a param group with learning rate lr and ``weight_decay`` λ, the
decay is one of

    coupled     g ← g + λ·p, then the optimizer's step (SGD, RMSprop, Adagrad, Adam, ...)
    decoupled   p ← p·(1 − lr·λ) beside the step (AdamW, Adam/NAdam/RAdam with
                ``decoupled_weight_decay=True``): decay multiplied by lr
    none        λ = 0, or a frozen parameter (grad None: torch.optim skips it)

``shrink_per_step`` is the multiplicative change of p in one step from a fresh optimizer
state with zero gradient, the decay alone: 1 − lr·λ (decoupled; coupled plain SGD;
coupled RAdam's first, un-rectified steps), 1 − lr·λ·(1 + μ) (coupled Nesterov SGD),
NaN where it is not a multiplicative shrink. Coupled L2 under Adam is not one: Adam divides
the gradient λ·p by its own RMS |λ·p|, so the first step moves every coordinate by
lr·λp/(|λp| + ε) ≈ lr·sign(p), whatever λ (Loshchilov & Hutter 2019, Sec. 2).

EMA timescales (Wang & Aitchison 2024, arXiv 2405.13698): τ_iter = 1/(lr·λ·m) iterations,
with m = 1, or the steady-state momentum gain (1 − dampening)/(1 − μ) for coupled SGD
(Nesterov: 1 + μ(1 − dampening)/(1 − μ)); τ_epoch = τ_iter / steps_per_epoch; their
sensible range is 1 ≤ τ_epoch ≤ epochs.

``audit(..., probe=True)`` checks every reported number against torch itself: it copies the
parameters and the optimizer, sets non-zero weights and zero gradients, takes one real
``step()`` and compares each parameter's measured change with the predicted one.

Conventions recognised for which parameters to decay (trainable parameters only):
    nanoGPT  decay iff p.dim() >= 2 (karpathy/nanoGPT model.py ``configure_optimizers``)
    timm     no decay iff p.ndim <= 1 or name.endswith(".bias") or name fnmatch-es a pattern
             of model.no_weight_decay() (huggingface/pytorch-image-models
             timm/optim/_param_groups.py ``param_groups_weight_decay``)
    HF       no decay inside nn.LayerNorm modules or where the lower-cased name matches
             bias|layernorm|rmsnorm|(^|.)norm($|.)|_norm($|.) (transformers 5.24
             trainer.py ``Trainer.get_decay_parameter_names``, trainer_pt_utils.py
             ``get_parameter_names``)

This module is a face (it imports pandas and rich), not a math module.
"""

from __future__ import annotations

import copy
import difflib
import math
import sys
import types
import warnings
from collections import defaultdict
from dataclasses import dataclass, field

import torch
from torch import nn

from wdlab.decay_rules import ADAM_FAMILY as _ADAM_FAMILY
from wdlab.decay_rules import KNOWN as _KNOWN
from wdlab.decay_rules import decay_convention_sets, decay_kind, first_step, probe_values
from wdlab.decay_rules import named_parameters_kinds as _named
from wdlab.decay_rules import num as _num

__all__ = ["Audit", "Flag", "audit", "decay_convention_sets"]


#: param-group keys torch schedulers and common wrappers add (read by them, not the step)
_SCHEDULER_KEYS = {"params", "lr", "initial_lr", "param_names", "max_lr", "min_lr",
                   "base_momentum", "max_momentum",
                   "lr_scale", "simple"}  # timm's layer-decay groups (timm/optim/_param_groups.py)


COLUMNS = ["name", "shape", "kind", "group", "lr", "weight_decay", "decay", "shrink_per_step",
           "tau_iter", "tau_epoch", "shrink_avg", "shrink_total", "tau_epoch_avg", "note"]
PROBE_COLUMNS = ["probe", "probe_shrink", "probe_ratio_min", "probe_ratio_max", "probe_max_err"]


@dataclass(frozen=True)
class Flag:
    """One finding: a code, the parameters (or groups) it concerns, why, and the fix."""

    code: str
    params: list[str]
    message: str
    fix: str
    severity: str = "warning"  # "warning" (counts for --strict) or "info"


@dataclass
class Audit:
    """Per-parameter weight decay of one optimizer; see the module docstring."""

    optimizer: str
    rows: list[dict]
    flags: list[Flag]
    conventions: list[str]  # the decay conventions the groups match ([] = none)
    probed: bool = False
    notes: list[str] = field(default_factory=list)
    closest: str = ""  # when no convention matches: the nearest one and how many params differ

    def frame(self):
        """One row per parameter (pandas DataFrame); probe columns when probed."""
        import pandas as pd

        cols = COLUMNS + (PROBE_COLUMNS if self.probed else [])
        return pd.DataFrame([{c: r.get(c) for c in cols} for r in self.rows], columns=cols)

    @property
    def warnings(self) -> list[Flag]:
        return [f for f in self.flags if f.severity == "warning"]

    def to_dict(self) -> dict:
        """JSON-ready: non-finite numbers become None."""
        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v

        cols = COLUMNS + (PROBE_COLUMNS if self.probed else [])
        return {"optimizer": self.optimizer, "conventions": self.conventions,
                "params": [{c: clean(r.get(c)) for c in cols} for r in self.rows],
                "flags": [vars(f) | {"params": list(f.params)} for f in self.flags],
                "notes": list(self.notes)}

    def __str__(self) -> str:
        import io

        from rich.console import Console

        buf = io.StringIO()
        console = Console(file=buf, width=160, color_system=None, highlight=False)
        for item in self.renderables():
            console.print(item)
        return buf.getvalue()

    def renderables(self) -> list:
        """The rich table, then one line per flag (user strings escaped)."""
        from rich.markup import escape
        from rich.table import Table

        conv = ", ".join(self.conventions) or "none" + (f"; closest {self.closest}"
                                                        if self.closest else "")
        table = Table(title=escape(f"{self.optimizer}: weight decay per parameter "
                                   f"(decay groups match: {conv})"), pad_edge=False)
        heads = {"group": "grp", "weight_decay": "wd", "shrink_per_step": "shrink/step",
                 "tau_iter": "τ_iter", "tau_epoch": "τ_epoch", "shrink_avg": "shrink_avg"}
        cols = ["name", "shape", "kind", "group", "lr", "weight_decay", "decay",
                "shrink_per_step", "tau_iter", "tau_epoch"]
        if any(_finite(r.get("shrink_avg")) for r in self.rows):
            cols += ["shrink_avg"]
        if self.probed:
            cols += ["probe"]
        for c in cols:
            table.add_column(heads.get(c, c), no_wrap=True,
                             justify="right" if c not in ("name", "kind", "decay", "probe")
                             else "left")
        for r in self.rows:
            table.add_row(*[escape(_fmt(r.get(c))) for c in cols])
        out: list = [table]
        for f in self.flags:
            names = ", ".join(f.params[:4]) + (f" (+{len(f.params) - 4} more)"
                                               if len(f.params) > 4 else "")
            out.append(escape(f"[{f.severity}] {f.code}: {f.message}"
                              + (f" [{names}]" if names else "")))
            out.append(escape(f"    fix: {f.fix}"))
        for n in self.notes:
            out.append(escape(f"note: {n}"))
        if not self.flags:
            out.append("no flags")
        return out


def _finite(v) -> bool:
    return isinstance(v, float) and math.isfinite(v)


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "—"
        if v == 1.0 or v == 0.0:
            return f"{v:g}"
        if 0.9 < v < 1.0:
            return f"{v:.8f}".rstrip("0")
        return f"{v:.4g}"
    return str(v)






# ----------------------------------------------------------------------------------------
# Schedules
# ----------------------------------------------------------------------------------------

def _lr_trajectory(opt, scheduler, total: int, per_epoch: int | None, interval: str):
    """(T, G) list of per-group lrs over the run, from a copy of optimizer + scheduler."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise ValueError("scheduler: ReduceLROnPlateau depends on metrics; not simulated")
    memo = {id(p): p for g in opt.param_groups for p in g["params"]}  # share, don't copy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt2, sch2 = copy.deepcopy((opt, scheduler), memo)
        lrs = []
        for t in range(total):
            lrs.append([_num(g["lr"]) for g in opt2.param_groups])
            if interval == "step" or (per_epoch and (t + 1) % per_epoch == 0):
                sch2.step()
    return lrs


# ----------------------------------------------------------------------------------------
# The audit
# ----------------------------------------------------------------------------------------

def audit(model: nn.Module, optimizer: torch.optim.Optimizer, *,
          steps_per_epoch: int | None = None, epochs: int | None = None,
          scheduler=None, probe: bool = False, scheduler_interval: str = "step") -> Audit:
    """Audit what ``optimizer`` does to the weight decay of each of ``model``'s parameters.

    Per parameter: p ← p·shrink from the decay alone (module docstring), τ_iter = 1/(lr·λ·m),
    τ_epoch = τ_iter/steps_per_epoch; with a scheduler, the geometric-mean shrink over the
    run Π_t(1 − lr_t·λ)^(1/T) (``shrink_avg``) and its product (``shrink_total``).

    Args:
        model: the torch module whose parameters are trained.
        optimizer: a torch optimizer over (some of) them.
        steps_per_epoch: optimizer steps per epoch (N/B), for τ_epoch.
        epochs: planned epochs, for the τ_epoch range check and the schedule.
        scheduler: an lr scheduler over ``optimizer`` (simulated on a copy).
        probe: take one real step on copies and check every reported shrink (1e-6).
        scheduler_interval: "step" (scheduler.step() every optimizer step) or "epoch".

    Returns:
        An ``Audit``: ``frame()``, ``flags``, ``str()``.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer: expected a torch.optim.Optimizer, got "
                         f"{type(optimizer).__name__}")
    for name, v in (("steps_per_epoch", steps_per_epoch), ("epochs", epochs)):
        if v is not None and (int(v) != v or v < 1):
            raise ValueError(f"{name}: must be an integer >= 1, got {v!r}")
    if scheduler_interval not in ("step", "epoch"):
        raise ValueError(f"scheduler_interval: expected 'step' or 'epoch', got "
                         f"{scheduler_interval!r}")
    cls = type(optimizer)
    named = _named(model)
    flags: list[Flag] = []
    notes: list[str] = []

    lrs = None
    if scheduler is not None:
        if steps_per_epoch is None or epochs is None:
            notes.append("scheduler given without steps_per_epoch and epochs: not simulated")
        else:
            try:
                lrs = _lr_trajectory(optimizer, scheduler, steps_per_epoch * epochs,
                                     steps_per_epoch, scheduler_interval)
            except Exception as exc:  # e.g. OneCycleLR past total_steps, ReduceLROnPlateau
                notes.append(f"scheduler not simulated: {type(exc).__name__}: {exc}")

    rows: list[dict] = []
    seen: set[int] = set()
    models: dict[int, tuple] = {}
    for gi, group in enumerate(optimizer.param_groups):
        decay = decay_kind(optimizer, group)
        shrink, predict, m, note = first_step(optimizer, group, decay)
        lr = _num(group.get("lr", float("nan")))
        wd = _num(group.get("weight_decay", 0.0)) if "weight_decay" in group else float("nan")
        lam_eff = lr * wd * m if decay in ("coupled", "decoupled") else 0.0
        t_iter = (1.0 / lam_eff if lam_eff > 0 else
                  (math.inf if decay == "none" else float("nan")))
        if lrs is not None and decay in ("coupled", "decoupled") and _finite(shrink):
            per_t = [1.0 - lt[gi] * wd for lt in lrs]
            total = math.prod(per_t)
            avg = total ** (1.0 / len(per_t)) if total > 0 else float("nan")
            mean_lr = sum(lt[gi] for lt in lrs) / len(lrs)
            t_iter_avg = 1.0 / (mean_lr * wd * m) if mean_lr * wd > 0 else math.inf
        elif lrs is not None and decay == "none":
            total, avg, t_iter_avg = 1.0, 1.0, math.inf
        else:
            total = avg = t_iter_avg = float("nan")
        for p in group["params"]:
            if id(p) in seen:
                continue
            seen.add(id(p))
            name, kind, _ = named.get(id(p), (f"<not in model #{len(rows)}>", "other", p))
            frozen = not p.requires_grad
            d, s, pr, t_it, nt = decay, shrink, predict, t_iter, note
            if frozen and decay != "unknown":
                d, s, pr, t_it, nt = "none", 1.0, (lambda w: w), math.inf, (
                    "frozen (requires_grad=False): grad stays None, the step skips it")
            t_ep = t_it / steps_per_epoch if steps_per_epoch else float("nan")
            rows.append({
                "name": name, "shape": "x".join(str(s_) for s_ in p.shape) or "scalar",
                "kind": kind, "group": gi, "lr": lr, "weight_decay": wd, "decay": d,
                "shrink_per_step": s, "tau_iter": t_it, "tau_epoch": t_ep,
                "shrink_avg": avg if not frozen else (1.0 if lrs is not None else float("nan")),
                "shrink_total": total if not frozen else (1.0 if lrs is not None
                                                          else float("nan")),
                "tau_epoch_avg": (t_iter_avg / steps_per_epoch if steps_per_epoch
                                  and not frozen else float("nan")),
                "note": nt, "_requires_grad": p.requires_grad,
            })
            models[len(rows) - 1] = (p, pr)

    _flag_groups(optimizer, flags)
    _flag_params(model, optimizer, rows, named, seen, flags, steps_per_epoch, epochs)
    convs = _conventions(model, rows)
    _flag_decayed(rows, convs, flags, cls in _ADAM_FAMILY)

    aud = Audit(cls.__name__, rows, flags, convs, probed=False, notes=notes,
                closest=_closest(model, rows) if not convs else "")
    if probe:
        _probe(optimizer, rows, models, flags, notes)
        aud.probed = True
    for r in rows:
        r.pop("_requires_grad", None)
    return aud


def _flag_groups(opt, flags: list[Flag]) -> None:
    cls = type(opt)
    known = set(opt.defaults) | _SCHEDULER_KEYS
    for gi, group in enumerate(opt.param_groups):
        for key in group:
            if key in known:
                continue
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            used = (f"; the group uses {close[0]}={group.get(close[0])!r}"
                    if close and close[0] in group else "")
            flags.append(Flag(
                "unknown_key", [f"group {gi}"],
                f"param group {gi} has key {key!r}, which {cls.__name__} never reads{hint}{used}",
                f"rename it to {close[0]!r}" if close else f"remove {key!r} if it is not a tag",
                "warning" if close else "info"))
        if cls in _ADAM_FAMILY:
            eps = _num(group.get("eps", 1e-8))
            if 1e-4 <= eps <= 0.5:
                flags.append(Flag(
                    "positional_trap", [f"group {gi}"],
                    f"eps={eps:g} looks like a weight decay: in {cls.__name__}(params, lr, "
                    "betas, eps, weight_decay) the 4th positional argument is eps",
                    "pass weight_decay= and eps= by keyword (eps is normally 1e-8)"))
        if cls is torch.optim.SGD:
            damp = _num(group.get("dampening", 0.0))
            if 0 < damp <= 0.1:
                flags.append(Flag(
                    "positional_trap", [f"group {gi}"],
                    f"dampening={damp:g} looks like a weight decay: in SGD(params, lr, momentum, "
                    "dampening, weight_decay) the 4th positional argument is dampening",
                    "pass weight_decay= by keyword (dampening is normally 0)"))
        if cls is torch.optim.RMSprop:
            alpha = _num(group.get("alpha", 0.99))
            if alpha <= 0.1:
                flags.append(Flag(
                    "positional_trap", [f"group {gi}"],
                    f"alpha={alpha:g} looks like a weight decay: in RMSprop(params, lr, alpha, "
                    "eps, weight_decay) the 3rd positional argument is alpha",
                    "pass weight_decay= by keyword (alpha is normally 0.99)"))


def _flag_params(model, opt, rows, named, seen, flags, steps_per_epoch, epochs) -> None:
    cls = type(opt)
    missing = [name for pid, (name, _, p) in named.items() if p.requires_grad and pid not in seen]
    if missing:
        flags.append(Flag("missing_from_optimizer", missing,
                          f"{len(missing)} trainable parameter(s) are in no param group: never "
                          "updated, never decayed",
                          "add them to a param group (or freeze them with requires_grad_(False))"))
    frozen = [r["name"] for r in rows if not r["_requires_grad"]]
    if frozen:
        flags.append(Flag("frozen_in_optimizer", frozen,
                          f"{len(frozen)} frozen parameter(s) sit in a param group: skipped while "
                          "their grad is None, decayed with their group's λ once unfrozen",
                          "leave them out of the optimizer, or check their group's weight_decay"))
    if cls in _KNOWN and all(r["decay"] == "none" for r in rows if r["_requires_grad"]):
        flags.append(Flag("no_decay", [],
                          "weight_decay is 0 for every trainable parameter: no decay at all",
                          "set weight_decay on the weight matrices' group, e.g. AdamW(..., "
                          "weight_decay=0.1)"))
    if cls not in _KNOWN:
        base = next((b.__name__ for b in cls.__mro__[1:] if b in _KNOWN), None)
        flags.append(Flag("unknown_optimizer", [],
                          f"{cls.__name__} is not a torch.optim class the audit models"
                          + (f" (it subclasses {base}, but may change the step)" if base else "")
                          + "; decay reported as 'unknown'",
                          "run audit(..., probe=True) to measure its decay", "info"))
    if epochs is not None and steps_per_epoch is not None:
        bad = defaultdict(list)
        for r in rows:
            t = r["tau_epoch_avg"] if _finite(r.get("tau_epoch_avg")) else r["tau_epoch"]
            if r["decay"] in ("coupled", "decoupled") and _finite(t) and not 1 <= t <= epochs:
                bad[(r["group"], f"{t:.3g}")].append(r["name"])
        for (gi, t), names in bad.items():
            flags.append(Flag(
                "tau_epoch_range", names,
                f"group {gi}: τ_epoch = {t} epochs is outside [1, {epochs}] (Wang & Aitchison "
                "2024: the EMA should average over ≥ 1 epoch and forget within the run)",
                "choose λ = B/(lr·τ_epoch·N) for a τ_epoch in [1, epochs] "
                "(wdlab translate --keep tau-epoch)"))


def _conventions(model, rows) -> list[str]:
    decayed = {r["name"] for r in rows if r["decay"] in ("coupled", "decoupled", "unknown")
               and r["_requires_grad"] and not (r["decay"] == "unknown"
                                                and not (r["weight_decay"] or 0) > 0)}
    return [name for name, want in decay_convention_sets(model).items() if want == decayed]


def _closest(model, rows) -> str:
    sets = decay_convention_sets(model)
    decayed = {r["name"] for r in rows if r["decay"] in ("coupled", "decoupled")
               and r["_requires_grad"]}
    name = min(sets, key=lambda k: len(sets[k] ^ decayed))
    return f"{name}, {len(sets[name] ^ decayed)} params differ"


def _flag_decayed(rows, convs, flags, adam_family: bool) -> None:
    decayed = [r for r in rows if r["decay"] in ("coupled", "decoupled") and r["_requires_grad"]]
    match = f"decay groups match {', '.join(convs)}" if convs else "decay groups match no convention"
    for kind, severity, why in (
        ("bias", "warning", "nanoGPT, timm and HF never decay biases"),
        ("norm", "warning", "decaying norm scales fights the normalisation; nanoGPT, timm and HF "
                            "never decay LayerNorm"),
        ("embedding", "info", "nanoGPT, timm and HF decay embeddings too; some recipes do not"),
    ):
        names = [r["name"] for r in decayed if r["kind"] == kind]
        if names:
            flags.append(Flag(f"decayed_{kind}", names,
                              f"{len(names)} {kind} parameter(s) decayed ({match}): {why}",
                              "put them in a group with weight_decay=0, e.g. nanoGPT's rule "
                              "decay = [p for p in params if p.dim() >= 2]", severity))
    names = [r["name"] for r in decayed if r["decay"] == "coupled"] if adam_family else []
    if names:
        flags.append(Flag(
            "coupled_adam", names,
            "Adam's weight_decay is coupled L2, not AdamW: Adam divides λp by its own RMS, so "
            "λ barely acts (a zero-grad step moves p by ≈ lr·sign(p))",
            "use torch.optim.AdamW(..., weight_decay=λ) or Adam(..., decoupled_weight_decay=True)"
            "; note AdamW's decay is ×lr"))




def _probe(opt, rows, models, flags, notes) -> None:
    """One real step on copies: fresh state, w = ±linspace(0.5, 2), zero gradients."""
    params = [p for g in opt.param_groups for p in g["params"]]
    memo, copies = {}, {}
    for p in params:
        if id(p) not in memo:
            c = p.detach().clone()
            c.requires_grad_(p.requires_grad)
            memo[id(p)] = copies[id(p)] = c
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt2 = copy.deepcopy(opt, memo)
    opt2.state = defaultdict(dict)
    before = {}
    with torch.no_grad():
        for pid, c in copies.items():
            c.copy_(probe_values(c))
            before[pid] = c.detach().to(torch.float64).clone()
            c.grad = torch.zeros_like(c) if c.requires_grad else None
    try:
        type(opt2).step(opt2)  # the class's step: a scheduler may have patched opt.step itself
    except Exception as exc:  # e.g. LBFGS needs a closure
        notes.append(f"probe failed: {type(opt).__name__}.step() raised {type(exc).__name__}: "
                     f"{exc}")
        flags.append(Flag("probe_failed", [], f"the probe's step raised {type(exc).__name__}",
                          "audit without probe=True", "info"))
        for r in rows:
            r.update(probe="failed", probe_shrink=float("nan"), probe_ratio_min=float("nan"),
                     probe_ratio_max=float("nan"), probe_max_err=float("nan"))
        return
    tol = 1e-6 if all(c.dtype in (torch.float32, torch.float64) for c in copies.values()) else 1e-2
    bad, not_shrink = [], None
    for i, r in enumerate(rows):
        p, predict = models[i]
        w0 = before[id(p)]
        w1 = copies[id(p)].detach().to(torch.float64)
        if w0.numel() == 0:
            r.update(probe="empty", probe_shrink=float("nan"), probe_ratio_min=float("nan"),
                     probe_ratio_max=float("nan"), probe_max_err=float("nan"))
            continue
        ratio = w1 / w0
        spread = float(ratio.max() - ratio.min())
        scale = float(w0.abs().max())
        if spread <= tol:
            measured = float(ratio.mean())
            r["probe"] = "unchanged" if abs(measured - 1.0) <= tol else "multiplicative"
        else:
            measured = float("nan")
            r["probe"] = "not a shrink"
            lo, hi = float(ratio.min()), float(ratio.max())
            if not_shrink is None:
                not_shrink = (r["name"], lo, hi, float(w0.abs().min()), float(w0.abs().max()))
        r["probe_shrink"] = measured
        r["probe_ratio_min"], r["probe_ratio_max"] = float(ratio.min()), float(ratio.max())
        if predict is None:
            r["probe_max_err"] = float("nan")
            if r["decay"] == "unknown" and _finite(measured):
                r["shrink_per_step"] = measured
                r["note"] += f"; measured shrink {measured:.8g}"
            continue
        err = float((w1 - predict(w0)).abs().max()) / scale
        r["probe_max_err"] = err
        reported = r["shrink_per_step"]
        agrees = err <= tol and ((_finite(reported) and _finite(measured)
                                  and abs(reported - measured) <= tol)
                                 or (not _finite(reported) and not _finite(measured)))
        if not agrees:
            bad.append(r["name"])
    if not_shrink is not None:
        name, lo, hi, a, b = not_shrink
        notes.append(f"probe: one real step with zero gradient changed {name} by w1/w0 from "
                     f"{lo:.6g} to {hi:.6g} for |w| from {a:g} to {b:g}: not a multiplicative "
                     "shrink (that would give one ratio); the optimizer normalises the L2 "
                     "gradient λw, so each coordinate moves by about lr·sign(w)")
    if bad:
        flags.append(Flag("probe_mismatch", bad,
                          "the real optimizer step disagrees with the audit's prediction for "
                          f"{len(bad)} parameter(s)",
                          "trust the probe columns; please report the optimizer"))


class _CallableModule(types.ModuleType):
    """``import wdlab.audit`` binds this module over the package's lazy ``wdlab.audit``
    export (the function); calling the module calls the function, so both spellings work."""

    def __call__(self, *args, **kwargs):
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
