// Compiled loops of the discrete-time baselines (hdbench.core.gated): tanh RNN, GRU and LSTM with
// torch.nn's equations and gate order, forward and hand-written BPTT.
//
// Per step t = 1..T: the hidden pre-activations GH = [h_{t−1}, 1] [W_hhᵀ; b_hh] and the input
// ones GI = [x_t, 1] [W_ihᵀ; b_ih] are two products, then ONE pass does the gate arithmetic
// (gate blocks of G·N columns, G = 1, 3, 4):
//
//   tanh RNN  h = tanh(GI + GH)
//   GRU       r = σ(GI_r + GH_r), z = σ(GI_z + GH_z), n = tanh(GI_n + r GH_n),
//             h = (1 − z) n + z h_{t−1}
//   LSTM      i, f, o = σ(GI + GH), g = tanh(GI_g + GH_g), c = f c_{t−1} + i g, h = o tanh(c)
//
// The backward per step: one pass turns dL/dh_t (the rates' gradient composed as in _loop.cpp,
// plus the carry from step t + 1) into the pre-activation gradients dGH (and dGI), then three
// products: dh_{t−1} += dGH W_hh, d[W_hh, b_hh] += dGHᵀ [h_{t−1}, 1] and
// d[W_ih; b_ih]ᵀ += [x_t, 1]ᵀ dGI. They differ only in GRU's n block: dGH_n = da_n r, dGI_n = da_n.

#include "_kernels.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace {

using namespace hdk;

enum Kind : int64_t { kVanilla = 0, kGRU = 1, kLSTM = 2 };

int64_t gates(int64_t kind) { return kind == kVanilla ? 1 : kind == kGRU ? 3 : 4; }

// --------------------------------------------------------------------------- forward pass

template <typename T>
struct StepArgs {
  int64_t B, N;
  const T* gh;  // [B, G N]
  const T* gi;  // [B, G N]
  const T* hp;  // h_{t−1} rows (ld_h)
  T* h;  // h_t rows (ld_h)
  int64_t ld_h;
  const T* cp;  // LSTM: c_{t−1} [B, N]
  T* c;  // LSTM: c_t [B, N]
  T* cache;  // gates for the backward [B, 4N] or null
  T* out;  // rates rows (ld_out) or null
  int64_t ld_out;
  const T* keep;  // [N]
};

template <typename T, int64_t KIND, bool CACHE>
HD_INLINE void step_rows(const StepArgs<T>& a) {
  const int64_t N = a.N, GN = gates(KIND) * N;
  const T* __restrict__ keep = a.keep;
  for (int64_t b = 0; b < a.B; ++b) {
    const T* __restrict__ gh = a.gh + b * GN;
    const T* __restrict__ gi = a.gi + b * GN;
    const T* __restrict__ hp = a.hp + b * a.ld_h;
    T* __restrict__ h = a.h + b * a.ld_h;
    T* __restrict__ out = a.out ? a.out + b * a.ld_out : nullptr;
    T* __restrict__ cache = CACHE ? a.cache + b * 4 * N : nullptr;
    if constexpr (KIND == kVanilla) {
#pragma GCC ivdep
      for (int64_t j = 0; j < N; ++j) h[j] = keep[j] != T(0) ? tanh_(gi[j] + gh[j]) : T(0);
    } else if constexpr (KIND == kGRU) {
#pragma GCC ivdep
      for (int64_t j = 0; j < N; ++j) {
        const T r = sigmoid_(gi[j] + gh[j]);
        const T z = sigmoid_(gi[N + j] + gh[N + j]);
        const T ghn = gh[2 * N + j];
        const T n = tanh_(gi[2 * N + j] + r * ghn);
        const T hj = (T(1) - z) * n + z * hp[j];
        h[j] = keep[j] != T(0) ? hj : T(0);
        if constexpr (CACHE) {
          cache[j] = r;
          cache[N + j] = z;
          cache[2 * N + j] = n;
          cache[3 * N + j] = ghn;
        }
      }
    } else {
      const T* __restrict__ cp = a.cp + b * N;
      T* __restrict__ c = a.c + b * N;
#pragma GCC ivdep
      for (int64_t j = 0; j < N; ++j) {
        const T i = sigmoid_(gi[j] + gh[j]);
        const T f = sigmoid_(gi[N + j] + gh[N + j]);
        const T g = tanh_(gi[2 * N + j] + gh[2 * N + j]);
        const T o = sigmoid_(gi[3 * N + j] + gh[3 * N + j]);
        const T cj = f * cp[j] + i * g;
        c[j] = cj;
        const T hj = o * tanh_(cj);
        h[j] = keep[j] != T(0) ? hj : T(0);
        if constexpr (CACHE) {
          cache[j] = i;
          cache[N + j] = f;
          cache[2 * N + j] = g;
          cache[3 * N + j] = o;
        }
      }
    }
    if (out) {
      for (int64_t j = 0; j < N; ++j) out[j] = h[j];
    }
  }
}

