// The Elman family's time loop in C++ (Elman 1990): rnnkit.cells.elman.ElmanCell.recur with both
// biases folded into the input projection, recurrent dropout, and zoneout plus end-of-sequence
// freezing folded into one lerp with the keep weight K (rnnkit/engines/bptt/_common.py):
//
//     a_t = xp_t + (h_{t-1} * h_mask) W_hh^T      y_t = act(a_t)      h_t = lerp(y_t, h_{t-1}, K_t)
//
// It computes what rnnkit/engines/bptt/elman.py computes, with the same buffers: per step one BLAS
// call and one fused pass per batch row (activation, mix, and the next step's masked input), and
// backward one fused pass plus one BLAS call; the step's product goes through StepMatrix (in float
// W_hh packed once per call: AVX-512 panels, or MKL's sgemm_pack). dW_hh is left to the Python side
// (one matmul).
#include "common.h"

namespace rnnkit {
namespace {

template <typename T, int64_t A>
void forward_loop(const Tensor& xp, const Tensor& w_t, const OptTensor& h_mask, const OptTensor& keep,
                  Tensor& S, Tensor& Y, Tensor& HIN) {
  const int64_t Tn = xp.size(0), B = xp.size(1), H = xp.size(2), BH = B * H;
  const T* x = xp.data_ptr<T>();
  const T* m = ptr_or_null<T>(h_mask);
  const T* kp = ptr_or_null<T>(keep);
  T* s = S.data_ptr<T>();
  T* y_all = kp ? Y.data_ptr<T>() : s + B * H;  // without keep, act(a_t) is the state itself
  T* hin_all = m ? HIN.data_ptr<T>() : nullptr;
  if (m) {  // the first step's masked state; later ones are written by the step before
    for (int64_t i = 0; i < BH; ++i) hin_all[i] = s[i] * m[i];
  }
  const StepMatrix<T> whh(w_t, B);  // W_hh^T (H, H)
  for (int64_t t = 0; t < Tn; ++t) {
    Tensor y_t = kp ? Y[t] : S[t + 1];
    whh.mul(m ? HIN[t] : S[t], y_t, false);  // (B, H) h_in W^T
    const T* xt = x + t * BH;
    const T* hp = s + t * BH;
    T* hn = s + (t + 1) * BH;
    T* yt = y_all + t * BH;
    const T* kt = kp ? kp + t * BH : nullptr;
    T* next_in = (m && t + 1 < Tn) ? hin_all + (t + 1) * BH : nullptr;
    for_rows(B, H, [&](int64_t b) {
      const int64_t o = b * H;
      for (int64_t j = o; j < o + H; ++j) yt[j] = activate<T, A>(yt[j] + xt[j]);
      if (kt) {
        for (int64_t j = o; j < o + H; ++j) hn[j] = lerp(yt[j], hp[j], kt[j]);
      }
      if (next_in) {
        for (int64_t j = o; j < o + H; ++j) next_in[j] = hn[j] * m[j];
      }
    });
  }
}

template <typename T, int64_t A>
void backward_loop(const Tensor& w, const Tensor& Y, const OptTensor& h_mask, const OptTensor& keep,
                   const Tensor& grad_states, const Tensor& grad_final, Tensor& dA, Tensor& dh) {
  const int64_t Tn = Y.size(0), B = Y.size(1), H = Y.size(2), BH = B * H;
  const T* y_all = Y.data_ptr<T>();
  const T* m = ptr_or_null<T>(h_mask);
  const T* kp = ptr_or_null<T>(keep);
  const T* gs = grad_states.data_ptr<T>();
  T* da_all = dA.data_ptr<T>();
  // dL/dh_t = base + mm * h_mask: the masked product is added in the next pass, not in a pass of its own
  Tensor base = at::empty({B, H}, Y.options());
  Tensor mmbuf = m ? at::empty({B, H}, Y.options()) : Tensor();
  T* bp = base.data_ptr<T>();
  T* mp = m ? mmbuf.data_ptr<T>() : nullptr;
  const T* gf = grad_final.data_ptr<T>();
  const T* gl = gs + (Tn - 1) * BH;
  for (int64_t i = 0; i < BH; ++i) bp[i] = gf[i] + gl[i];
  const StepMatrix<T> whh(w, B);  // W_hh (H, H)
  bool have_mm = false;
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const T* yt = y_all + t * BH;
    const T* kt = kp ? kp + t * BH : nullptr;
    const T* gprev = t > 0 ? gs + (t - 1) * BH : nullptr;
    T* da = da_all + t * BH;
    const bool add_mm = have_mm;
    for_rows(B, H, [&](int64_t b) {
      const int64_t o = b * H;
      for (int64_t j = o; j < o + H; ++j) {
        const T d = add_mm ? bp[j] + mp[j] * m[j] : bp[j];  // total dL/dh_t
        const T k = kt ? kt[j] : T(0);
        da[j] = d * (T(1) - k) * activation_grad<T, A>(yt[j]);
        T prev = kt ? d * k : T(0);
        if (gprev) prev += gprev[j];
        bp[j] = prev;
      }
    });
    if (m) {
      whh.mul(dA[t], mmbuf, false);
      have_mm = true;
    } else {
      whh.mul(dA[t], base, true);
    }
  }
  if (have_mm) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = b * H; j < (b + 1) * H; ++j) bp[j] += mp[j] * m[j];
  }
  dh = base;
}

