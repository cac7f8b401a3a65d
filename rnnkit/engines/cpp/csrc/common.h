// Shared pieces of rnnkit's compiled CPU kernels: activations written so that gcc vectorises the
// per-row loops (no libm call in the float path), the old-state lerp with torch.lerp's exact ends,
// and row-parallel loops over the batch.
#pragma once

#define TORCH_ASSERT_ONLY_METHOD_OPERATORS
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/mul.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

namespace rnnkit {

// force inlining: in a -fPIC library a plain inline function may be called through the PLT, which
// stops the loops around it from vectorising
#define RK_INLINE inline __attribute__((always_inline))

using at::Tensor;
using OptTensor = std::optional<Tensor>;

// exp(x) in float: Cephes' range reduction x = n ln2 + r and degree-6 polynomial (about 1 ulp),
// with the rounding done by the 1.5 * 2^23 trick so the loop vectorises without SSE4.1. NaN stays NaN.
RK_INLINE float exp_f32(float x) {
  const float hi = 88.3762626647949f, lo = -87.3365447504019f;
  float xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  const float shifter = 12582912.0f;  // 1.5 * 2^23
  float t = xc * 1.44269504088896341f + shifter;
  float n = t - shifter;  // round(x / ln2)
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r * r + r + 1.0f;
  int32_t ti;
  std::memcpy(&ti, &t, 4);
  int32_t bits = (ti - 0x4B400000 + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, 4);
  float y = p * scale;
  return x != x ? x : y;
}

// exp(x) in double: Cephes' exp (range reduction x = n ln2 + r, |r| <= ln2 / 2, and its rational
// approximation 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2)), about 1 ulp), with the rounding done by the
// 1.5 * 2^52 trick so the loop vectorises: libm's exp is a scalar call per element (float64 batches
// ran their row passes 2x slower than torch's vectorised ops). Results below the smallest normal
// double (x < -708.39) are 0 (torch gives denormals there: a difference under 2.3e-308); NaN stays NaN.
RK_INLINE double exp_f64(double x) {
  const double hi = 709.782712893384, lo = -708.3964185322641;
  double xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  const double shifter = 6755399441055744.0;  // 1.5 * 2^52
  const double t = xc * 1.4426950408889634073599 + shifter;
  const double n = t - shifter;  // round(x / ln2)
  double r = xc - n * 6.93145751953125E-1;
  r = r - n * 1.42860682030941723212E-6;
  const double rr = r * r;
  const double p = r * ((1.26177193074810590878E-4 * rr + 3.02994407707441961300E-2) * rr + 9.99999999999999999910E-1);
  const double q =
      ((3.00198505138664455042E-6 * rr + 2.52448340349684104192E-3) * rr + 2.27265548208155028766E-1) * rr +
      2.00000000000000000009E0;
  const double e = 1.0 + 2.0 * p / (q - p);
  int64_t ti;
  std::memcpy(&ti, &t, 8);
  int64_t ni = ti - int64_t(0x4338000000000000LL);  // n as an integer, -1022..1024
  const bool top = ni > 1023;  // 2^1024 is not a double: 2^1023 * 2
  ni -= top ? 1 : 0;
  const int64_t bits = (ni + 1023) << 52;
  double scale;
  std::memcpy(&scale, &bits, 8);
  double y = e * scale * (top ? 2.0 : 1.0);
  y = x > hi ? HUGE_VAL : y;
  y = x < lo ? 0.0 : y;
  return x != x ? x : y;
}

template <typename T>
RK_INLINE T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }
template <>
RK_INLINE float sigmoid<float>(float x) { return 1.0f / (1.0f + exp_f32(-x)); }
template <>
RK_INLINE double sigmoid<double>(double x) { return 1.0 / (1.0 + exp_f64(-x)); }

