// The GRU family's time loop in C++ (rnnkit.cells.gru.GRUCell.recur), both variants, gate order
// [r, z, n] as torch.nn.GRU, with LayerNorm on the recurrent products (Ba et al. 2016), recurrent
// dropout, and zoneout plus end-of-sequence freezing folded into one lerp with the keep weight K
// (rnnkit/engines/bptt/_common.py):
//
//   reset_after (cuDNN, torch.nn.GRU):   gh = LN?(h_in W_hh^T) + b_hh = [hr, hz, hn]
//       r = sigmoid(xr + hr)   z = sigmoid(xz + hz)   n = tanh(xn + r * hn)
//   reset before (Cho et al. 2014):      [r, z] = sigmoid([xr, xz] + LN?(h_in W_rz^T) + b_rz)
//       n = tanh(xn + LN?((r * h_in) W_n^T) + b_n)
//   both:  new = lerp(n, h_{t-1}, z) = (1 - z) n + z h_{t-1}      h_t = lerp(new, h_{t-1}, K_t)
//
// It computes what rnnkit/engines/bptt/gru.py computes, with the same saved quantities and the same
// backward equations (documented there): per step one product per recurrent weight (through StepMatrix:
// in float the weight packed once per call, AVX-512 panels or MKL's sgemm_pack) and one fused pass per
// batch row for everything element-wise (the LayerNorm included). The masked input of the next step is
// written by the step before, and in the backward pass the masked product W^T dL/dgh * h_mask is added
// where the next step reads dL/dh, not in a pass of its own. Parameter gradients that are sums over
// all steps are left to the Python side (one matmul or reduction each).
#include "common.h"

namespace rnnkit {
namespace {

// out = LN(u) * w + add over one row of n, keeping (mean, rstd) in stats[0..1]
template <typename T>
RK_INLINE void ln_forward_row(const T* u, int64_t n, const T* w, const T* add, double eps, T* out, T* stats) {
  T mean, rstd;
  row_stats(u, n, eps, mean, rstd);
  stats[0] = mean;
  stats[1] = rstd;
  if (add) {
    for (int64_t j = 0; j < n; ++j) out[j] = (u[j] - mean) * rstd * w[j] + add[j];
  } else {
    for (int64_t j = 0; j < n; ++j) out[j] = (u[j] - mean) * rstd * w[j];
  }
}

// The per-row element-wise steps, as functions of restrict pointers with the options as template
// flags: no conditional loads in the loops, so gcc vectorises them (-fopt-info-vec).

// reset_after, forward: gh = h_in W^T (+ b_hh, or LN'd) of one row (B, 3H scratch) -> the gates r, z, hn
// (each kept in a (T, B, H) buffer of its own), the candidate n and the new state
template <typename T>
void after_gates_row(const T* __restrict x, const T* __restrict gh, T* __restrict r, T* __restrict z,
                     T* __restrict hv, T* __restrict n, const T* __restrict hp, T* __restrict hn, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const T rj = sigmoid(x[j] + gh[j]), zj = sigmoid(x[H + j] + gh[H + j]), hj = gh[2 * H + j];
    const T nj = tanh_(x[2 * H + j] + rj * hj);
    r[j] = rj;
    z[j] = zj;
    hv[j] = hj;
    n[j] = nj;
    hn[j] = lerp(nj, hp[j], zj);
  }
}

// reset_after, backward: d = dL/dh_t in bo (replaced by its direct share in dL/dh_{t-1}) -> dL/dxp =
// [da_r, da_z, da_n] in dxp, dL/dhn in dhn, and dL/dgh = [da_r, da_z, dhn] in the step's scratch row sc
template <typename T, bool KEEP>
void after_backward_row(const T* __restrict r, const T* __restrict z, const T* __restrict hv,
                        const T* __restrict n, const T* __restrict hp, const T* __restrict k, T* __restrict bo,
                        T* __restrict dxp, T* __restrict dhn, T* __restrict sc, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const T d = bo[j];
    const T kk = KEEP ? k[j] : T(0), omk = T(1) - kk;
    const T dan = d * (omk * (T(1) - z[j]) * (T(1) - n[j] * n[j]));  // d h_t / d a_n
    const T dar = dan * r[j] * hv[j] * (T(1) - r[j]);
    const T daz = d * omk * (hp[j] - n[j]) * z[j] * (T(1) - z[j]);
    const T dh = dan * r[j];  // r multiplies hn, not xn
    dxp[j] = dar;
    dxp[H + j] = daz;
    dxp[2 * H + j] = dan;
    dhn[j] = dh;
    sc[j] = dar;
    sc[H + j] = daz;
    sc[2 * H + j] = dh;
    bo[j] = d * (kk + omk * z[j]);  // direct paths
  }
}

