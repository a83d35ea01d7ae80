// Compiled per-step loops of hdbench.core.dynamics (built on first use by hdbench.core._native).
//
// Each Euler step is one matrix product (BLAS) plus ONE pass over the [B, N] state that does all
// the elementwise work of the step: drive and state noise, the activation (σ for the tanh family,
// f(a) = 2σ(2a) − 1), rate noise, silencing, and in the backward the slope s·f'(a) from the saved
// g(u). The Python loop it replaces takes a GEMM plus 2-5 elementwise kernels and the interpreter
// per step. Semantics (and argument meanings) follow dynamics._forward / _RateDynamics.backward.
//
// Portability: compiled with plain -O3 (no -march); the elementwise passes are cloned for
// x86-64-v4 (AVX-512), x86-64-v3 (AVX2) and baseline x86-64 and picked at load time (GNU ifunc).
// exp is a branch-free Cody-Waite + Taylor polynomial (float: <= ~2 ulp; double: <= ~2 ulp) so that
// the compiler vectorises it; -ffp-contract=off keeps every clone bit-identical.

#include "_kernels.h"

#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

namespace hdk {

namespace {
HD_CLONES void fill_normals_portable(uint64_t key, uint32_t stream, uint32_t step, int64_t Q,
                                     int64_t q0, float* out) {
  fill_normals_impl<float>(key, stream, step, Q, q0, out);
}
HD_CLONES void fill_normals_portable(uint64_t key, uint32_t stream, uint32_t step, int64_t Q,
                                     int64_t q0, double* out) {
  fill_normals_impl<double>(key, stream, step, Q, q0, out);
}

template <typename T>
void fill_normals_any(uint64_t key, uint32_t stream, uint32_t step, int64_t count, T* out) {
  const int64_t Q = (count + 3) / 4;
  int64_t q0 = 0;
#if HD_AVX512
  if (kernel_choice() == 1) q0 = fill_normals_avx512<T>(key, stream, step, Q, out);
#endif
  if (q0 < Q) fill_normals_portable(key, stream, step, Q, q0, out);
}
}  // namespace

void fill_normals(uint64_t key, uint32_t stream, uint32_t step, int64_t count, float* out) {
  fill_normals_any<float>(key, stream, step, count, out);
}
HD_CLONES void compose_pass(const ComposeArgs<float>& a) { compose_rows<float>(a); }
HD_CLONES void compose_pass(const ComposeArgs<double>& a) { compose_rows<double>(a); }
void fill_normals(uint64_t key, uint32_t stream, uint32_t step, int64_t count, double* out) {
  fill_normals_any<double>(key, stream, step, count, out);
}

}  // namespace hdk

