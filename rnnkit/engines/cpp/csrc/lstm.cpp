// The LSTM family's time loop in C++: rnnkit.cells.lstm.LSTMCell.recur (gate order i, f, g, o as
// torch.nn.LSTM) with peepholes (Gers & Schmidhuber 2000), LayerNorm on W_hh h and on c (Ba et al.
// 2016), the output projection (Sak et al. 2014), recurrent dropout, zoneout and end-of-sequence
// freezing folded into one lerp per state component, forward and backward through time.
//
// It computes exactly what rnnkit/engines/bptt/_lstm_function.py computes, with the same buffers:
// one BLAS call per step for W_hh h (and one for the projection), and one fused pass per batch row
// for everything element-wise, instead of a dozen torch ops per step from Python. Of the parameter
// gradients that are sums over all steps, the weight matrices' are left to the Python side (one
// matmul each); the vectors' (biases, peepholes, LayerNorm gains) are column sums each thread adds
// up inside the backward's row pass.
#include "common.h"

#include <ATen/ops/cat.h>
#include <ATen/ops/zeros.h>

namespace rnnkit {
namespace {

template <typename T>
struct LSTMForward {
  // inputs
  const T *xp, *w_ci, *w_cf, *w_co, *lnr_w, *lnr_b, *lnc_w, *lnc_b, *keep_h, *keep_c, *lnx_w, *in_b;
  // outputs (T, B, .)
  T *G, *Cn, *TC, *C, *Hs, *HF, *R, *SR, *SC, *SX;
  int64_t B, H, P;
  double eps;