// reset before, backward, first pass: d in bo (replaced by its direct share) -> dL/da_z, dL/da_n in dg
template <typename T, bool KEEP>
void before_backward_row(const T* __restrict rz, const T* __restrict n, const T* __restrict hp,
                         const T* __restrict k, T* __restrict bo, T* __restrict dg, int64_t H) {
  const T* z = rz + H;
  for (int64_t j = 0; j < H; ++j) {
    const T d = bo[j];
    const T kk = KEEP ? k[j] : T(0), omk = T(1) - kk;
    dg[2 * H + j] = d * omk * (T(1) - z[j]) * (T(1) - n[j] * n[j]);  // dL/da_n
    dg[H + j] = d * omk * (hp[j] - n[j]) * z[j] * (T(1) - z[j]);    // dL/da_z
    bo[j] = d * (kk + omk * z[j]);
  }
}

// acc += a * b and acc += a over one row
template <typename T>
void add_product(T* __restrict acc, const T* __restrict a, const T* __restrict b, int64_t n) {
  for (int64_t j = 0; j < n; ++j) acc[j] += a[j] * b[j];
}
template <typename T>
void add_to(T* __restrict acc, const T* __restrict a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) acc[j] += a[j];
}

// The recurrent product's share of dL/dh_{t-1}, src W: added to base at once, or, with a recurrent-
// dropout mask, left in mmbuf for the caller to mask into base (add_product) at the next step or after
// the loop. Returns whether it was left in mmbuf.
template <typename T>
bool push_recurrent_grad(const StepMatrix<T>& w, const Tensor& src, const Tensor& base, const Tensor& mmbuf,
                         bool masked) {
  if (masked) {
    w.mul(src, mmbuf, false);
    return true;
  }
  w.mul(src, base, true);
  return false;
}

// the pointers one pass needs, shared by both variants
template <typename T>
struct Loop {
  int64_t Tn, B, H;
  const T *m, *keep;
  T* S;    // (T+1, B, H)
  T* HIN;  // (T, B, H) masked previous states, or null without h_mask
  double eps;

  // h_t from new and h_{t-1} (row b), and the next step's masked input
  RK_INLINE void finish_row(int64_t t, int64_t b, const T* hp, T* hn) const {
    const int64_t o = b * H, tb = (t * B) * H;
    if (keep) {
      const T* k = keep + tb;
      for (int64_t j = o; j < o + H; ++j) hn[j] = lerp(hn[j], hp[j], k[j]);
    }
    if (m && t + 1 < Tn) {
      T* nx = HIN + (t + 1) * B * H;
      for (int64_t j = o; j < o + H; ++j) nx[j] = hn[j] * m[j];
    }
  }
  Tensor input(const Tensor& St, const Tensor& HINt, int64_t t) const { return m ? HINt[t] : St[t]; }
  void first_input() const {
    if (m)
      for (int64_t i = 0; i < B * H; ++i) HIN[i] = S[i] * m[i];
  }
};

// -- reset gate after the matmul (cuDNN) ------------------------------------------------------------
template <typename T>
void forward_after(const Tensor& xp, const Tensor& w_t, const OptTensor& bias, const OptTensor& ln_w,
                   const Tensor& S, const Tensor& R, const Tensor& Z, const Tensor& HN, const Tensor& N,
                   const Tensor& U, const Tensor& ST, const Tensor& HIN, const Loop<T>& L) {
  const int64_t B = L.B, H = L.H, G = 3 * H, BH = B * H;
  const T* x = xp.data_ptr<T>();
  const T* bp = ptr_or_null<T>(bias);
  const T* lw = ptr_or_null<T>(ln_w);
  T* r_all = R.data_ptr<T>();
  T* z_all = Z.data_ptr<T>();
  T* hv_all = HN.data_ptr<T>();
  T* n_all = N.data_ptr<T>();
  T* u_all = lw ? U.data_ptr<T>() : nullptr;
  T* st_all = lw ? ST.data_ptr<T>() : nullptr;
  // (B, 3H) the step's recurrent product: reused every step (in cache); the gates go to (T, B, H) buffers
  Tensor scratch = at::empty({B, G}, xp.options());
  T* sc_all = scratch.data_ptr<T>();
  const StepMatrix<T> whh(w_t, B);  // W_hh^T (H, 3H)
  L.first_input();
  for (int64_t t = 0; t < L.Tn; ++t) {
    Tensor dst = lw ? U[t] : scratch;
    whh.mul(L.input(S, HIN, t), dst, false);  // (B, 3H) h_in W^T
    const T* hp_all = L.S + t * BH;
    T* hn_all = L.S + (t + 1) * BH;
    for_rows(B, G, [&](int64_t b) {
      const int64_t tb = t * B + b;
      T* gh = sc_all + b * G;
      if (lw) {
        ln_forward_row(u_all + tb * G, G, lw, bp, L.eps, gh, st_all + 2 * tb);
      } else if (bp) {
        for (int64_t j = 0; j < G; ++j) gh[j] += bp[j];
      }
      after_gates_row(x + tb * G, gh, r_all + tb * H, z_all + tb * H, hv_all + tb * H, n_all + tb * H,
                      hp_all + b * H, hn_all + b * H, H);
      L.finish_row(t, b, hp_all, hn_all);
    });
  }
}

