// Every epoch of a full-batch run in one CPU kernel (engine "native").
//
// The CPU twin of the Triton kernel in _triton_kernel.py, with the same rule chain in the
// same operation order:
//
//   r_n   = x_{g,n} . theta_k - y_{g,n}                     (train rows; every row set when recorded)
//   mse_k = sum_n s_n r_n^2;   grad_k = sum_n (c_loss * 2 s_n r_n) x_{g,n}
//   alive_k <- alive_k and mse_k <= DIVERGENCE_FACTOR * loss0_k (else diverged_k = e)
//   theta_k <- theta_k + chain(grad_k)                           (alive configurations only)
//
// chain = [AddL2] -> [TraceMomentum | ScaleByAdam] -> [AddDecayedWeights] ->
// ScaleByLearningRate -> [AddScheduledDecay].
//
// Layout: configurations are the vector lanes. A block is L = VEC_BYTES / sizeof(T) consecutive
// configurations of one draw; its theta, m and v are held transposed, (D1, L), in a
// thread-local buffer for ALL epochs (a few tens of kB: L1/L2), so the run is compute-bound
// and memory is touched once per block. Blocks never interact; the caller gives each thread
// a contiguous range of blocks. No fast-math: division and square root are exact; the
// compiler may fuse a * b + c into one FMA (GCC's default in C++), so the bits are those of
// this machine and compiler (bitwise reproducible there); the dot products' summation order
// differs from the matmul engines. Denormals are flushed to zero in the kernel's threads.
//
// Built by wdlab.engine.kernels.native_build with the system C++ compiler (-O3 -march=native -fno-math-errno),
// loaded with ctypes. GCC/Clang vector extensions only; no intrinsics except MXCSR on x86.

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define WDLAB_X86 1
#endif

namespace {

// A block's lanes are one hardware vector: 64 bytes with AVX-512, else 32 (AVX2, NEON pairs).
// Wider generic vectors are split by the compiler, and GCC 12 then keeps arrays of them (the
// accumulators) on the stack: on an AVX2 machine 64-byte lanes ran the MLP kernel 5x and
// the linear kernel ~7x slower. Lanes never interact, so a configuration's bits do not depend
// on its neighbours or the thread count; they do depend on the instruction set (the width and
// whether multiply-adds are fused), like every -march=native build.
#if defined(__AVX512F__)
constexpr int VEC_BYTES = 64;
#else
constexpr int VEC_BYTES = 32;
#endif

// Vectors of BYTES bytes of T: one per block of configurations (the lanes).
template <typename T, int BYTES = VEC_BYTES> struct Lanes;
template <int BYTES> struct Lanes<float, BYTES> {
  typedef float V __attribute__((vector_size(BYTES)));
  typedef int32_t I __attribute__((vector_size(BYTES)));
  typedef int32_t S;  // I's lane type
};
template <int BYTES> struct Lanes<double, BYTES> {
  typedef double V __attribute__((vector_size(BYTES)));
  typedef int64_t I __attribute__((vector_size(BYTES)));
  typedef int64_t S;
};

constexpr int RB = 8;  // rows per forward pass (independent accumulators)
constexpr int DB = 4;  // coordinates per gradient pass (independent accumulators)

// Field order and types match wdlab.engine.kernels.native_build.Args (ctypes); pointers are T* for T = float or
// double, scalars are double whatever T is.
template <typename T>
struct Args {
  T *theta, *m, *v;            // (K, D1) in/out
  const T *a;                  // (G, NA, D1) rows: train rows, then each eval set's rows
  const T *aT;                 // (G, D1, N) train rows, transposed
  const T *y, *w;              // (G, NA) targets, per-set sample weights
  const T *c;                  // (G, N) loss-gradient weight of each train row
  const int32_t *bounds;       // (S + 1,) first row of each set; set 0 = train
  const T *lam, *lr, *b1, *b2, *l2, *lampen;  // (K,)
  const T *mask;               // (D1,) decay mask
  const T *ref;                // (K, D1) or null
  const T *loss0;              // (K,)
  int8_t *alive;               // (K,) in/out
  int64_t *div;                // (K,) in/out
  const T *eta;                // (E,)
  const int32_t *slots;        // (E,) metric slot or -1
  T *met;                      // (n_met, R, K)
  int64_t K, M, D1, NA, N, S, n_w, RK, e0, e1;
  int64_t coupled, decoupled, independent;  // chain flags (0/1)
  double eps, c_val, div_factor;
};

template <typename V, int L>
inline V vsqrt(V x) {
  V r;
  for (int j = 0; j < L; ++j) r[j] = std::sqrt(x[j]);
  return r;
}

template <typename T, typename V>
inline V splat(T x) {
  return V{} + x;
}

// One optimizer step of one coordinate for the L configurations of a block (the lanes): the
// rule chain of optim.rules, in its order, on per-lane hyperparameters. Shared by the linear
// kernel (run_block) and the MLP kernel (net_block).
//
//   [AddL2] -> [TraceMomentum | ScaleByAdam] -> [AddDecayedWeights] -> ScaleByLearningRate
//           -> [AddScheduledDecay];   theta <- alive ? theta + u : theta
template <typename T, int OPT, int BYTES = VEC_BYTES>
struct Chain {
  typedef typename Lanes<T, BYTES>::V V;
  typedef typename Lanes<T, BYTES>::I I;
  static constexpr int L = BYTES / sizeof(T);
  V lam{}, lr{}, b1{}, b2{}, l2{}, one_m_b1{}, one_m_b2{}, eps{};
  bool coupled = false, decoupled = false, independent = false;
  double b1d[L], b2d[L], p1[L], p2[L];
  V bc1{}, bc2{}, lr_eta{}, eta_lam{};  // this step's