  // one row b of step t, after G[t] (or R[t]) holds the recurrent matmul; h_dst receives h_new
  // (the projection input o * tanh(.) when there is a projection)
  void row(int64_t t, int64_t b, const T* c_prev) const {
    const int64_t G4 = 4 * H;
    const int64_t tb = t * B + b;
    T* g = G + tb * G4;
    if (R) {  // g = xp + LN(W_hh h)
      const T* r = R + tb * G4;
      const T* x = xp + tb * G4;
      if (lnx_w) {  // the input LayerNorm fused too: xp holds x W_ih^T, g = LN(xp) + biases + LN(W_hh h)
        row_stats2(r, x, G4, eps, SR + 2 * tb, SX + 2 * tb);
        const T mean = SR[2 * tb], rstd = SR[2 * tb + 1], mx = SX[2 * tb], rx = SX[2 * tb + 1];
        for (int64_t j = 0; j < G4; ++j)
          g[j] = (x[j] - mx) * rx * lnx_w[j] + in_b[j] + (r[j] - mean) * rstd * lnr_w[j] + lnr_b[j];
      } else {
        T mean, rstd;
        row_stats(r, G4, eps, mean, rstd);
        SR[2 * tb] = mean;
        SR[2 * tb + 1] = rstd;
        for (int64_t j = 0; j < G4; ++j) g[j] = x[j] + (r[j] - mean) * rstd * lnr_w[j] + lnr_b[j];
      }
    }
    if (!R && in_b) {  // the input projection came without its biases (x W_ih^T computed here)
      for (int64_t j = 0; j < G4; ++j) g[j] += in_b[j];
    }
    T *gi = g, *gf = g + H, *gg = g + 2 * H, *go = g + 3 * H;
    T* cn = Cn + tb * H;
    if (w_ci) {
      for (int64_t j = 0; j < H; ++j) {
        gi[j] = sigmoid(gi[j] + w_ci[j] * c_prev[j]);
        gf[j] = sigmoid(gf[j] + w_cf[j] * c_prev[j]);
      }
    } else {
      for (int64_t j = 0; j < H; ++j) {
        gi[j] = sigmoid(gi[j]);
        gf[j] = sigmoid(gf[j]);
      }
    }
    for (int64_t j = 0; j < H; ++j) {
      gg[j] = tanh_(gg[j]);
      cn[j] = gf[j] * c_prev[j] + gi[j] * gg[j];
    }
    T* tc = TC + tb * H;
    if (lnc_w) {
      T mean, rstd;
      row_stats(cn, H, eps, mean, rstd);
      SC[2 * tb] = mean;
      SC[2 * tb + 1] = rstd;
      for (int64_t j = 0; j < H; ++j) tc[j] = tanh_((cn[j] - mean) * rstd * lnc_w[j] + lnc_b[j]);
    } else {
      for (int64_t j = 0; j < H; ++j) tc[j] = tanh_(cn[j]);
    }
    if (w_co) {
      for (int64_t j = 0; j < H; ++j) go[j] = sigmoid(go[j] + w_co[j] * cn[j]);
    } else {
      for (int64_t j = 0; j < H; ++j) go[j] = sigmoid(go[j]);
    }
    // the c state: lerp(c_new, c_prev, keep) or c_new itself (C aliases Cn without keep_c)
    if (keep_c) {
      const T* k = keep_c + tb * H;
      T* c = C + tb * H;
      for (int64_t j = 0; j < H; ++j) c[j] = lerp(cn[j], c_prev[j], k[j]);
    }
    T* hf = HF ? HF + tb * H : Hs + tb * P;  // without projection P == H and h_new goes to Hs[t]
    for (int64_t j = 0; j < H; ++j) hf[j] = go[j] * tc[j];
  }
};

template <typename T>
std::vector<Tensor> forward_impl(const Tensor& xp, const Tensor& w_hh_t, const Tensor& h0, const Tensor& c0,
                                 const OptTensor& w_hr_t, const OptTensor& peep, const OptTensor& ln_hh_w,
                                 const OptTensor& ln_hh_b, const OptTensor& ln_c_w, const OptTensor& ln_c_b,
                                 const OptTensor& h_mask, const OptTensor& keep_h, const OptTensor& keep_c,
                                 const OptTensor& ln_ih_w, const OptTensor& in_bias, const OptTensor& w_ih_t,
                                 double eps, bool xp_scratch, bool fuse_input) {
  // xp: the input projections (T, B, 4H), or with w_ih_t (I, 4H) the input x (T, B, I) itself;
  // xp_scratch: xp is the caller's temporary and the gates may be written over it (no copy);
  // fuse_input (with w_ih_t, without LayerNorms): x_t W_ih^T is not one product before the loop but part
  // of each step's, [x_t, h_{t-1}] @ [W_ih^T; W_hh^T], the rows [x_t, h_{t-1}] kept in XH (T, B, I + P)
  // (the weight gradients' left-hand factor in the backward)
  const bool in_proj = present(w_ih_t);
  const int64_t Tn = xp.size(0), B = xp.size(1), G4 = in_proj ? w_ih_t->size(1) : xp.size(2);
  const int64_t H = G4 / 4, P = w_hh_t.size(0);
  auto opts = xp.options();
  const bool adopt_xp = xp_scratch && !present(ln_hh_w) && !in_proj;
  Tensor G = adopt_xp ? xp : seq_empty({Tn, B, G4}, opts);
  Tensor Cn = seq_empty({Tn, B, H}, opts);
  Tensor TC = seq_empty({Tn, B, H}, opts);
  Tensor C = present(keep_c) ? seq_empty({Tn, B, H}, opts) : Cn;
  Tensor Hs = seq_empty({Tn, B, P}, opts);
  const bool proj = present(w_hr_t), ln_r = present(ln_hh_w), ln_c = present(ln_c_w);
  Tensor HF = proj ? seq_empty({Tn, B, H}, opts) : none_tensor(xp);
  Tensor R = ln_r ? seq_empty({Tn, B, G4}, opts) : none_tensor(xp);
  Tensor SR = ln_r ? seq_empty({Tn, B, 2}, opts) : none_tensor(xp);
  Tensor SC = ln_c ? seq_empty({Tn, B, 2}, opts) : none_tensor(xp);
  const bool ln_x = present(ln_ih_w);
  TORCH_CHECK(!ln_x || (ln_r && present(in_bias)), "lstm_forward: ln_ih_w needs ln_hh_w and in_bias");
  TORCH_CHECK(!ln_r || ln_x || (!present(in_bias) && !in_proj),
              "lstm_forward: with ln_hh_w, in_bias and w_ih_t need ln_ih_w (the fused input LayerNorm)");
  Tensor SX = ln_x ? seq_empty({Tn, B, 2}, opts) : none_tensor(xp);
  TORCH_CHECK(!fuse_input || (in_proj && !ln_r), "lstm_forward: fuse_input needs w_ih_t and no ln_hh_w");
  const int64_t I = in_proj ? xp.size(2) : 0, IP = I + P;  // the width of XH's rows [x_t, h_{t-1}]
  Tensor XH = fuse_input ? seq_empty({Tn, B, IP}, opts) : none_tensor(xp);
  // x W_ih^T: straight into the gate buffer (biases added in the row pass), or kept apart when the
  // gates take LayerNorms of it (then the backward needs it)
  Tensor XW = none_tensor(xp);
  if (in_proj && !fuse_input) {
    const Tensor x2d = xp.reshape({Tn * B, xp.size(2)});
    if (ln_r) {
      XW = seq_empty({Tn, B, G4}, opts);
      Tensor dst = XW.view({Tn * B, G4});
      at::mm_out(dst, x2d, *w_ih_t);
    } else {
      Tensor dst = G.view({Tn * B, G4});
      at::mm_out(dst, x2d, *w_ih_t);
    }
  }
  Tensor hin = (present(h_mask) && !fuse_input) ? at::empty({B, P}, opts) : Tensor();  // (fused: into XH)
  Tensor hn = (proj && present(keep_h)) ? at::empty({B, P}, opts) : Tensor();

  LSTMForward<T> k;
  k.xp = in_proj ? (ln_r ? XW.data_ptr<T>() : nullptr) : xp.data_ptr<T>();
  const T* pp = ptr_or_null<T>(peep);
  k.w_ci = pp;
  k.w_cf = pp ? pp + H : nullptr;
  k.w_co = pp ? pp + 2 * H : nullptr;
  k.lnr_w = ptr_or_null<T>(ln_hh_w);
  k.lnr_b = ptr_or_null<T>(ln_hh_b);
  k.lnc_w = ptr_or_null<T>(ln_c_w);
  k.lnc_b = ptr_or_null<T>(ln_c_b);
  k.keep_h = ptr_or_null<T>(keep_h);
  k.keep_c = ptr_or_null<T>(keep_c);
  k.lnx_w = ptr_or_null<T>(ln_ih_w);
  k.in_b = ptr_or_null<T>(in_bias);
  k.SX = ln_x ? SX.data_ptr<T>() : nullptr;
  k.G = G.data_ptr<T>();
  k.Cn = Cn.data_ptr<T>();
  k.TC = TC.data_ptr<T>();
  k.C = C.data_ptr<T>();
  k.Hs = Hs.data_ptr<T>();
  k.HF = proj ? HF.data_ptr<T>() : nullptr;
  k.R = ln_r ? R.data_ptr<T>() : nullptr;
  k.SR = ln_r ? SR.data_ptr<T>() : nullptr;
  k.SC = ln_c ? SC.data_ptr<T>() : nullptr;
  k.B = B;
  k.H = H;
  k.P = P;
  k.eps = eps;

  if (!ln_r && !in_proj && !adopt_xp) G.copy_(xp);
  T* const hs_all = Hs.data_ptr<T>();
  SerialBlasGuard serial_blas(B * G4 < kSerialStepUnits);
  // the right-hand factor of each step's product: W_hh^T (P, 4H), or with fuse_input [W_ih^T; W_hh^T] (I + P, 4H)
  const StepMatrix<T> whh(fuse_input ? at::cat({*w_ih_t, w_hh_t}, 0) : w_hh_t, B);
  const std::optional<StepMatrix<T>> whr = proj ? std::optional<StepMatrix<T>>(std::in_place, *w_hr_t, B) : std::nullopt;
  const T* const xp_all = xp.data_ptr<T>();
  T* const xh_all = fuse_input ? XH.data_ptr<T>() : nullptr;
  // step t for the batch rows [b0, b1), on raw pointers (no per-step tensor views)
  const T* const h0p = h0.data_ptr<T>();
  const T* const hmp = ptr_or_null<T>(h_mask);  // (B, P)
  T* const hinp = hin.defined() ? hin.data_ptr<T>() : nullptr;
  T* const hnp = hn.defined() ? hn.data_ptr<T>() : nullptr;
  const auto step = [&](int64_t t, int64_t b0, int64_t b1) {
    const int64_t n = b1 - b0, tb0 = t * B + b0;
    const T* hp = t == 0 ? h0p : hs_all + (t - 1) * B * P;  // h_{t-1} (B, P)
    const T* cp = t == 0 ? c0.data_ptr<T>() : k.C + (t - 1) * B * H;  // c_{t-1} (B, H)
    const T* kh = k.keep_h ? k.keep_h + t * B * P : nullptr;
    if (xh_all) {  // XH[t] rows = [x_t, h_{t-1} (* h_mask)], then one product for both projections
      T* xh = xh_all + tb0 * IP;
      for (int64_t b = b0; b < b1; ++b, xh += IP) {
        std::copy(xp_all + (t * B + b) * I, xp_all + (t * B + b + 1) * I, xh);
        if (hmp) {
          for (int64_t j = 0; j < P; ++j) xh[I + j] = hp[b * P + j] * hmp[b * P + j];
        } else {
          std::copy(hp + b * P, hp + (b + 1) * P, xh + I);
        }
      }
      whh.mul(xh_all + tb0 * IP, IP, n, k.G + tb0 * G4, G4, false);
    } else {
      const T* h_in = hp + b0 * P;
      if (hmp) {  // variational dropout on the state entering the recurrent matmul
        for (int64_t j = b0 * P; j < b1 * P; ++j) hinp[j] = hp[j] * hmp[j];
        h_in = hinp + b0 * P;
      }
      if (ln_r) {
        whh.mul(h_in, P, n, k.R + tb0 * G4, G4, false);
      } else {
        whh.mul(h_in, P, n, k.G + tb0 * G4, G4, true);  // G holds xp (copied once, before the loop)
      }
    }
    for (int64_t b = b0; b < b1; ++b) k.row(t, b, cp + b * H);
    if (proj) whr->mul(k.HF + tb0 * H, H, n, (kh ? hnp : hs_all + t * B * P) + b0 * P, P, false);
    if (kh) {  // the h state: lerp(h_new, h_{t-1}, keep_h), h_new in hn (projection) or already in Hs[t]
      T* h = hs_all + t * B * P;
      const T* hnew = proj ? hnp : h;
      for (int64_t j = b0 * P; j < b1 * P; ++j) h[j] = lerp(hnew[j], hp[j], kh[j]);
    }
  };
  // batch rows never interact: each thread runs every step of its own block of rows, with no fork/join
  // and no wait for the slower thread between steps
  for_row_blocks(B, G4, [&](int64_t b0, int64_t b1) {
    for (int64_t t = 0; t < Tn; ++t) step(t, b0, b1);
  });
  return {G, Cn, TC, C, Hs, HF, R, SR, SC, SX, XW, XH};
}

template <typename T>
struct LSTMBackward {
  const T *G, *Cn, *TC, *C, *c0, *w_ci, *w_cf, *w_co, *lnc_w, *SC, *lnr_w, *R, *SR, *keep_c, *dCs, *lnx_w, *X, *SX;
  T *dG, *DR, *DX;
  int64_t B, H;
  // Column sums of the parameters applied at every step, one block of `sums_stride` per thread, each
  // thread adding its own rows' terms inside the row pass (no pass over dG, R and X after the loop):
  // at o_peep d w_ci, d w_cf, d w_co (3H); at o_lnr LN_hh's gain and bias (2 x 4H); at o_lnx the input
  // LN's gain (4H); at o_lnc LN_c's gain and bias (2H), then H of scratch for dL/dLN(c_new); at o_dg
  // 4H of scratch for the row's gate gradients when dG is not kept (dG null); at o_db, without LN_hh
  // (whose bias sum is the biases' gradient), sum dG (4H). -1: absent.
  T* sums = nullptr;
  int64_t sums_stride = 0, o_peep = -1, o_lnr = -1, o_lnx = -1, o_lnc = -1, o_dg = -1, o_db = -1;