template <typename T>
void backward_after(const Tensor& w, const Tensor& R, const Tensor& Z, const Tensor& HN, const Tensor& N,
                    const Tensor& U, const Tensor& ST,
                    const OptTensor& ln_w, const Tensor& grad_states, const Tensor& grad_final, const Tensor& dXP,
                    const Tensor& DHN, const Tensor& dU, Tensor& base, const Loop<T>& L) {
  const int64_t Tn = L.Tn, B = L.B, H = L.H, G = 3 * H, BH = B * H;
  const T* r_all = R.data_ptr<T>();
  const T* z_all = Z.data_ptr<T>();
  const T* hv_all = HN.data_ptr<T>();
  const T* n_all = N.data_ptr<T>();
  const T* lw = ptr_or_null<T>(ln_w);
  const T* u_all = lw ? U.data_ptr<T>() : nullptr;
  const T* st_all = lw ? ST.data_ptr<T>() : nullptr;
  const T* gs = grad_states.data_ptr<T>();
  const T* m = L.m;
  T* dxp_all = dXP.data_ptr<T>();
  T* dhn_all = DHN.data_ptr<T>();
  T* du_all = lw ? dU.data_ptr<T>() : nullptr;
  Tensor scratch = at::empty({B, G}, N.options());  // (B, 3H) dL/dgh of the current step
  T* sc_all = scratch.data_ptr<T>();
  Tensor mmbuf = m ? at::empty({B, H}, N.options()) : Tensor();
  T* mp = m ? mmbuf.data_ptr<T>() : nullptr;
  T* bp = base.data_ptr<T>();
  const T* gf = grad_final.data_ptr<T>();
  for (int64_t i = 0; i < BH; ++i) bp[i] = gf[i] + gs[(Tn - 1) * BH + i];
  const StepMatrix<T> whh(w, B);  // W_hh (3H, H)
  bool pending = false;  // mmbuf * h_mask still to be added to base
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const bool add_mm = pending;
    const T* gprev = t > 0 ? gs + (t - 1) * BH : nullptr;
    const T* kt = L.keep ? L.keep + t * BH : nullptr;
    const T* hp_all = L.S + t * BH;
    for_rows(B, G, [&](int64_t b) {
      const int64_t tb = t * B + b, o = b * H;
      T* sc = sc_all + b * G;
      T* bo = bp + o;
      const int64_t th = tb * H;
      if (add_mm) add_product(bo, mp + o, m + o, H);  // total dL/dh_t
      if (kt) {
        after_backward_row<T, true>(r_all + th, z_all + th, hv_all + th, n_all + th, hp_all + o, kt + o, bo,
                                    dxp_all + tb * G, dhn_all + th, sc, H);
      } else {
        after_backward_row<T, false>(r_all + th, z_all + th, hv_all + th, n_all + th, hp_all + o, nullptr, bo,
                                     dxp_all + tb * G, dhn_all + th, sc, H);
      }
      if (gprev) add_to(bo, gprev + o, H);
      if (lw) ln_backward_row(sc, u_all + tb * G, lw, st_all + 2 * tb, G, du_all + tb * G);
    });
    const Tensor src = lw ? dU[t] : scratch;  // (B, 3H) dL/d(h_in W^T)
    pending = push_recurrent_grad(whh, src, base, mmbuf, m != nullptr);
  }
  if (pending) add_product(bp, mp, m, BH);
}