template <typename T>
RK_INLINE T tanh_(T x) { return std::tanh(x); }
// tanh(x) = 2 sigmoid(2x) - 1: absolute error about 1e-7, the same identity the Python engine uses
template <>
RK_INLINE float tanh_<float>(float x) { return 2.0f / (1.0f + exp_f32(-2.0f * x)) - 1.0f; }
// tanh in double as Cephes' tanh: x + x^3 P(x^2) / Q(x^2) for |x| < 0.625 (where 1 - 2 / (e^2|x| + 1)
// would lose relative precision), 1 - 2 / (e^2|x| + 1) with the sign of x above; both are computed and
// one selected, so the loop vectorises (about 1-2 ulp)
template <>
RK_INLINE double tanh_<double>(double x) {
  const double a = x < 0 ? -x : x;
  const double big = 1.0 - 2.0 / (exp_f64(2.0 * a) + 1.0);
  const double s = x * x;
  const double p = (-9.64399179425052238628E-1 * s - 9.92877231001918586564E1) * s - 1.61468768441708447952E3;
  const double q = ((s + 1.12811678491632931402E2) * s + 2.23548839060100448583E3) * s + 4.84406305325125486048E3;
  const double small = x + x * s * (p / q);
  const double y = a < 0.625 ? small : (x < 0 ? -big : big);
  return x != x ? x : y;
}

// torch.lerp(start, end, w): exact at both ends (w = 1 gives end, w = 0 gives start)
template <typename T>
RK_INLINE T lerp(T start, T end, T w) {
  return w < T(0.5) ? start + w * (end - start) : end - (end - start) * (T(1) - w);
}

// f(a, b, c) with each flag as a std::bool_constant, so a loop's optional terms become `if constexpr`
// and each combination vectorises (a run-time test inside a loop keeps gcc from vectorising it)
template <typename F>
RK_INLINE void with_flags(bool a, bool b, bool c, const F& f) {
  auto pick = [](bool v, const auto& g) {
    if (v) g(std::true_type{}); else g(std::false_type{});
  };
  pick(a, [&](auto A) { pick(b, [&](auto B) { pick(c, [&](auto C) { f(A, B, C); }); }); });
}

// (mean, 1 / sqrt(var + eps)) of one row, biased variance as LayerNorm; two passes, vectorised
// reductions (omp simd: lane-wise partial sums, as torch's own CPU reductions do)
template <typename T>
inline void row_stats(const T* x, int64_t n, double eps, T& mean, T& rstd) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) s += x[j];
  const T m = s / T(n);
  T v = 0;
#pragma omp simd reduction(+ : v)
  for (int64_t j = 0; j < n; ++j) v += (x[j] - m) * (x[j] - m);
  mean = m;
  rstd = T(1.0 / std::sqrt(double(v) / double(n) + eps));
}

// at::parallel_for over batch rows with at least about 4096 elements of work per chunk
template <typename F>
inline void for_rows(int64_t rows, int64_t row_units, const F& f) {
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, row_units));
  at::parallel_for(0, rows, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) f(b);
  });
}

// LayerNorm backward of one row (Ba et al. 2016), y = u_hat * w + b with u_hat = (u - mean) * rstd:
// du = dL/du from dy = dL/dLN(u) over one row: a = dy w rstd, du = a - mean(a) - u_hat mean(a u_hat)
template <typename T>
RK_INLINE void ln_backward_row(const T* dy, const T* u, const T* w, const T* stats, int64_t n, T* du) {
  const T mean = stats[0], rstd = stats[1];
  T s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t j = 0; j < n; ++j) {
    const T a = dy[j] * w[j] * rstd;
    s1 += a;
    s2 += a * (u[j] - mean) * rstd;
  }
  s1 /= T(n);
  s2 /= T(n);
  for (int64_t j = 0; j < n; ++j) du[j] = dy[j] * w[j] * rstd - s1 - (u[j] - mean) * rstd * s2;
}