namespace {

using namespace hdk;

enum Activation : int64_t { kRetanh = 0, kTanh = 1, kRelu = 2, kLinear = 3, kSoftplus = 4 };
// The backward of the tanh family from the rates h = f(a) instead of the saved g(κa) (no rate
// noise: h holds f(a) exactly, and the forward need not keep g).
enum RatesSlope : int64_t { kRetanhFromRates = 5, kTanhFromRates = 6 };

// g(u): σ(u) for tanh, σ(max(u, 0)) for retanh, f(u) otherwise (dynamics._g)
template <typename T, int64_t ACT>
HD_INLINE T g_(T u) {
  if constexpr (ACT == kRetanh) return sigmoid_(u < T(0) ? T(0) : u);
  if constexpr (ACT == kTanh) return sigmoid_(u);
  if constexpr (ACT == kRelu) return u < T(0) ? T(0) : u;
  if constexpr (ACT == kSoftplus) return softplus_(u);
  return u;
}

// ----------------------------------------------------------------- the elementwise passes

// One forward step after its product, for every trial b and unit j:
//   u += gain · d + ss · ξ   (ADD: drive and state noise; absent ones point at a row of zeros)
//   g = g(u);  h = (2g − 1 + σz) (tanh family) or (g + σz);  h = 0 where keep == 0
// (without rate noise z points at a row of zeros and σ = 0: the same values). h goes to the GEMM
// row and, with OUT, to the rates output too. ξ and z are standard normals.
template <typename T>
struct RateArgs {
  int64_t B, N;
  T* u;
  const T* d;
  int64_t ld_d;
  const T* gain;
  const T* xi;  // state noise normals
  int64_t ld_xi;
  const T* ss;  // [N] state noise scale κsσ
  const T* z;  // rate noise normals
  int64_t ld_z;
  T sigma;
  T* g;  // [B, N]
  T* h;
  int64_t ld_h;
  T* out;  // or null
  int64_t ld_out;
  const T* keep;  // [N]
};

template <typename T, int64_t ACT, bool ADD, bool OUT>
HD_INLINE void rate_rows(const RateArgs<T>& a) {
  constexpr bool tanh_family = ACT == kRetanh || ACT == kTanh;
  const int64_t N = a.N;
  const T* __restrict__ gain = a.gain;
  const T* __restrict__ ss = a.ss;
  const T* __restrict__ keep = a.keep;
  for (int64_t b = 0; b < a.B; ++b) {
    T* __restrict__ u = a.u + b * N;
    const T* __restrict__ d = a.d + b * a.ld_d;
    const T* __restrict__ xi = a.xi + b * a.ld_xi;
    const T* __restrict__ z = a.z + b * a.ld_z;
    T* __restrict__ g = a.g + b * N;
    T* __restrict__ h = a.h + b * a.ld_h;
    T* __restrict__ out = OUT ? a.out + b * a.ld_out : nullptr;
#pragma GCC ivdep
    for (int64_t j = 0; j < N; ++j) {
      T x = u[j];
      if constexpr (ADD) {
        x = x + gain[j] * d[j];
        x = x + ss[j] * xi[j];
        u[j] = x;
      }
      const T gj = g_<T, ACT>(x);
      g[j] = gj;
      T hj;
      if constexpr (tanh_family) {
        hj = (T(-1) + a.sigma * z[j]) + T(2) * gj;
      } else {
        hj = a.sigma * z[j] + gj;
      }
      hj = keep[j] != T(0) ? hj : T(0);
      h[j] = hj;
      if constexpr (OUT) out[j] = hj;
    }
  }
}

template <typename T, int64_t ACT>
HD_INLINE void rate_rows_act(const RateArgs<T>& a, bool add) {
  if (add) {
    a.out ? rate_rows<T, ACT, true, true>(a) : rate_rows<T, ACT, true, false>(a);
  } else {
    a.out ? rate_rows<T, ACT, false, true>(a) : rate_rows<T, ACT, false, false>(a);
  }
}

template <typename T>
HD_INLINE void rate_rows_any(const RateArgs<T>& a, int64_t act, bool add) {
  switch (act) {
    case kRetanh: return rate_rows_act<T, kRetanh>(a, add);
    case kTanh: return rate_rows_act<T, kTanh>(a, add);
    case kRelu: return rate_rows_act<T, kRelu>(a, add);
    case kSoftplus: return rate_rows_act<T, kSoftplus>(a, add);
    default: return rate_rows_act<T, kLinear>(a, add);
  }
}

HD_CLONES void rate_pass(const RateArgs<float>& a, int64_t act, bool add) {
  rate_rows_any<float>(a, act, add);
}
HD_CLONES void rate_pass(const RateArgs<double>& a, int64_t act, bool add) {
  rate_rows_any<double>(a, act, add);
}

// One backward step after its product gh = P_{i+1} W (PN), for every trial and unit:
//   P_i = slope · (gh + e) + leak · P_{i+1},   slope = coef · f'(a)/κ... as in dynamics._slope:
//   tanh family (G − G²) · coef (retanh: 0 where G <= 1/2), or from the rates G = h (the
//   *FromRates codes) (1 − h²) · coef (retanh: 0 where h <= 0), relu coef where G > 0, softplus
//   coef · (1 − exp(−G)) = coef · σ(a), linear coef; coef = 4s (tanh family from g) or s, and
//   0 for units silenced at this step.
// Without P_{i+1} (the last step): P_i = slope · e, or 0 without e.
template <typename T>
struct GradArgs {
  int64_t B, N;
  const T* G;
  int64_t ld_G;
  const T* gh;  // [B, N]
  const T* e;
  int64_t ld_e;
  const T* pn;  // [B, N] or null
  const T* coef;  // [N]
  const T* leak;  // [N]
  T* p;  // [B, N]
};

template <typename T, int64_t ACT, bool E, bool PN>
HD_INLINE void grad_rows(const GradArgs<T>& a) {
  const int64_t N = a.N;
  const T* __restrict__ coef = a.coef;
  const T* __restrict__ leak = a.leak;
  for (int64_t b = 0; b < a.B; ++b) {
    const T* __restrict__ G = a.G + b * a.ld_G;
    const T* __restrict__ gh = PN ? a.gh + b * N : nullptr;
    const T* __restrict__ e = E ? a.e + b * a.ld_e : nullptr;
    const T* __restrict__ pn = PN ? a.pn + b * N : nullptr;
    T* __restrict__ p = a.p + b * N;
#pragma GCC ivdep
    for (int64_t j = 0; j < N; ++j) {
      const T G_ = G[j];
      T slope;
      if constexpr (ACT == kRetanh || ACT == kTanh) {
        slope = (G_ - G_ * G_) * coef[j];
        if constexpr (ACT == kRetanh) slope = G_ > T(0.5) ? slope : T(0);
      } else if constexpr (ACT == kRetanhFromRates || ACT == kTanhFromRates) {
        slope = (T(1) - G_ * G_) * coef[j];  // f'(a) = 1 − tanh²(a), coef = s
        if constexpr (ACT == kRetanhFromRates) slope = G_ > T(0) ? slope : T(0);
      } else if constexpr (ACT == kRelu) {
        slope = G_ > T(0) ? coef[j] : T(0);
      } else if constexpr (ACT == kSoftplus) {
        slope = -expm1_neg_(-G_) * coef[j];
      } else {
        slope = coef[j];
      }
      if constexpr (PN) {
        const T q = E ? e[j] + gh[j] : gh[j];
        p[j] = slope * q + leak[j] * pn[j];
      } else {
        p[j] = E ? slope * e[j] : T(0);
      }
    }
  }
}

template <typename T, int64_t ACT>
HD_INLINE void grad_rows_act(const GradArgs<T>& a) {
  if (a.pn) {
    a.e ? grad_rows<T, ACT, true, true>(a) : grad_rows<T, ACT, false, true>(a);
  } else {
    a.e ? grad_rows<T, ACT, true, false>(a) : grad_rows<T, ACT, false, false>(a);
  }
}

template <typename T>
HD_INLINE void grad_rows_any(const GradArgs<T>& a, int64_t act) {
  switch (act) {
    case kRetanh: return grad_rows_act<T, kRetanh>(a);
    case kTanh: return grad_rows_act<T, kTanh>(a);
    case kRelu: return grad_rows_act<T, kRelu>(a);
    case kSoftplus: return grad_rows_act<T, kSoftplus>(a);
    case kRetanhFromRates: return grad_rows_act<T, kRetanhFromRates>(a);
    case kTanhFromRates: return grad_rows_act<T, kTanhFromRates>(a);
    default: return grad_rows_act<T, kLinear>(a);
  }
}

HD_CLONES void grad_pass(const GradArgs<float>& a, int64_t act) { grad_rows_any<float>(a, act); }
HD_CLONES void grad_pass(const GradArgs<double>& a, int64_t act) { grad_rows_any<double>(a, act); }

// Noise streams of the forward loop under one key (see _kernels.h).
constexpr uint32_t kRateNoise = 0, kStateNoise = 1;

// ------------------------------------------------------------------------------- forward

// Internal steps i = 1..S, S = T · substeps (dynamics._forward): the GEMM input row of step i is
// [h_{i−1}, x_{t(i)}, 1] (K = N without folded inputs), u ← β u + row Wa_t (Wa scaled by κs),
// then the fused pass. Ha holds all S + 1 rows (for the backward) or is a ring of 2; its input
// columns are filled here from ``inputs`` [B, T, D] (x of the next step, then 1 for a bias
// column; zeros in row S). Rates of task steps go to ``out`` [B, T, N], pre-activations (u / κ)
// to ``preacts`` [B, T, N]; G (g(u) of every step, [S + 1, B, N]) when given.
// Noise of step i is drawn here under ``key``: rate noise (SD rate_std) on stream 0, state noise
// (per-unit scale state_scale = κsσ) on stream 1, both with counter step i − 1.
template <typename T>
void forward_impl(at::Tensor& u, const at::Tensor& Wa_t, at::Tensor& Ha,
                  const std::optional<at::Tensor>& inputs, const std::optional<at::Tensor>& G,
                  int64_t key, double rate_std, const std::optional<at::Tensor>& state_scale,
                  const std::optional<at::Tensor>& drive, at::Tensor& out,
                  const std::optional<at::Tensor>& preacts, const at::Tensor& gain,
                  const std::optional<at::Tensor>& leak, double beta, const at::Tensor& keep,
                  int64_t first, int64_t last, int64_t act, int64_t k, double kappa) {
  const int64_t B = u.size(0), N = u.size(1), K = Ha.size(2), T_ = out.size(1);
  const int64_t steps = T_ * k;
  TORCH_CHECK(u.is_contiguous() && Wa_t.is_contiguous() && Ha.is_contiguous(),
              "u, Wa_t and Ha must be contiguous");
  TORCH_CHECK(Wa_t.size(0) == K && Wa_t.size(1) == N && Ha.size(1) == B, "shape mismatch");
  TORCH_CHECK(gain.is_contiguous() && gain.numel() == N && keep.is_contiguous() &&
                  keep.numel() == N, "gain and keep must be contiguous [N]");
  const bool ring = Ha.size(0) < steps + 1;
  TORCH_CHECK(ring ? Ha.size(0) == 2 : Ha.size(0) == steps + 1, "Ha must have 2 or S + 1 rows");
  check_rows(out, "out", N);
  TORCH_CHECK(out.size(0) == B, "out must be [B, T, N]");
  int64_t D = 0;
  if (inputs) {
    D = inputs->size(2);
    TORCH_CHECK(inputs->size(0) == B && inputs->size(1) == T_ && N + D <= K, "bad inputs");
  }
  TORCH_CHECK(K == N || (inputs && K <= N + D + 1), "Ha has columns but no inputs fill them");
  if (G) TORCH_CHECK(G->is_contiguous() && G->size(0) == steps + 1, "G must be [S + 1, B, N]");
  if (state_scale)
    TORCH_CHECK(state_scale->is_contiguous() && state_scale->numel() == N, "bad state_scale");
  if (drive) check_rows(*drive, "drive", N);
  if (preacts) check_rows(*preacts, "preacts", N);
  if (leak) TORCH_CHECK(leak->is_contiguous() && leak->numel() == N, "bad leak");

  at::Tensor g_scratch = G ? at::Tensor() : at::empty({B, N}, u.options());
  const std::vector<T> zeros(N, T(0)), ones(N, T(1));
  std::vector<T> rate_normals(rate_std > 0 ? padded_normals(B * N) : 0);
  std::vector<T> state_normals(state_scale ? padded_normals(B * N) : 0);
  T* const Ha_p = Ha.mutable_data_ptr<T>();
  T* const u_p = u.mutable_data_ptr<T>();
  const uint64_t ukey = static_cast<uint64_t>(key);
  auto row = [&](int64_t i) { return ring ? i % 2 : i; };
  auto fill_inputs = [&](int64_t i) {  // input columns of row i: [x of task step i / k, 1]
    if (!inputs) return;
    T* r = Ha_p + row(i) * B * K + N;
    if (i == steps) {
      for (int64_t b = 0; b < B; ++b)
        for (int64_t c = 0; c < K - N; ++c) r[b * K + c] = T(0);
      return;
    }
    const T* x = inputs->const_data_ptr<T>() + (i / k) * inputs->stride(1);
    const int64_t sb = inputs->stride(0), sd = inputs->stride(2);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t d = 0; d < D; ++d) r[b * K + d] = x[b * sb + d * sd];
      if (K > N + D) r[b * K + D] = T(1);
    }
  };

  RateArgs<T> a{};
  a.B = B;
  a.N = N;
  a.u = u_p;
  a.gain = gain.const_data_ptr<T>();
  a.ss = state_scale ? state_scale->const_data_ptr<T>() : zeros.data();
  a.ld_h = K;
  a.ld_out = out.stride(0);
  const T* const keep_p = keep.const_data_ptr<T>();
  auto set_rates = [&](int64_t i, bool add) {
    a.g = G ? G->mutable_data_ptr<T>() + i * B * N : g_scratch.mutable_data_ptr<T>();
    a.h = Ha_p + row(i) * B * K;
    if (rate_std > 0 && i > 0) {
      fill_normals(ukey, kRateNoise, static_cast<uint32_t>(i - 1), B * N, rate_normals.data());
      a.z = rate_normals.data();
      a.ld_z = N;
      a.sigma = static_cast<T>(rate_std);
    } else {
      a.z = zeros.data();
      a.ld_z = 0;
      a.sigma = T(0);
    }
    a.out = i > 0 && i % k == 0 ? out.mutable_data_ptr<T>() + (i / k - 1) * out.stride(1) : nullptr;
    a.keep = first <= i && i <= last ? keep_p : ones.data();
    rate_pass(a, act, add);
    fill_inputs(i);
  };

  a.d = zeros.data();
  a.ld_d = 0;
  a.xi = zeros.data();
  a.ld_xi = 0;
  set_rates(0, false);
  const bool add = drive || state_scale;
  const T* leak_p = leak ? leak->const_data_ptr<T>() : nullptr;
  const T step_beta = leak ? T(1) : static_cast<T>(beta);
  const T inv_kappa = static_cast<T>(1.0 / kappa);
  const T* const Wa_p = Wa_t.const_data_ptr<T>();
  for (int64_t i = 1; i <= steps; ++i) {
    if (leak_p) {  // per-unit leak: u ← (1 − s) u before the product
      for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < N; ++j) u_p[b * N + j] *= leak_p[j];
    }
    if (drive) {
      a.d = drive->const_data_ptr<T>() + ((i - 1) / k) * drive->stride(0);
      a.ld_d = drive->stride(1);
      if ((i - 1) % k == 0) prefetch_rows<false>(a.d, B, a.ld_d, N);
    }
    if (i % k == 0) prefetch_rows<true>(out.mutable_data_ptr<T>() + (i / k - 1) * out.stride(1),
                                        B, out.stride(0), N);
    product<T>(B, N, K, Ha_p + row(i - 1) * B * K, K, 1, Wa_p, N, step_beta, u_p, N);
    if (state_scale) {
      fill_normals(ukey, kStateNoise, static_cast<uint32_t>(i - 1), B * N, state_normals.data());
      a.xi = state_normals.data();
      a.ld_xi = N;
    }
    set_rates(i, add);
    if (preacts && i % k == 0) {
      T* p = preacts->mutable_data_ptr<T>() + (i / k - 1) * preacts->stride(1);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < N; ++j) p[b * preacts->stride(0) + j] = u_p[b * N + j] * inv_kappa;
    }
  }
}