// -- reset gate before the matmul (Cho et al. 2014) ---------------------------------------------------
template <typename T>
void forward_before(const Tensor& xp, const Tensor& w_rz_t, const Tensor& w_n_t, const OptTensor& add_rz,
                    const OptTensor& add_n, const OptTensor& ln_w, const OptTensor& ln_hn_w, const Tensor& S,
                    const Tensor& RZ, const Tensor& RH, const Tensor& N, const Tensor& Urz, const Tensor& Un,
                    const Tensor& STrz, const Tensor& STn, const Tensor& HIN, const Loop<T>& L) {
  const int64_t B = L.B, H = L.H, G = 3 * H, BH = B * H;
  const T* x = xp.data_ptr<T>();
  const T* arz = ptr_or_null<T>(add_rz);
  const T* an = ptr_or_null<T>(add_n);
  const T* lw = ptr_or_null<T>(ln_w);
  const T* lnw = ptr_or_null<T>(ln_hn_w);
  T* rz_all = RZ.data_ptr<T>();
  T* rh_all = RH.data_ptr<T>();
  T* n_all = N.data_ptr<T>();
  T* urz_all = lw ? Urz.data_ptr<T>() : nullptr;
  T* un_all = lw ? Un.data_ptr<T>() : nullptr;
  T* strz_all = lw ? STrz.data_ptr<T>() : nullptr;
  T* stn_all = lw ? STn.data_ptr<T>() : nullptr;
  const StepMatrix<T> wrz(w_rz_t, B);  // W_rz^T (H, 2H)
  const StepMatrix<T> wn(w_n_t, B);    // W_n^T (H, H)
  L.first_input();
  for (int64_t t = 0; t < L.Tn; ++t) {
    const Tensor hin_t = L.input(S, HIN, t);
    const T* hin = hin_t.data_ptr<T>();
    Tensor dst = lw ? Urz[t] : RZ[t];
    wrz.mul(hin_t, dst, false);  // (B, 2H)
    for_rows(B, 2 * H, [&](int64_t b) {
      const int64_t tb = t * B + b;
      T* rz = rz_all + tb * 2 * H;
      if (lw) {
        ln_forward_row(urz_all + tb * 2 * H, 2 * H, lw, arz, L.eps, rz, strz_all + 2 * tb);
      } else if (arz) {
        for (int64_t j = 0; j < 2 * H; ++j) rz[j] += arz[j];
      }
      const T* xr = x + tb * G;
      for (int64_t j = 0; j < 2 * H; ++j) rz[j] = sigmoid(xr[j] + rz[j]);
      T* rh = rh_all + tb * H;
      const T* hi = hin + b * H;
      for (int64_t j = 0; j < H; ++j) rh[j] = rz[j] * hi[j];
    });
    Tensor dst_n = lw ? Un[t] : N[t];
    wn.mul(RH[t], dst_n, false);  // (B, H)
    const T* hp_all = L.S + t * BH;
    T* hn_all = L.S + (t + 1) * BH;
    for_rows(B, H, [&](int64_t b) {
      const int64_t tb = t * B + b;
      T* n = n_all + tb * H;
      if (lw) {
        ln_forward_row(un_all + tb * H, H, lnw, an, L.eps, n, stn_all + 2 * tb);
      } else if (an) {
        for (int64_t j = 0; j < H; ++j) n[j] += an[j];
      }
      const T* xn = x + tb * G + 2 * H;
      const T* z = rz_all + tb * 2 * H + H;
      const T* hp = hp_all + b * H;
      T* hn = hn_all + b * H;
      for (int64_t j = 0; j < H; ++j) {
        n[j] = tanh_(xn[j] + n[j]);
        hn[j] = lerp(n[j], hp[j], z[j]);
      }
      L.finish_row(t, b, hp_all, hn_all);
    });
  }
}