  // beta^t as float64 running products, after `done` steps
  void start(int64_t done) {
    for (int j = 0; j < L; ++j) {
      b1d[j] = double(b1[j]);
      b2d[j] = double(b2[j]);
      p1[j] = 1.0;
      p2[j] = 1.0;
    }
    one_m_b1 = splat<T, V>(T(1)) - b1;
    one_m_b2 = splat<T, V>(T(1)) - b2;
    if (OPT == 2)
      for (int64_t e = 0; e < done; ++e)
        for (int j = 0; j < L; ++j) { p1[j] *= b1d[j]; p2[j] *= b2d[j]; }
  }
  // the next step's constants (t = done + 1), with schedule multiplier eta
  void next(T eta) {
    if (OPT == 2) {
      for (int j = 0; j < L; ++j) {
        p1[j] *= b1d[j];
        p2[j] *= b2d[j];
        bc1[j] = T(1) - T(p1[j]);
        bc2[j] = std::sqrt(T(1) - T(p2[j]));
      }
    }
    lr_eta = lr * eta;
    eta_lam = eta * lam;
  }
  // theta, m, v of one coordinate (decay mask md) after the step with gradient grad
  inline void apply(V& th, V grad, T md, V& mm, V& vv, I alive) const {
    const V t = th;
    V u = grad;
    if (coupled) u = u + l2 * (t * md);  // AddL2
    if (OPT == 1) {  // TraceMomentum (dampening 0)
      V b = b1 * mm + u;
      mm = b;
      u = b;
    } else if (OPT == 2) {  // ScaleByAdam, as torch.optim.Adam
      V m = mm + one_m_b1 * (u - mm);
      V v = b2 * vv + one_m_b2 * (u * u);
      mm = m;
      vv = v;
      u = (m / bc1) / (vsqrt<V, L>(v) / bc2 + eps);
    }
    if (decoupled) u = u + lam * (t * md);  // AddDecayedWeights
    u = -lr_eta * u;  // ScaleByLearningRate
    if (independent) u = u - eta_lam * (t * md);  // AddScheduledDecay
    th = alive ? t + u : t;
  }
};

// forward: r[n] = a[n] . th - y[n] for rows [lo, hi)
template <typename T, typename V>
inline void forward(const T* a, const T* y, const V* th, V* r, int64_t lo, int64_t hi,
                    int64_t D1) {
  int64_t n = lo;
  for (; n + RB <= hi; n += RB) {
    V acc[RB];
    for (int i = 0; i < RB; ++i) acc[i] = V{};
    const T* row = a + n * D1;
    for (int64_t d = 0; d < D1; ++d) {
      V t = th[d];
      for (int i = 0; i < RB; ++i) acc[i] += row[i * D1 + d] * t;
    }
    for (int i = 0; i < RB; ++i) r[n + i] = acc[i] - y[n + i];
  }
  for (; n < hi; ++n) {
    V acc = V{};
    const T* row = a + n * D1;
    for (int64_t d = 0; d < D1; ++d) acc += row[d] * th[d];
    r[n] = acc - y[n];
  }
}

template <typename T, int OPT>
void run_block(const Args<T>& A, int64_t start, int n_live, void* scratch) {
  typedef typename Lanes<T>::V V;
  typedef typename Lanes<T>::I I;
  constexpr int L = VEC_BYTES / sizeof(T);
  const int64_t D1 = A.D1, NA = A.NA, N = A.N, K = A.K;
  const int64_t g = start / A.M;
  const T* a = A.a + g * NA * D1;
  const T* aT = A.aT + g * D1 * N;
  const T* y = A.y + g * NA;
  const T* w = A.w + g * NA;
  const T* c = A.c + g * N;
  V* th = static_cast<V*>(scratch);
  V* mm = th + D1;
  V* vv = mm + D1;
  V* r = vv + D1;   // (NA,)
  V* cr = r + NA;   // (N,)

  // per-lane constants; padded lanes get harmless values and are never stored
  Chain<T, OPT> ch;
  V lampen{}, lim{};
  I alive{};
  for (int j = 0; j < L; ++j) {
    const bool live = j < n_live;
    const int64_t k = start + (live ? j : 0);
    ch.lam[j] = A.lam[k];
    ch.lr[j] = A.lr[k];
    ch.b1[j] = live ? A.b1[k] : T(0.5);
    ch.b2[j] = live ? A.b2[k] : T(0.5);
    ch.l2[j] = A.l2[k];
    lampen[j] = A.lampen[k];
    lim[j] = T(A.div_factor) * A.loss0[k];
    alive[j] = (live && A.alive[k] != 0) ? -1 : 0;
  }
  for (int64_t d = 0; d < D1; ++d) {
    for (int j = 0; j < L; ++j) {
      const int64_t k = start + (j < n_live ? j : 0);
      th[d][j] = A.theta[k * D1 + d];
      mm[d][j] = OPT >= 1 ? A.m[k * D1 + d] : T(0);
      vv[d][j] = OPT == 2 ? A.v[k * D1 + d] : T(0);
    }
  }
  ch.eps = splat<T, V>(T(A.eps));
  ch.coupled = A.coupled;
  ch.decoupled = A.decoupled;
  ch.independent = A.independent;
  ch.start(A.e0);
  int diverged_here[L];
  for (int j = 0; j < L; ++j) diverged_here[j] = 0;
  int64_t div_epoch[L];

  for (int64_t e = A.e0; e < A.e1; ++e) {
    const T eta = A.eta[e];
    const int32_t slot = A.slots[e];
    // train rows always in the same row blocks (their residuals must not depend on whether
    // the epoch is recorded: a block and a remainder row may round differently), then the
    // eval rows of a recorded epoch
    forward<T, V>(a, y, th, r, 0, N, D1);
    if (slot >= 0) forward<T, V>(a, y, th, r, N, NA, D1);
    V mse{};
    for (int64_t n = 0; n < N; ++n) mse += (r[n] * r[n]) * w[n];
    if (slot >= 0) {  // metrics of theta at the epoch start
      T* base = A.met + int64_t(slot) * K + start;
      auto put = [&](int64_t row, V x) {
        for (int j = 0; j < n_live; ++j) base[row * A.RK + j] = x[j];
      };
      put(0, mse);
      for (int64_t s = 1; s < A.S; ++s) {
        V acc{};
        for (int64_t n = A.bounds[s]; n < A.bounds[s + 1]; ++n) acc += (r[n] * r[n]) * w[n];
        put(s, acc);
      }
      V sq{}, wn{}, dr{};
      for (int64_t d = 0; d < D1; ++d) {
        V t2 = th[d] * th[d];
        sq += t2 * A.mask[d];
        if (d < A.n_w) wn += t2;
      }
      V pen = lampen * sq;
      put(A.S, pen);
      put(A.S + 1, T(A.c_val) * mse + pen);
      put(A.S + 2, vsqrt<V, L>(wn));
      if (A.ref != nullptr) {
        for (int64_t d = 0; d < D1; ++d) {
          V x;
          for (int j = 0; j < L; ++j) x[j] = A.ref[(start + (j < n_live ? j : 0)) * D1 + d];
          V q = th[d] - x;
          dr += q * q;
        }
        put(A.S + 3, vsqrt<V, L>(dr));
      }
    }
    // divergence: non-finite or exploded training MSE freezes the configuration
    I ok = (mse <= lim);
    I bad = alive & ~ok;
    for (int j = 0; j < L; ++j)
      if (bad[j] && !diverged_here[j]) { diverged_here[j] = 1; div_epoch[j] = e; }
    alive = alive & ok;
    for (int64_t n = 0; n < N; ++n) cr[n] = r[n] * c[n];

    ch.next(eta);
    // one coordinate's step, given its gradient
    auto step = [&](int64_t d, V grad) { ch.apply(th[d], grad, A.mask[d], mm[d], vv[d], alive); };
    int64_t d = 0;
    for (; d + DB <= D1; d += DB) {  // DB gradient coordinates at once: independent chains
      V gacc[DB];
      for (int i = 0; i < DB; ++i) gacc[i] = V{};
      const T* col = aT + d * N;
      for (int64_t n = 0; n < N; ++n) {
        const V q = cr[n];
        for (int i = 0; i < DB; ++i) gacc[i] += q * col[i * N + n];
      }
      for (int i = 0; i < DB; ++i) step(d + i, gacc[i]);
    }
    for (; d < D1; ++d) {
      V gacc{};
      const T* col = aT + d * N;
      for (int64_t n = 0; n < N; ++n) gacc += cr[n] * col[n];
      step(d, gacc);
    }
  }
  for (int64_t d = 0; d < D1; ++d) {
    for (int j = 0; j < n_live; ++j) {
      const int64_t k = start + j;
      A.theta[k * D1 + d] = th[d][j];
      if (OPT >= 1) A.m[k * D1 + d] = mm[d][j];
      if (OPT == 2) A.v[k * D1 + d] = vv[d][j];
    }
  }
  for (int j = 0; j < n_live; ++j) {
    A.alive[start + j] = alive[j] ? 1 : 0;
    if (diverged_here[j]) A.div[start + j] = div_epoch[j];
  }
}

// Blocks [b0, b1) of L lanes over draws of M configurations each (a block never spans two
// draws): f(first configuration, live lanes) for each. Shared by both kernels.
template <int L, typename F>
void for_blocks(int64_t M, int64_t b0, int64_t b1, F f) {
  const int64_t per_draw = (M + L - 1) / L;
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t g = b / per_draw, first = (b % per_draw) * L;
    f(g * M + first, int(M - first < L ? M - first : L));
  }
}