void forward_loop(at::Tensor u, at::Tensor Wa_t, at::Tensor Ha, std::optional<at::Tensor> inputs,
                  std::optional<at::Tensor> G, int64_t key, double rate_std,
                  std::optional<at::Tensor> state_scale, std::optional<at::Tensor> drive,
                  at::Tensor out, std::optional<at::Tensor> preacts, at::Tensor gain,
                  std::optional<at::Tensor> leak, double beta, at::Tensor keep, int64_t first,
                  int64_t last, int64_t act, int64_t substeps, double kappa) {
  TORCH_CHECK(u.device().is_cpu(), "the compiled loop runs on the CPU only");
  if (u.scalar_type() == at::kFloat) {
    forward_impl<float>(u, Wa_t, Ha, inputs, G, key, rate_std, state_scale, drive, out, preacts,
                        gain, leak, beta, keep, first, last, act, substeps, kappa);
  } else if (u.scalar_type() == at::kDouble) {
    forward_impl<double>(u, Wa_t, Ha, inputs, G, key, rate_std, state_scale, drive, out, preacts,
                         gain, leak, beta, keep, first, last, act, substeps, kappa);
  } else {
    TORCH_CHECK(false, "the compiled loop supports float32 and float64 only");
  }
}

// ------------------------------------------------------------------------------ backward