template <typename T, int64_t KIND>
HD_INLINE void step_rows_cache(const StepArgs<T>& a) {
  a.cache ? step_rows<T, KIND, true>(a) : step_rows<T, KIND, false>(a);
}

template <typename T>
HD_INLINE void step_rows_any(const StepArgs<T>& a, int64_t kind) {
  switch (kind) {
    case kVanilla: return step_rows_cache<T, kVanilla>(a);
    case kGRU: return step_rows_cache<T, kGRU>(a);
    default: return step_rows_cache<T, kLSTM>(a);
  }
}

HD_CLONES void step_pass(const StepArgs<float>& a, int64_t kind) { step_rows_any<float>(a, kind); }
HD_CLONES void step_pass(const StepArgs<double>& a, int64_t kind) {
  step_rows_any<double>(a, kind);
}

// -------------------------------------------------------------------------- backward pass

template <typename T>
struct GateGradArgs {
  int64_t B, N;
  const T* e;  // dL/dh_t from outside [B, N] or null
  T* carry;  // in: dL/dh_t from step t + 1; out (GRU): the direct part of dL/dh_{t−1}
  T* dc;  // LSTM: dL/dc carried, in and out [B, N]
  const T* h;  // h_t rows (ld_h), tanh RNN
  const T* hp;  // h_{t−1} rows (ld_h), GRU
  int64_t ld_h;
  const T* c;  // LSTM c_t, c_{t−1} [B, N]
  const T* cp;
  const T* cache;  // [B, 4N]
  T* dgh;  // [B, G N]
  T* dgin;  // GRU: dGI of the n block [B, N]
};