template <typename T>
void backward_before(const Tensor& w_rz, const Tensor& w_n, const Tensor& RZ, const Tensor& N, const Tensor& Urz,
                     const Tensor& Un, const Tensor& STrz, const Tensor& STn, const OptTensor& ln_w,
                     const OptTensor& ln_hn_w, const Tensor& grad_states, const Tensor& grad_final,
                     const Tensor& dG, const Tensor& dUrz, const Tensor& dUn, Tensor& base, const Loop<T>& L) {
  const int64_t Tn = L.Tn, B = L.B, H = L.H, G = 3 * H, BH = B * H;
  const T* rz_all = RZ.data_ptr<T>();
  const T* n_all = N.data_ptr<T>();
  const T* lw = ptr_or_null<T>(ln_w);
  const T* lnw = ptr_or_null<T>(ln_hn_w);
  const T* urz_all = lw ? Urz.data_ptr<T>() : nullptr;
  const T* un_all = lw ? Un.data_ptr<T>() : nullptr;
  const T* strz_all = lw ? STrz.data_ptr<T>() : nullptr;
  const T* stn_all = lw ? STn.data_ptr<T>() : nullptr;
  const T* gs = grad_states.data_ptr<T>();
  const T* m = L.m;
  T* dg_all = dG.data_ptr<T>();
  T* durz_all = lw ? dUrz.data_ptr<T>() : nullptr;
  T* dun_all = lw ? dUn.data_ptr<T>() : nullptr;
  Tensor mmbuf = m ? at::empty({B, H}, RZ.options()) : Tensor();
  Tensor drh = at::empty({B, H}, RZ.options());  // dL/d(r * h_in) of one step
  T* mp = m ? mmbuf.data_ptr<T>() : nullptr;
  T* drp = drh.data_ptr<T>();
  T* bp = base.data_ptr<T>();
  const T* gf = grad_final.data_ptr<T>();
  for (int64_t i = 0; i < BH; ++i) bp[i] = gf[i] + gs[(Tn - 1) * BH + i];
  const Tensor dG3 = dG.view({Tn, B, G});
  const StepMatrix<T> wrz(w_rz, B);  // W_rz (2H, H)
  const StepMatrix<T> wn(w_n, B);    // W_n (H, H)
  bool pending = false;
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const bool add_mm = pending;
    const T* gprev = t > 0 ? gs + (t - 1) * BH : nullptr;
    const T* kt = L.keep ? L.keep + t * BH : nullptr;
    const T* hp_all = L.S + t * BH;
    for_rows(B, H, [&](int64_t b) {  // dL/da_z, dL/da_n and the direct paths
      const int64_t tb = t * B + b, o = b * H;
      T* dg = dg_all + tb * G;
      T* bo = bp + o;
      if (add_mm) add_product(bo, mp + o, m + o, H);  // total dL/dh_t
      if (kt) {
        before_backward_row<T, true>(rz_all + tb * 2 * H, n_all + tb * H, hp_all + o, kt + o, bo, dg, H);
      } else {
        before_backward_row<T, false>(rz_all + tb * 2 * H, n_all + tb * H, hp_all + o, nullptr, bo, dg, H);
      }
      if (gprev) add_to(bo, gprev + o, H);
      if (lw) ln_backward_row(dg + 2 * H, un_all + tb * H, lnw, stn_all + 2 * tb, H, dun_all + tb * H);
    });
    // (B, H); without LN a column block of dG (row stride 3H, unit column stride, as StepMatrix takes)
    const Tensor src_n = lw ? dUn[t] : dG3[t].narrow(1, 2 * H, H);
    wn.mul(src_n, drh, false);  // (B, H) dL/d(r * h_in)
    const T* hin_all = m ? L.HIN + t * BH : hp_all;
    for_rows(B, 2 * H, [&](int64_t b) {  // dL/da_r and the path through r * h_in
      const int64_t tb = t * B + b, o = b * H;
      const T* r = rz_all + tb * 2 * H;
      const T* hi = hin_all + o;
      const T* dr = drp + o;
      T* dg = dg_all + tb * G;
      T* bo = bp + o;
      for (int64_t j = 0; j < H; ++j) {
        dg[j] = dr[j] * hi[j] * r[j] * (T(1) - r[j]);
        bo[j] += dr[j] * (m ? r[j] * m[o + j] : r[j]);
      }
      if (lw) ln_backward_row(dg, urz_all + tb * 2 * H, lw, strz_all + 2 * tb, 2 * H, durz_all + tb * 2 * H);
    });
    const Tensor src_rz = lw ? dUrz[t] : dG3[t].narrow(1, 0, 2 * H);  // (B, 2H)
    pending = push_recurrent_grad(wrz, src_rz, base, mmbuf, m != nullptr);
  }
  if (pending) add_product(bp, mp, m, BH);
}