// ln_backward_row, also adding this row's terms of the LayerNorm's parameter gradients: gain_sum[j] +=
// dy[j] u_hat[j] and (when given) bias_sum[j] += dy[j], in the same pass (no second pass over dy and u)
template <typename T>
RK_INLINE void ln_backward_row_sums(const T* __restrict dy, const T* __restrict u, const T* __restrict w,
                                    const T* stats, int64_t n, T* __restrict du, T* __restrict gain_sum,
                                    T* __restrict bias_sum) {
  const T mean = stats[0], rstd = stats[1];
  T s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t j = 0; j < n; ++j) {
    const T a = dy[j] * w[j] * rstd, uhat = (u[j] - mean) * rstd;
    s1 += a;
    s2 += a * uhat;
    gain_sum[j] += dy[j] * uhat;
  }
  if (bias_sum) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) bias_sum[j] += dy[j];
  }
  s1 /= T(n);
  s2 /= T(n);
  for (int64_t j = 0; j < n; ++j) du[j] = dy[j] * w[j] * rstd - s1 - (u[j] - mean) * rstd * s2;
}

// Two LayerNorms of the same row width fed by one gradient dy (the LSTM's gates are LN_ih(x W_ih^T)
// + LN_hh(W_hh h) + biases): each one's backward as ln_backward_row_sums, in one pass for the sums of
// both and one for both outputs instead of three each. Adds gain1 += dy u1_hat, bias += dy (the
// biases' shared gradient) and gain2 += dy u2_hat.
template <typename T>
RK_INLINE void ln2_backward_row_sums(const T* __restrict dy, const T* __restrict u1, const T* __restrict w1,
                                     const T* st1, const T* __restrict u2, const T* __restrict w2, const T* st2,
                                     int64_t n, T* __restrict du1, T* __restrict du2, T* __restrict gain1,
                                     T* __restrict bias, T* __restrict gain2) {
  const T m1 = st1[0], r1 = st1[1], m2 = st2[0], r2 = st2[1];
  T s11 = 0, s12 = 0, s21 = 0, s22 = 0;
#pragma omp simd reduction(+ : s11, s12, s21, s22)
  for (int64_t j = 0; j < n; ++j) {
    const T d = dy[j];
    const T uh1 = (u1[j] - m1) * r1, uh2 = (u2[j] - m2) * r2;
    const T a1 = d * w1[j] * r1, a2 = d * w2[j] * r2;
    s11 += a1;
    s12 += a1 * uh1;
    s21 += a2;
    s22 += a2 * uh2;
    gain1[j] += d * uh1;
    bias[j] += d;
    gain2[j] += d * uh2;
  }
  s11 /= T(n);
  s12 /= T(n);
  s21 /= T(n);
  s22 /= T(n);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const T d = dy[j];
    du1[j] = d * w1[j] * r1 - s11 - (u1[j] - m1) * r1 * s12;
    du2[j] = d * w2[j] * r2 - s21 - (u2[j] - m2) * r2 * s22;
  }
}

// (mean, 1 / sqrt(var + eps)) of two rows of the same width, as row_stats, in two passes for both
template <typename T>
inline void row_stats2(const T* a, const T* b, int64_t n, double eps, T* stats_a, T* stats_b) {
  T sa = 0, sb = 0;
#pragma omp simd reduction(+ : sa, sb)
  for (int64_t j = 0; j < n; ++j) {
    sa += a[j];
    sb += b[j];
  }
  const T ma = sa / T(n), mb = sb / T(n);
  T va = 0, vb = 0;
#pragma omp simd reduction(+ : va, vb)
  for (int64_t j = 0; j < n; ++j) {
    va += (a[j] - ma) * (a[j] - ma);
    vb += (b[j] - mb) * (b[j] - mb);
  }
  stats_a[0] = ma;
  stats_a[1] = T(1.0 / std::sqrt(double(va) / double(n) + eps));
  stats_b[0] = mb;
  stats_b[1] = T(1.0 / std::sqrt(double(vb) / double(n) + eps));
}

// MKL's per-thread thread count, C interface (mkl.h maps mkl_set_num_threads_local to it; the
// lower-case symbol is the Fortran one, taking a pointer). Exported by torch's x86 builds; where it is
// absent the weak reference is null and the guard does nothing.
extern "C" int MKL_Set_Num_Threads_Local(int) __attribute__((weak));

