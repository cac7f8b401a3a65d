// The per-step products on CPUs with AVX-512 (common.h's StepMatrix, "panels" route): the right-hand
// factor w (K, N) is packed once per call into panels of 32 columns, each a (K, 32) block zero-padded
// past N, and every output tile of up to 12 rows x 32 columns stays in 24 zmm registers for the whole
// K loop: per k, two loads of the panel row, one broadcast per output row and two FMAs per row.
//
// Measured single-threaded against MKL's packed sgemm (cblas_sgemm_compute, AVX2 "zen" kernels) on the
// products of one thread's rows of an LSTM step here: (16 x 128) x (128 x 512) 101 vs 85 GFLOP/s,
// (16 x 512) x (512 x 128) 104 vs 83, (32 x 256) x (256 x 1024) 107 vs 88. Only this file is compiled
// for AVX-512 (target attributes); the route is taken where the CPU has it and a check product agrees
// with at::mm (panels_usable).
#include "common.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <immintrin.h>

namespace rnnkit {

namespace {

constexpr int64_t kPanel = kPanelWidth;  // columns per panel: two zmm registers of floats

// out[r, 0:width] (=, or += with acc) a[r, :] @ panel for r < MR; masks m0, m1 select the valid columns
// of the two 16-column halves (a partial last panel)
template <int MR>
__attribute__((target("avx512f"), always_inline)) inline void tile(const float* a, int64_t lda,
                                                                   const float* panel, int64_t K, float* out,
                                                                   int64_t ldo, bool acc, __mmask16 m0,
                                                                   __mmask16 m1) {
  __m512 c0[MR], c1[MR];
  for (int r = 0; r < MR; ++r) {
    c0[r] = acc ? _mm512_maskz_loadu_ps(m0, out + r * ldo) : _mm512_setzero_ps();
    c1[r] = acc ? _mm512_maskz_loadu_ps(m1, out + r * ldo + 16) : _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < K; ++k) {
    const __m512 b0 = _mm512_loadu_ps(panel + k * kPanel), b1 = _mm512_loadu_ps(panel + k * kPanel + 16);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + k]);
      c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    _mm512_mask_storeu_ps(out + r * ldo, m0, c0[r]);
    _mm512_mask_storeu_ps(out + r * ldo + 16, m1, c1[r]);
  }
}

__mmask16 lanes(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1); }

// panels [p0, p1) of the product, all rows: a panel (K x 32 floats) stays in L1/L2 while the row tiles
// pass over it
__attribute__((target("avx512f"))) void panels_range(const float* a, int64_t lda, int64_t rows,
                                                     const float* panels, int64_t K, int64_t N, float* out,
                                                     int64_t ldo, bool acc, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    const float* panel = panels + p * K * kPanel;
    const int64_t j = p * kPanel;
    const __mmask16 m0 = lanes(N - j), m1 = lanes(N - j - 16);
    float* o = out + j;
    int64_t r = 0;
    for (; r + 12 <= rows; r += 12) tile<12>(a + r * lda, lda, panel, K, o + r * ldo, ldo, acc, m0, m1);
    for (; r + 8 <= rows; r += 8) tile<8>(a + r * lda, lda, panel, K, o + r * ldo, ldo, acc, m0, m1);
    for (; r + 4 <= rows; r += 4) tile<4>(a + r * lda, lda, panel, K, o + r * ldo, ldo, acc, m0, m1);
    for (; r < rows; ++r) tile<1>(a + r * lda, lda, panel, K, o + r * ldo, ldo, acc, m0, m1);
  }
}

bool check_panels() {
  // 13 rows (tiles of 12 and 1), 37 columns (a full panel and a partial one)
  return __builtin_cpu_supports("avx512f") && panel_route_matches_mm(panels_mm, kPanel, 13, 7, 37);
}

}  // namespace

Tensor pack_panels(const Tensor& w, int64_t width) {
  const int64_t K = w.size(0), N = w.size(1), np = (N + width - 1) / width;
  Tensor panels = at::zeros({np, K, width}, w.options());
  const float* src = w.data_ptr<float>();
  float* dst = panels.data_ptr<float>();
  const int64_t ldw = w.stride(0);
  for (int64_t p = 0; p < np; ++p) {
    const int64_t j = p * width, cols = std::min(width, N - j);
    for (int64_t k = 0; k < K; ++k) std::memcpy(dst + (p * K + k) * width, src + k * ldw + j, cols * sizeof(float));
  }
  return panels;
}

bool panel_route_matches_mm(PanelProduct mm, int64_t width, int64_t M, int64_t K, int64_t N) {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  // small integers: every product and sum is exact in float, so the two routes must agree bit for bit;
  // M and N chosen by the caller for whole and partial tiles and panels, with and without acc
  const Tensor a = at::arange(M * K, opts).remainder_(7).sub_(3).view({M, K});
  const Tensor w = at::arange(K * N, opts).remainder_(5).sub_(2).view({K, N});
  const Tensor panels = pack_panels(w, width);
  Tensor out = at::full({M, N}, 1.0f, opts);
  mm(a.data_ptr<float>(), K, M, panels.data_ptr<float>(), K, N, out.data_ptr<float>(), N, true);
  Tensor fresh = at::full({M, N}, 7.0f, opts);
  mm(a.data_ptr<float>(), K, M, panels.data_ptr<float>(), K, N, fresh.data_ptr<float>(), N, false);
  const Tensor want = at::mm(a, w);
  return at::equal(out, want.add(1.0f)) && at::equal(fresh, want);
}

void panels_mm(const float* a, int64_t lda, int64_t rows, const float* panels, int64_t K, int64_t N, float* out,
               int64_t ldo, bool acc) {
  share_panels(rows, K, N, kPanel, [&](int64_t p0, int64_t p1) {
    panels_range(a, lda, rows, panels, K, N, out, ldo, acc, p0, p1);
  });
}

bool panels_usable() {
  static const bool usable = check_panels();
  return usable;
}

}  // namespace rnnkit