// xp (T, B, H), w_t = W_hh^T (H, H), s0 (B, H), h_mask (B, H)?, keep (T, B, H)?
// -> [S (T+1, B, H) with S[0] = s0, Y (T, B, H) act(a_t) before the mix (empty without keep: S[1:]),
//     HIN (T, B, H) the masked previous states (empty without h_mask)]
std::vector<Tensor> elman_forward(const Tensor& xp, const Tensor& w_t, const Tensor& s0, const OptTensor& h_mask,
                                  const OptTensor& keep, int64_t act) {
  const auto dt = xp.scalar_type();
  TORCH_CHECK(xp.dim() == 3, "elman_forward: xp must be (T, B, H), got ", xp.sizes());
  check_cpu_contiguous(xp, "xp", dt);
  check_cpu_contiguous(w_t, "w_t", dt);
  check_cpu_contiguous(s0, "s0", dt);
  check_opt(h_mask, "h_mask", dt);
  check_opt(keep, "keep", dt);
  const int64_t Tn = xp.size(0), B = xp.size(1), H = xp.size(2);
  TORCH_CHECK(w_t.size(0) == H && w_t.size(1) == H && s0.size(0) == B && s0.size(1) == H,
              "elman_forward: w_t must be (H, H) and s0 (B, H)");
  Tensor S = seq_empty({Tn + 1, B, H}, xp.options());
  S[0].copy_(s0);
  Tensor Y = present(keep) ? seq_empty({Tn, B, H}, xp.options()) : none_tensor(xp);
  Tensor HIN = present(h_mask) ? seq_empty({Tn, B, H}, xp.options()) : none_tensor(xp);
  AT_DISPATCH_FLOATING_TYPES(dt, "elman_forward", [&] {
    dispatch_act(act, [&](auto a) { forward_loop<scalar_t, decltype(a)::value>(xp, w_t, h_mask, keep, S, Y, HIN); });
  });
  return {S, Y, HIN};
}

// w (H, H), Y (T, B, H), h_mask?, keep?, grad_states (T, B, H), grad_final (B, H)
// -> [dA (T, B, H) = dL/da_t (also dL/dxp_t), ds0 (B, H)]
std::vector<Tensor> elman_backward(const Tensor& w, const Tensor& Y, const OptTensor& h_mask, const OptTensor& keep,
                                   const Tensor& grad_states, const Tensor& grad_final, int64_t act) {
  const auto dt = Y.scalar_type();
  for (auto* p : {&w, &Y, &grad_states, &grad_final}) check_cpu_contiguous(*p, "elman_backward input", dt);
  check_opt(h_mask, "h_mask", dt);
  check_opt(keep, "keep", dt);
  Tensor dA = seq_empty(Y.sizes(), Y.options());
  Tensor dh;
  AT_DISPATCH_FLOATING_TYPES(dt, "elman_backward", [&] {
    dispatch_act(act, [&](auto a) {
      backward_loop<scalar_t, decltype(a)::value>(w, Y, h_mask, keep, grad_states, grad_final, dA, dh);
    });
  });
  return {dA, dh};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rnnkit_cpu, m) {
  m.def("elman_forward(Tensor xp, Tensor w_t, Tensor s0, Tensor? h_mask, Tensor? keep, int act) -> Tensor[]",
        &elman_forward);
  m.def("elman_backward(Tensor w, Tensor Y, Tensor? h_mask, Tensor? keep, Tensor grad_states, Tensor grad_final, "
        "int act) -> Tensor[]",
        &elman_backward);
}

}  // namespace rnnkit