template <typename T, int64_t KIND>
HD_INLINE void gate_grad_rows(const GateGradArgs<T>& a) {
  const int64_t N = a.N, GN = gates(KIND) * N;
  for (int64_t b = 0; b < a.B; ++b) {
    const T* __restrict__ e = a.e ? a.e + b * N : nullptr;
    T* __restrict__ carry = a.carry + b * N;
    T* __restrict__ dgh = a.dgh + b * GN;
    if constexpr (KIND == kVanilla) {
      const T* __restrict__ h = a.h + b * a.ld_h;
#pragma GCC ivdep
      for (int64_t j = 0; j < N; ++j) {
        const T dh = e ? e[j] + carry[j] : carry[j];
        dgh[j] = dh * (T(1) - h[j] * h[j]);
      }
    } else if constexpr (KIND == kGRU) {
      const T* __restrict__ hp = a.hp + b * a.ld_h;
      const T* __restrict__ cache = a.cache + b * 4 * N;
      T* __restrict__ dgin = a.dgin + b * N;
#pragma GCC ivdep
      for (int64_t j = 0; j < N; ++j) {
        const T dh = e ? e[j] + carry[j] : carry[j];
        const T r = cache[j], z = cache[N + j], n = cache[2 * N + j], ghn = cache[3 * N + j];
        const T dn = dh * (T(1) - z);
        const T dz = dh * (hp[j] - n);
        carry[j] = dh * z;
        const T dan = dn * (T(1) - n * n);
        dgh[j] = dan * ghn * (r - r * r);
        dgh[N + j] = dz * (z - z * z);
        dgh[2 * N + j] = dan * r;
        dgin[j] = dan;
      }
    } else {
      const T* __restrict__ cache = a.cache + b * 4 * N;
      const T* __restrict__ c = a.c + b * N;
      const T* __restrict__ cp = a.cp + b * N;
      T* __restrict__ dc = a.dc + b * N;
#pragma GCC ivdep
      for (int64_t j = 0; j < N; ++j) {
        const T dh = e ? e[j] + carry[j] : carry[j];
        const T i = cache[j], f = cache[N + j], g = cache[2 * N + j], o = cache[3 * N + j];
        const T tc = tanh_(c[j]);
        const T dct = dc[j] + dh * o * (T(1) - tc * tc);
        dc[j] = dct * f;
        dgh[j] = dct * g * (i - i * i);
        dgh[N + j] = dct * cp[j] * (f - f * f);
        dgh[2 * N + j] = dct * i * (T(1) - g * g);
        dgh[3 * N + j] = dh * tc * (o - o * o);
      }
    }
  }
}

template <typename T>
HD_INLINE void gate_grad_any(const GateGradArgs<T>& a, int64_t kind) {
  switch (kind) {
    case kVanilla: return gate_grad_rows<T, kVanilla>(a);
    case kGRU: return gate_grad_rows<T, kGRU>(a);
    default: return gate_grad_rows<T, kLSTM>(a);
  }
}

HD_CLONES void gate_grad_pass(const GateGradArgs<float>& a, int64_t kind) {
  gate_grad_any<float>(a, kind);
}
HD_CLONES void gate_grad_pass(const GateGradArgs<double>& a, int64_t kind) {
  gate_grad_any<double>(a, kind);
}

// ------------------------------------------------------------------------------- forward

