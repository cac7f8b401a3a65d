// The BLAS route of the per-step products (common.h's StepMatrix): whether MKL's packed sgemm can be
// used, decided once by comparing it with at::mm on a small product.
#include "common.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/full.h>

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

}  // namespace

bool packed_sgemm_usable() {
  static const bool usable = check_packed_sgemm();
  return usable;
}

TORCH_LIBRARY_FRAGMENT(rnnkit_cpu, m) {
  m.def("step_gemm_packed() -> bool", &step_gemm_packed);
}

}  // namespace rnnkit
