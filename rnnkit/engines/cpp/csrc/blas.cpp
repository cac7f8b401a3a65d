// The BLAS route of the per-step products (common.h's StepMatrix): whether MKL's packed sgemm can be
// used, decided once by comparing it with at::mm on a small product.
#include "common.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/full.h>

#include <string>

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace rnnkit {

namespace {

bool check_packed_sgemm() {
  if (cblas_sgemm_pack_get_size == nullptr || cblas_sgemm_pack == nullptr || cblas_sgemm_compute == nullptr)
    return false;
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  // small integers: every product and sum is exact in float, so the two routes must agree bit for bit
  const Tensor a = at::arange(3 * 5, opts).remainder_(7).sub_(3).view({3, 5});
  const Tensor w = at::arange(5 * 4, opts).remainder_(5).sub_(2).view({5, 4});
  const int64_t bytes = int64_t(cblas_sgemm_pack_get_size(StepMatrix<float>::kBMatrix, 3, 4, 5));
  if (bytes <= 0) return false;
  Tensor packed = at::empty({bytes / int64_t(sizeof(float)) + 1}, opts);
  using S = StepMatrix<float>;
  cblas_sgemm_pack(S::kRowMajor, S::kBMatrix, S::kNoTrans, 3, 4, 5, 1.0f, w.data_ptr<float>(), 4,
                   packed.data_ptr<float>());
  Tensor out = at::full({3, 4}, 1.0f, opts);
  cblas_sgemm_compute(S::kRowMajor, S::kNoTrans, S::kPacked, 3, 4, 5, a.data_ptr<float>(), 5,
                      packed.data_ptr<float>(), 4, 1.0f, out.data_ptr<float>(), 4);
  return at::equal(out, at::mm(a, w).add_(1.0f));
}

bool step_gemm_packed() { return packed_sgemm_usable(); }

// whether float per-step products of 4+ rows take one of the panel routes (AVX-512 or AVX2)
bool step_panels() { return panels_usable() || avx2_panels_usable(); }

// the rows of each thread's block in the time loops (for_row_blocks) for a step of rows x units, at the
// current thread count
int64_t row_block_rows(int64_t rows, int64_t units) { return row_block_size(rows, units); }

// StepMatrix's product as the kernels use it (for tests): out (=, or +=) a @ w, a (m, K) and out (m, N)
// with unit column stride; returns the route taken ("few_rows" below 4 rows)
std::string step_matmul(const Tensor& a, const Tensor& w, Tensor out, bool accumulate) {
  TORCH_CHECK(a.dim() == 2 && w.dim() == 2 && out.dim() == 2 && a.size(1) == w.size(0) && out.size(0) == a.size(0) &&
                  out.size(1) == w.size(1),
              "step_matmul: a (m, K), w (K, N), out (m, N)");
  TORCH_CHECK(w.is_contiguous(), "step_matmul: w must be contiguous");
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  std::string route;
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "step_matmul", [&] {
    const StepMatrix<scalar_t> m(w, a.size(0));
    m.mul(a, out, accumulate);
    route = a.size(0) < StepMatrix<scalar_t>::kMinPackedRows ? "few_rows" : m.route();
  });
  return route;
}

// w (R, C), rows contiguous -> a new contiguous (C, R) copy of w^T, in 32 x 32 tiles shared over the
// threads by tile rows where the matrix is large; float tiles move as 8 x 8 blocks in AVX registers
// (the unpack / shuffle / permute2f128 transpose). torch's strided copy (w.t().contiguous()) runs
// at a tenth of memcpy speed here (1.0-1.3 ms for 2048 x 512 floats, a clone 61 us), which at batch 1
// cost the cpp engine about 5% of an LSTM training step.
#if defined(__AVX__)
inline void transpose8x8(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds), r2 = _mm256_loadu_ps(src + 2 * lds),
         r3 = _mm256_loadu_ps(src + 3 * lds), r4 = _mm256_loadu_ps(src + 4 * lds),
         r5 = _mm256_loadu_ps(src + 5 * lds), r6 = _mm256_loadu_ps(src + 6 * lds),
         r7 = _mm256_loadu_ps(src + 7 * lds);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
               t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
               t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
               u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
               u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
               u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}
#endif

template <typename T>
void transpose_tile(const T* src, int64_t lds, T* dst, int64_t ldd, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  int64_t r = r0;
#if defined(__AVX__)
  if constexpr (std::is_same_v<T, float>) {
    for (; r + 8 <= r1; r += 8) {
      int64_t c = c0;
      for (; c + 8 <= c1; c += 8) transpose8x8(src + r * lds + c, lds, dst + c * ldd + r, ldd);
      for (; c < c1; ++c)
        for (int64_t i = r; i < r + 8; ++i) dst[c * ldd + i] = src[i * lds + c];
    }
  }
#endif
  for (; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c) dst[c * ldd + r] = src[r * lds + c];
}

template <typename T>
void transpose_into(const T* src, int64_t R, int64_t C, int64_t lds, T* dst) {
  constexpr int64_t kTile = 32;
  const int64_t tiles_r = (R + kTile - 1) / kTile;
  const int64_t grain = R * C >= (int64_t(1) << 16) ? 1 : tiles_r;
  at::parallel_for(0, tiles_r, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t tr = t0; tr < t1; ++tr) {
      const int64_t r0 = tr * kTile, r1 = std::min(R, r0 + kTile);
      for (int64_t c0 = 0; c0 < C; c0 += kTile) transpose_tile(src, lds, dst, R, r0, r1, c0, std::min(C, c0 + kTile));
    }
  });
}

Tensor transposed(const Tensor& w) {
  TORCH_CHECK(w.dim() == 2 && w.stride(1) == 1, "transposed: w must be 2-D with contiguous rows, got sizes ",
              w.sizes(), " strides ", w.strides());
  const int64_t R = w.size(0), C = w.size(1);
  Tensor out = at::empty({C, R}, w.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, w.scalar_type(), "transposed", [&] {
    transpose_into(w.data_ptr<scalar_t>(), R, C, w.stride(0), out.data_ptr<scalar_t>());
  });
  return out;
}

}  // namespace

bool packed_sgemm_usable() {
  static const bool usable = check_packed_sgemm();
  return usable;
}

TORCH_LIBRARY_FRAGMENT(rnnkit_cpu, m) {
  m.def("step_gemm_packed() -> bool", &step_gemm_packed);
  m.def("step_panels() -> bool", &step_panels);
  m.def("row_block_rows(int rows, int units) -> int", &row_block_rows);
  m.def("step_matmul(Tensor a, Tensor w, Tensor(a!) out, bool accumulate) -> str", &step_matmul);
  m.def("transposed(Tensor w) -> Tensor", &transposed);
}

}  // namespace rnnkit
