// The Jordan network's time loop in C++ (Jordan 1986): rnnkit.cells.jordan.JordanCell, whose context is
// the previous output y, with recurrent dropout on y and zoneout plus end-of-sequence freezing folded
// into one lerp with the keep weight K (rnnkit/engines/bptt/_common.py):
//
//     a_t = xp_t + (y_{t-1} * h_mask) W_hy^T      h_t = act(a_t)                      (B, H)
//     o_t = h_t W_yh^T + b_y                      y_t = lerp(out_act(o_t), y_{t-1}, K_t)   (B, O)
//
// It computes what rnnkit/engines/bptt/jordan.py computes, with the same buffers: per step two products
// (StepMatrix: in float the weights packed once per call) and two fused passes over the rows, forward and
// backward. The weight gradients (sums over all steps) are left to the Python side, one matmul each.
#include "common.h"

namespace rnnkit {
namespace {

struct JordanBuffers {
  Tensor S, Y, Hh, YIN;  // (T+1, B, O) states, (T, B, O) out_act(o_t) before the mix, (T, B, H), (T, B, O)
};

template <typename T, int64_t A, int64_t OA>
void forward_loop(const Tensor& xp, const Tensor& w_hy_t, const Tensor& w_yh_t, const OptTensor& b_y,
                  const OptTensor& h_mask, const OptTensor& keep, JordanBuffers& buf) {
  const int64_t Tn = xp.size(0), B = xp.size(1), H = xp.size(2), O = w_yh_t.size(1), BH = B * H, BO = B * O;
  const T* x = xp.data_ptr<T>();
  const T* by = ptr_or_null<T>(b_y);
  const T* m = ptr_or_null<T>(h_mask);
  const T* kp = ptr_or_null<T>(keep);
  T* s = buf.S.data_ptr<T>();
  T* y_all = kp ? buf.Y.data_ptr<T>() : s + BO;  // without keep, out_act(o_t) is the state itself
  T* h_all = buf.Hh.data_ptr<T>();
  T* yin_all = m ? buf.YIN.data_ptr<T>() : nullptr;
  if (m) {  // the first step's masked context; later ones are written by the step before
    for (int64_t i = 0; i < BO; ++i) yin_all[i] = s[i] * m[i];
  }
  const StepMatrix<T> why(w_hy_t, B), wyh(w_yh_t, B);  // W_hy^T (O, H), W_yh^T (H, O)
  for (int64_t t = 0; t < Tn; ++t) {
    T* ht = h_all + t * BH;
    std::copy(x + t * BH, x + (t + 1) * BH, ht);
    why.mul(m ? yin_all + t * BO : s + t * BO, O, B, ht, H, true);  // a_t = xp_t + y_in W_hy^T
    for_rows(B, H, [&](int64_t b) {
      for (int64_t j = b * H; j < (b + 1) * H; ++j) ht[j] = activate<T, A>(ht[j]);
    });
    T* yt = y_all + t * BO;
    wyh.mul(ht, H, B, yt, O, false);  // o_t = h_t W_yh^T
    const T* yp = s + t * BO;
    T* yn = s + (t + 1) * BO;
    const T* kt = kp ? kp + t * BO : nullptr;
    T* next_in = (m && t + 1 < Tn) ? yin_all + (t + 1) * BO : nullptr;
    for_rows(B, O, [&](int64_t b) {
      const int64_t o0 = b * O;
      if (by) {
        for (int64_t j = 0; j < O; ++j) yt[o0 + j] = activate<T, OA>(yt[o0 + j] + by[j]);
      } else {
        for (int64_t j = o0; j < o0 + O; ++j) yt[j] = activate<T, OA>(yt[j]);
      }
      if (kt) {
        for (int64_t j = o0; j < o0 + O; ++j) yn[j] = lerp(yt[j], yp[j], kt[j]);
      }
      if (next_in) {
        for (int64_t j = o0; j < o0 + O; ++j) next_in[j] = yn[j] * m[j];
      }
    });
  }
}

// dO (T, B, O) = dL/do_t, dA (T, B, H) = dL/da_t (also dL/dxp_t), dy0 (B, O) = dL/dy_0
template <typename T, int64_t A, int64_t OA>
void backward_loop(const Tensor& w_hy, const Tensor& w_yh, const Tensor& Y, const Tensor& Hh,
                   const OptTensor& h_mask, const OptTensor& keep, const Tensor& grad_states,
                   const Tensor& grad_final, Tensor& dO, Tensor& dA, Tensor& dy) {
  const int64_t Tn = Y.size(0), B = Y.size(1), O = Y.size(2), H = Hh.size(2), BO = B * O, BH = B * H;
  const T* y_all = Y.data_ptr<T>();
  const T* h_all = Hh.data_ptr<T>();
  const T* m = ptr_or_null<T>(h_mask);
  const T* kp = ptr_or_null<T>(keep);
  const T* gs = grad_states.data_ptr<T>();
  T* do_all = dO.data_ptr<T>();
  T* da_all = dA.data_ptr<T>();
  // d: dL/dy_t in total while step t runs, then dL/dy_{t-1}
  dy = at::empty({B, O}, Y.options());
  Tensor mmbuf = m ? at::empty({B, O}, Y.options()) : Tensor();
  T* d = dy.data_ptr<T>();
  T* mp = m ? mmbuf.data_ptr<T>() : nullptr;
  const T* gf = grad_final.data_ptr<T>();
  const T* gl = gs + (Tn - 1) * BO;
  for (int64_t i = 0; i < BO; ++i) d[i] = gf[i] + gl[i];
  const StepMatrix<T> wyh(w_yh, B), why(w_hy, B);  // W_yh (O, H), W_hy (H, O)
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const T* yt = y_all + t * BO;
    const T* kt = kp ? kp + t * BO : nullptr;
    const T* gprev = t > 0 ? gs + (t - 1) * BO : nullptr;
    T* dot = do_all + t * BO;
    // do_t = d (1 - K_t) out_act'(y); d becomes what reaches y_{t-1} other than through the product
    for_rows(B, O, [&](int64_t b) {
      for (int64_t j = b * O; j < (b + 1) * O; ++j) {
        const T k = kt ? kt[j] : T(0);
        dot[j] = d[j] * (T(1) - k) * activation_grad<T, OA>(yt[j]);
        T prev = kt ? d[j] * k : T(0);
        if (gprev) prev += gprev[j];
        d[j] = prev;
      }
    });
    T* dat = da_all + t * BH;
    wyh.mul(dot, O, B, dat, H, false);  // dL/dh_t = do_t W_yh
    const T* ht = h_all + t * BH;
    for_rows(B, H, [&](int64_t b) {
      for (int64_t j = b * H; j < (b + 1) * H; ++j) dat[j] *= activation_grad<T, A>(ht[j]);
    });
    if (m) {  // dL/dy_{t-1} += (da_t W_hy) * h_mask
      why.mul(dat, H, B, mp, O, false);
      for (int64_t i = 0; i < BO; ++i) d[i] += mp[i] * m[i];
    } else {
      why.mul(dat, H, B, d, O, true);
    }
  }
}

template <typename F>
void dispatch_acts(int64_t act, int64_t out_act, const F& f) {
  dispatch_act(act, [&](auto a) { dispatch_act(out_act, [&](auto oa) { f(a, oa); }); });
}

// xp (T, B, H), w_hy_t = W_hy^T (O, H), w_yh_t = W_yh^T (H, O), b_y (O)?, s0 (B, O), h_mask (B, O)?,
// keep (T, B, O)? -> [S (T+1, B, O) with S[0] = s0, Y (T, B, O) out_act(o_t) before the mix (empty
// without keep: S[1:]), Hh (T, B, H) h_t, YIN (T, B, O) the masked contexts (empty without h_mask)]
std::vector<Tensor> jordan_forward(const Tensor& xp, const Tensor& w_hy_t, const Tensor& w_yh_t, const OptTensor& b_y,
                                   const Tensor& s0, const OptTensor& h_mask, const OptTensor& keep, int64_t act,
                                   int64_t out_act) {
  const auto dt = xp.scalar_type();
  TORCH_CHECK(xp.dim() == 3, "jordan_forward: xp must be (T, B, H), got ", xp.sizes());
  for (auto* p : {&xp, &w_hy_t, &w_yh_t, &s0}) check_cpu_contiguous(*p, "jordan_forward input", dt);
  for (auto* p : {&b_y, &h_mask, &keep}) check_opt(*p, "jordan_forward input", dt);
  const int64_t Tn = xp.size(0), B = xp.size(1), H = xp.size(2), O = w_yh_t.size(1);
  TORCH_CHECK(w_hy_t.size(0) == O && w_hy_t.size(1) == H && w_yh_t.size(0) == H && s0.size(0) == B &&
                  s0.size(1) == O,
              "jordan_forward: w_hy_t must be (O, H), w_yh_t (H, O) and s0 (B, O)");
  JordanBuffers buf;
  buf.S = seq_empty({Tn + 1, B, O}, xp.options());
  buf.S[0].copy_(s0);
  buf.Y = present(keep) ? seq_empty({Tn, B, O}, xp.options()) : none_tensor(xp);
  buf.Hh = seq_empty({Tn, B, H}, xp.options());
  buf.YIN = present(h_mask) ? seq_empty({Tn, B, O}, xp.options()) : none_tensor(xp);
  at::AutoDispatchBelowADInplaceOrView below_autograd;  // raw kernels: the Python Function does autograd
  AT_DISPATCH_FLOATING_TYPES(dt, "jordan_forward", [&] {
    dispatch_acts(act, out_act, [&](auto a, auto oa) {
      forward_loop<scalar_t, decltype(a)::value, decltype(oa)::value>(xp, w_hy_t, w_yh_t, b_y, h_mask, keep, buf);
    });
  });
  return {buf.S, buf.Y, buf.Hh, buf.YIN};
}

// w_hy (H, O), w_yh (O, H), Y (T, B, O), Hh (T, B, H), h_mask?, keep?, grad_states (T, B, O),
// grad_final (B, O) -> [dO (T, B, O), dA (T, B, H), dy0 (B, O)]
std::vector<Tensor> jordan_backward(const Tensor& w_hy, const Tensor& w_yh, const Tensor& Y, const Tensor& Hh,
                                    const OptTensor& h_mask, const OptTensor& keep, const Tensor& grad_states,
                                    const Tensor& grad_final, int64_t act, int64_t out_act) {
  const auto dt = Y.scalar_type();
  for (auto* p : {&w_hy, &w_yh, &Y, &Hh, &grad_states, &grad_final})
    check_cpu_contiguous(*p, "jordan_backward input", dt);
  for (auto* p : {&h_mask, &keep}) check_opt(*p, "jordan_backward input", dt);
  Tensor dO = seq_empty(Y.sizes(), Y.options());
  Tensor dA = seq_empty(Hh.sizes(), Hh.options());
  Tensor dy;
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  AT_DISPATCH_FLOATING_TYPES(dt, "jordan_backward", [&] {
    dispatch_acts(act, out_act, [&](auto a, auto oa) {
      backward_loop<scalar_t, decltype(a)::value, decltype(oa)::value>(w_hy, w_yh, Y, Hh, h_mask, keep, grad_states,
                                                                         grad_final, dO, dA, dy);
    });
  });
  return {dO, dA, dy};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rnnkit_cpu, m) {
  m.def("jordan_forward(Tensor xp, Tensor w_hy_t, Tensor w_yh_t, Tensor? b_y, Tensor s0, Tensor? h_mask, "
        "Tensor? keep, int act, int out_act) -> Tensor[]",
        &jordan_forward);
  m.def("jordan_backward(Tensor w_hy, Tensor w_yh, Tensor Y, Tensor Hh, Tensor? h_mask, Tensor? keep, "
        "Tensor grad_states, Tensor grad_final, int act, int out_act) -> Tensor[]",
        &jordan_backward);
}

}  // namespace rnnkit