  void layout_sums(bool peep, bool ln_r, bool ln_x, bool ln_c, bool dg_scratch) {
    int64_t n = 0;
    const auto take = [&](bool on, int64_t size) {
      const int64_t at = on ? n : -1;
      if (on) n += size;
      return at;
    };
    o_peep = take(peep, 3 * H);
    o_lnr = take(ln_r, 8 * H);
    o_lnx = take(ln_x, 4 * H);
    o_lnc = take(ln_c, 3 * H);
    o_dg = take(dg_scratch, 4 * H);
    o_db = take(!ln_r, 4 * H);
    sums_stride = (n + 15) / 16 * 16;  // whole cache lines: threads never share one
  }

  // dL/dc_new (in dgg on entry) -> the gradients of the i, f, g pre-activations, and dc (dL/dc_t on
  // entry) -> dL/dc_{t-1}, with the optional peephole, zoneout-keep and dL/dc_{t-1}-from-outside terms
  // chosen at compile time: with run-time tests inside, gcc leaves the loop scalar
  template <bool kPeep, bool kKeep, bool kCarry>
  RK_INLINE void gate_grads(const T* __restrict ai, const T* __restrict af, const T* __restrict ag,
                            const T* __restrict cp, const T* __restrict kc, const T* __restrict dcs,
                            T* __restrict dgi, T* __restrict dgf, T* __restrict dgg, T* __restrict dc) const {
    for (int64_t j = 0; j < H; ++j) {
      const T dcn = dgg[j];
      dgi[j] = dcn * ag[j] * ai[j] * (T(1) - ai[j]);
      dgf[j] = dcn * cp[j] * af[j] * (T(1) - af[j]);
      dgg[j] = dcn * ai[j] * (T(1) - ag[j] * ag[j]);
      T d = dcn * af[j];
      if constexpr (kPeep) d += dgi[j] * w_ci[j] + dgf[j] * w_cf[j];
      if constexpr (kKeep) d += dc[j] * kc[j];
      if constexpr (kCarry) d += dcs[j];
      dc[j] = d;
    }
  }

