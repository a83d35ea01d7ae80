// Shared pieces of the compiled loops (_loop.cpp: rate dynamics, _gated.cpp: GRU / LSTM / tanh
// RNN): vectorisable elementary functions, the counter-based normal generator, and the small
// matrix products of one step.
//
// Elementary functions are branch-free polynomials so that the compiler vectorises the passes
// that call them; -ffp-contract=off keeps every ISA clone bit-identical.
//
// Normals: Philox-4x32-10 (Salmon, Moraes, Dror & Shaw 2011, "Parallel random numbers: as easy
// as 1, 2, 3") on the counter (q, 0, step, stream) under a 64-bit key, and Box-Muller on its
// words. The normals of one step form a flat [rows * cols] block: word w of counter q gives
// normal w * Q + q, Q = ceil(rows * cols / 4). Any normal is addressable by (key, stream, step,
// position), so a caller needs no generator state: a step, a run or a resumed run draws the same
// numbers from the same key.
//
// Products: C = beta C + A B for the shapes of one step (a batch of rows times a [K, N] weight
// panel that fits the L2 cache). BLAS libraries tune for large products; at N = 100 MKL runs
// at about half of an AVX-512 core's peak (measured: 20 us per [100, 100] x [100, 100] against
// 8.7 us here, AMD Zen 5), and on CPUs where it does use AVX-512 the kernel below is about as
// fast. Each element of C is one chain of FMAs over k in order, so a row of C does not depend on
// how many rows are computed with it. Without AVX-512, or for panels beyond the L2 cache, BLAS.

#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/mm.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#define HD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define HD_AVX512 1
#else
#define HD_CLONES
#define HD_AVX512 0
#endif
#define HD_INLINE inline __attribute__((always_inline))

// BLAS (Fortran interface), when the torch build exports it (MKL builds do): called directly, it
// skips the dispatcher and the checks of at::addmm (several µs a step at N = 100). Integers are
// passed as int64 storage: on little-endian machines an LP64 BLAS reads the same value from the
// low half. A self-test decides whether to use it; otherwise ATen on views.
extern "C" {
void sgemm_(const char*, const char*, const int64_t*, const int64_t*, const int64_t*, const float*,
            const float*, const int64_t*, const float*, const int64_t*, const float*, float*,
            const int64_t*) __attribute__((weak));
void dgemm_(const char*, const char*, const int64_t*, const int64_t*, const int64_t*,
            const double*, const double*, const int64_t*, const double*, const int64_t*,
            const double*, double*, const int64_t*) __attribute__((weak));
}

