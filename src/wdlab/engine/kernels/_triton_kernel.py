"""The Triton kernel of ``engine.kernels.triton`` (imported only once Triton is known to import).

``triton.jit`` reads ``TRITON_INTERPRET`` when this module is executed; ``fused._kernel``
reloads it when the mode has changed since. It imports only ``engine.kernels`` (no circle).
"""

import triton
import triton.language as tl

from wdlab.engine.kernels.common import interpreting

INTERPRET = interpreting()


@triton.jit(do_not_specialize=["K", "M", "S", "n_w", "RK", "e0", "e1"])
def fused_epochs(
    theta_ptr, m_ptr, v_ptr,  # (K, D1) each, updated in place
    a_ptr, y_ptr, w_ptr, c_ptr,  # (G, NA, D1) rows: train then eval sets; (G, NA) x3
    bounds_ptr,  # (S + 1,) int32 row offset of each set (set 0 = train)
    lam_ptr, lr_ptr, b1_ptr, b2_ptr, l2_ptr, pen_ptr,  # (K,) each
    mask_ptr,  # (D1,) decay mask
    ref_ptr,  # (K, D1) closed-form reference (read only when HAS_REF)
    loss0_ptr, alive_ptr, div_ptr,  # (K,) float32, int8, int64
    eta_ptr, slot_ptr,  # (E,) schedule multiplier, metric slot (-1: not recorded)
    eps_ptr,  # (1,) Adam's eps
    met_ptr,  # (n_metrics, R, K)
    K, M, D1, NA, S, n_w, RK, e0, e1, c_val, div_factor,
    OPT: tl.constexpr, COUPLED: tl.constexpr, DECOUPLED: tl.constexpr,
    INDEPENDENT: tl.constexpr, HAS_REF: tl.constexpr,
    BK: tl.constexpr, BD: tl.constexpr,
):
    pid = tl.program_id(0)
    offs_k = pid * BK + tl.arange(0, BK)  # (BK,)
    kmask = offs_k < K
    offs_d = tl.arange(0, BD)  # (BD,)
    dmask = offs_d < D1
    km2 = kmask[:, None] & dmask[None, :]  # (BK, BD)
    kk = tl.where(kmask, offs_k, 0).to(tl.int64)
    rows = kk[:, None] * D1 + offs_d[None, :]  # (BK, BD)
    arow = (kk // M) * NA  # (BK,) first row of this configuration's draw
    theta = tl.load(theta_ptr + rows, mask=km2, other=0.0)
    m = tl.zeros((BK, BD), dtype=tl.float32)
    v = tl.zeros((BK, BD), dtype=tl.float32)
    if OPT >= 1:
        m = tl.load(m_ptr + rows, mask=km2, other=0.0)
    if OPT == 2:
        v = tl.load(v_ptr + rows, mask=km2, other=0.0)
    lam = tl.load(lam_ptr + kk)[:, None]
    lr = tl.load(lr_ptr + kk)
    b1 = tl.load(b1_ptr + kk)
    b2 = tl.load(b2_ptr + kk)
    l2 = tl.load(l2_ptr + kk)[:, None]
    lam_pen = tl.load(pen_ptr + kk)
    dmk = tl.load(mask_ptr + offs_d, mask=dmask, other=0.0)[None, :]  # (1, BD)
    wcols = (offs_d < n_w)[None, :]
    lim = div_factor * tl.load(loss0_ptr + kk)  # (BK,)
    alive = (tl.load(alive_ptr + kk) != 0) & kmask
    div = tl.load(div_ptr + kk)
    eps = tl.load(eps_ptr)
    n_train = tl.load(bounds_ptr + 1)
    # beta^t as a running float64 product, rounded to float32 when used: the correctly
    # rounded power (within 1e-13 over 1e4 steps), as torch's float32 pow on CPU gives
    b1d = b1.to(tl.float64)
    b2d = b2.to(tl.float64)
    p1 = tl.zeros((BK,), dtype=tl.float64) + 1.0
    p2 = tl.zeros((BK,), dtype=tl.float64) + 1.0
    if OPT == 2:
        for _ in range(0, e0):
            p1 = p1 * b1d
            p2 = p2 * b2d
    rk = RK.to(tl.int64)  # metric stride in the (n_metrics, R, K) buffer
    for e in range(e0, e1):
        eta = tl.load(eta_ptr + e)
        slot = tl.load(slot_ptr + e)
        grad = tl.zeros((BK, BD), dtype=tl.float32)
        mse = tl.zeros((BK,), dtype=tl.float32)
        for n in range(0, n_train):
            x = tl.load(a_ptr + (arow + n)[:, None] * D1 + offs_d[None, :], mask=km2, other=0.0)
            r = tl.sum(theta * x, axis=1) - tl.load(y_ptr + arow + n)  # (BK,)
            mse += (r * r) * tl.load(w_ptr + arow + n)
            grad += (r * tl.load(c_ptr + arow + n))[:, None] * x
        if slot >= 0:  # recorded epoch: metrics of theta at the epoch start
            base = met_ptr + slot.to(tl.int64) * K + offs_k
            tl.store(base, mse, mask=kmask)
            for s in range(1, S):
                acc = tl.zeros((BK,), dtype=tl.float32)
                for n in range(tl.load(bounds_ptr + s), tl.load(bounds_ptr + s + 1)):
                    x = tl.load(a_ptr + (arow + n)[:, None] * D1 + offs_d[None, :], mask=km2,
                                other=0.0)
                    r = tl.sum(theta * x, axis=1) - tl.load(y_ptr + arow + n)
                    acc += (r * r) * tl.load(w_ptr + arow + n)
                tl.store(base + s * rk, acc, mask=kmask)
            pen = lam_pen * tl.sum(theta * theta * dmk, axis=1)
            tl.store(base + S * rk, pen, mask=kmask)
            tl.store(base + (S + 1) * rk, c_val * mse + pen, mask=kmask)
            wn = tl.sum(tl.where(wcols, theta * theta, 0.0), axis=1)
            tl.store(base + (S + 2) * rk, tl.sqrt_rn(wn), mask=kmask)
            if HAS_REF:
                dr = theta - tl.load(ref_ptr + rows, mask=km2, other=0.0)
                tl.store(base + (S + 3) * rk, tl.sqrt_rn(tl.sum(dr * dr, axis=1)), mask=kmask)
        bad = alive & ((mse <= lim) == 0)  # non-finite or exploded: freeze from now on
        div = tl.where(bad, e, div)
        alive = alive & (bad == 0)
        u = grad
        if COUPLED:
            u = u + l2 * (theta * dmk)
        if OPT == 1:  # heavy-ball momentum, dampening 0
            m = b1[:, None] * m + u
            u = m
        if OPT == 2:  # Adam, as torch.optim.Adam
            m = m + (1.0 - b1)[:, None] * (u - m)
            v = b2[:, None] * v + (1.0 - b2)[:, None] * (u * u)
            p1 = p1 * b1d  # beta1^t, t = e + 1
            p2 = p2 * b2d
            bc1 = 1.0 - p1.to(tl.float32)
            bc2 = tl.sqrt_rn(1.0 - p2.to(tl.float32))
            u = tl.div_rn(tl.div_rn(m, bc1[:, None]),
                          tl.div_rn(tl.sqrt_rn(v), bc2[:, None]) + eps)
        if DECOUPLED:
            u = u + lam * (theta * dmk)
        u = -(lr * eta)[:, None] * u
        if INDEPENDENT:
            u = u - (eta * lam) * (theta * dmk)
        theta = tl.where(alive[:, None], theta + u, theta)
    tl.store(theta_ptr + rows, theta, mask=km2)
    if OPT >= 1:
        tl.store(m_ptr + rows, m, mask=km2)
    if OPT == 2:
        tl.store(v_ptr + rows, v, mask=km2)
    tl.store(alive_ptr + kk, alive.to(tl.int8), mask=kmask)
    tl.store(div_ptr + kk, div, mask=kmask)