// X [T, B, D + 1] = [x_t, 1]; Wh [N + 1, G N] = [W_hhᵀ; b_hh]; Wi [D + 1, G N] = [W_ihᵀ; b_ih];
// Hx [T + 1, B, N + 1] (rows [h_t, 1], row 0 from h0) or a ring of 2; C (LSTM) [T + 1, B, N] or
// a ring of 2, row 0 = c0; cache [T, B, 4N] (training) or null; out [B, T, N] the rates. Rates
// of steps first..last (1-based) are forced to 0 for units with keep == 0.
template <typename T>
void gated_forward_impl(int64_t kind, const at::Tensor& X, const at::Tensor& Wh,
                        const at::Tensor& Wi, at::Tensor& Hx, const std::optional<at::Tensor>& C,
                        const std::optional<at::Tensor>& cache, at::Tensor& out,
                        const at::Tensor& keep, int64_t first, int64_t last) {
  const int64_t T_ = X.size(0), B = X.size(1), D1 = X.size(2), N = Hx.size(2) - 1;
  const int64_t GN = gates(kind) * N;
  TORCH_CHECK(X.is_contiguous() && Wh.is_contiguous() && Wi.is_contiguous() &&
                  Hx.is_contiguous(), "X, Wh, Wi and Hx must be contiguous");
  TORCH_CHECK(Wh.size(0) == N + 1 && Wh.size(1) == GN && Wi.size(0) == D1 && Wi.size(1) == GN,
              "weights do not match");
  const bool ring = Hx.size(0) == 2 && T_ + 1 != 2;
  TORCH_CHECK(Hx.size(1) == B && (ring || Hx.size(0) == T_ + 1), "Hx must be [T + 1 or 2, B, N + 1]");
  TORCH_CHECK(kind != kLSTM || (C && C->is_contiguous() && C->size(0) == Hx.size(0)),
              "the LSTM needs C like Hx");
  if (cache)
    TORCH_CHECK(!ring && cache->is_contiguous() && cache->size(0) == T_ &&
                    cache->size(2) == 4 * N, "cache must be [T, B, 4N]");
  check_rows(out, "out", N);
  TORCH_CHECK(keep.is_contiguous() && keep.numel() == N, "keep must be [N]");
  at::Tensor gh = at::empty({B, GN}, X.options()), gi = at::empty({B, GN}, X.options());
  T* const Hx_p = Hx.mutable_data_ptr<T>();
  const std::vector<T> ones(N, T(1));
  auto row = [&](int64_t t) { return ring ? t % 2 : t; };
  StepArgs<T> a{};
  a.B = B;
  a.N = N;
  a.gh = gh.const_data_ptr<T>();
  a.gi = gi.const_data_ptr<T>();
  a.ld_h = N + 1;
  a.ld_out = out.stride(0);
  for (int64_t t = 1; t <= T_; ++t) {
    const T* hp = Hx_p + row(t - 1) * B * (N + 1);
    T* h = Hx_p + row(t) * B * (N + 1);
    product<T>(B, GN, N + 1, hp, N + 1, 1, Wh.const_data_ptr<T>(), GN, T(0),
               gh.mutable_data_ptr<T>(), GN);
    product<T>(B, GN, D1, X.const_data_ptr<T>() + (t - 1) * B * D1, D1, 1,
               Wi.const_data_ptr<T>(), GN, T(0), gi.mutable_data_ptr<T>(), GN);
    a.hp = hp;
    a.h = h;
    if (kind == kLSTM) {
      a.cp = C->const_data_ptr<T>() + row(t - 1) * B * N;
      a.c = C->mutable_data_ptr<T>() + row(t) * B * N;
    }
    a.cache = cache ? cache->mutable_data_ptr<T>() + (t - 1) * B * 4 * N : nullptr;
    a.out = out.mutable_data_ptr<T>() + (t - 1) * out.stride(1);
    a.keep = first <= t && t <= last ? keep.const_data_ptr<T>() : ones.data();
    step_pass(a, kind);
    for (int64_t b = 0; b < B; ++b) h[b * (N + 1) + N] = T(1);
  }
}

void gated_forward(int64_t kind, at::Tensor X, at::Tensor Wh, at::Tensor Wi, at::Tensor Hx,
                   std::optional<at::Tensor> C, std::optional<at::Tensor> cache, at::Tensor out,
                   at::Tensor keep, int64_t first, int64_t last) {
  TORCH_CHECK(X.device().is_cpu(), "the compiled loop runs on the CPU only");
  TORCH_CHECK(kind >= kVanilla && kind <= kLSTM, "unknown gated kind");
  if (X.scalar_type() == at::kFloat) {
    gated_forward_impl<float>(kind, X, Wh, Wi, Hx, C, cache, out, keep, first, last);
  } else if (X.scalar_type() == at::kDouble) {
    gated_forward_impl<double>(kind, X, Wh, Wi, Hx, C, cache, out, keep, first, last);
  } else {
    TORCH_CHECK(false, "the compiled loop supports float32 and float64 only");
  }
}

// ------------------------------------------------------------------------------ backward