namespace hdk {

// ---------------------------------------------------------------------- exp, σ, log1p, expm1

template <typename T>
struct Exp;

template <>
struct Exp<float> {
  using U = uint32_t;
  static constexpr float lo = -87.0f, hi = 88.0f;  // 2^n stays a normal number
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float ln2hi = 0.693359375f;  // 9 significant bits: n · ln2hi is exact
  static constexpr float ln2lo = -2.12194440e-4f;
  static constexpr float magic = 12582912.0f;  // 1.5 · 2^23: t = x + magic rounds x to an integer
  static constexpr U bias = 127;
  static constexpr int mantissa = 23;
  static HD_INLINE float poly(float r) {  // Taylor to r^7: error < 6e-9 on |r| <= ln2 / 2
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    return p * r + 1.0f;
  }
};

template <>
struct Exp<double> {
  using U = uint64_t;
  static constexpr double lo = -708.0, hi = 709.0;
  static constexpr double log2e = 1.44269504088896338700;
  static constexpr double ln2hi = 6.93147180369123816490e-01;  // low 21 bits zero
  static constexpr double ln2lo = 1.90821492927058770002e-10;
  static constexpr double magic = 6755399441055744.0;  // 1.5 · 2^52
  static constexpr U bias = 1023;
  static constexpr int mantissa = 52;
  static HD_INLINE double poly(double r) {  // Taylor to r^13: error < 5e-18 on |r| <= ln2 / 2
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    return p * r + 1.0;
  }
};

template <typename T>
HD_INLINE T exp_(T x) {
  using E = Exp<T>;
  using U = typename E::U;
  x = x < E::lo ? E::lo : x;  // written so that NaN passes through
  x = x > E::hi ? E::hi : x;
  const T t = x * E::log2e + E::magic;
  const T n = t - E::magic;  // round(x / ln 2)
  const T r = (x - n * E::ln2hi) - n * E::ln2lo;
  U tb, mb;
  std::memcpy(&tb, &t, sizeof t);
  const T magic = E::magic;
  std::memcpy(&mb, &magic, sizeof magic);
  const U bits = (tb - mb + E::bias) << E::mantissa;  // 2^n
  T scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return E::poly(r) * scale;
}

template <typename T>
HD_INLINE T sigmoid_(T x) {
  return T(1) / (T(1) + exp_(-x));
}

// tanh(x) = 2σ(2x) − 1: one exp and one division, vectorised (absolute error ~1 ulp of 1).
template <typename T>
HD_INLINE T tanh_(T x) {
  return T(2) * sigmoid_(T(2) * x) - T(1);
}

// log1p(y) for y in [0, 1]: 2 atanh(t), t = y / (2 + y) in [0, 1/3], by its series
// 2 (t + t³/3 + t⁵/5 + ...): to t^17 in float (relative error < 1e-9), t^35 in double (< 1e-18).
template <typename T>
HD_INLINE T log1p_unit_(T y) {
  constexpr int terms = sizeof(T) == 4 ? 9 : 18;
  const T t = y / (T(2) + y);
  const T t2 = t * t;
  T p = T(1) / T(2 * terms - 1);
  for (int k = terms - 2; k >= 0; --k) p = p * t2 + T(1) / T(2 * k + 1);
  return T(2) * t * p;
}

// softplus(u) = max(u, 0) + log1p(exp(−|u|))
template <typename T>
HD_INLINE T softplus_(T u) {
  const T a = u < T(0) ? -u : u;
  return (u < T(0) ? T(0) : u) + log1p_unit_(exp_(-a));
}

// 1/k! for k = 0..K, as constants (a loop calling a constexpr function is not folded, and the
// pass that uses it would not vectorise).
template <typename T, int K>
struct InvFactorials {
  T c[K + 1];
  constexpr InvFactorials() : c() {
    double factorial = 1;
    c[0] = T(1);
    for (int k = 1; k <= K; ++k) {
      factorial *= k;
      c[k] = T(1.0 / factorial);
    }
  }
};

// expm1(x) for x <= 0: Taylor to x^9 (float) / x^17 (double) where x > −1/2, else exp(x) − 1
template <typename T>
HD_INLINE T expm1_neg_(T x) {
  constexpr int terms = sizeof(T) == 4 ? 9 : 17;
  static constexpr InvFactorials<T, terms> inv{};
  T p = inv.c[terms];
  for (int k = terms - 1; k >= 1; --k) p = p * x + inv.c[k];
  const T small = p * x;
  const T large = exp_(x) - T(1);
  return x > T(-0.5) ? small : large;
}

// ----------------------------------------------------------------------- Philox and normals

HD_INLINE void philox4x32_10(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0,
                             uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * c0;
    const uint64_t p1 = uint64_t(0xCD9E8D57u) * c2;
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1);
    c3 = uint32_t(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

// ln(m) for m in [√½, √2): 2 atanh(t), t = (m − 1)/(m + 1), |t| <= 0.172, to t^11 (< 3e-10).
HD_INLINE float log_reduced_(float m) {
  const float t = (m - 1.0f) / (m + 1.0f);
  const float t2 = t * t;
  float p = 1.0f / 11;
  p = p * t2 + 1.0f / 9;
  p = p * t2 + 1.0f / 7;
  p = p * t2 + 1.0f / 5;
  p = p * t2 + 1.0f / 3;
  p = p * t2 + 1.0f;
  return 2.0f * t * p;
}

// Two standard normals from two 32-bit words (Box-Muller). The radius uses 23 bits of a,
// u = (k + 1/2) 2^-23 (so |z| <= 5.6), the angle 24 bits of b, θ = 2π (k + 1/2) 2^-24.
HD_INLINE void box_muller_(uint32_t a, uint32_t b, float& z0, float& z1) {
  // −2 ln u = −2 (ln(k + 1/2) − 23 ln 2); k + 1/2 = m 2^e with m in [√½, √2)
  const float v = float(a >> 9) + 0.5f;
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof v);
  bits -= 0x3F3504F3u;  // bits of √½: the exponent of v / √½
  const int32_t e = int32_t(bits) >> 23;
  const uint32_t mbits = (bits & 0x007FFFFFu) + 0x3F3504F3u;
  float m;
  std::memcpy(&m, &mbits, sizeof m);
  const float ln_v = float(e) * 0.693147180559945f + log_reduced_(m);
  const float r2 = -2.0f * (ln_v - 23.0f * 0.693147180559945f);
  // the 1/√2 of cos(π/4 + α) = (cos α − sin α)/√2 is folded into the radius
  const float r = std::sqrt(r2 < 0.0f ? 0.0f : r2) * 0.70710678118654752f;
  // θ = q π/2 + π/4 + α with q the top 2 bits and α in (−π/4, π/4)
  const uint32_t k = b >> 8;
  const uint32_t q = k >> 22;
  const float alpha = (float(k & 0x3FFFFFu) + 0.5f) * (1.5707963267948966f / 4194304.0f) -
                      0.78539816339744831f;
  const float a2 = alpha * alpha;
  float s = -1.0f / 39916800;  // Taylor to α^11 / α^10: error < 2e-9 on |α| <= π/4
  s = s * a2 + 1.0f / 362880;
  s = s * a2 - 1.0f / 5040;
  s = s * a2 + 1.0f / 120;
  s = s * a2 - 1.0f / 6;
  s = s * a2 + 1.0f;
  s = s * alpha;
  float c = -1.0f / 3628800;
  c = c * a2 + 1.0f / 40320;
  c = c * a2 - 1.0f / 720;
  c = c * a2 + 1.0f / 24;
  c = c * a2 - 0.5f;
  c = c * a2 + 1.0f;
  const float C = c - s, S = c + s;  // √2 (cos, sin)(π/4 + α)
  // rotate by q quadrants: (C, S), (−S, C), (−C, −S), (S, −C)
  const float x = (q & 1u) ? -S : C;
  const float y = (q & 1u) ? C : S;
  z0 = r * ((q & 2u) ? -x : x);
  z1 = r * ((q & 2u) ? -y : y);
}

// Counters q0..Q−1 of fill_normals (word w of counter q is normal w Q + q).
template <typename T>
HD_INLINE void fill_normals_impl(uint64_t key, uint32_t stream, uint32_t step, int64_t Q,
                                 int64_t q0, T* __restrict__ out) {
  const uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  T* __restrict__ o0 = out;
  T* __restrict__ o1 = out + Q;
  T* __restrict__ o2 = out + 2 * Q;
  T* __restrict__ o3 = out + 3 * Q;
  for (int64_t q = q0; q < Q; ++q) {
    uint32_t c0 = uint32_t(q), c1 = uint32_t(uint64_t(q) >> 32), c2 = step, c3 = stream;
    philox4x32_10(c0, c1, c2, c3, k0, k1);
    float z0, z1, z2, z3;
    box_muller_(c0, c1, z0, z1);
    box_muller_(c2, c3, z2, z3);
    o0[q] = T(z0);
    o1[q] = T(z1);
    o2[q] = T(z2);
    o3[q] = T(z3);
  }
}

// Standard normals of (key, stream, step) into out[0, 4Q), Q = ceil(count / 4): normal w Q + q
// is word w of counter q (positions from count on are padding). Defined in _loop.cpp; the
// AVX-512 version below gives the same numbers (same operations, no contraction).
void fill_normals(uint64_t key, uint32_t stream, uint32_t step, int64_t count, float* out);
void fill_normals(uint64_t key, uint32_t stream, uint32_t step, int64_t count, double* out);

inline int64_t padded_normals(int64_t count) { return 4 * ((count + 3) / 4); }

// ------------------------------------------------------------------- readout gradients

// The gradient e of the rates of one task step when they feed a readout y = h Vᵀ and the penalty
// mean(h²) (dynamics.integrate_readout, gated.gated_readout): e = dense + c h + Σ_k gout_k V_k, with
// c = 2 dL/dmean / numel; dV_k += gout_k h on the way. Each row's sums run in a fixed order.
template <typename T>
struct ComposeArgs {
  int64_t B, N, O;
  const T* dense;  // [B, N] rows (ld_dense) or null
  int64_t ld_dense;
  const T* h;  // rows with ld_h
  int64_t ld_h;
  const T* gout;  // [B, O] rows (ld_gout) or null
  int64_t ld_gout;
  const T* V;  // [O, N]
  double* dV;  // [O, N] or null: float64 sums over every row and step
  T c;
  T* e;  // [B, N]
};

template <typename T>
HD_INLINE void compose_rows(const ComposeArgs<T>& a) {
  const int64_t N = a.N;
  for (int64_t b = 0; b < a.B; ++b) {
    T* __restrict__ e = a.e + b * N;
    const T* __restrict__ h = a.h + b * a.ld_h;
    const T c = a.c;
    if (a.dense) {
      const T* __restrict__ dense = a.dense + b * a.ld_dense;
#pragma GCC ivdep
      for (int64_t j = 0; j < N; ++j) e[j] = dense[j] + c * h[j];
    } else {
#pragma GCC ivdep
      for (int64_t j = 0; j < N; ++j) e[j] = c * h[j];
    }
    if (!a.gout) continue;
    for (int64_t k = 0; k < a.O; ++k) {
      const T gk = a.gout[b * a.ld_gout + k];
      const T* __restrict__ v = a.V + k * N;
#pragma GCC ivdep
      for (int64_t j = 0; j < N; ++j) e[j] = e[j] + gk * v[j];
      if (a.dV) {
        double* __restrict__ dv = a.dV + k * N;
        const double gk64 = gk;
#pragma GCC ivdep
        for (int64_t j = 0; j < N; ++j) dv[j] = dv[j] + gk64 * static_cast<double>(h[j]);
      }
    }
  }
}

// Defined in _loop.cpp.
void compose_pass(const ComposeArgs<float>& a);
void compose_pass(const ComposeArgs<double>& a);


// ---------------------------------------------------------------------------------- BLAS

template <typename T>
struct Blas;
template <>
struct Blas<float> {
  static bool available() { return sgemm_ != nullptr; }
  static void gemm(const char* ta, const char* tb, const int64_t* m, const int64_t* n,
                   const int64_t* k, const float* alpha, const float* a, const int64_t* lda,
                   const float* b, const int64_t* ldb, const float* beta, float* c,
                   const int64_t* ldc) {
    sgemm_(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
};
template <>
struct Blas<double> {
  static bool available() { return dgemm_ != nullptr; }
  static void gemm(const char* ta, const char* tb, const int64_t* m, const int64_t* n,
                   const int64_t* k, const double* alpha, const double* a, const int64_t* lda,
                   const double* b, const int64_t* ldb, const double* beta, double* c,
                   const int64_t* ldc) {
    dgemm_(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
};

template <typename T>
bool blas_self_test() {
  if (!Blas<T>::available()) return false;
  const T A[6] = {1, 2, 3, 4, 5, 6};  // [2, 3]
  const T B[6] = {1, -1, 2, 0, -3, 1};  // [3, 2]
  T C[4] = {1, 1, 1, 1};
  const int64_t two = 2, three = 3;
  const T one = 1, beta = 2;
  Blas<T>::gemm("N", "N", &two, &two, &three, &one, B, &two, A, &three, &beta, C, &two);
  const T want[4] = {-2, 4, -2, 4};  // A B + 2
  for (int i = 0; i < 4; ++i)
    if (C[i] != want[i]) return false;
  return true;
}

template <typename T>
bool use_blas() {
  static const bool ok = blas_self_test<T>();
  return ok;
}

// ------------------------------------------------------------------- the AVX-512 kernel

#if HD_AVX512
#pragma GCC push_options
#pragma GCC target("avx512f")

// One MR x (16 NV) tile of C; the last vector column is masked by m.
template <int MR, int NV, bool LOAD_C>
HD_INLINE void tile_avx512(int64_t K, const float* A, int64_t ars, int64_t acs, const float* B,
                           int64_t ldb, float beta, float* C, int64_t ldc, __mmask16 m) {
  __m512 acc[MR][NV];
  const __m512 vbeta = _mm512_set1_ps(beta);
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mv = v == NV - 1 ? m : __mmask16(0xFFFF);
      acc[r][v] = LOAD_C ? _mm512_mul_ps(vbeta, _mm512_maskz_loadu_ps(mv, C + r * ldc + 16 * v))
                         : _mm512_setzero_ps();
    }
  for (int64_t k = 0; k < K; ++k) {
    __m512 b[NV];
    for (int v = 0; v < NV - 1; ++v) b[v] = _mm512_loadu_ps(B + k * ldb + 16 * v);
    b[NV - 1] = _mm512_maskz_loadu_ps(m, B + k * ldb + 16 * (NV - 1));
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(A[r * ars + k * acs]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(a, b[v], acc[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mv = v == NV - 1 ? m : __mmask16(0xFFFF);
      _mm512_mask_storeu_ps(C + r * ldc + 16 * v, mv, acc[r][v]);
    }
}

template <int NV, bool LOAD_C>
void rows_avx512(int64_t M, int64_t K, const float* A, int64_t ars, int64_t acs, const float* B,
                 int64_t ldb, float beta, float* C, int64_t ldc, __mmask16 m) {
  constexpr int MR = 4;
  int64_t i = 0;
  for (; i + MR <= M; i += MR)
    tile_avx512<MR, NV, LOAD_C>(K, A + i * ars, ars, acs, B, ldb, beta, C + i * ldc, ldc, m);
  for (; i < M; ++i)
    tile_avx512<1, NV, LOAD_C>(K, A + i * ars, ars, acs, B, ldb, beta, C + i * ldc, ldc, m);
}

// Long products in blocks of kKBlock along k, so that a block of the weight panel stays in the
// L1 cache across the row tiles. The accumulators pass through C between blocks unrounded (a
// float32 store and load), so every element is the same FMA chain as without blocking.
constexpr int64_t kKBlock = 128;

template <int NV, bool LOAD_C>
void blocks_avx512(int64_t M, int64_t K, const float* A, int64_t ars, int64_t acs, const float* B,
                   int64_t ldb, float beta, float* C, int64_t ldc, __mmask16 m) {
  if (K <= kKBlock + kKBlock / 2) {
    rows_avx512<NV, LOAD_C>(M, K, A, ars, acs, B, ldb, beta, C, ldc, m);
    return;
  }
  rows_avx512<NV, LOAD_C>(M, kKBlock, A, ars, acs, B, ldb, beta, C, ldc, m);
  for (int64_t k = kKBlock; k < K; k += kKBlock)
    rows_avx512<NV, true>(M, std::min(kKBlock, K - k), A + k * acs, ars, acs, B + k * ldb, ldb,
                          1.0f, C, ldc, m);
}

template <bool LOAD_C>
void gemm_avx512(int64_t M, int64_t N, int64_t K, const float* A, int64_t ars, int64_t acs,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t j = 0; j < N; j += 64) {
    const int64_t cols = std::min<int64_t>(64, N - j);
    const int64_t nv = (cols + 15) / 16;
    const int64_t last = cols - 16 * (nv - 1);
    const __mmask16 m = last == 16 ? __mmask16(0xFFFF) : __mmask16((1u << last) - 1);
    const float* Bj = B + j;
    float* Cj = C + j;
    switch (nv) {
      case 1: blocks_avx512<1, LOAD_C>(M, K, A, ars, acs, Bj, ldb, beta, Cj, ldc, m); break;
      case 2: blocks_avx512<2, LOAD_C>(M, K, A, ars, acs, Bj, ldb, beta, Cj, ldc, m); break;
      case 3: blocks_avx512<3, LOAD_C>(M, K, A, ars, acs, Bj, ldb, beta, Cj, ldc, m); break;
      default: blocks_avx512<4, LOAD_C>(M, K, A, ars, acs, Bj, ldb, beta, Cj, ldc, m); break;
    }
  }
}

// 16 counters at once: fill_normals_impl with vpmuludq for Philox's 32 x 32 -> 64 products
// (the auto-vectorised loop uses the slower 64-bit vpmullq). Same operations in the same order
// as the scalar code, hence the same numbers.
HD_INLINE void mulhilo_avx512(__m512i x, __m512i m, __m512i& hi, __m512i& lo) {
  const __m512i even = _mm512_mul_epu32(x, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(x, 32), m);
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

HD_INLINE __m512 poly_avx512(__m512 x, std::initializer_list<float> coefs) {
  auto it = coefs.begin();
  __m512 p = _mm512_set1_ps(*it++);
  for (; it != coefs.end(); ++it) p = _mm512_add_ps(_mm512_mul_ps(p, x), _mm512_set1_ps(*it));
  return p;
}

HD_INLINE void box_muller_avx512(__m512i a, __m512i b, __m512& z0, __m512& z1) {
  const __m512 v = _mm512_add_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(a, 9)),
                                 _mm512_set1_ps(0.5f));
  const __m512i bits = _mm512_sub_epi32(_mm512_castps_si512(v), _mm512_set1_epi32(0x3F3504F3));
  const __m512i e = _mm512_srai_epi32(bits, 23);
  const __m512 m = _mm512_castsi512_ps(_mm512_add_epi32(
      _mm512_and_si512(bits, _mm512_set1_epi32(0x007FFFFF)), _mm512_set1_epi32(0x3F3504F3)));
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 t = _mm512_div_ps(_mm512_sub_ps(m, one), _mm512_add_ps(m, one));
  const __m512 t2 = _mm512_mul_ps(t, t);
  const __m512 p = poly_avx512(t2, {1.0f / 11, 1.0f / 9, 1.0f / 7, 1.0f / 5, 1.0f / 3, 1.0f});
  const __m512 log_m = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(2.0f), t), p);
  const __m512 ln_v = _mm512_add_ps(
      _mm512_mul_ps(_mm512_cvtepi32_ps(e), _mm512_set1_ps(0.693147180559945f)), log_m);
  const __m512 r2 = _mm512_mul_ps(
      _mm512_set1_ps(-2.0f),
      _mm512_sub_ps(ln_v, _mm512_mul_ps(_mm512_set1_ps(23.0f), _mm512_set1_ps(0.693147180559945f))));
  const __m512 r = _mm512_mul_ps(_mm512_sqrt_ps(_mm512_max_ps(r2, _mm512_setzero_ps())),
                                 _mm512_set1_ps(0.70710678118654752f));
  const __m512i k = _mm512_srli_epi32(b, 8);
  const __m512i q = _mm512_srli_epi32(k, 22);
  const __m512 alpha = _mm512_sub_ps(
      _mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(_mm512_and_si512(k, _mm512_set1_epi32(0x3FFFFF))),
                                  _mm512_set1_ps(0.5f)),
                    _mm512_set1_ps(1.5707963267948966f / 4194304.0f)),
      _mm512_set1_ps(0.78539816339744831f));
  const __m512 a2 = _mm512_mul_ps(alpha, alpha);
  const __m512 s = _mm512_mul_ps(
      poly_avx512(a2, {-1.0f / 39916800, 1.0f / 362880, -1.0f / 5040, 1.0f / 120, -1.0f / 6, 1.0f}),
      alpha);
  const __m512 c = poly_avx512(a2, {-1.0f / 3628800, 1.0f / 40320, -1.0f / 720, 1.0f / 24, -0.5f,
                                    1.0f});
  const __m512 C = _mm512_sub_ps(c, s), S = _mm512_add_ps(c, s);
  const __mmask16 odd = _mm512_test_epi32_mask(q, _mm512_set1_epi32(1));
  const __mmask16 half = _mm512_test_epi32_mask(q, _mm512_set1_epi32(2));
  const __m512 negS = _mm512_sub_ps(_mm512_setzero_ps(), S);
  const __m512 x = _mm512_mask_blend_ps(odd, C, negS);
  const __m512 y = _mm512_mask_blend_ps(odd, S, C);
  const __m512 zero = _mm512_setzero_ps();
  z0 = _mm512_mul_ps(r, _mm512_mask_blend_ps(half, x, _mm512_sub_ps(zero, x)));
  z1 = _mm512_mul_ps(r, _mm512_mask_blend_ps(half, y, _mm512_sub_ps(zero, y)));
}

// Blocks of 16 counters from q0 on (Q − q0 >= 16); returns the first counter not done.
template <typename T>
int64_t fill_normals_avx512(uint64_t key, uint32_t stream, uint32_t step, int64_t Q, T* out) {
  const __m512i M0 = _mm512_set1_epi32(int32_t(0xD2511F53u));
  const __m512i M1 = _mm512_set1_epi32(int32_t(0xCD9E8D57u));
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int64_t q = 0;
  for (; q + 16 <= Q; q += 16) {
    __m512i c0 = _mm512_add_epi32(_mm512_set1_epi32(int32_t(uint32_t(q))), lanes);
    __m512i c1 = _mm512_set1_epi32(int32_t(uint32_t(uint64_t(q) >> 32)));
    __m512i c2 = _mm512_set1_epi32(int32_t(step));
    __m512i c3 = _mm512_set1_epi32(int32_t(stream));
    uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
    for (int round = 0; round < 10; ++round) {
      __m512i hi0, lo0, hi1, lo1;
      mulhilo_avx512(c0, M0, hi0, lo0);
      mulhilo_avx512(c2, M1, hi1, lo1);
      const __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32(int32_t(k0)));
      const __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32(int32_t(k1)));
      c1 = lo1;
      c3 = lo0;
      c0 = n0;
      c2 = n2;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    __m512 z[4];
    box_muller_avx512(c0, c1, z[0], z[1]);
    box_muller_avx512(c2, c3, z[2], z[3]);
    for (int w = 0; w < 4; ++w) {
      T* o = out + w * Q + q;
      if constexpr (sizeof(T) == 4) {
        _mm512_storeu_ps(reinterpret_cast<float*>(o), z[w]);
      } else {
        _mm512_storeu_pd(reinterpret_cast<double*>(o), _mm512_cvtps_pd(_mm512_castps512_ps256(z[w])));
        _mm512_storeu_pd(reinterpret_cast<double*>(o) + 8,
                         _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(z[w]), 1))));
      }
    }
  }
  return q;
}