// f(std::integral_constant<int, OPT>{}) for opt 0 (SGD), 1 (momentum), 2 (Adam), with
// denormals flushed to zero (FTZ | DAZ) in this thread only, for the call.
template <typename F>
void with_opt(int64_t opt, F f) {
#ifdef WDLAB_X86
  const unsigned int csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040);
#endif
  if (opt == 0) f(std::integral_constant<int, 0>{});
  else if (opt == 1) f(std::integral_constant<int, 1>{});
  else f(std::integral_constant<int, 2>{});
#ifdef WDLAB_X86
  _mm_setcsr(csr);
#endif
}

template <typename T>
int run(const Args<T>* A, int64_t opt, int64_t b0, int64_t b1) {
  typedef typename Lanes<T>::V V;
  const size_t n_vec = size_t(3 * A->D1 + A->NA + A->N);
  void* scratch = std::aligned_alloc(64, n_vec * sizeof(V));
  if (scratch == nullptr) return 1;
  with_opt(opt, [&](auto o) {
    for_blocks<VEC_BYTES / sizeof(T)>(A->M, b0, b1, [&](int64_t start, int n_live) {
      run_block<T, decltype(o)::value>(*A, start, n_live, scratch);
    });
  });
  std::free(scratch);
  return 0;
}

// ---------------------------------------------------------------------------------------
// K MLPs (wdlab.nets, engine "native"): every step of a range of epochs in one call.
//
// Configuration k's parameters theta_k (P,) are in state_dict order: W_l (out, in) row-major
// at woff[l], b_l at boff[l]. Per row n (h_0 = x_n, shared by the lanes of a block, which
// are configurations of one draw):
//
//   z_l = W_l h_{l-1} + b_l,  h_l = act(z_l) (hidden layers),  logits z_L
//   loss_n: cross_entropy (label smoothing eps) | mse | half_mse   (wdlab.nets.losses)
//   L = sum_n s_n loss_n, s_n = w_n / sum(w) over the batch (1 / rows without weights)
//   dz_L = s_n dloss_n/dz;  dW_l += dz_l h_{l-1}^T;  db_l += dz_l;
//   dz_{l-1} = (W_l^T dz_l) * act'(z_{l-1})
//
// then the rule chain (Chain) on every coordinate, as nets.update.ChainUpdate. Divergence
// (loss > div_factor * loss0, or not finite) freezes a configuration before its step, as
// nets.engine. Rows are processed RB at a time (each weight loaded once per RB rows);
// a block's theta, moments and gradient stay in a scratch buffer for all the call's steps.
// Transcendental functions (exp, log, tanh, erf) are the C library's, lane by lane.

