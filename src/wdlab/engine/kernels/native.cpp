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
// Layout: configurations are the vector lanes. A block is L = 64 / sizeof(T) consecutive
// configurations of one draw; its theta, m and v are held transposed, (D1, L), in a
// thread-local buffer for ALL epochs (a few tens of kB: L1/L2), so the run is compute-bound
// and memory is touched once per block. Blocks never interact; the caller gives each thread
// a contiguous range of blocks. Arithmetic is IEEE (no fast-math): division and square root
// are exact; only the dot products' summation order differs from the matmul engines.
//
// Built by wdlab.engine.kernels.native_build with the system C++ compiler (-O3 -march=native -fno-math-errno),
// loaded with ctypes. GCC/Clang vector extensions only; no intrinsics except MXCSR on x86.

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define WDLAB_X86 1
#endif

namespace {

template <typename T> struct Lanes;
template <> struct Lanes<float> {
  typedef float V __attribute__((vector_size(64)));
  typedef int32_t I __attribute__((vector_size(64)));
};
template <> struct Lanes<double> {
  typedef double V __attribute__((vector_size(64)));
  typedef int64_t I __attribute__((vector_size(64)));
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
  constexpr int L = 64 / sizeof(T);
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
  V lam{}, lr{}, b1{}, b2{}, l2{}, lampen{}, lim{};
  I alive{};
  double b1d[L], b2d[L], p1[L], p2[L];
  for (int j = 0; j < L; ++j) {
    const bool live = j < n_live;
    const int64_t k = start + (live ? j : 0);
    lam[j] = A.lam[k];
    lr[j] = A.lr[k];
    b1[j] = live ? A.b1[k] : T(0.5);
    b2[j] = live ? A.b2[k] : T(0.5);
    l2[j] = A.l2[k];
    lampen[j] = A.lampen[k];
    lim[j] = T(A.div_factor) * A.loss0[k];
    alive[j] = (live && A.alive[k] != 0) ? -1 : 0;
    b1d[j] = double(b1[j]);
    b2d[j] = double(b2[j]);
    p1[j] = 1.0;
    p2[j] = 1.0;
  }
  for (int64_t d = 0; d < D1; ++d) {
    for (int j = 0; j < L; ++j) {
      const int64_t k = start + (j < n_live ? j : 0);
      th[d][j] = A.theta[k * D1 + d];
      mm[d][j] = OPT >= 1 ? A.m[k * D1 + d] : T(0);
      vv[d][j] = OPT == 2 ? A.v[k * D1 + d] : T(0);
    }
  }
  if (OPT == 2) {
    for (int64_t e = 0; e < A.e0; ++e)
      for (int j = 0; j < L; ++j) { p1[j] *= b1d[j]; p2[j] *= b2d[j]; }
  }
  const V one = splat<T, V>(T(1));
  const V one_m_b1 = one - b1, one_m_b2 = one - b2;
  const V eps = splat<T, V>(T(A.eps));
  const bool coupled = A.coupled, decoupled = A.decoupled, independent = A.independent;
  int diverged_here[L];
  for (int j = 0; j < L; ++j) diverged_here[j] = 0;
  int64_t div_epoch[L];

  for (int64_t e = A.e0; e < A.e1; ++e) {
    const T eta = A.eta[e];
    const int32_t slot = A.slots[e];
    forward<T, V>(a, y, th, r, 0, slot >= 0 ? NA : N, D1);
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

    V bc1{}, bc2{};
    if (OPT == 2) {
      for (int j = 0; j < L; ++j) {
        p1[j] *= b1d[j];  // beta^t as a float64 running product, t = e + 1
        p2[j] *= b2d[j];
        bc1[j] = T(1) - T(p1[j]);
        bc2[j] = std::sqrt(T(1) - T(p2[j]));
      }
    }
    const V lr_eta = lr * eta;
    const V eta_lam = eta * lam;
    // one coordinate's step, given its gradient (the rule chain, in optim.rules' order)
    auto step = [&](int64_t d, V grad) {
      const V t = th[d];
      const T md = A.mask[d];
      V u = grad;
      if (coupled) u = u + l2 * (t * md);  // AddL2
      if (OPT == 1) {  // TraceMomentum (dampening 0)
        V b = b1 * mm[d] + u;
        mm[d] = b;
        u = b;
      } else if (OPT == 2) {  // ScaleByAdam, as torch.optim.Adam
        V m = mm[d] + one_m_b1 * (u - mm[d]);
        V v = b2 * vv[d] + one_m_b2 * (u * u);
        mm[d] = m;
        vv[d] = v;
        u = (m / bc1) / (vsqrt<V, L>(v) / bc2 + eps);
      }
      if (decoupled) u = u + lam * (t * md);  // AddDecayedWeights
      u = -lr_eta * u;  // ScaleByLearningRate
      if (independent) u = u - eta_lam * (t * md);  // AddScheduledDecay
      th[d] = alive ? t + u : t;
    };
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

template <typename T, int OPT>
void run_blocks(const Args<T>& A, int64_t b0, int64_t b1, void* scratch) {
  constexpr int L = 64 / sizeof(T);
  const int64_t per_draw = (A.M + L - 1) / L;
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t g = b / per_draw, i = b % per_draw;
    const int64_t first = i * L;
    const int n_live = int(A.M - first < L ? A.M - first : L);
    run_block<T, OPT>(A, g * A.M + first, n_live, scratch);
  }
}

template <typename T>
int run(const Args<T>* A, int64_t opt, int64_t b0, int64_t b1) {
  typedef typename Lanes<T>::V V;
  const size_t n_vec = size_t(3 * A->D1 + A->NA + A->N);
  void* scratch = std::aligned_alloc(64, n_vec * sizeof(V));
  if (scratch == nullptr) return 1;
#ifdef WDLAB_X86
  const unsigned int csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040);  // flush denormals to zero (FTZ | DAZ) in this thread only
#endif
  if (opt == 0) run_blocks<T, 0>(*A, b0, b1, scratch);
  else if (opt == 1) run_blocks<T, 1>(*A, b0, b1, scratch);
  else run_blocks<T, 2>(*A, b0, b1, scratch);
#ifdef WDLAB_X86
  _mm_setcsr(csr);
#endif
  std::free(scratch);
  return 0;
}

}  // namespace

extern "C" {

// ABI version of Args and of these entry points (checked by wdlab.engine.kernels.native_build).
int64_t wdlab_native_abi() { return 1; }

// Configurations per block (vector lanes) for float32 and float64.
int64_t wdlab_native_lanes_f32() { return 64 / sizeof(float); }
int64_t wdlab_native_lanes_f64() { return 64 / sizeof(double); }

// Blocks [b0, b1) of the run described by *args; opt: 0 SGD, 1 SGD + momentum, 2 Adam.
// Returns 0, or 1 when scratch memory could not be allocated.
int wdlab_native_run_f32(const Args<float>* args, int64_t opt, int64_t b0, int64_t b1) {
  return run<float>(args, opt, b0, b1);
}
int wdlab_native_run_f64(const Args<double>* args, int64_t opt, int64_t b0, int64_t b1) {
  return run<double>(args, opt, b0, b1);
}

}  // extern "C"