#pragma GCC pop_options
#endif

inline bool avx512_available() {
#if HD_AVX512
  static const bool ok = __builtin_cpu_supports("avx512f");
  return ok;
#else
  return false;
#endif
}

// 1 = the hand-written AVX-512 kernels (float32 products, normals) where they apply, the default
// where the CPU has AVX-512; 0 = BLAS (or ATen) products and the portable normals. Settable for
// comparisons and tests.
inline int64_t& kernel_choice() {
  static int64_t choice = avx512_available() ? 1 : 0;
  return choice;
}

// The AVX-512 kernel is used for weight panels up to this size (floats): beyond the L2 cache a
// blocked BLAS product streams them better.
constexpr int64_t kPanelMax = 1 << 16;

// C[M, N] = A B + beta C (beta = 0: C is not read). A(r, c) = A[r ars + c acs] with one of the
// strides 1; B row-major [K, N] with leading dimension ldb; C row-major with ldc.
template <typename T>
void product(int64_t M, int64_t N, int64_t K, const T* A, int64_t ars, int64_t acs, const T* B,
             int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
#if HD_AVX512
  if constexpr (sizeof(T) == 4) {
    if (kernel_choice() == 1 && K * N <= kPanelMax) {
      if (beta == T(0)) {
        gemm_avx512<false>(M, N, K, A, ars, acs, B, ldb, beta, C, ldc);
      } else {
        gemm_avx512<true>(M, N, K, A, ars, acs, B, ldb, beta, C, ldc);
      }
      return;
    }
  }
#endif
  if (use_blas<T>()) {  // column-major view: Cᵀ = Bᵀ Aᵀ
    const T one = 1;
    const bool a_rows = acs == 1;
    const int64_t lda = a_rows ? ars : acs;
    Blas<T>::gemm("N", a_rows ? "N" : "T", &N, &M, &K, &one, B, &ldb, A, &lda, &beta, C, &ldc);
    return;
  }
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  at::Tensor a = at::from_blob(const_cast<T*>(A), {M, K}, {ars, acs}, options);
  at::Tensor b = at::from_blob(const_cast<T*>(B), {K, N}, {ldb, 1}, options);
  at::Tensor c = at::from_blob(C, {M, N}, {ldc, 1}, options);
  if (beta == T(0)) {
    at::mm_out(c, a, b);
  } else {
    at::addmm_out(c, c, a, b, beta, 1);
  }
}