template <typename T>
struct NetArgs {
  T *theta, *m, *v;             // (K, P) in/out
  const T *x;                   // (G, N, D) train rows
  const int64_t *lab;           // (G, N) class labels, or null
  const T *val;                 // (G, N, C) float targets (mse, half_mse), or null
  const T *wt;                  // row weights (G, N) per draw or (K, N) per configuration, or null
  const T *xt;                  // (G, NT, D) test rows, or null
  const int64_t *labt;          // (G, NT) or null
  const T *valt;                // (G, NT, C) or null
  const int64_t *perm;          // (e1 - e0, G, N) the call's epochs' row permutations
                                //  (minibatch), or null
  const int64_t *widths;        // (NL + 1,)
  const int64_t *woff, *boff;   // (NL,) offsets in a theta row; boff[l] = -1: no bias
  const int64_t *toff;          // (NTENS + 1,) offsets of the state_dict tensors
  const T *lam, *lr, *b1, *b2, *l2, *lampen;  // (K,)
  const T *mask;                // (P,) decay mask
  T *loss0;                     // (K,) in/out: set at epoch 0
  int8_t *alive;                // (K,) in/out
  int64_t *div;                 // (K,) in/out
  const T *eta;                 // (E * NB,) schedule multiplier of every step
  const int32_t *slots;         // (E + 1,) metric slot of the state after e epochs, or -1
  T *met;                       // (n_met, R, K)
  int64_t K, M, P, N, NT, D, C, NL, NTENS, B, NB, RK, E, e0, e1;
  int64_t act, loss, classify, wt_per_config;
  int64_t coupled, decoupled, independent;
  double eps, smoothing, mse_scale, div_factor;
};

enum { ACT_IDENTITY = 0, ACT_RELU = 1, ACT_TANH = 2, ACT_GELU = 3, ACT_QUADRATIC = 4 };

// NRB rows per pass of the MLP kernel: NRB accumulators stay in registers.
constexpr int NRB = 8;
enum { LOSS_CE = 0, LOSS_MSE = 1 };

template <typename V, int L, typename F>
__attribute__((always_inline)) inline V lanewise(V x, F f) {
  V r;
  for (int j = 0; j < L; ++j) r[j] = f(x[j]);
  return r;
}

// exp and log on every lane: Cody-Waite range reduction and a polynomial (float32 degree 7,
// float64 degree 13 Taylor: under 2 ulp on the reduced range); lanes outside the range
// where that holds (overflow, underflow, subnormal, 0, inf, NaN) take the C library's.
constexpr double factorial(int n) { return n <= 1 ? 1.0 : n * factorial(n - 1); }
// 1/n!, n = 0..13, each rounded once (a table: the loops below must not divide at run time)
constexpr double kInvFactorial[14] = {
    1.0 / factorial(0), 1.0 / factorial(1), 1.0 / factorial(2), 1.0 / factorial(3),
    1.0 / factorial(4), 1.0 / factorial(5), 1.0 / factorial(6), 1.0 / factorial(7),
    1.0 / factorial(8), 1.0 / factorial(9), 1.0 / factorial(10), 1.0 / factorial(11),
    1.0 / factorial(12), 1.0 / factorial(13)};
// 1/(2n + 1), n = 0..11
constexpr double kInvOdd[12] = {1.0,       1.0 / 3,  1.0 / 5,  1.0 / 7,  1.0 / 9,  1.0 / 11,
                                1.0 / 13,  1.0 / 15, 1.0 / 17, 1.0 / 19, 1.0 / 21, 1.0 / 23};

template <typename T> struct ExpLog;
template <> struct ExpLog<float> {
  static constexpr float lo = -87.0f, hi = 88.0f;  // exp's fast range
  static constexpr float round = 12582912.0f;      // 1.5 * 2^23
  static constexpr int mant = 23, bias = 127, degree = 7, log_terms = 6;
};
template <> struct ExpLog<double> {
  static constexpr double lo = -708.0, hi = 709.0;
  static constexpr double round = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr int mant = 52, bias = 1023, degree = 13, log_terms = 11;
};

template <typename I, int L>
__attribute__((always_inline)) inline bool all_lanes(I m) {
  auto r = m[0];
  for (int j = 1; j < L; ++j) r &= m[j];
  return r != 0;
}

template <typename T, typename V, typename I, int L>
__attribute__((always_inline)) inline V vexp(V x) {
  typedef ExpLog<T> C;
  const V kf = (x * T(1.4426950408889634) + C::round) - C::round;  // round(x / ln 2)
  V r = x - kf * T(0.693145751953125);                            // ln 2, high part
  r = r - kf * T(1.428606820309417232e-06);                        // ln 2, low part
  V q = splat<T, V>(T(kInvFactorial[C::degree]));
  for (int n = C::degree - 1; n >= 0; --n) q = q * r + T(kInvFactorial[n]);  // Horner, 1/n!
  // 2^k from k's integer bits: kf + round holds k in its low mantissa bits (no float ->
  // int conversion, which AVX2 lacks for 64-bit lanes)
  typedef typename Lanes<T, sizeof(V)>::S S;
  const I k = (I)(kf + C::round) - (I)splat<T, V>(C::round);
  const V scale = (V)((k + S(C::bias)) << C::mant);
  V y = q * scale;
  const I ok = (x >= C::lo) & (x <= C::hi);
  if (!all_lanes<I, L>(ok))
    for (int j = 0; j < L; ++j)
      if (!ok[j]) y[j] = std::exp(x[j]);
  return y;
}