// -- operators ------------------------------------------------------------------------------------------
template <typename T>
Loop<T> make_loop(const Tensor& S, const Tensor& HIN, const OptTensor& h_mask, const OptTensor& keep, double eps) {
  Loop<T> L;
  L.Tn = S.size(0) - 1;
  L.B = S.size(1);
  L.H = S.size(2);
  L.m = ptr_or_null<T>(h_mask);
  L.keep = ptr_or_null<T>(keep);
  L.S = S.data_ptr<T>();
  L.HIN = L.m ? HIN.data_ptr<T>() : nullptr;
  L.eps = eps;
  return L;
}

void check_common(const Tensor& xp, const Tensor& s0, const OptTensor& h_mask, const OptTensor& keep) {
  const auto dt = xp.scalar_type();
  TORCH_CHECK(xp.dim() == 3 && xp.size(2) % 3 == 0, "gru: xp must be (T, B, 3H), got ", xp.sizes());
  check_cpu_contiguous(xp, "xp", dt);
  check_cpu_contiguous(s0, "s0", dt);
  check_opt(h_mask, "h_mask", dt);
  check_opt(keep, "keep", dt);
  TORCH_CHECK(s0.dim() == 2 && s0.size(0) == xp.size(1) && s0.size(1) * 3 == xp.size(2),
              "gru: s0 must be (B, H), got ", s0.sizes());
}

// S (T+1, B, H) with S[0] = s0, and the masked inputs HIN (T, B, H) (empty without h_mask)
std::pair<Tensor, Tensor> state_buffers(const Tensor& xp, const Tensor& s0, const OptTensor& h_mask) {
  const int64_t Tn = xp.size(0), B = xp.size(1), H = s0.size(1);
  Tensor S = seq_empty({Tn + 1, B, H}, xp.options());
  S[0].copy_(s0);
  Tensor HIN = present(h_mask) ? seq_empty({Tn, B, H}, xp.options()) : none_tensor(xp);
  return {S, HIN};
}

Tensor empty_or_none(bool want, at::IntArrayRef size, const Tensor& like) {
  return want ? seq_empty(size, like.options()) : none_tensor(like);
}

// xp (T, B, 3H), w_t = W_hh^T (H, 3H), bias (3H)? added after the matmul (after the LN: LN beta + b_hh),
// ln_w (3H)?, s0 (B, H), h_mask (B, H)?, keep (T, B, H)?
// -> [S (T+1, B, H), R, Z, HN (T, B, H) the gates r, z and hn (three buffers, not one (T, B, 3H), from before
//     the buffer pool: each stayed under glibc's mmap threshold, so malloc reused its memory),
//     N (T, B, H), U (T, B, 3H) pre-LN h_in W^T, ST (T, B, 2) LN (mean, rstd), HIN (T, B, H)]; the LN and
//     mask buffers are empty when unused
std::vector<Tensor> gru_after_forward(const Tensor& xp, const Tensor& w_t, const OptTensor& bias,
                                      const OptTensor& ln_w, const Tensor& s0, const OptTensor& h_mask,
                                      const OptTensor& keep, double eps) {
  check_common(xp, s0, h_mask, keep);
  const auto dt = xp.scalar_type();
  check_cpu_contiguous(w_t, "w_t", dt);
  check_opt(bias, "bias", dt);
  check_opt(ln_w, "ln_w", dt);
  const int64_t Tn = xp.size(0), B = xp.size(1), G = xp.size(2), H = G / 3;
  auto [S, HIN] = state_buffers(xp, s0, h_mask);
  Tensor R = seq_empty({Tn, B, H}, xp.options());
  Tensor Z = seq_empty({Tn, B, H}, xp.options());
  Tensor HN = seq_empty({Tn, B, H}, xp.options());
  Tensor N = seq_empty({Tn, B, H}, xp.options());
  const bool ln = present(ln_w);
  Tensor U = empty_or_none(ln, {Tn, B, G}, xp);
  Tensor ST = empty_or_none(ln, {Tn, B, 2}, xp);
  AT_DISPATCH_FLOATING_TYPES(dt, "gru_after_forward", [&] {
    forward_after<scalar_t>(xp, w_t, bias, ln_w, S, R, Z, HN, N, U, ST, HIN,
                            make_loop<scalar_t>(S, HIN, h_mask, keep, eps));
  });
  return {S, R, Z, HN, N, U, ST, HIN};
}

