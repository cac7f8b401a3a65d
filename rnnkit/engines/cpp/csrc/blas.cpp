// The BLAS route of the per-step products (common.h's StepMatrix): whether MKL's packed sgemm can be
// used, decided once by comparing it with at::mm on a small product.
#include "common.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/full.h>

#include <string>

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

}  // namespace

bool packed_sgemm_usable() {
  static const bool usable = check_packed_sgemm();
  return usable;
}

TORCH_LIBRARY_FRAGMENT(rnnkit_cpu, m) {
  m.def("step_gemm_packed() -> bool", &step_gemm_packed);
  m.def("step_matmul(Tensor a, Tensor w, Tensor(a!) out, bool accumulate) -> str", &step_matmul);
}

}  // namespace rnnkit