template <typename T, typename V, typename I, int L>
__attribute__((always_inline)) inline V vlog(V x) {
  typedef ExpLog<T> C;
  typedef typename Lanes<T, sizeof(V)>::S S;
  const I bits = (I)x;
  I e = ((bits >> C::mant) & S((1LL << (8 * sizeof(T) - 1 - C::mant)) - 1)) - S(C::bias);
  const S mant_mask = S((S(1) << C::mant) - 1);
  V m = (V)((bits & mant_mask) | ((I{} + S(C::bias)) << C::mant));  // [1, 2)
  const I big = m > T(1.4142135623730951);
  m = big ? m * T(0.5) : m;  // [sqrt(1/2), sqrt(2))
  e = e - big;               // big lanes are -1
  const V f = m - T(1);
  const V sv = f / (f + T(2));  // log(m) = 2 atanh(s)
  const V s2 = sv * sv;
  V q = splat<T, V>(T(kInvOdd[C::log_terms]));
  for (int n = C::log_terms - 1; n >= 0; --n) q = q * s2 + T(kInvOdd[n]);
  const V ef = (V)(e + (I)splat<T, V>(C::round)) - C::round;  // e as T, by the same trick
  V y = (ef * T(0.693145751953125) + (T(2) * sv) * q) + ef * T(1.428606820309417232e-06);
  const I ok = (x >= std::numeric_limits<T>::min()) & (x <= std::numeric_limits<T>::max());
  if (!all_lanes<I, L>(ok))
    for (int j = 0; j < L; ++j)
      if (!ok[j]) y[j] = std::log(x[j]);
  return y;
}

template <typename T, int OPT>
struct NetBlock {
  typedef typename Lanes<T, VEC_BYTES>::V V;
  typedef typename Lanes<T, VEC_BYTES>::I I;
  typedef typename Lanes<T, VEC_BYTES>::S S;
  static constexpr int L = VEC_BYTES / sizeof(T);
  const NetArgs<T>& A;
  const int64_t start;  // first configuration of the block
  const int n_live;
  const int64_t g;      // its draw
  V *th, *mm, *vv, *gr; // (P,) each
  V *h, *z;             // (NRB, SW) activations (h_0 = inputs) and pre-activations
  V *d0, *d1;           // (NRB, WMAX) deltas
  int64_t *rows;        // (N,) row indices of the current batch
  int64_t hoff[64];     // layer l's offset in a row of h / z (l = 0..NL)
  int64_t SW = 0;
  int kidx[L];          // configuration of each lane (padded lanes repeat the first)
  V tot_w{};            // the batch's weight sum (1 where it is 0), per lane

  NetBlock(const NetArgs<T>& a, int64_t s, int live, V* scratch, int64_t* rowbuf)
      : A(a), start(s), n_live(live), g(s / a.M), rows(rowbuf) {
    int64_t wmax = 0;
    for (int64_t l = 0; l <= A.NL; ++l) {
      hoff[l] = SW;
      SW += A.widths[l];
      if (A.widths[l] > wmax) wmax = A.widths[l];
    }
    th = scratch;
    mm = th + A.P;
    vv = mm + A.P;
    gr = vv + A.P;
    h = gr + A.P;
    z = h + NRB * SW;
    d0 = z + NRB * SW;
    d1 = d0 + NRB * wmax;
    for (int j = 0; j < L; ++j) kidx[j] = int(start + (j < n_live ? j : 0));
  }

  static size_t scratch_vectors(const NetArgs<T>& a) {
    int64_t sw = 0, wmax = 0;
    for (int64_t l = 0; l <= a.NL; ++l) {
      sw += a.widths[l];
      if (a.widths[l] > wmax) wmax = a.widths[l];
    }
    return size_t(4 * a.P + 2 * NRB * sw + 2 * NRB * wmax);
  }

  inline V activate(V x) const {
    switch (A.act) {
      case ACT_RELU: {
        const V zero{};
        return x < zero ? zero : x;  // relu; NaN stays NaN, as torch.relu
      }
      case ACT_TANH: return lanewise<V, L>(x, [](T t) { return std::tanh(t); });
      case ACT_GELU:
        return lanewise<V, L>(x, [](T t) { return T(0.5) * t * (T(1) + std::erf(t * T(M_SQRT1_2))); });
      case ACT_QUADRATIC: return x * x;
      default: return x;
    }
  }

  // delta * act'(z), with h = act(z) (the kernels torch's autograd uses)
  inline V act_grad(V d, V zz, V hh) const {
    switch (A.act) {
      case ACT_RELU: {
        const V zero{};
        return hh > zero ? d : zero;
      }
      case ACT_TANH: return d * (T(1) - hh * hh);
      case ACT_GELU: {
        V r;
        for (int j = 0; j < L; ++j) {
          const T x = zz[j];
          const T cdf = T(0.5) * (T(1) + std::erf(x * T(M_SQRT1_2)));
          const T pdf = std::exp(T(-0.5) * x * x) * T(M_2_SQRTPI * M_SQRT1_2 * 0.5);
          r[j] = d[j] * (cdf + x * pdf);
        }
        return r;
      }
      case ACT_QUADRATIC: return d * (T(2) * zz);
      default: return d;
    }
  }

  // shares of the n rows rows[0..n) (train set, with or without weights)
  void begin_batch(int64_t n) {
    if (A.wt == nullptr) return;
    if (A.wt_per_config) {
      V tot{};
      for (int64_t i = 0; i < n; ++i)
        for (int j = 0; j < L; ++j) tot[j] += A.wt[int64_t(kidx[j]) * A.N + rows[i]];
      for (int j = 0; j < L; ++j) tot_w[j] = tot[j] > T(0) ? tot[j] : T(1);
    } else {
      T tot = 0;
      for (int64_t i = 0; i < n; ++i) tot += A.wt[g * A.N + rows[i]];
      tot_w = splat<T, V>(tot > T(0) ? tot : T(1));
    }
  }
  inline V share(int64_t row, int64_t n, bool train) const {
    if (!train || A.wt == nullptr) return splat<T, V>(T(1) / T(n));
    if (!A.wt_per_config) return splat<T, V>(A.wt[g * A.N + row]) / tot_w;
    V w;
    for (int j = 0; j < L; ++j) w[j] = A.wt[int64_t(kidx[j]) * A.N + row];
    return w / tot_w;
  }