// Steps i = S..stop of the BPTT (dynamics._RateDynamics): P_i from P_{i+1} (see grad_rows). P
// holds all S + 1 rows, or is a ring of 2 (row i % 2) when only the weight gradient and P_0
// (the initial state's, left in row 0) are wanted. Ha [S + 1, B, K] holds the GEMM rows
// [h_i, x, 1]. With grad_Wa, the weight gradient is accumulated on the way,
// grad_Wa += P_iᵀ [h_{i−1}, x, 1] for i >= 1, while P_i is still in the cache.
// The rates' gradient of task step t is ``grad`` [T, B, N] (rows), or composed from it (or
// nothing), the readout's ``gout`` [T, B, O] with V [O, N], and c h (see compose_rows).
template <typename T>
void backward_impl(at::Tensor& P, const at::Tensor& G, const at::Tensor& W,
                   const std::optional<at::Tensor>& grad, const std::optional<at::Tensor>& gout,
                   const std::optional<at::Tensor>& V, double c_h,
                   const std::optional<at::Tensor>& dV, const at::Tensor& coef_out,
                   const at::Tensor& coef_in, const at::Tensor& leak, int64_t first, int64_t last,
                   int64_t act, int64_t k, int64_t stop, const at::Tensor& Ha,
                   const std::optional<at::Tensor>& grad_Wa) {
  const int64_t S1 = G.size(0), B = P.size(1), N = P.size(2), K = Ha.size(2);
  const bool ring = P.size(0) < S1;
  TORCH_CHECK(P.is_contiguous() && W.is_contiguous(), "P and W must be contiguous");
  TORCH_CHECK(ring ? P.size(0) == 2 : P.size(0) == S1, "P must have 2 or S + 1 rows");
  TORCH_CHECK(G.size(1) == B, "G must be [S + 1, B, N]");
  check_rows(G, "G", N);
  if (grad) check_rows(*grad, "grad", N);
  TORCH_CHECK(coef_out.is_contiguous() && coef_in.is_contiguous() && leak.is_contiguous(),
              "coef and leak must be contiguous");
  TORCH_CHECK(Ha.is_contiguous() && Ha.size(0) == S1 && Ha.size(1) == B && K >= N, "bad Ha");
  if (grad_Wa)
    TORCH_CHECK(grad_Wa->is_contiguous() && grad_Wa->size(0) == N && grad_Wa->size(1) == K,
                "grad_Wa must be [N, K]");
  const bool readout = gout.has_value();
  const bool compose = readout || c_h != 0.0;
  int64_t O = 0;
  if (readout) {
    TORCH_CHECK(V && V->is_contiguous() && V->size(1) == N, "gout needs V [O, N]");
    O = V->size(0);
    check_rows(*gout, "gout", O);
    if (dV) TORCH_CHECK(dV->is_contiguous() && dV->sizes() == V->sizes(), "dV must be like V");
  }
  at::Tensor gh = at::empty({B, N}, P.options());
  at::Tensor e_buf = compose ? at::empty({B, N}, P.options()) : at::Tensor();
  GradArgs<T> a{};
  a.B = B;
  a.N = N;
  a.ld_G = G.stride(1);
  a.gh = gh.const_data_ptr<T>();
  a.leak = leak.const_data_ptr<T>();
  ComposeArgs<T> c{};
  c.B = B;
  c.N = N;
  c.O = O;
  c.ld_h = K;
  c.V = readout ? V->const_data_ptr<T>() : nullptr;
  std::vector<double> dV64(readout && dV ? dV->numel() : 0, 0.0);
  c.dV = dV64.empty() ? nullptr : dV64.data();
  c.c = static_cast<T>(c_h);
  c.e = compose ? e_buf.mutable_data_ptr<T>() : nullptr;
  T* const P_p = P.mutable_data_ptr<T>();
  T* const gh_p = gh.mutable_data_ptr<T>();
  const T* const G_p = G.const_data_ptr<T>();
  const T* const Ha_p = Ha.const_data_ptr<T>();
  const T* const W_p = W.const_data_ptr<T>();
  StepSum<T> weights(grad_Wa ? N * K : 0);
  auto row = [&](int64_t i) { return ring ? i % 2 : i; };
  for (int64_t i = S1 - 1; i >= stop; --i) {
    const bool task_step = i > 0 && i % k == 0;
    const T* dense = grad && task_step ? grad->const_data_ptr<T>() + (i / k - 1) * grad->stride(0)
                                       : nullptr;
    if (dense) prefetch_rows<false>(dense, B, grad->stride(1), N);
    if (compose && task_step) {
      c.dense = dense;
      c.ld_dense = grad ? grad->stride(1) : 0;
      c.h = Ha_p + i * B * K;
      c.gout = readout ? gout->const_data_ptr<T>() + (i / k - 1) * gout->stride(0) : nullptr;
      c.ld_gout = readout ? gout->stride(1) : 0;
      compose_pass(c);
      a.e = c.e;
      a.ld_e = N;
    } else {
      a.e = dense;
      a.ld_e = grad ? grad->stride(1) : 0;
    }
    a.G = G_p + i * G.stride(0);
    a.coef = (first <= i && i <= last ? coef_in : coef_out).const_data_ptr<T>();
    a.p = P_p + row(i) * B * N;
    if (i < S1 - 1) {
      a.pn = P_p + row(i + 1) * B * N;
      product<T>(B, N, N, a.pn, N, 1, W_p, N, T(0), gh_p, N);
    } else {
      a.pn = nullptr;
    }
    grad_pass(a, act);
    if (grad_Wa && i >= 1) {  // grad_Wa [N, K] += P_iᵀ [B, N]ᵀ Ha_{i−1} [B, K]
      product<T>(N, K, B, a.p, 1, N, Ha_p + (i - 1) * B * K, K, weights.beta(), weights.data(),
                 K);
      weights.step_done();
    }
  }
  if (grad_Wa) weights.write(grad_Wa->mutable_data_ptr<T>());
  if (!dV64.empty()) {
    T* out = dV->mutable_data_ptr<T>();
    for (size_t j = 0; j < dV64.size(); ++j) out[j] = static_cast<T>(dV64[j]);
  }
}