// A sum over steps of per-step products (the weight gradients of a BPTT): the products of
// kFlushSteps steps accumulate in one float chain, then into float64. Summing all steps in one
// float32 chain (50,000 terms at the Cueva shape) loses ~1e-4 relative accuracy.
constexpr int64_t kFlushSteps = 8;

template <typename T>
struct StepSum {
  explicit StepSum(int64_t size) : block(size), total(size, 0.0) {}
  T beta() const { return count == 0 ? T(0) : T(1); }  // for the next product into data()
  T* data() { return block.data(); }
  void step_done() {
    if (++count == kFlushSteps) flush();
  }
  void flush() {
    if (count == 0) return;
    for (size_t i = 0; i < block.size(); ++i) total[i] += static_cast<double>(block[i]);
    count = 0;
  }
  void write(T* out) {  // out = the sum (row-major like the products)
    flush();
    for (size_t i = 0; i < total.size(); ++i) out[i] = static_cast<T>(total[i]);
  }
  std::vector<T> block;
  std::vector<double> total;
  int64_t count = 0;
};

// Rows scattered in memory (e.g. one step of a [B, T, N] tensor) defeat the hardware prefetcher:
// ask for them one product ahead of their use.
template <bool WRITE, typename T>
void prefetch_rows(const T* p, int64_t rows, int64_t ld, int64_t n) {
  if (ld == n) return;  // contiguous: the hardware prefetcher copes
  for (int64_t b = 0; b < rows; ++b) {
    const char* r = reinterpret_cast<const char*>(p + b * ld);
    for (int64_t off = 0; off < n * static_cast<int64_t>(sizeof(T)); off += 64) {
      if constexpr (WRITE) {
        __builtin_prefetch(r + off, 1, 3);
      } else {
        __builtin_prefetch(r + off, 0, 3);
      }
    }
  }
}

inline void check_rows(const at::Tensor& t, const char* name, int64_t last_dim) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be on the CPU");
  TORCH_CHECK(t.size(-1) == last_dim && t.stride(-1) == 1, name,
              " must have unit stride along its last dimension of ", last_dim);
}

}  // namespace hdk