  // h = act(z) for the R x b entries of one layer (rows SW apart)
  template <int R>
  void activate_layer(const V* zo, V* hout, int64_t b) const {
    switch (A.act) {
      case ACT_RELU: {
        const V zero{};
        for (int r = 0; r < R; ++r)
          for (int64_t j = 0; j < b; ++j) {
            const V x = zo[r * SW + j];
            hout[r * SW + j] = x < zero ? zero : x;
          }
        return;
      }
      case ACT_QUADRATIC:
        for (int r = 0; r < R; ++r)
          for (int64_t j = 0; j < b; ++j) hout[r * SW + j] = zo[r * SW + j] * zo[r * SW + j];
        return;
      case ACT_IDENTITY:
        for (int r = 0; r < R; ++r)
          for (int64_t j = 0; j < b; ++j) hout[r * SW + j] = zo[r * SW + j];
        return;
      default:
        for (int r = 0; r < R; ++r)
          for (int64_t j = 0; j < b; ++j) hout[r * SW + j] = activate(zo[r * SW + j]);
    }
  }

  // forward of R rows (x rows xr[r]) into h, z
  template <int R>
  void forward(const T* const* xr) {
    const int64_t D = A.D;
    for (int r = 0; r < R; ++r)
      for (int64_t i = 0; i < D; ++i) h[r * SW + i] = splat<T, V>(xr[r][i]);
    for (int64_t l = 1; l <= A.NL; ++l) {
      const int64_t a = A.widths[l - 1], b = A.widths[l];
      const V* W = th + A.woff[l - 1];
      const V* hin = h + hoff[l - 1];
      V* zo = (l < A.NL ? z : h) + hoff[l];  // the logits go straight to h
      V* hout = h + hoff[l];
      const int64_t bo = A.boff[l - 1];
      for (int64_t j = 0; j < b; ++j) {
        V acc[R];
        for (int r = 0; r < R; ++r) acc[r] = V{};
        const V* wr = W + j * a;
        for (int64_t i = 0; i < a; ++i) {
          const V w = wr[i];
          for (int r = 0; r < R; ++r) acc[r] += hin[r * SW + i] * w;
        }
        if (bo >= 0) {
          const V bj = th[bo + j];
          for (int r = 0; r < R; ++r) acc[r] += bj;
        }
        if (l < A.NL && A.act == ACT_RELU) {  // h = relu(z), stored once (z is not needed)
          const V zero{};
          for (int r = 0; r < R; ++r) hout[r * SW + j] = acc[r] < zero ? zero : acc[r];
        } else {
          for (int r = 0; r < R; ++r) zo[r * SW + j] = acc[r];
        }
      }
      if (l < A.NL && A.act != ACT_RELU) activate_layer<R>(zo, hout, b);
    }
  }

  // loss of row r (logits in h's last layer) with share s; dL/dz * s into d0 when grad;
  // returns the row's loss, and its hit (0/1) in *hit when classify
  V row_loss(int r, const int64_t* lab, const T* tv, V s, bool grad, V* hit) {
    const int64_t C = A.C;
    const V* zr = h + r * SW + hoff[A.NL];
    V* dr = d0 + r * C;
    if (hit != nullptr) {
      const int64_t y = *lab;
      V best = zr[0];
      I idx{};
      for (int64_t c = 1; c < C; ++c) {
        I gt = (zr[c] > best) | ((zr[c] != zr[c]) & (best == best));  // NaN wins, as argmax
        best = gt ? zr[c] : best;
        idx = gt ? I{} + S(c) : idx;
      }
      const V one = splat<T, V>(T(1)), zero{};
      *hit = (idx == I{} + S(y)) ? one : zero;
    }
    if (A.loss == LOSS_CE) {
      const int64_t y = *lab;
      const T eps = T(A.smoothing);
      V mx = zr[0];
      for (int64_t c = 1; c < C; ++c) mx = zr[c] > mx ? zr[c] : mx;
      const V inf = splat<T, V>(std::numeric_limits<T>::infinity());
      mx = (mx == inf) | (mx == -inf) ? V{} : mx;  // as torch's logsumexp
      V se{};
      for (int64_t c = 0; c < C; ++c) {
        V e = vexp<T, V, I, L>(zr[c] - mx);
        if (grad) dr[c] = e;
        se += e;
      }
      const V lse = vlog<T, V, I, L>(se) + mx;
      V per = lse - (T(1) - eps) * zr[y];
      if (eps != T(0)) {
        V zs{};
        for (int64_t c = 0; c < C; ++c) zs += zr[c];
        per = per - eps * (zs / T(C));
      }
      if (grad) {
        const V inv = T(1) / se;
        for (int64_t c = 0; c < C; ++c) {
          V p = dr[c] * inv;  // softmax
          if (eps != T(0)) p = p - eps / T(C);
          if (c == y) p = p + (-(T(1) - eps));
          dr[c] = p * s;
        }
      }
      return per;
    }
    const T cs = T(A.mse_scale);
    V sq{};
    for (int64_t c = 0; c < C; ++c) {
      const V q = zr[c] - tv[c];
      sq += q * q;
      if (grad) dr[c] = q * ((T(2) * cs / T(C)) * s);
    }
    return cs * (sq / T(C));
  }

  // d <- d * act'(z) for the R x a entries of one layer (d rows a apart, z and h SW apart)
  template <int R>
  void act_grad_layer(V* d, const V* zp, const V* hp, int64_t a) const {
    switch (A.act) {
      case ACT_RELU: {
        const V zero{};
        for (int r = 0; r < R; ++r)
          for (int64_t i = 0; i < a; ++i)
            d[r * a + i] = hp[r * SW + i] > zero ? d[r * a + i] : zero;
        return;
      }
      case ACT_IDENTITY:
        return;
      default:
        for (int r = 0; r < R; ++r)
          for (int64_t i = 0; i < a; ++i)
            d[r * a + i] = act_grad(d[r * a + i], zp[r * SW + i], hp[r * SW + i]);
    }
  }

