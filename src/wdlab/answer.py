"""How much weight decay? The one answer of a run, and the named checks that say when the
numbers cannot give it. Pure: numpy and ``wdlab.conventions`` only, no IO.

Per optimizer/regularizer group, on the lam grid lam_1 < ... < lam_L with mean validation
error v_i over seeds and the 95% CI half-width c_i of that mean:

    best     i* = argmin_i v_i          (the run's selection rule, ``wdlab.selection``)
    range    the contiguous lams around i* with v_i <= v_{i*} + c_{i*}: every lam that the
             seeds cannot tell apart from the best (a confidence set for lam)

and the same lam as scikit-learn's ``Ridge(alpha)`` and as a torch optimizer's
``weight_decay`` wherever the two updates or objectives coincide exactly
(``wdlab.conventions.sklearn_alpha`` / ``translate``).

Checks (each a ``{"code", "message"}`` dict, as stored in ``manifest.json["warnings"]``):

    grid_edge      the best lam is the smallest or the largest of the grid (a wider grid)
    flat_optimum   the validation curve is flat within its CI over >= ``FLAT_DECADES`` decades
    diverged       configurations diverged (count, and their lam / lr ranges)
    few_seeds      fewer than ``MIN_SEEDS`` seeds: the CIs over seeds are unreliable
    not_converged  trained validation error more than ``CONVERGED_RTOL`` off the closed-form
                   ridge at the same lam (where a closed form exists)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from wdlab.conventions import COUPLED, sklearn_alpha, translate

#: Check codes, in the order they are reported.
CODES = ("grid_edge", "flat_optimum", "diverged", "few_seeds", "not_converged", "unstable_lr")
#: Below this many seeds a CI over seeds is flagged.
MIN_SEEDS = 3
#: A validation curve flat within its CI over at least this many decades of lam is flagged.
FLAT_DECADES = 2.0
#: Relative gap |v_trained - v_ridge| / v_ridge above which training "did not converge".
CONVERGED_RTOL = 0.05
#: What "±" means wherever a run's answer is printed.
PLUS_MINUS = "± = 95% CI half-width of the mean over seeds (Student t)"


def warning(code: str, message: str) -> dict[str, str]:
    """One named check result, as stored in ``manifest.json``."""
    if code not in CODES:
        raise ValueError(f"code: unknown warning code {code!r}; expected one of {CODES}")
    return {"code": code, "message": " ".join(str(message).split())}


def as_warnings(items: Iterable) -> list[dict[str, str]]:
    """Normalise ``manifest["warnings"]`` of any version: old runs stored plain strings
    (the GD stability check); new runs store ``{"code", "message"}`` dicts."""
    out = []
    for w in items or []:
        if isinstance(w, dict):
            out.append({"code": str(w.get("code", "unstable_lr")), "message": str(w.get("message", ""))})
        else:
            out.append({"code": "unstable_lr", "message": str(w)})
    return out


def merge_warnings(*lists: Iterable) -> list[dict[str, str]]:
    """Concatenate warning lists (any version), dropping exact duplicates, order kept."""
    seen, out = set(), []
    for items in lists:
        for w in as_warnings(items):
            key = (w["code"], w["message"])
            if key not in seen:
                seen.add(key)
                out.append(w)
    return out


def g(v: float) -> str:
    """A number for a sentence: 4 significant digits."""
    return "—" if v is None or not math.isfinite(float(v)) else f"{float(v):.4g}"


# ------------------------------------------------------------------------------------------
# The answer: a lam range and its translations
# ------------------------------------------------------------------------------------------


def lam_range(lam: np.ndarray, val: np.ndarray, tol: float, best: float) -> tuple[float, float, int]:
    """The contiguous lams around ``best`` whose ``val`` is within ``tol`` of ``val[best]``.

    Args:
        lam: (L,) ascending; val: (L,) mean validation error (NaN = not eligible).
        tol: the CI half-width at the best lam (0 or NaN: the best lam alone).
        best: the best lam (an element of ``lam``).

    Returns:
        (lo, hi, count) of the range; (nan, nan, 0) when ``best`` is not in ``lam``.
    """
    lam, val = np.asarray(lam, np.float64), np.asarray(val, np.float64)
    hit = np.flatnonzero(lam == best)
    if not len(hit):
        return math.nan, math.nan, 0
    b = int(hit[0])
    tol = float(tol) if tol is not None and math.isfinite(float(tol)) else 0.0
    limit = val[b] + tol
    lo = hi = b
    while lo > 0 and np.isfinite(val[lo - 1]) and val[lo - 1] <= limit:
        lo -= 1
    while hi < len(lam) - 1 and np.isfinite(val[hi + 1]) and val[hi + 1] <= limit:
        hi += 1
    return float(lam[lo]), float(lam[hi]), hi - lo + 1


def translations(lam: float, *, optimizer: str, regularizer: str, loss: str, n_train: int,
                 n_features: int, momentum: float = 0.0, lr: float = math.nan) -> dict:
    """``lam`` (the group's convention) as scikit-learn ``alpha`` and torch ``weight_decay``.

    Exact translations only:

    - coupled penalties and ``weight_decay``: ``Ridge(alpha)`` has the same minimiser
      (``sklearn_alpha``), and ``torch.optim.SGD/Adam(weight_decay=wd)`` with
      ``nn.MSELoss()`` (``0.5 * MSELoss()`` for ``half_mse``) takes the same steps;
    - ``decoupled`` with Adam is ``torch.optim.AdamW(weight_decay=lam)`` (no ridge twin);
    - ``decoupled`` with SGD without momentum is coupled L2: w - lr (g + lam w) =
      w - lr g - lr lam w, so ``SGD(weight_decay=lam)`` and the ridge alpha of lam;
    - ``independent`` with SGD without momentum: w - lr g - eta_t lam w is coupled L2
      with wd = lam / lr.

    Returns ``{"alpha", "torch_weight_decay", "torch_optimizer"}`` (NaN / "" where none).
    """
    nan = {"alpha": math.nan, "torch_weight_decay": math.nan, "torch_optimizer": ""}
    if not (lam is not None and math.isfinite(float(lam)) and n_train and n_features):
        return nan
    lam, n, d = float(lam), int(n_train), int(n_features)
    torch_conv = "torch_mse" if loss == "mse" else "torch_half_mse"
    torch_opt = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}.get(optimizer, optimizer)
    if regularizer in COUPLED:
        return {"alpha": float(sklearn_alpha(lam, loss, regularizer, n, d)),
                "torch_weight_decay": float(translate(lam, f"{loss}+{regularizer}", torch_conv,
                                                      n_train=n, n_features=d)),
                "torch_optimizer": torch_opt}
    sgd_plain = optimizer == "sgd" and not momentum
    if regularizer == "decoupled" and optimizer in ("adam", "adamw"):
        return {**nan, "torch_weight_decay": lam, "torch_optimizer": "AdamW"}
    if regularizer in ("decoupled", "independent") and sgd_plain:
        wd = lam if regularizer == "decoupled" else (lam / lr if lr and math.isfinite(lr) else math.nan)
        if not math.isfinite(wd):
            return nan
        return {"alpha": float(sklearn_alpha(wd, loss, "weight_decay", n, d)),
                "torch_weight_decay": wd, "torch_optimizer": "SGD"}
    return nan


# ------------------------------------------------------------------------------------------
# The checks
# ------------------------------------------------------------------------------------------


def wider_grid(lams: Sequence[float], side: str, decades: float = 2.0) -> str:
    """A log range in the sweep grammar (``start:stop:num``), ``decades`` wider on ``side``
    ("low" or "high"), at the same density of points per decade as the positive grid."""
    pos = np.asarray([v for v in lams if v > 0], np.float64)
    if not len(pos):
        return ""
    lo, hi = float(pos.min()), float(pos.max())
    per_decade = max((len(pos) - 1) / math.log10(hi / lo), 2.0) if hi > lo else 5.0
    if side == "high":
        hi *= 10.0 ** decades
    else:
        lo /= 10.0 ** decades
    num = int(round(per_decade * math.log10(hi / lo))) + 1
    return f"{lo:g}:{hi:g}:{num}"


def edge_check(lams: Sequence[float], best: float, *, group: str, flag: str = "--lam"
               ) -> dict | None:
    """``grid_edge`` when ``best`` is the smallest or largest lam of the grid ``lams``."""
    grid = sorted({float(v) for v in lams if math.isfinite(float(v))})
    if len(grid) < 2 or best is None or not math.isfinite(float(best)):
        return None
    if float(best) == grid[-1]:
        side, word = "high", "largest"
    elif float(best) == grid[0]:
        side, word = "low", "smallest"
    else:
        return None
    where = f"{word} λ of the grid ({g(best)})"
    wider = wider_grid(grid, side)
    hint = f"; rerun with a wider grid, e.g. {flag} {wider}" if wider else ""
    if best == 0:
        hint = f"; no decay helped on this grid (try λ below {g(grid[1])}: {flag} {wider_grid(grid, 'low')})"
    return warning("grid_edge", f"{group}: the best λ is the {where}: the optimum may lie "
                                f"beyond the grid{hint}")


def flat_check(lo: float, hi: float, count: int, n_lams: int, *, group: str, best_val: float,
               tol: float, tol_word: str) -> dict | None:
    """``flat_optimum`` when the range of lams within ``tol`` of the best spans
    >= ``FLAT_DECADES`` decades (or the whole grid of >= 3 lams)."""
    if count < 2 or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    decades = math.log10(hi / lo) if lo > 0 else math.inf
    if decades < FLAT_DECADES and not (count == n_lams and n_lams >= 3):
        return None
    span = "the whole grid" if count == n_lams else f"{count} of {n_lams} grid values"
    dec = "λ = 0 upward" if lo == 0 else f"{decades:.1f} decades"
    return warning("flat_optimum",
                   f"{group}: the validation MSE stays within {tol_word} of its minimum "
                   f"({g(best_val)} ± {g(tol)}) for λ from {g(lo)} to {g(hi)} ({dec}, {span}): "
                   "the optimum is weakly determined; any λ in that range is as good")


def diverged_check(groups: Sequence[str], n_diverged: np.ndarray, n_total: int,
                   lam: np.ndarray, lr: np.ndarray | None) -> dict | None:
    """``diverged``: how many configurations diverged, and where (lam and lr ranges per group).

    Args:
        groups: (G,) label of each row; n_diverged: (G,) diverged count per row; n_total:
        configurations of the run; lam, lr: (G,) the row's lam and lr (lr may be None).
    """
    n_div = np.asarray(n_diverged, np.float64)
    total = int(n_div.sum())
    if total == 0:
        return None
    bits = []
    labels = np.asarray(groups, dtype=object)
    for name in dict.fromkeys(labels[n_div > 0]):
        m = (labels == name) & (n_div > 0)
        lam_g = np.asarray(lam, np.float64)[m]
        part = f"{name}: {int(n_div[m].sum())} at λ {_span(lam_g)}"
        if lr is not None:
            part += f", lr {_span(np.asarray(lr, np.float64)[m])}"
        bits.append(part)
    return warning("diverged", f"{total} of {n_total} configurations diverged and are left out "
                               f"of every mean ({'; '.join(bits)})")


def _span(v: np.ndarray) -> str:
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    return g(lo) if lo == hi else f"{g(lo)}–{g(hi)}"


def few_seeds_check(n_seeds: int, *, flag: str = "--seeds", folds: int = 0) -> dict | None:
    """``few_seeds`` when the CIs over seeds rest on fewer than ``MIN_SEEDS`` seeds (a k-fold
    CV with >= 3 folds gives its own standard error and is not flagged)."""
    if n_seeds >= MIN_SEEDS or folds >= MIN_SEEDS:
        return None
    what = ("one seed: no confidence interval over seeds" if n_seeds <= 1 else
            f"only {n_seeds} seeds: the 95% CIs (Student t, {n_seeds - 1} degree"
            f"{'s' if n_seeds > 2 else ''} of freedom) are wide and unreliable")
    return warning("few_seeds", f"{what}; rerun with {flag} {max(MIN_SEEDS, 5)} or more")


def converged_check(lam: np.ndarray, trained: np.ndarray, exact: np.ndarray, *, group: str,
                    metric: str = "validation", dist: np.ndarray | None = None) -> dict | None:
    """``not_converged``: lams where the trained error is > ``CONVERGED_RTOL`` (relative)
    from the closed-form ridge's at the same lam, the worst one named.

    Args:
        lam, trained, exact: (L,) lam, trained mean error, closed-form error (NaN = skip).
        dist: (L,) optional mean ||theta - theta_ridge|| (``dist_to_ridge``).
    """
    lam, tr, ex = (np.asarray(a, np.float64) for a in (lam, trained, exact))
    # lam > 0 only: at lam = 0 a wide problem has many minimisers, and gradient steps from
    # w0 != 0 reach another one than the min-norm closed form (not a failure to converge)
    ok = np.isfinite(tr) & np.isfinite(ex) & (ex > 0) & (lam > 0)
    if not ok.any():
        return None
    gap = np.where(ok, np.abs(tr - ex) / np.where(ex > 0, ex, 1.0), 0.0)
    bad = ok & (gap > CONVERGED_RTOL)
    if not bad.any():
        return None
    w = int(np.argmax(np.where(bad, gap, -1.0)))
    extra = ""
    if dist is not None and np.isfinite(np.asarray(dist, np.float64)[w]):
        extra = f", ‖θ − θ_ridge‖ = {g(np.asarray(dist, np.float64)[w])}"
    return warning("not_converged",
                   f"{group}: training did not reach the closed-form ridge at {int(bad.sum())} "
                   f"of {int(ok.sum())} λ values ({metric} MSE more than "
                   f"{CONVERGED_RTOL:.0%} off); worst at λ = {g(lam[w])}: {g(tr[w])} trained vs "
                   f"{g(ex[w])} exact{extra}; train longer or trust the closed form")


# ------------------------------------------------------------------------------------------
# The answer in words (console, report)
# ------------------------------------------------------------------------------------------

_OPT = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}


def paste(row: dict, suffix: str = "best") -> str:
    """What to paste: ``Ridge(alpha=…)`` and ``torch.optim.X(weight_decay=…)``, or why not."""
    alpha, wd = row.get(f"alpha_{suffix}", math.nan), row.get(f"torch_weight_decay_{suffix}", math.nan)
    bits = []
    if alpha is not None and math.isfinite(alpha):
        bits.append(f"sklearn Ridge(alpha={alpha:.4g})")
    if wd is not None and math.isfinite(wd):
        loss = "nn.MSELoss()" if row.get("loss", "mse") == "mse" else "0.5 * nn.MSELoss()"
        opt = row.get("torch_optimizer") or "Adam"
        mom = row.get("momentum")
        extra = f"momentum={mom:g}, " if opt == "SGD" and mom and math.isfinite(mom) else ""
        bits.append(f"torch.optim.{opt}({extra}weight_decay={wd:.4g}) with {loss}")
    if not bits:
        return ""
    return " = ".join(bits)


def answer_sentence(row: dict, label: str | None = None) -> str:
    """One line answering "how much weight decay?" for a selection row (``select``'s columns).

    ``best λ = 100 (val MSE 0.0231 ± 0.0023; λ 10–100 within the CI), 1-SE λ = 100;
    at n_train = 10: sklearn Ridge(alpha=5) = torch.optim.Adam(weight_decay=1) ...``
    """
    name = label or (f"{row['optimizer']}+{row['regularizer']}" if "optimizer" in row else "run")
    best = row.get("best_lam", math.nan)
    if best is None or not math.isfinite(best):
        return f"{name}: no λ to recommend (every configuration diverged or failed)"
    ci = row.get("best_val_mse_ci95", math.nan)
    val = f"val MSE {g(row.get('best_val_mse'))}" + (f" ± {g(ci)}" if ci is not None and math.isfinite(ci) else "")
    v = row.get("best_val_mse", math.nan)
    if v is None or not math.isfinite(v):
        val = f"test MSE {g(row.get('best_test_mse'))}; chosen on test: no validation split"
    lo, hi = row.get("lam_lo", math.nan), row.get("lam_hi", math.nan)
    if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi) and lo < hi:
        val += f"; λ {g(lo)}–{g(hi)} within the CI"
    text = f"{name}: best λ = {g(best)} ({val})"
    one = row.get("lam_1se", math.nan)
    if one is not None and math.isfinite(one):
        text += f", 1-SE λ = {g(one)}"
    n = row.get("n_train")
    where = f" at n_train = {int(n)}" if n is not None and math.isfinite(float(n)) else ""
    same = paste(row)
    if not same:
        return (f"{text}; the best λ has no exact scikit-learn or torch equivalent (a decay "
                "beside momentum or Adam moments)")
    return f"{text}; the best λ is {same}{where}"