// Steps t = T..1 of the BPTT, on what gated_forward kept (Hx and C whole, cache). The rates'
// gradient of step t is grad [T, B, N] (rows) and/or composed (readout gout [T, B, O] with V,
// c h; see compose_rows). Writes dWh [G N, N + 1] (= d[W_hh, b_hh]), dWi [D + 1, G N]
// (= d[W_ih; b_ih]ᵀ) and dV (summed over steps as StepSum does); leaves dL/dh_0 in dh0 [B, N] and (LSTM) dL/dc_0 in dc0 [B, N].
template <typename T>
void gated_backward_impl(int64_t kind, const at::Tensor& X, const at::Tensor& W_hh,
                         const at::Tensor& Hx, const std::optional<at::Tensor>& C,
                         const std::optional<at::Tensor>& cache,
                         const std::optional<at::Tensor>& grad,
                         const std::optional<at::Tensor>& gout, const std::optional<at::Tensor>& V,
                         double c_h, const std::optional<at::Tensor>& dV, at::Tensor& dWh,
                         at::Tensor& dWi, at::Tensor& dh0, const std::optional<at::Tensor>& dc0) {
  const int64_t T_ = X.size(0), B = X.size(1), D1 = X.size(2), N = Hx.size(2) - 1;
  const int64_t GN = gates(kind) * N;
  TORCH_CHECK(X.is_contiguous() && W_hh.is_contiguous() && Hx.is_contiguous(),
              "X, W_hh and Hx must be contiguous");
  TORCH_CHECK(kind == kVanilla || (cache && cache->is_contiguous() && cache->size(0) == T_ &&
                                   cache->size(2) == 4 * N), "cache must be [T, B, 4N]");
  TORCH_CHECK(Hx.size(0) == T_ + 1 && Hx.size(1) == B && W_hh.size(0) == GN &&
                  W_hh.size(1) == N, "shapes do not match");
  TORCH_CHECK(kind != kLSTM || (C && C->size(0) == T_ + 1 && dc0), "the LSTM needs C and dc0");
  TORCH_CHECK(dWh.is_contiguous() && dWh.size(0) == GN && dWh.size(1) == N + 1 &&
                  dWi.is_contiguous() && dWi.size(0) == D1 && dWi.size(1) == GN &&
                  dh0.is_contiguous() && dh0.size(0) == B && dh0.size(1) == N,
              "gradient buffers do not match");
  if (grad) check_rows(*grad, "grad", N);
  const bool readout = gout.has_value();
  const bool compose = readout || c_h != 0.0 || grad.has_value();
  int64_t O = 0;
  if (readout) {
    TORCH_CHECK(V && V->is_contiguous() && V->size(1) == N, "gout needs V [O, N]");
    O = V->size(0);
    check_rows(*gout, "gout", O);
    if (dV) TORCH_CHECK(dV->is_contiguous() && dV->sizes() == V->sizes(), "dV must be like V");
  }
  const auto options = X.options();
  at::Tensor dgh = at::empty({B, GN}, options);
  at::Tensor dgin = kind == kGRU ? at::empty({B, N}, options) : at::Tensor();
  at::Tensor e_buf = compose ? at::empty({B, N}, options) : at::Tensor();
  T* const carry = dh0.mutable_data_ptr<T>();  // dL/dh_t from later steps; ends as dL/dh_0
  std::fill(carry, carry + B * N, T(0));
  T* const dc = kind == kLSTM ? dc0->mutable_data_ptr<T>() : nullptr;
  if (dc) std::fill(dc, dc + B * N, T(0));
  const T* const Hx_p = Hx.const_data_ptr<T>();
  const T* const X_p = X.const_data_ptr<T>();
  T* const dgh_p = dgh.mutable_data_ptr<T>();
  ComposeArgs<T> cm{};
  cm.B = B;
  cm.N = N;
  cm.O = O;
  cm.ld_h = N + 1;
  cm.V = readout ? V->const_data_ptr<T>() : nullptr;
  std::vector<double> dV64(readout && dV ? dV->numel() : 0, 0.0);
  cm.dV = dV64.empty() ? nullptr : dV64.data();
  StepSum<T> hidden(GN * (N + 1)), input(D1 * GN);
  cm.c = static_cast<T>(c_h);
  cm.e = compose ? e_buf.mutable_data_ptr<T>() : nullptr;
  GateGradArgs<T> a{};
  a.B = B;
  a.N = N;
  a.carry = carry;
  a.dc = dc;
  a.ld_h = N + 1;
  a.dgh = dgh_p;
  a.dgin = kind == kGRU ? dgin.mutable_data_ptr<T>() : nullptr;
  for (int64_t t = T_; t >= 1; --t) {
    const T* dense = grad ? grad->const_data_ptr<T>() + (t - 1) * grad->stride(0) : nullptr;
    const T* h = Hx_p + t * B * (N + 1);
    const T* hp = Hx_p + (t - 1) * B * (N + 1);
    if (compose) {
      cm.dense = dense;
      cm.ld_dense = grad ? grad->stride(1) : 0;
      cm.h = h;
      cm.gout = readout ? gout->const_data_ptr<T>() + (t - 1) * gout->stride(0) : nullptr;
      cm.ld_gout = readout ? gout->stride(1) : 0;
      compose_pass(cm);
      a.e = cm.e;
    } else {
      a.e = nullptr;
    }
    a.h = h;
    a.hp = hp;
    if (kind == kLSTM) {
      a.c = C->const_data_ptr<T>() + t * B * N;
      a.cp = C->const_data_ptr<T>() + (t - 1) * B * N;
    }
    a.cache = cache ? cache->const_data_ptr<T>() + (t - 1) * B * 4 * N : nullptr;
    gate_grad_pass(a, kind);
    // dL/dh_{t−1}: the GRU's direct part is in carry already
    product<T>(B, N, GN, dgh_p, GN, 1, W_hh.const_data_ptr<T>(), N,
               kind == kGRU ? T(1) : T(0), carry, N);
    // d[W_hh, b_hh] += dGHᵀ [h_{t−1}, 1]
    product<T>(GN, N + 1, B, dgh_p, 1, GN, hp, N + 1, hidden.beta(), hidden.data(), N + 1);
    hidden.step_done();
    // d[W_ih; b_ih]ᵀ += [x_t, 1]ᵀ dGI
    const T* x = X_p + (t - 1) * B * D1;
    if (kind == kGRU) {
      product<T>(D1, 2 * N, B, x, 1, D1, dgh_p, GN, input.beta(), input.data(), GN);
      product<T>(D1, N, B, x, 1, D1, dgin.const_data_ptr<T>(), N, input.beta(),
                 input.data() + 2 * N, GN);
    } else {
      product<T>(D1, GN, B, x, 1, D1, dgh_p, GN, input.beta(), input.data(), GN);
    }
    input.step_done();
  }
  hidden.write(dWh.mutable_data_ptr<T>());
  input.write(dWi.mutable_data_ptr<T>());
  if (!dV64.empty()) {
    T* out = dV->mutable_data_ptr<T>();
    for (size_t j = 0; j < dV64.size(); ++j) out[j] = static_cast<T>(dV64[j]);
  }
}

