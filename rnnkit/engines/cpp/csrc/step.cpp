// One time step of a GRU (reset gate after the recurrent matmul, torch.nn.GRU's equations) without
// gradients, for generation and beam search: what a token costs there is per-call overhead, so the
// step is one call with no transposed weight copies, no saved buffers and no autograd node.
//
//   gi = x W_ih^T + b_ih    gh = h W_hh^T + b_hh    (B, 3H) each, gate order r, z, n
//   r = sigmoid(gi_r + gh_r)    z = sigmoid(gi_z + gh_z)    n = tanh(gi_n + r * gh_n)
//   h' = n + z * (h - n)
#include "common.h"

namespace rnnkit {
namespace {

// out[r, n] = bias[n] + a[r, :] . w[n, :] for n in [n0, n1): w (N, K) row-major as torch stores it, so
// each output is one contiguous dot product (no transposed copy of w); four outputs per pass over a
// row of a, so that a's loads are shared and four independent sums keep the FMA units busy
template <typename T>
void rows_dot(const T* a, int64_t lda, int64_t rows, const T* w, int64_t K, const T* bias, T* out, int64_t ldo,
              int64_t n0, int64_t n1) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* __restrict ar = a + r * lda;
    T* o = out + r * ldo;
    int64_t n = n0;
    for (; n + 4 <= n1; n += 4) {
      const T *__restrict w0 = w + n * K, *__restrict w1 = w0 + K, *__restrict w2 = w1 + K, *__restrict w3 = w2 + K;
      T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
      for (int64_t k = 0; k < K; ++k) {
        const T v = ar[k];
        s0 += v * w0[k];
        s1 += v * w1[k];
        s2 += v * w2[k];
        s3 += v * w3[k];
      }
      o[n] = bias ? s0 + bias[n] : s0;
      o[n + 1] = bias ? s1 + bias[n + 1] : s1;
      o[n + 2] = bias ? s2 + bias[n + 2] : s2;
      o[n + 3] = bias ? s3 + bias[n + 3] : s3;
    }
    for (; n < n1; ++n) {
      const T* __restrict wn = w + n * K;
      T s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t k = 0; k < K; ++k) s += ar[k] * wn[k];
      o[n] = bias ? s + bias[n] : s;
    }
  }
}

// rows_dot over all N outputs, shared over the threads by output blocks when w is large enough
template <typename T>
void linear_rows(const T* a, int64_t lda, int64_t rows, const T* w, int64_t N, int64_t K, const T* bias, T* out) {
  if (N * K >= StepMatrix<T>::kSplitColumnsWork * 2 && at::get_num_threads() > 1 && !at::in_parallel_region()) {
    at::parallel_for(0, N, 16, [&](int64_t n0, int64_t n1) { rows_dot(a, lda, rows, w, K, bias, out, N, n0, n1); });
  } else {
    rows_dot(a, lda, rows, w, K, bias, out, N, int64_t(0), N);
  }
}

Tensor gru_step(const Tensor& x, const Tensor& h, const Tensor& w_ih, const Tensor& w_hh, const OptTensor& b_ih,
                const OptTensor& b_hh) {
  const auto dt = x.scalar_type();
  for (auto* p : {&x, &h, &w_ih, &w_hh}) check_cpu_contiguous(*p, "gru_step input", dt);
  check_opt(b_ih, "gru_step b_ih", dt);
  check_opt(b_hh, "gru_step b_hh", dt);
  const int64_t B = x.size(0), I = x.size(1), H = h.size(1), G = 3 * H;
  TORCH_CHECK(h.size(0) == B && w_ih.size(0) == G && w_ih.size(1) == I && w_hh.size(0) == G && w_hh.size(1) == H,
              "gru_step: x (B, I), h (B, H), w_ih (3H, I), w_hh (3H, H)");
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  Tensor gi = at::empty({B, G}, x.options()), gh = at::empty({B, G}, x.options()), out = at::empty({B, H}, x.options());
  AT_DISPATCH_FLOATING_TYPES(dt, "gru_step", [&] {
    using T = scalar_t;
    T *pi = gi.data_ptr<T>(), *ph = gh.data_ptr<T>(), *po = out.data_ptr<T>();
    const T* hp = h.data_ptr<T>();
    linear_rows(x.data_ptr<T>(), I, B, w_ih.data_ptr<T>(), G, I, ptr_or_null<T>(b_ih), pi);
    linear_rows(hp, H, B, w_hh.data_ptr<T>(), G, H, ptr_or_null<T>(b_hh), ph);
    for (int64_t b = 0; b < B; ++b) {
      const T *xi = pi + b * G, *hh = ph + b * G, *hb = hp + b * H;
      T* o = po + b * H;
      for (int64_t j = 0; j < H; ++j) {
        const T r = sigmoid(xi[j] + hh[j]);
        const T z = sigmoid(xi[H + j] + hh[H + j]);
        const T n = tanh_(xi[2 * H + j] + r * hh[2 * H + j]);
        o[j] = n + z * (hb[j] - n);
      }
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rnnkit_cpu, m) {
  m.def("gru_step(Tensor x, Tensor h, Tensor w_ih, Tensor w_hh, Tensor? b_ih, Tensor? b_hh) -> Tensor", &gru_step);
}

}  // namespace rnnkit