// w (3H, H), the forward's buffers, grad_states (T, B, H), grad_final (B, H)
// -> [dXP (T, B, 3H) = dL/dxp = dL/d[a_r, a_z, a_n], DHN (T, B, H) = dL/dhn, dU (T, B, 3H) dL/d(h_in W^T) before the LN
//     (empty without LN), ds0 (B, H)]
std::vector<Tensor> gru_after_backward(const Tensor& w, const Tensor& S, const Tensor& R, const Tensor& Z,
                                       const Tensor& HN, const Tensor& N, const OptTensor& U, const OptTensor& ST,
                                       const OptTensor& ln_w, const OptTensor& HIN, const OptTensor& h_mask,
                                       const OptTensor& keep, const Tensor& grad_states, const Tensor& grad_final) {
  const auto dt = N.scalar_type();
  for (auto* p : {&w, &S, &R, &Z, &HN, &N, &grad_states, &grad_final})
    check_cpu_contiguous(*p, "gru_after_backward input", dt);
  for (auto* p : {&U, &ST, &ln_w, &HIN, &h_mask, &keep}) check_opt(*p, "gru_after_backward input", dt);
  const bool ln = present(ln_w);
  TORCH_CHECK(!ln || (present(U) && present(ST)), "gru_after_backward: LayerNorm needs U and ST");
  TORCH_CHECK(!present(h_mask) || present(HIN), "gru_after_backward: h_mask needs HIN");
  const int64_t Tn = N.size(0), B = N.size(1), H = N.size(2), G = 3 * H;
  Tensor dXP = seq_empty({Tn, B, G}, N.options());
  Tensor DHN = seq_empty({Tn, B, H}, N.options());
  Tensor dU = empty_or_none(ln, {Tn, B, G}, N);
  Tensor base = at::empty({B, H}, N.options());
  const Tensor none = none_tensor(N);
  AT_DISPATCH_FLOATING_TYPES(dt, "gru_after_backward", [&] {
    backward_after<scalar_t>(w, R, Z, HN, N, ln ? *U : none, ln ? *ST : none, ln_w, grad_states, grad_final, dXP,
                             DHN, dU, base, make_loop<scalar_t>(S, present(HIN) ? *HIN : none, h_mask, keep, 0.0));
  });
  return {dXP, DHN, dU, base};
}

// xp (T, B, 3H), w_rz_t = W_rz^T (H, 2H), w_n_t = W_n^T (H, H), add_rz (2H)? and add_n (H)? added after the
// matmuls (after the LNs: LN beta + b_hh), ln_w (2H)?, ln_hn_w (H)?, s0, h_mask?, keep?
// -> [S, RZ (T, B, 2H) = [r, z], RH (T, B, H) = r * h_in, N (T, B, H), Urz, Un (pre-LN products), STrz, STn
//     (LN (mean, rstd)), HIN]; the LN and mask buffers are empty when unused
std::vector<Tensor> gru_before_forward(const Tensor& xp, const Tensor& w_rz_t, const Tensor& w_n_t,
                                       const OptTensor& add_rz, const OptTensor& add_n, const OptTensor& ln_w,
                                       const OptTensor& ln_hn_w, const Tensor& s0, const OptTensor& h_mask,
                                       const OptTensor& keep, double eps) {
  check_common(xp, s0, h_mask, keep);
  const auto dt = xp.scalar_type();
  check_cpu_contiguous(w_rz_t, "w_rz_t", dt);
  check_cpu_contiguous(w_n_t, "w_n_t", dt);
  for (auto* p : {&add_rz, &add_n, &ln_w, &ln_hn_w}) check_opt(*p, "gru_before_forward input", dt);
  const bool ln = present(ln_w);
  TORCH_CHECK(ln == present(ln_hn_w), "gru_before_forward: ln_w and ln_hn_w go together");
  const int64_t Tn = xp.size(0), B = xp.size(1), G = xp.size(2), H = G / 3;
  auto [S, HIN] = state_buffers(xp, s0, h_mask);
  Tensor RZ = seq_empty({Tn, B, 2 * H}, xp.options());
  Tensor RH = seq_empty({Tn, B, H}, xp.options());
  Tensor N = seq_empty({Tn, B, H}, xp.options());
  Tensor Urz = empty_or_none(ln, {Tn, B, 2 * H}, xp);
  Tensor Un = empty_or_none(ln, {Tn, B, H}, xp);
  Tensor STrz = empty_or_none(ln, {Tn, B, 2}, xp);
  Tensor STn = empty_or_none(ln, {Tn, B, 2}, xp);
  AT_DISPATCH_FLOATING_TYPES(dt, "gru_before_forward", [&] {
    forward_before<scalar_t>(xp, w_rz_t, w_n_t, add_rz, add_n, ln_w, ln_hn_w, S, RZ, RH, N, Urz, Un, STrz, STn, HIN,
                             make_loop<scalar_t>(S, HIN, h_mask, keep, eps));
  });
  return {S, RZ, RH, N, Urz, Un, STrz, STn, HIN};
}

