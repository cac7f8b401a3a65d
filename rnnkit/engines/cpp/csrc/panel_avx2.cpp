// The per-step products on CPUs with AVX2 and FMA but no AVX-512 (common.h's StepMatrix, "avx2_panels"
// route): the right-hand factor w (K, N) is packed once per call into panels of 24 columns (pack_panels,
// zero-padded past N), and every output tile of 4 rows x 24 columns stays in 12 ymm registers for the
// whole K loop: per k, three loads of the panel row, one broadcast per row and three FMAs per row. Four
// rows make the tile because the per-thread row blocks of a batch (16 or 32 rows) then split into whole
// tiles; a 6 x 16 tile (BLIS's Haswell shape) left a 4-row remainder in each block that ran at half speed.
//
// Measured single-threaded against MKL's packed sgemm (cblas_sgemm_compute, its AVX2 "zen" kernel, which
// spends about a third of each such product packing the rows of a) on a Zen 3: (16 x 128) x (128 x 528)
// 82 vs 61 GFLOP/s, (16 x 512) x (512 x 144) 89 vs 63, (32 x 512) x (512 x 2064) 90 vs 66. Only this file's
// functions are compiled for AVX2 (target attributes); the route is taken where the CPU has AVX2 and FMA
// and a check product agrees with at::mm (avx2_panels_usable).
#include "common.h"

#include <immintrin.h>

namespace rnnkit {

namespace {

constexpr int64_t kWidth = kAvx2PanelWidth;  // columns per panel: three ymm registers of floats

// out[r, 0:24] (=, or += with acc) a[r, :] @ panel for r < MR. The accumulators start at zero and the
// old output is added at the end, so its rows are read once, after the K loop.
template <int MR>
__attribute__((target("avx2,fma"), always_inline)) inline void tile(const float* a, int64_t lda, const float* panel,
                                                                    int64_t K, float* out, int64_t ldo, bool acc) {
  __m256 c0[MR], c1[MR], c2[MR];
  for (int r = 0; r < MR; ++r) c0[r] = c1[r] = c2[r] = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (int64_t k = 0; k < K; ++k) {
    const float* b = panel + k * kWidth;
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), b2 = _mm256_loadu_ps(b + 16);
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + k);
      c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
      c2[r] = _mm256_fmadd_ps(av, b2, c2[r]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    float* o = out + r * ldo;
    if (acc) {
      c0[r] = _mm256_add_ps(c0[r], _mm256_loadu_ps(o));
      c1[r] = _mm256_add_ps(c1[r], _mm256_loadu_ps(o + 8));
      c2[r] = _mm256_add_ps(c2[r], _mm256_loadu_ps(o + 16));
    }
    _mm256_storeu_ps(o, c0[r]);
    _mm256_storeu_ps(o + 8, c1[r]);
    _mm256_storeu_ps(o + 16, c2[r]);
  }
}

// MR rows of one panel, of which only the first `width` < 24 columns exist in out: the tile goes to a
// local buffer, and the valid columns are added to (or copied into) out
template <int MR>
__attribute__((target("avx2,fma"))) void partial_tile(const float* a, int64_t lda, const float* panel, int64_t K,
                                                      float* out, int64_t ldo, bool acc, int64_t width) {
  alignas(32) float buf[MR * kWidth];
  tile<MR>(a, lda, panel, K, buf, kWidth, false);
  for (int r = 0; r < MR; ++r) {
    float* o = out + r * ldo;
    const float* s = buf + r * kWidth;
    for (int64_t j = 0; j < width; ++j) o[j] = acc ? o[j] + s[j] : s[j];
  }
}

// all rows of panels [p0, p1): a panel (K x 24 floats) stays in L1/L2 while the row tiles pass over it
__attribute__((target("avx2,fma"))) void panels_range(const float* a, int64_t lda, int64_t rows,
                                                      const float* panels, int64_t K, int64_t N, float* out,
                                                      int64_t ldo, bool acc, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    const float* panel = panels + p * K * kWidth;
    const int64_t j = p * kWidth, width = std::min(kWidth, N - j);
    float* o = out + j;
    int64_t r = 0;
    if (width == kWidth) {
      for (; r + 4 <= rows; r += 4) tile<4>(a + r * lda, lda, panel, K, o + r * ldo, ldo, acc);
      for (; r < rows; ++r) tile<1>(a + r * lda, lda, panel, K, o + r * ldo, ldo, acc);
    } else {
      for (; r + 4 <= rows; r += 4) partial_tile<4>(a + r * lda, lda, panel, K, o + r * ldo, ldo, acc, width);
      for (; r < rows; ++r) partial_tile<1>(a + r * lda, lda, panel, K, o + r * ldo, ldo, acc, width);
    }
  }
}

bool check_avx2_panels() {
  // 7 rows (a tile of 4 and single rows), 29 columns (a full panel and a partial one)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         panel_route_matches_mm(avx2_panels_mm, kWidth, 7, 5, 29);
}

}  // namespace

void avx2_panels_mm(const float* a, int64_t lda, int64_t rows, const float* panels, int64_t K, int64_t N, float* out,
                    int64_t ldo, bool acc) {
  share_panels(rows, K, N, kWidth, [&](int64_t p0, int64_t p1) {
    panels_range(a, lda, rows, panels, K, N, out, ldo, acc, p0, p1);
  });
}

bool avx2_panels_usable() {
  static const bool usable = check_avx2_panels();
  return usable;
}

}  // namespace rnnkit