// While alive, BLAS calls from this thread run single-threaded (where torch's BLAS is MKL): a step
// too small to share (B = 1: a matrix-vector product per step) pays more in fork/join than it gains.
struct SerialBlasGuard {
  bool active = false;
  int previous = 0;
  explicit SerialBlasGuard(bool on) {
    if (on && MKL_Set_Num_Threads_Local != nullptr) {
      previous = MKL_Set_Num_Threads_Local(1);
      active = true;
    }
  }
  ~SerialBlasGuard() {
    if (active) MKL_Set_Num_Threads_Local(previous);
  }
  SerialBlasGuard(const SerialBlasGuard&) = delete;
  SerialBlasGuard& operator=(const SerialBlasGuard&) = delete;
};

// MKL's packed sgemm, C interface, row-major (MKL_INT is int: torch links MKL's LP64 interface).
// Exported by torch's x86 builds; where it is absent the weak references are null.
extern "C" {
size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k) __attribute__((weak));
void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha, const float* src,
                      int ld, float* dest) __attribute__((weak));
void cblas_sgemm_compute(int layout, int transa, int transb, int m, int n, int k, const float* a, int lda,
                         const float* b, int ldb, float beta, float* c, int ldc) __attribute__((weak));
}

// Whether StepMatrix<float> packs: MKL's packed sgemm is there and gives a@w on a small case (checked
// once, so a BLAS with another integer width or layout convention is never trusted blindly).
bool packed_sgemm_usable();

// w (K, N) packed into (ceil(N / width), K, width) panels, zero-padded past N: the right-hand factor of
// the panel routes below, whose kernels read one panel row (width floats) per k
Tensor pack_panels(const Tensor& w, int64_t width);

// a panel product of at least this many multiply-adds, called outside a parallel region, shares its
// panels out over the threads (about 2.5 us of work on one core here)
constexpr int64_t kSplitPanelsWork = int64_t(1) << 18;

// f(p0, p1) over the panels [0, ceil(N / width)) of a product of `rows` rows: all on the calling thread,
// or, for a whole-batch product (GRU, Elman) outside a parallel region, shared out over the threads
template <typename F>
inline void share_panels(int64_t rows, int64_t K, int64_t N, int64_t width, const F& f) {
  const int64_t np = (N + width - 1) / width;
  const int64_t threads = at::get_num_threads();
  if (threads > 1 && np > 1 && rows * K * N >= kSplitPanelsWork && !at::in_parallel_region()) {
    at::parallel_for(0, np, (np + threads - 1) / threads, [&](int64_t p0, int64_t p1) { f(p0, p1); });
  } else {
    f(int64_t(0), np);
  }
}

// The AVX-512 route of the per-step products (panel_mm.cpp): panels of 32 columns, then out (=, or +=
// with acc) a @ w for `rows` rows of a (stride lda) and out (stride ldo). panels_usable(): the CPU has
// AVX-512F and a check product equals at::mm (decided once).
constexpr int64_t kPanelWidth = 32;
void panels_mm(const float* a, int64_t lda, int64_t rows, const float* panels, int64_t K, int64_t N, float* out,
               int64_t ldo, bool acc);
bool panels_usable();

// a panel route's product: out (=, or += with acc) a @ w with w packed by pack_panels
using PanelProduct = void (*)(const float* a, int64_t lda, int64_t rows, const float* panels, int64_t K, int64_t N,
                              float* out, int64_t ldo, bool acc);
// whether mm on an (M, K) x (K, N) product of small integers (exact in float) equals at::mm bit for bit,
// with and without acc: each panel route is taken only after this check on its own CPU (decided once)
bool panel_route_matches_mm(PanelProduct mm, int64_t width, int64_t M, int64_t K, int64_t N);

// The AVX2 route (panel_avx2.cpp), for CPUs with AVX2 and FMA but no AVX-512: panels of 24 columns, the
// same contract as panels_mm
constexpr int64_t kAvx2PanelWidth = 24;
void avx2_panels_mm(const float* a, int64_t lda, int64_t rows, const float* panels, int64_t K, int64_t N,
                    float* out, int64_t ldo, bool acc);