// w_rz (2H, H), w_n (H, H), the forward's buffers, grad_states (T, B, H), grad_final (B, H)
// -> [dG (T, B, 3H) = dL/d[a_r, a_z, a_n] (also dL/dxp), dUrz (T, B, 2H) and dUn (T, B, H) dL/d(pre-LN
//     products) (empty without LN), ds0 (B, H)]
std::vector<Tensor> gru_before_backward(const Tensor& w_rz, const Tensor& w_n, const Tensor& S, const Tensor& RZ,
                                        const Tensor& N, const OptTensor& Urz, const OptTensor& Un,
                                        const OptTensor& STrz, const OptTensor& STn, const OptTensor& ln_w,
                                        const OptTensor& ln_hn_w, const OptTensor& HIN, const OptTensor& h_mask,
                                        const OptTensor& keep, const Tensor& grad_states, const Tensor& grad_final) {
  const auto dt = RZ.scalar_type();
  for (auto* p : {&w_rz, &w_n, &S, &RZ, &N, &grad_states, &grad_final})
    check_cpu_contiguous(*p, "gru_before_backward input", dt);
  for (auto* p : {&Urz, &Un, &STrz, &STn, &ln_w, &ln_hn_w, &HIN, &h_mask, &keep})
    check_opt(*p, "gru_before_backward input", dt);
  const bool ln = present(ln_w);
  TORCH_CHECK(!ln || (present(ln_hn_w) && present(Urz) && present(Un) && present(STrz) && present(STn)),
              "gru_before_backward: LayerNorm needs ln_hn_w, Urz, Un, STrz and STn");
  TORCH_CHECK(!present(h_mask) || present(HIN), "gru_before_backward: h_mask needs HIN");
  const int64_t Tn = RZ.size(0), B = RZ.size(1), H = N.size(2);
  Tensor dG = seq_empty({Tn, B, 3 * H}, RZ.options());
  Tensor dUrz = empty_or_none(ln, {Tn, B, 2 * H}, RZ);
  Tensor dUn = empty_or_none(ln, {Tn, B, H}, RZ);
  Tensor base = at::empty({B, H}, RZ.options());
  const Tensor none = none_tensor(RZ);
  AT_DISPATCH_FLOATING_TYPES(dt, "gru_before_backward", [&] {
    backward_before<scalar_t>(w_rz, w_n, RZ, N, ln ? *Urz : none, ln ? *Un : none, ln ? *STrz : none,
                              ln ? *STn : none, ln_w, ln_hn_w, grad_states, grad_final, dG, dUrz, dUn, base,
                              make_loop<scalar_t>(S, present(HIN) ? *HIN : none, h_mask, keep, 0.0));
  });
  return {dG, dUrz, dUn, base};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rnnkit_cpu, m) {
  m.def("gru_after_forward(Tensor xp, Tensor w_t, Tensor? bias, Tensor? ln_w, Tensor s0, Tensor? h_mask, "
        "Tensor? keep, float eps) -> Tensor[]",
        &gru_after_forward);
  m.def("gru_after_backward(Tensor w, Tensor S, Tensor R, Tensor Z, Tensor HN, Tensor N, Tensor? U, Tensor? ST, "
        "Tensor? ln_w, "
        "Tensor? HIN, Tensor? h_mask, Tensor? keep, Tensor grad_states, Tensor grad_final) -> Tensor[]",
        &gru_after_backward);
  m.def("gru_before_forward(Tensor xp, Tensor w_rz_t, Tensor w_n_t, Tensor? add_rz, Tensor? add_n, Tensor? ln_w, "
        "Tensor? ln_hn_w, Tensor s0, Tensor? h_mask, Tensor? keep, float eps) -> Tensor[]",
        &gru_before_forward);
  m.def("gru_before_backward(Tensor w_rz, Tensor w_n, Tensor S, Tensor RZ, Tensor N, Tensor? Urz, Tensor? Un, "
        "Tensor? STrz, Tensor? STn, Tensor? ln_w, Tensor? ln_hn_w, Tensor? HIN, Tensor? h_mask, Tensor? keep, "
        "Tensor grad_states, Tensor grad_final) -> Tensor[]",
        &gru_before_backward);
}

}  // namespace rnnkit