void backward_loop(at::Tensor P, at::Tensor G, at::Tensor W, std::optional<at::Tensor> grad,
                   std::optional<at::Tensor> gout, std::optional<at::Tensor> V, double c_h,
                   std::optional<at::Tensor> dV, at::Tensor coef_out, at::Tensor coef_in,
                   at::Tensor leak, int64_t first, int64_t last, int64_t act, int64_t substeps,
                   int64_t stop, at::Tensor Ha, std::optional<at::Tensor> grad_Wa) {
  TORCH_CHECK(P.device().is_cpu(), "the compiled loop runs on the CPU only");
  if (P.scalar_type() == at::kFloat) {
    backward_impl<float>(P, G, W, grad, gout, V, c_h, dV, coef_out, coef_in, leak, first, last,
                         act, substeps, stop, Ha, grad_Wa);
  } else if (P.scalar_type() == at::kDouble) {
    backward_impl<double>(P, G, W, grad, gout, V, c_h, dV, coef_out, coef_in, leak, first, last,
                          act, substeps, stop, Ha, grad_Wa);
  } else {
    TORCH_CHECK(false, "the compiled loop supports float32 and float64 only");
  }
}

// ----------------------------------------------------------------------- helpers for Python

// out [S, B, N] (or any [S, ...]): the standard normals the forward loop draws on ``stream``
// under ``key`` at steps 0..S−1 (for the reference implementation and tests).
void normal_block(at::Tensor out, int64_t key, int64_t stream) {
  TORCH_CHECK(out.device().is_cpu() && out.is_contiguous() && out.dim() >= 1,
              "out must be a contiguous CPU tensor");
  const int64_t S = out.size(0), count = S > 0 ? out.numel() / S : 0;
  auto fill = [&](auto* base) {
    using T = std::remove_pointer_t<decltype(base)>;
    std::vector<T> row(padded_normals(count));
    for (int64_t s = 0; s < S; ++s) {
      fill_normals(static_cast<uint64_t>(key), static_cast<uint32_t>(stream),
                   static_cast<uint32_t>(s), count, row.data());
      std::copy(row.begin(), row.begin() + count, base + s * count);
    }
  };
  if (out.scalar_type() == at::kFloat) {
    fill(out.mutable_data_ptr<float>());
  } else if (out.scalar_type() == at::kDouble) {
    fill(out.mutable_data_ptr<double>());
  } else {
    TORCH_CHECK(false, "normal_block fills float32 or float64 tensors");
  }
}