bool avx2_panels_usable();

// out[r, j0:j1] (=, or += with acc) a[r, :] @ w[:, j0:j1] for a few rows r < rows: w (K, N) row-major is
// streamed once, four of its rows per pass over each output row (an axpy kept in L1). For 1-3 rows
// this is 1.8x faster than MKL's sgemv here ((1 x 256) x (256 x 1024): 10 vs 18 us).
template <typename T>
inline void few_rows_mm(const T* a, int64_t lda, const T* w, int64_t K, int64_t N, T* out, int64_t ldo,
                        int64_t rows, bool acc, int64_t j0, int64_t j1) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* ar = a + r * lda;
    T* o = out + r * ldo;
    if (!acc) std::fill(o + j0, o + j1, T(0));
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {
      const T s0 = ar[k], s1 = ar[k + 1], s2 = ar[k + 2], s3 = ar[k + 3];
      const T *w0 = w + k * N, *w1 = w0 + N, *w2 = w1 + N, *w3 = w2 + N;
#pragma omp simd
      for (int64_t j = j0; j < j1; ++j) o[j] += s0 * w0[j] + s1 * w1[j] + s2 * w2[j] + s3 * w3[j];
    }
    for (; k < K; ++k) {
      const T s = ar[k];
      const T* wk = w + k * N;
#pragma omp simd
      for (int64_t j = j0; j < j1; ++j) o[j] += s * wk[j];
    }
  }
}

// A right-hand factor applied at every time step (W_hh^T, W_hr^T and their transposes in the backward):
// out = a @ w or out += a @ w for a block of batch rows. The route, chosen once per call:
// * "panels": float on a CPU with AVX-512: w packed into 32-column panels (panel_mm.cpp), 1.15-1.25x
//   MKL's packed sgemm on these products here;
// * "avx2_panels": float on a CPU with AVX2 and FMA but no AVX-512: 24-column panels (panel_avx2.cpp),
//   1.3-1.4x MKL's packed sgemm on these products on a Zen 3;
// * "mkl_packed": float with MKL otherwise: w packed once (sgemm_pack), so that each step's product
//   skips sgemm's own re-packing of w (1-15% of a (32x128)x(128x512) step here);
// * "aten": at::mm_out / addmm_ (double, or neither of the above).
// Products of 1-3 rows take few_rows_mm on every route.
template <typename T>
class StepMatrix {
 public:
  // w (K, N), contiguous; rows: the batch rows of the steps' products (fewer than kMinPackedRows never
  // use a packed copy, so none is made)
  StepMatrix(const Tensor& w, int64_t rows) : w_(w) {
    if constexpr (std::is_same_v<T, float>) {
      if (rows >= kMinPackedRows && w.size(0) > 0 && w.size(1) > 0) {
        if (panels_usable()) {
          panels_ = pack_panels(w, kPanelWidth);
        } else if (avx2_panels_usable()) {
          avx2_panels_ = pack_panels(w, kAvx2PanelWidth);
        } else if (packed_sgemm_usable()) {
          const int K = int(w.size(0)), N = int(w.size(1));
          const size_t bytes = cblas_sgemm_pack_get_size(kBMatrix, 1, N, K);
          packed_ = at::empty({int64_t(bytes / sizeof(float) + 1)}, w.options());
          cblas_sgemm_pack(kRowMajor, kBMatrix, kNoTrans, 1, N, K, 1.0f, w.data_ptr<float>(), N,
                           packed_.data_ptr<float>());
        }
      }
    }
  }
  // which route products of 4+ rows take
  const char* route() const {
    return panels_.defined()        ? "panels"
           : avx2_panels_.defined() ? "avx2_panels"
           : packed_.defined()      ? "mkl_packed"
                                    : "aten";
  }
  // a (m, K) and out (m, N) with unit column stride (row blocks of contiguous matrices)
  void mul(const Tensor& a, Tensor out, bool accumulate) const {
    if (a.stride(1) == 1 && out.stride(1) == 1) {
      mul(a.data_ptr<T>(), a.stride(0), a.size(0), out.data_ptr<T>(), out.stride(0), accumulate);
    } else if (accumulate) {
      out.addmm_(a, w_);
    } else {
      at::mm_out(out, a, w_);
    }
  }
  // the same on raw rows: a (rows, K) with row stride lda, out (rows, N) with row stride ldo. A time
  // loop passes pointers instead of per-step tensor views (Hs[t].narrow(...): a TensorImpl each, about
  // 2,000 a training step of a (32, 100, 128) LSTM)
  void mul(const T* a, int64_t lda, int64_t rows, T* out, int64_t ldo, bool accumulate) const {
    const int64_t K = w_.size(0), N = w_.size(1);
    if (rows < kMinPackedRows) {
      few_rows(a, lda, rows, out, ldo, accumulate);
      return;
    }
    if constexpr (std::is_same_v<T, float>) {
      if (panels_.defined()) {
        panels_mm(a, lda, rows, panels_.data_ptr<float>(), K, N, out, ldo, accumulate);
        return;
      }
      if (avx2_panels_.defined()) {
        avx2_panels_mm(a, lda, rows, avx2_panels_.data_ptr<float>(), K, N, out, ldo, accumulate);
        return;
      }
      if (packed_.defined()) {
        cblas_sgemm_compute(kRowMajor, kNoTrans, kPacked, int(rows), int(N), int(K), a, int(lda),
                            packed_.data_ptr<float>(), int(N), accumulate ? 1.0f : 0.0f, out, int(ldo));
        return;
      }
    }
    const auto opts = w_.options();
    const Tensor at_a = at::from_blob(const_cast<T*>(a), {rows, K}, {lda, 1}, opts);
    Tensor at_out = at::from_blob(out, {rows, N}, {ldo, 1}, opts);
    if (accumulate) {
      at_out.addmm_(at_a, w_);
    } else {
      at::mm_out(at_out, at_a, w_);
    }
  }
  // below 4 rows the packed product is no faster than sgemv (0.9-1.0x at 1 row, 1.5x at 4 rows:
  // (m x 256) x (256 x 1024) here) and few_rows_mm beats both
  static constexpr int64_t kMinPackedRows = 4;
  // a few-row product of at least this much weight (K x N) is split over the threads by columns, so
  // each core streams its share of w (which then stays in its own L2 from one step to the next)
  static constexpr int64_t kSplitColumnsWork = 32768;