void gated_backward(int64_t kind, at::Tensor X, at::Tensor W_hh, at::Tensor Hx,
                    std::optional<at::Tensor> C, std::optional<at::Tensor> cache,
                    std::optional<at::Tensor> grad,
                    std::optional<at::Tensor> gout, std::optional<at::Tensor> V, double c_h,
                    std::optional<at::Tensor> dV, at::Tensor dWh, at::Tensor dWi, at::Tensor dh0,
                    std::optional<at::Tensor> dc0) {
  TORCH_CHECK(X.device().is_cpu(), "the compiled loop runs on the CPU only");
  TORCH_CHECK(kind >= kVanilla && kind <= kLSTM, "unknown gated kind");
  if (X.scalar_type() == at::kFloat) {
    gated_backward_impl<float>(kind, X, W_hh, Hx, C, cache, grad, gout, V, c_h, dV, dWh, dWi,
                               dh0, dc0);
  } else if (X.scalar_type() == at::kDouble) {
    gated_backward_impl<double>(kind, X, W_hh, Hx, C, cache, grad, gout, V, c_h, dV, dWh, dWi,
                                dh0, dc0);
  } else {
    TORCH_CHECK(false, "the compiled loop supports float32 and float64 only");
  }
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(hdbench_core, m) {
  m.def("gated_forward", &gated_forward);
  m.def("gated_backward", &gated_backward);
}