  // row b of step t: dhf = dL/d(o * tanh(.)), dc = dL/dc state at t, replaced by dL/dc_{t-1}; acc: the
  // calling thread's block of column sums (see sums)
  void row(int64_t t, int64_t b, const T* dhf, T* dc, T* acc) const {
    const int64_t G4 = 4 * H, tb = t * B + b;
    const T* g = G + tb * G4;
    const T *ai = g, *af = g + H, *ag = g + 2 * H, *ao = g + 3 * H;
    const T* tc = TC + tb * H;
    const T* cn = Cn + tb * H;
    const T* cp = t == 0 ? c0 + b * H : C + (tb - B) * H;
    T* dg = dG ? dG + tb * G4 : acc + o_dg;
    T *dgi = dg, *dgf = dg + H, *dgg = dg + 2 * H, *dgo = dg + 3 * H;
    const T* kc = keep_c ? keep_c + tb * H : nullptr;
    // dgg holds dL/dc_new while it is being assembled
    for (int64_t j = 0; j < H; ++j) {
      dgo[j] = dhf[j] * tc[j] * ao[j] * (T(1) - ao[j]);
      dgg[j] = kc ? dc[j] * (T(1) - kc[j]) : dc[j];
    }
    if (lnc_w) {  // dL/dc_new += LN backward of dy = dhf * o * (1 - tc^2)
      T* __restrict gain_sum = acc + o_lnc;
      T* __restrict bias_sum = gain_sum + H;
      T* __restrict dy = gain_sum + 2 * H;  // scratch
      const T mean = SC[2 * tb], rstd = SC[2 * tb + 1];
      T s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
      for (int64_t j = 0; j < H; ++j) {
        dy[j] = dhf[j] * ao[j] * (T(1) - tc[j] * tc[j]);
        const T a = dy[j] * lnc_w[j] * rstd, chat = (cn[j] - mean) * rstd;
        s1 += a;
        s2 += a * chat;
        gain_sum[j] += dy[j] * chat;
        bias_sum[j] += dy[j];
      }
      s1 /= T(H);
      s2 /= T(H);
      for (int64_t j = 0; j < H; ++j) {
        const T a = dy[j] * lnc_w[j] * rstd, chat = (cn[j] - mean) * rstd;
        dgg[j] += a - s1 - chat * s2;
      }
    } else {
      for (int64_t j = 0; j < H; ++j) dgg[j] += dhf[j] * ao[j] * (T(1) - tc[j] * tc[j]);
    }
    if (w_co) {
      for (int64_t j = 0; j < H; ++j) dgg[j] += dgo[j] * w_co[j];
    }
    const T* dcs = (dCs && t > 0) ? dCs + (tb - B) * H : nullptr;
    with_flags(w_ci != nullptr, kc != nullptr, dcs != nullptr, [&](auto peep, auto keep, auto carry) {
      gate_grads<peep(), keep(), carry()>(ai, af, ag, cp, kc, dcs, dgi, dgf, dgg, dc);
    });
    if (w_ci) {  // d w_ci = sum dG_i c_{t-1}, d w_cf = sum dG_f c_{t-1}, d w_co = sum dG_o c_new
      T* __restrict ps = acc + o_peep;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        ps[j] += dgi[j] * cp[j];
        ps[H + j] += dgf[j] * cp[j];
        ps[2 * H + j] += dgo[j] * cn[j];
      }
    }
    if (o_db >= 0) {  // the gradient of the biases added to the gates
      T* __restrict db = acc + o_db;
#pragma omp simd
      for (int64_t j = 0; j < G4; ++j) db[j] += dg[j];
    }
    if (R && lnx_w) {  // both LayerNorms at once: dL/d(W_hh h) and dL/d(x W_ih^T), their gains' and
      T* ls = acc + o_lnr;  // the shared bias sum
      ln2_backward_row_sums(dg, R + tb * G4, lnr_w, SR + 2 * tb, X + tb * G4, lnx_w, SX + 2 * tb, G4,
                            DR + tb * G4, DX + tb * G4, ls, ls + G4, acc + o_lnx);
    } else if (R) {  // dL/d(W_hh h) through its LayerNorm; its gain gets sum dG * r_hat, its bias sum dG
      T* ls = acc + o_lnr;
      ln_backward_row_sums(dg, R + tb * G4, lnr_w, SR + 2 * tb, G4, DR + tb * G4, ls, ls + G4);
    }
  }
};

template <typename T>
std::vector<Tensor> backward_impl(const Tensor& G, const Tensor& Cn, const Tensor& TC, const Tensor& C,
                                  const Tensor& c0, const Tensor& w_hh, const OptTensor& w_hr,
                                  const OptTensor& peep, const OptTensor& ln_c_w, const OptTensor& SC,
                                  const OptTensor& ln_hh_w, const OptTensor& R, const OptTensor& SR,
                                  const OptTensor& h_mask, const OptTensor& keep_h, const OptTensor& keep_c,
                                  const OptTensor& dY, const OptTensor& dCs, Tensor dh, Tensor dc,
                                  const OptTensor& ln_ih_w, const OptTensor& X, const OptTensor& SX,
                                  const OptTensor& w_ih) {
  // w_ih (4H, I): the forward's input projection was fused into its steps (fuse_input), and dL/dx_t is
  // part of each step's product here too: dG_t @ [W_ih, W_hh] gives [dL/dx_t, dL/dh_{t-1}] (DXI (T, B, I))
  const int64_t Tn = G.size(0), B = G.size(1), G4 = G.size(2), H = G4 / 4, P = w_hh.size(1);
  const bool fuse_dx = present(w_ih);
  TORCH_CHECK(!fuse_dx || !present(R), "lstm_backward: w_ih (the fused dL/dx) needs no LayerNorm on W_hh h");
  const int64_t I = fuse_dx ? w_ih->size(1) : 0, IP = I + P;
  Tensor DXI = fuse_dx ? seq_empty({Tn, B, I}, G.options()) : none_tensor(G);
  Tensor dxh = fuse_dx ? at::empty({B, IP}, G.options()) : Tensor();  // one step's [dL/dx_t, dL/dh_{t-1}]
  auto opts = G.options();
  const bool proj = present(w_hr), ln_r = present(R), ln_c = present(ln_c_w);
  // with both LayerNorms the gate gradients only feed the row's own LN backward passes (the weight
  // gradients take DR and DX, the biases the column sums): each row's stay in its thread's scratch
  const bool keep_dG = !(present(R) && present(ln_ih_w));
  Tensor dG = keep_dG ? seq_empty({Tn, B, G4}, opts) : none_tensor(G);
  Tensor DR = ln_r ? seq_empty({Tn, B, G4}, opts) : none_tensor(G);
  const bool ln_x = present(ln_ih_w);
  Tensor DX = ln_x ? seq_empty({Tn, B, G4}, opts) : none_tensor(G);
  Tensor dHN = proj ? seq_empty({Tn, B, P}, opts) : none_tensor(G);
  Tensor dhf_buf = at::empty({B, H}, opts);
  Tensor dh_next = at::empty({B, P}, opts);
  Tensor tmp = (present(h_mask) && !fuse_dx) ? at::empty({B, P}, opts) : Tensor();  // (fused: dxh)

  LSTMBackward<T> k;
  k.G = G.data_ptr<T>();
  k.Cn = Cn.data_ptr<T>();
  k.TC = TC.data_ptr<T>();
  k.C = C.data_ptr<T>();
  k.c0 = c0.data_ptr<T>();
  const T* pp = ptr_or_null<T>(peep);
  k.w_ci = pp;
  k.w_cf = pp ? pp + H : nullptr;
  k.w_co = pp ? pp + 2 * H : nullptr;
  k.lnc_w = ptr_or_null<T>(ln_c_w);
  k.SC = ptr_or_null<T>(SC);
  k.lnr_w = ptr_or_null<T>(ln_hh_w);
  k.R = ptr_or_null<T>(R);
  k.SR = ptr_or_null<T>(SR);
  k.keep_c = ptr_or_null<T>(keep_c);
  k.dCs = ptr_or_null<T>(dCs);
  k.dG = keep_dG ? dG.data_ptr<T>() : nullptr;
  k.DR = ln_r ? DR.data_ptr<T>() : nullptr;
  k.lnx_w = ptr_or_null<T>(ln_ih_w);
  k.X = ptr_or_null<T>(X);
  k.SX = ptr_or_null<T>(SX);
  k.DX = ln_x ? DX.data_ptr<T>() : nullptr;
  k.B = B;
  k.H = H;
  k.layout_sums(present(peep), ln_r, ln_x, ln_c, !keep_dG);
  const int64_t sum_blocks = at::get_num_threads();
  Tensor sums = at::zeros({sum_blocks, k.sums_stride}, opts);
  k.sums = sums.data_ptr<T>();
  const T* kh_all = ptr_or_null<T>(keep_h);
  const T* dy_all = ptr_or_null<T>(dY);
  const T* hm = ptr_or_null<T>(h_mask);

  SerialBlasGuard serial_blas(B * G4 < kSerialStepUnits);
  const StepMatrix<T> whh(fuse_dx ? at::cat({*w_ih, w_hh}, 1) : w_hh, B);  // (4H, P) or (4H, I + P)
  const std::optional<StepMatrix<T>> whr = proj ? std::optional<StepMatrix<T>>(std::in_place, *w_hr, B) : std::nullopt;
  T* const dxi_all = fuse_dx ? DXI.data_ptr<T>() : nullptr;
  T* const dxh_p = fuse_dx ? dxh.data_ptr<T>() : nullptr;
  // step t for the batch rows [b0, b1): dhp holds dL/dh_t, dn receives dL/dh_{t-1} (raw pointers, as the forward)
  T* const dcp = dc.data_ptr<T>();
  T* const dhf_p = dhf_buf.data_ptr<T>();
  T* const dhn_p = proj ? dHN.data_ptr<T>() : nullptr;
  T* const tmp_p = tmp.defined() ? tmp.data_ptr<T>() : nullptr;
  const T* const dgw_p = ln_r ? k.DR : k.dG;
  // dL/dh_{t-1} rows [b0, b1) of dn (=, or += with has_base) the product's rows in s (row stride lds),
  // times h_mask where there is one (the tests outside the loops: see dn in step)
  const auto merge_product = [&](const T* s, int64_t lds, int64_t b0, int64_t b1, T* dn, bool has_base) {
    for (int64_t b = b0; b < b1; ++b) {
      const T* sr = s + b * lds;
      T* d = dn + b * P;
      const T* m = hm ? hm + b * P : nullptr;
      if (m && has_base) {
        for (int64_t j = 0; j < P; ++j) d[j] += sr[j] * m[j];
      } else if (m) {
        for (int64_t j = 0; j < P; ++j) d[j] = sr[j] * m[j];
      } else if (has_base) {
        for (int64_t j = 0; j < P; ++j) d[j] += sr[j];
      } else {
        std::copy(sr, sr + P, d);
      }
    }
  };
  const auto step = [&](int64_t t, int64_t b0, int64_t b1, const T* dhp, T* dn) {
    const int64_t n = b1 - b0;
    const T* kh = kh_all ? kh_all + t * B * P : nullptr;
    const T* dyp = (dy_all && t > 0) ? dy_all + (t - 1) * B * P : nullptr;
    // dL/dh_new = dh * (1 - keep_h) (the kept share goes to h_{t-1} below), then through the projection
    const T* dhf = dhp;
    if (proj || kh) {
      T* const dhn_t = proj ? dhn_p + t * B * P : nullptr;
      T* o = proj ? dhn_t : dhf_p;
      if (kh) {  // (the test outside the loop: see dn below)
        for (int64_t j = b0 * P; j < b1 * P; ++j) o[j] = dhp[j] * (T(1) - kh[j]);
      } else {
        std::copy(dhp + b0 * P, dhp + b1 * P, o + b0 * P);
      }
      if (proj) whr->mul(dhn_t + b0 * P, P, n, dhf_p + b0 * H, H, false);
      dhf = dhf_p;
    }
    const int64_t tid = at::get_thread_num();
    TORCH_CHECK(tid < sum_blocks, "lstm_backward: thread ", tid, " of ", sum_blocks);
    T* acc = k.sums + tid * k.sums_stride;
    for (int64_t b = b0; b < b1; ++b) k.row(t, b, dhf + b * H, dcp + b * H, acc);
    // dL/dh_{t-1} = dgw W_hh (* h_mask) + dY[t-1] + keep_h * dh
    const bool has_base = dyp || kh;
    // the tests of dyp and kh stay outside the loops: inside, gcc made them masked loads (vmaskmovps), and
    // an all-false mask on a null pointer cost a microcode assist per vector on Zen 3 (1.35x the backward)
    if (dyp && kh) {
      for (int64_t j = b0 * P; j < b1 * P; ++j) dn[j] = dyp[j] + dhp[j] * kh[j];
    } else if (kh) {
      for (int64_t j = b0 * P; j < b1 * P; ++j) dn[j] = dhp[j] * kh[j];
    } else if (dyp) {
      std::copy(dyp + b0 * P, dyp + b1 * P, dn + b0 * P);
    }
    const T* dgw_blk = dgw_p + (t * B + b0) * G4;
    if (dxi_all) {  // [dL/dx_t, dL/dh_{t-1} from the product] for the block, then split
      whh.mul(dgw_blk, G4, n, dxh_p + b0 * IP, IP, false);
      for (int64_t b = b0; b < b1; ++b) std::copy(dxh_p + b * IP, dxh_p + b * IP + I, dxi_all + (t * B + b) * I);
      merge_product(dxh_p + I, IP, b0, b1, dn, has_base);
    } else if (hm) {
      whh.mul(dgw_blk, G4, n, tmp_p + b0 * P, P, false);
      merge_product(tmp_p, P, b0, b1, dn, has_base);
    } else {
      whh.mul(dgw_blk, G4, n, dn + b0 * P, P, has_base);
    }
  };
  // batch rows never interact: each thread runs every step of its own block of rows (as the forward),
  // the two dh buffers swapping roles at each step
  T* const dh_a = dh.data_ptr<T>();
  T* const dh_z = dh_next.data_ptr<T>();
  for_row_blocks(B, G4, [&](int64_t b0, int64_t b1) {
    for (int64_t t = Tn - 1; t >= 0; --t) {
      const bool even = (Tn - 1 - t) % 2 == 0;
      step(t, b0, b1, even ? dh_a : dh_z, even ? dh_z : dh_a);
    }
  });
  if (Tn % 2 == 1) std::swap(dh, dh_next);  // dL/dh_0's buffer: the last one written
  // the parameters applied at every step: their gradients are the column sums, added up over the threads
  // in thread order (the same result for the same thread count)
  const T* sp = k.sums;
  const auto collect = [&](int64_t offset, int64_t rows, int64_t cols) {
    if (offset < 0) return none_tensor(G);
    Tensor out = at::zeros({rows, cols}, opts);
    T* o = out.data_ptr<T>();
    for (int64_t blk = 0; blk < sum_blocks; ++blk)
      for (int64_t j = 0; j < rows * cols; ++j) o[j] += sp[blk * k.sums_stride + offset + j];
    return out;
  };
  Tensor d_peep = collect(k.o_peep, 3, H);
  Tensor d_lnr = collect(k.o_lnr, 2, G4);
  Tensor d_lnc = collect(k.o_lnc, 2, H);
  Tensor d_lnx = collect(k.o_lnx, 1, G4);
  Tensor d_bias = collect(k.o_db, 1, G4);
  return {dG, DR, dHN, dh, dc, d_peep, d_lnr, d_lnc, DX, d_lnx, d_bias, DXI};
}

std::vector<Tensor> lstm_forward(const Tensor& xp, const Tensor& w_hh_t, const Tensor& h0, const Tensor& c0,
                                 const OptTensor& w_hr_t, const OptTensor& peep, const OptTensor& ln_hh_w,
                                 const OptTensor& ln_hh_b, const OptTensor& ln_c_w, const OptTensor& ln_c_b,
                                 const OptTensor& h_mask, const OptTensor& keep_h, const OptTensor& keep_c,
                                 const OptTensor& ln_ih_w, const OptTensor& in_bias, const OptTensor& w_ih_t,
                                 double eps, bool xp_scratch, bool fuse_input) {
  const auto dt = xp.scalar_type();
  if (present(w_ih_t)) {
    TORCH_CHECK(xp.dim() == 3 && w_ih_t->dim() == 2 && w_ih_t->size(0) == xp.size(2) && w_ih_t->size(1) % 4 == 0,
                "lstm_forward: x must be (T, B, I) and w_ih_t (I, 4H), got ", xp.sizes(), " and ", w_ih_t->sizes());
  } else {
    TORCH_CHECK(xp.dim() == 3 && xp.size(2) % 4 == 0, "lstm_forward: xp must be (T, B, 4H), got ", xp.sizes());
  }
  check_cpu_contiguous(xp, "xp", dt);
  check_cpu_contiguous(w_hh_t, "w_hh_t", dt);
  check_cpu_contiguous(h0, "h0", dt);
  check_cpu_contiguous(c0, "c0", dt);
  check_opt(w_hr_t, "w_hr_t", dt);
  check_opt(peep, "peep", dt);
  check_opt(ln_hh_w, "ln_hh_w", dt);
  check_opt(ln_hh_b, "ln_hh_b", dt);
  check_opt(ln_c_w, "ln_c_w", dt);
  check_opt(ln_c_b, "ln_c_b", dt);
  check_opt(h_mask, "h_mask", dt);
  check_opt(keep_h, "keep_h", dt);
  check_opt(keep_c, "keep_c", dt);
  check_opt(ln_ih_w, "ln_ih_w", dt);
  check_opt(in_bias, "in_bias", dt);
  check_opt(w_ih_t, "w_ih_t", dt);
  std::vector<Tensor> out;
  at::AutoDispatchBelowADInplaceOrView below_autograd;  // raw kernels: the Python Function does autograd
  AT_DISPATCH_FLOATING_TYPES(dt, "lstm_forward", [&] {
    out = forward_impl<scalar_t>(xp, w_hh_t, h0, c0, w_hr_t, peep, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b, h_mask,
                                 keep_h, keep_c, ln_ih_w, in_bias, w_ih_t, eps, xp_scratch, fuse_input);
  });
  return out;
}

std::vector<Tensor> lstm_backward(const Tensor& G, const Tensor& Cn, const Tensor& TC, const Tensor& C,
                                  const Tensor& c0, const Tensor& w_hh, const OptTensor& w_hr,
                                  const OptTensor& peep, const OptTensor& ln_c_w, const OptTensor& SC,
                                  const OptTensor& ln_hh_w, const OptTensor& R, const OptTensor& SR,
                                  const OptTensor& h_mask, const OptTensor& keep_h, const OptTensor& keep_c,
                                  const OptTensor& dY, const OptTensor& dCs, const Tensor& dh_T,
                                  const Tensor& dc_T, const OptTensor& ln_ih_w, const OptTensor& X,
                                  const OptTensor& SX, const OptTensor& w_ih) {
  const auto dt = G.scalar_type();
  for (auto* p : {&G, &Cn, &TC, &C, &c0, &w_hh, &dh_T, &dc_T}) check_cpu_contiguous(*p, "lstm_backward input", dt);
  for (auto* p : {&w_hr, &peep, &ln_c_w, &SC, &ln_hh_w, &R, &SR, &h_mask, &keep_h, &keep_c, &dY, &dCs, &ln_ih_w, &X, &SX, &w_ih})
    check_opt(*p, "lstm_backward input", dt);
  TORCH_CHECK(!present(w_ih) || (w_ih->dim() == 2 && w_ih->size(0) == G.size(2)),
              "lstm_backward: w_ih must be (4H, I) with 4H = ", G.size(2), ", got ", w_ih->sizes());
  std::vector<Tensor> out;
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  AT_DISPATCH_FLOATING_TYPES(dt, "lstm_backward", [&] {
    out = backward_impl<scalar_t>(G, Cn, TC, C, c0, w_hh, w_hr, peep, ln_c_w, SC, ln_hh_w, R, SR, h_mask, keep_h,
                                  keep_c, dY, dCs, dh_T.clone(), dc_T.clone(), ln_ih_w, X, SX, w_ih);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rnnkit_cpu, m) {
  m.def("lstm_forward(Tensor xp, Tensor w_hh_t, Tensor h0, Tensor c0, Tensor? w_hr_t, Tensor? peep, "
        "Tensor? ln_hh_w, Tensor? ln_hh_b, Tensor? ln_c_w, Tensor? ln_c_b, Tensor? h_mask, Tensor? keep_h, "
        "Tensor? keep_c, Tensor? ln_ih_w, Tensor? in_bias, Tensor? w_ih_t, float eps, bool xp_scratch=False, "
        "bool fuse_input=False) -> Tensor[]",
        &lstm_forward);
  m.def("lstm_backward(Tensor G, Tensor Cn, Tensor TC, Tensor C, Tensor c0, Tensor w_hh, Tensor? w_hr, "
        "Tensor? peep, Tensor? ln_c_w, Tensor? SC, Tensor? ln_hh_w, Tensor? R, Tensor? SR, Tensor? h_mask, "
        "Tensor? keep_h, Tensor? keep_c, Tensor? dY, Tensor? dCs, Tensor dh_T, Tensor dc_T, Tensor? ln_ih_w, "
        "Tensor? X, Tensor? SX, Tensor? w_ih=None) -> Tensor[]",
        &lstm_backward);
}

}  // namespace rnnkit