  // CBLAS constants (mkl_cblas.h)
  static constexpr int kRowMajor = 101, kNoTrans = 111, kPacked = 151, kBMatrix = 162;

 private:
  void few_rows(const T* ap, int64_t lda, int64_t rows, T* op, int64_t ldo, bool accumulate) const {
    const int64_t K = w_.size(0), N = w_.size(1);
    const T* wp = w_.data_ptr<T>();
    const int64_t threads = at::get_num_threads();
    if (threads > 1 && K * N >= kSplitColumnsWork && !at::in_parallel_region()) {
      const int64_t grain = ((N + threads - 1) / threads + 15) / 16 * 16;  // whole 64-byte lines
      at::parallel_for(0, N, grain, [&](int64_t j0, int64_t j1) {
        few_rows_mm(ap, lda, wp, K, N, op, ldo, rows, accumulate, j0, j1);
      });
    } else {
      few_rows_mm(ap, lda, wp, K, N, op, ldo, rows, accumulate, int64_t(0), N);
    }
  }

  Tensor w_, packed_, panels_, avx2_panels_;
};

// per-step work (rows x units) below which a step runs on one thread, BLAS included
constexpr int64_t kSerialStepUnits = 8192;

// The rows of each block for_row_blocks gives a step of `rows` batch rows x `row_units` units: all of
// them (one block, on the calling thread) for a small step or one thread, else ceil(rows / threads)
inline int64_t row_block_size(int64_t rows, int64_t row_units) {
  const int64_t threads = at::get_num_threads();
  if (threads <= 1 || rows < 2 || rows * row_units < kSerialStepUnits) return rows;
  const int64_t blocks = std::min<int64_t>(threads, rows);
  return (rows + blocks - 1) / blocks;
}