// Philox-4x32-10 of one counter under one key (known-answer tests).
std::vector<int64_t> philox(std::vector<int64_t> counter, std::vector<int64_t> key) {
  TORCH_CHECK(counter.size() == 4 && key.size() == 2, "counter has 4 words, key 2");
  uint32_t c[4];
  for (int i = 0; i < 4; ++i) c[i] = static_cast<uint32_t>(counter[i]);
  philox4x32_10(c[0], c[1], c[2], c[3], static_cast<uint32_t>(key[0]),
                static_cast<uint32_t>(key[1]));
  return {c[0], c[1], c[2], c[3]};
}

// out = beta out + A B with the loops' product, ``repeat`` times (tests, and the floor of the
// benchmarks without a call per product); A may be transposed.
void matmul(at::Tensor A, at::Tensor B, at::Tensor out, double beta, int64_t repeat) {
  TORCH_CHECK(A.dim() == 2 && B.dim() == 2 && out.dim() == 2 && A.size(1) == B.size(0) &&
                  out.size(0) == A.size(0) && out.size(1) == B.size(1), "shape mismatch");
  TORCH_CHECK(A.stride(0) == 1 || A.stride(1) == 1, "A needs a unit stride");
  TORCH_CHECK(B.stride(1) == 1 && out.stride(1) == 1, "B and out need unit column strides");
  TORCH_CHECK(A.scalar_type() == B.scalar_type() && A.scalar_type() == out.scalar_type(),
              "dtypes differ");
  const int64_t M = A.size(0), K = A.size(1), N = B.size(1);
  for (int64_t r = 0; r < repeat; ++r) {
    if (A.scalar_type() == at::kFloat) {
      product<float>(M, N, K, A.const_data_ptr<float>(), A.stride(0), A.stride(1),
                     B.const_data_ptr<float>(), B.stride(0), static_cast<float>(beta),
                     out.mutable_data_ptr<float>(), out.stride(0));
    } else {
      TORCH_CHECK(A.scalar_type() == at::kDouble, "float32 or float64");
      product<double>(M, N, K, A.const_data_ptr<double>(), A.stride(0), A.stride(1),
                      B.const_data_ptr<double>(), B.stride(0), beta,
                      out.mutable_data_ptr<double>(), out.stride(0));
    }
  }
}

// The float32 product kernel: 1 = AVX-512 (where available), 0 = BLAS; a negative choice only
// reads it. Returns the previous choice.
int64_t product_kernel(int64_t choice) {
  const int64_t previous = kernel_choice();
  if (choice >= 0) kernel_choice() = choice == 1 && avx512_available() ? 1 : 0;
  return previous;
}

bool direct_blas(int64_t dtype_is_double) {
  return dtype_is_double ? use_blas<double>() : use_blas<float>();
}

}  // namespace

TORCH_LIBRARY(hdbench_core, m) {
  m.def("forward_loop", &forward_loop);
  m.def("backward_loop", &backward_loop);
  m.def("normal_block", &normal_block);
  m.def("philox", &philox);
  m.def("matmul", &matmul);
  m.def("product_kernel", &product_kernel);
  m.def("direct_blas", &direct_blas);
}