  // backward of R rows: accumulate the gradient into gr (d0 holds dL/dz_L)
  template <int R>
  void backward() {
    V* delta = d0;
    V* other = d1;
    for (int64_t l = A.NL; l >= 1; --l) {
      const int64_t a = A.widths[l - 1], b = A.widths[l];
      const V* W = th + A.woff[l - 1];
      V* GW = gr + A.woff[l - 1];
      const V* hin = h + hoff[l - 1];
      const int64_t bo = A.boff[l - 1];
      for (int64_t j = 0; j < b; ++j) {
        V dj[R];
        for (int r = 0; r < R; ++r) dj[r] = delta[r * b + j];
        if (bo >= 0) {
          V sdb = dj[0];
          for (int r = 1; r < R; ++r) sdb += dj[r];
          gr[bo + j] += sdb;
        }
        V* gw = GW + j * a;
        for (int64_t i = 0; i < a; ++i) {  // R products summed as a tree (short chains)
          V q[4] = {V{}, V{}, V{}, V{}};
          for (int r = 0; r < R; ++r) q[r % 4] += dj[r] * hin[r * SW + i];
          gw[i] += (q[0] + q[1]) + (q[2] + q[3]);
        }
      }
      if (l == 1) break;
      const V* zp = z + hoff[l - 1];
      for (int64_t i = 0; i < a; ++i) {
        V acc[R];
        for (int r = 0; r < R; ++r) acc[r] = V{};
        for (int64_t j = 0; j < b; ++j) {
          const V w = W[j * a + i];
          for (int r = 0; r < R; ++r) acc[r] += delta[r * b + j] * w;
        }
        if (A.act == ACT_RELU) {
          const V zero{};
          for (int r = 0; r < R; ++r) other[r * a + i] = hin[r * SW + i] > zero ? acc[r] : zero;
        } else {
          for (int r = 0; r < R; ++r) other[r * a + i] = acc[r];
        }
      }
      if (A.act != ACT_RELU) act_grad_layer<R>(other, zp, hin, a);
      V* t = delta;
      delta = other;
      other = t;
    }
  }

  template <int R>
  void rows_pass(const T* x, const int64_t* lab, const T* tv, int64_t i0, int64_t n,
                 bool train, bool grad, bool acc, V& val, V& hits) {
    const T* xr[R];
    V s[R];
    for (int r = 0; r < R; ++r) {
      const int64_t row = rows[i0 + r];
      xr[r] = x + row * A.D;
      s[r] = share(row, n, train);
    }
    forward<R>(xr);
    for (int r = 0; r < R; ++r) {
      const int64_t row = rows[i0 + r];
      V hit;
      V per = row_loss(r, lab == nullptr ? nullptr : lab + row,
                       tv == nullptr ? nullptr : tv + row * A.C, s[r], grad,
                       acc ? &hit : nullptr);
      val += per * s[r];
      if (acc) hits += hit * s[r];
    }
    if (grad) backward<R>();
  }

  // one pass over rows[0..n): the loss (and accuracy) of theta; the gradient into gr
  void pass(const T* x, const int64_t* lab, const T* tv, int64_t n, bool train, bool grad,
            bool acc, V& val, V& hits) {
    val = V{};
    hits = V{};
    if (grad)
      for (int64_t p = 0; p < A.P; ++p) gr[p] = V{};
    if (train) begin_batch(n);
    int64_t i = 0;
    for (; i + NRB <= n; i += NRB) rows_pass<NRB>(x, lab, tv, i, n, train, grad, acc, val, hits);
    for (; i < n; ++i) rows_pass<1>(x, lab, tv, i, n, train, grad, acc, val, hits);
  }

  void put(int64_t slot, int64_t row, V x) {
    T* base = A.met + slot * A.K + start;
    for (int j = 0; j < n_live; ++j) base[row * A.RK + j] = x[j];
  }

  // metrics of theta (train loss and accuracy given) into slot
  void record(int64_t slot, V val, V hits, V lampen) {
    int64_t row = 0;
    put(slot, row++, val);
    if (A.classify) put(slot, row++, hits);
    if (A.NT > 0) {
      for (int64_t i = 0; i < A.NT; ++i) rows[i] = i;
      V tv, th_;
      pass(A.xt + g * A.NT * A.D, A.labt == nullptr ? nullptr : A.labt + g * A.NT,
           A.valt == nullptr ? nullptr : A.valt + g * A.NT * A.C, A.NT, false, false,
           A.classify != 0, tv, th_);
      put(slot, row++, tv);
      if (A.classify) put(slot, row++, th_);
    }
    V sq{};
    for (int64_t p = 0; p < A.P; ++p) {
      const V q = th[p] * A.mask[p];
      sq += q * q;
    }
    const V pen = lampen * sq;
    put(slot, row++, pen);
    put(slot, row++, val + pen);
    for (int64_t t = 0; t < A.NTENS; ++t) {
      V nn{};
      for (int64_t p = A.toff[t]; p < A.toff[t + 1]; ++p) nn += th[p] * th[p];
      put(slot, row++, vsqrt<V, L>(nn));
    }
  }