// One time step over row blocks: f(b0, b1) for one contiguous block of batch rows per thread, all in
// one parallel region (as oneDNN's RNN does), so a step's recurrent matmul for a block (single-threaded
// BLAS inside the region) is followed at once by the element-wise pass on the same, cache-hot rows,
// with one fork/join per step instead of one per BLAS call and one per pass. Small steps run serially.
template <typename F>
inline void for_row_blocks(int64_t rows, int64_t row_units, const F& f) {
  const int64_t grain = row_block_size(rows, row_units);
  if (grain >= rows || at::in_parallel_region()) {
    f(int64_t(0), rows);
    return;
  }
  at::parallel_for(0, rows, grain, [&](int64_t b0, int64_t b1) {
    // worker threads start with autograd on (thread-local state): the ATen calls of a block are
    // raw kernels here, as they are on the calling thread inside the autograd Function
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    f(b0, b1);
  });
}

// activations by code, as rnnkit/engines/bptt/_common.ACTIVATIONS: the derivative is written from
// the output y = act(a), as torch's own backward passes compute it
enum Act : int64_t { kTanh = 0, kRelu = 1, kSigmoid = 2, kIdentity = 3 };

template <typename T, int64_t A>
RK_INLINE T activate(T x) {
  if (A == kTanh) return tanh_(x);
  if (A == kSigmoid) return sigmoid(x);
  if (A == kRelu) return x < T(0) ? T(0) : x;  // NaN stays NaN, as torch.relu
  return x;
}

template <typename T, int64_t A>
RK_INLINE T activation_grad(T y) {
  if (A == kTanh) return T(1) - y * y;
  if (A == kSigmoid) return y * (T(1) - y);
  if (A == kRelu) return y > T(0) ? T(1) : T(0);  // threshold_backward: 0 where the output is 0
  return T(1);
}

template <typename F>
inline void dispatch_act(int64_t act, const F& f) {
  switch (act) {
    case kTanh: f(std::integral_constant<int64_t, kTanh>()); break;
    case kRelu: f(std::integral_constant<int64_t, kRelu>()); break;
    case kSigmoid: f(std::integral_constant<int64_t, kSigmoid>()); break;
    case kIdentity: f(std::integral_constant<int64_t, kIdentity>()); break;
    default: TORCH_CHECK(false, "rnnkit cpp kernels: unknown activation code ", act);
  }
}

// An uninitialised tensor for a sequence buffer ((T, B, .) gates, states, their gradients): from the
// pool in pool.cpp (freed blocks kept for the next call instead of fresh, page-faulting memory), or
// at::empty for small buffers and where RNNKIT_CPU_POOL_MB=0.
Tensor seq_empty(at::IntArrayRef sizes, const at::TensorOptions& opts);

template <typename T>
inline const T* ptr_or_null(const OptTensor& t) {
  return (t.has_value() && t->defined()) ? t->data_ptr<T>() : nullptr;
}

inline bool present(const OptTensor& t) { return t.has_value() && t->defined(); }

inline void check_cpu_contiguous(const Tensor& t, const char* name, at::ScalarType dtype) {
  TORCH_CHECK(t.device().is_cpu(), "rnnkit cpp kernels: ", name, " must be on the CPU");
  TORCH_CHECK(t.is_contiguous(), "rnnkit cpp kernels: ", name, " must be contiguous");
  TORCH_CHECK(t.scalar_type() == dtype, "rnnkit cpp kernels: ", name, " has dtype ", t.scalar_type(),
              ", expected ", dtype);
}

inline void check_opt(const OptTensor& t, const char* name, at::ScalarType dtype) {
  if (present(t)) check_cpu_contiguous(*t, name, dtype);
}

inline Tensor none_tensor(const Tensor& like) { return at::empty({0}, like.options()); }

}  // namespace rnnkit