  void run() {
    const int64_t P = A.P, N = A.N;
    Chain<T, OPT, VEC_BYTES> ch;
    V lampen{}, loss0{};
    I alive{};
    for (int j = 0; j < L; ++j) {
      const bool live = j < n_live;
      const int64_t k = kidx[j];
      ch.lam[j] = A.lam[k];
      ch.lr[j] = A.lr[k];
      ch.b1[j] = live ? A.b1[k] : T(0.5);
      ch.b2[j] = live ? A.b2[k] : T(0.5);
      ch.l2[j] = A.l2[k];
      lampen[j] = A.lampen[k];
      loss0[j] = A.loss0[k];
      alive[j] = (live && A.alive[k] != 0) ? -1 : 0;
    }
    ch.eps = splat<T, V>(T(A.eps));
    ch.coupled = A.coupled;
    ch.decoupled = A.decoupled;
    ch.independent = A.independent;
    ch.start(A.e0 * A.NB);
    for (int64_t p = 0; p < P; ++p) {
      for (int j = 0; j < L; ++j) {
        const int64_t k = kidx[j];
        th[p][j] = A.theta[k * P + p];
        mm[p][j] = OPT >= 1 ? A.m[k * P + p] : T(0);
        vv[p][j] = OPT == 2 ? A.v[k * P + p] : T(0);
      }
    }
    int diverged_here[L];
    int64_t div_epoch[L];
    for (int j = 0; j < L; ++j) diverged_here[j] = 0;
    const T* x = A.x + g * N * A.D;
    const int64_t* lab = A.lab == nullptr ? nullptr : A.lab + g * N;
    const T* tv = A.val == nullptr ? nullptr : A.val + g * N * A.C;
    const bool full = A.perm == nullptr;
    const bool acc = A.classify != 0;
    V lim = T(A.div_factor) * loss0;
    V val, hits;

    for (int64_t e = A.e0; e < A.e1; ++e) {
      const int32_t slot = A.slots[e];
      if (!full && (e == 0 || slot >= 0)) {  // the full training set's loss
        for (int64_t i = 0; i < N; ++i) rows[i] = i;
        pass(x, lab, tv, N, true, false, acc && slot >= 0, val, hits);
        if (e == 0) {
          loss0 = val;
          lim = T(A.div_factor) * loss0;
        }
        if (slot >= 0) record(slot, val, hits, lampen);
      }
      for (int64_t b = 0; b < A.NB; ++b) {
        int64_t n = N;
        if (full) {
          for (int64_t i = 0; i < N; ++i) rows[i] = i;
        } else {
          const int64_t* pe = A.perm + ((e - A.e0) * (A.K / A.M) + g) * N;
          const int64_t lo = b * A.B;
          n = (lo + A.B < N ? lo + A.B : N) - lo;
          for (int64_t i = 0; i < n; ++i) rows[i] = pe[lo + i];
        }
        pass(x, lab, tv, n, true, true, full && acc && slot >= 0, val, hits);
        if (full) {
          if (e == 0) {
            loss0 = val;
            lim = T(A.div_factor) * loss0;
          }
          if (slot >= 0) record(slot, val, hits, lampen);
        }
        // divergence: a non-finite or exploded loss freezes the configuration (no step)
        I ok = (val <= lim);
        I bad = alive & ~ok;
        for (int j = 0; j < L; ++j)
          if (bad[j] && !diverged_here[j]) { diverged_here[j] = 1; div_epoch[j] = e; }
        alive = alive & ok;
        ch.next(A.eta[e * A.NB + b]);
        for (int64_t p = 0; p < P; ++p) ch.apply(th[p], gr[p], A.mask[p], mm[p], vv[p], alive);
      }
    }
    if (A.e1 == A.E && A.slots[A.E] >= 0) {
      for (int64_t i = 0; i < N; ++i) rows[i] = i;
      pass(x, lab, tv, N, true, false, acc, val, hits);
      record(A.slots[A.E], val, hits, lampen);
    }
    for (int64_t p = 0; p < P; ++p) {
      for (int j = 0; j < n_live; ++j) {
        const int64_t k = start + j;
        A.theta[k * P + p] = th[p][j];
        if (OPT >= 1) A.m[k * P + p] = mm[p][j];
        if (OPT == 2) A.v[k * P + p] = vv[p][j];
      }
    }
    for (int j = 0; j < n_live; ++j) {
      A.alive[start + j] = alive[j] ? 1 : 0;
      A.loss0[start + j] = loss0[j];
      if (diverged_here[j]) A.div[start + j] = div_epoch[j];
    }
  }
};

template <typename T>
int net_run(const NetArgs<T>* A, int64_t opt, int64_t b0, int64_t b1) {
  typedef typename Lanes<T, VEC_BYTES>::V V;
  if (A->NL < 1 || A->NL > 62) return 2;
  const size_t n_vec = NetBlock<T, 0>::scratch_vectors(*A);
  V* scratch = static_cast<V*>(std::aligned_alloc(64, n_vec * sizeof(V)));
  const int64_t n_rows = A->N > A->NT ? A->N : A->NT;
  int64_t* rows = static_cast<int64_t*>(std::malloc(size_t(n_rows > 0 ? n_rows : 1) * sizeof(int64_t)));
  if (scratch == nullptr || rows == nullptr) {
    std::free(scratch);
    std::free(rows);
    return 1;
  }
  with_opt(opt, [&](auto o) {
    for_blocks<VEC_BYTES / sizeof(T)>(A->M, b0, b1, [&](int64_t start, int n_live) {
      NetBlock<T, decltype(o)::value>(*A, start, n_live, scratch, rows).run();
    });
  });
  std::free(scratch);
  std::free(rows);
  return 0;
}

}  // namespace

extern "C" {

// ABI version of Args and of these entry points (checked by wdlab.engine.kernels.native_build).
int64_t wdlab_native_abi() { return 2; }

// Configurations per block (vector lanes) of both kernels, for float32 and float64.
int64_t wdlab_native_lanes_f32() { return VEC_BYTES / sizeof(float); }
int64_t wdlab_native_lanes_f64() { return VEC_BYTES / sizeof(double); }

// Blocks [b0, b1) of the run described by *args; opt: 0 SGD, 1 SGD + momentum, 2 Adam.
// Returns 0, or 1 when scratch memory could not be allocated.
int wdlab_native_run_f32(const Args<float>* args, int64_t opt, int64_t b0, int64_t b1) {
  return run<float>(args, opt, b0, b1);
}
int wdlab_native_run_f64(const Args<double>* args, int64_t opt, int64_t b0, int64_t b1) {
  return run<double>(args, opt, b0, b1);
}

// The same for K MLPs (NetArgs); 2 when the network has no layer or more than 62.
int wdlab_native_net_f32(const NetArgs<float>* args, int64_t opt, int64_t b0, int64_t b1) {
  return net_run<float>(args, opt, b0, b1);
}
int wdlab_native_net_f64(const NetArgs<double>* args, int64_t opt, int64_t b0, int64_t b1) {
  return net_run<double>(args, opt, b0, b1);
}

}  // extern "C"
