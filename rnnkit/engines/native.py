"""The native engine: configurations torch.nn implements go to torch's fused RNN kernels
(cuDNN on GPU, oneDNN or ATen's native loop on CPU): LSTM (with proj_size), GRU with the reset gate
after the matmul, Elman with tanh or relu, padded, with lengths (packed internally) or packed.

One time step on the CPU (step-by-step generation, beam search) runs torch's own cell functions
(``torch.lstm_cell``, ``torch.gru_cell``, ``torch.rnn_tanh_cell``, ``torch.rnn_relu_cell``) layer by
layer instead: torch's fused CPU LSTM (oneDNN) re-packs the weights into its own layout on every
call, 2-12 ms a call for two layers at H = 256-512, many times the step's own cost, and a generator pays it at
every token (``one_step``).

DropConnect runs here too, as AWD-LSTM's WeightDrop runs it: the layer's mask is applied to each
cell's W_hh (``cell.step_context``) and the masked weight goes to the fused kernel; autograd takes
the gradient back through the mask. On CUDA the masked weights are not one flat chunk, so cuDNN
copies them into one per call (its "not part of single contiguous chunk" warning is expected there).
"""
from __future__ import annotations

import warnings
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .base import DirectionMasks, Engine, Request, State, cpu_autocast_dtype
from .single_step import gru_kernel_serves

_TORCH_FN = {"lstm": torch.lstm, "gru": torch.gru}
#: below this many sequences a CPU DropConnect call goes to the cpp engine (bench/RESULTS.md, CPU)
DROPCONNECT_MIN_BATCH = 4
#: a single sequence trained on the CPU with at least this many steps x hidden units goes to the cpp engine
ONE_SEQUENCE_MIN_WORK = 25600
#: a batch trained on the CPU goes to the cpp engine with this many sequences per thread, this many steps,
#: and at most this many hidden units (see _cpp_runs_faster_reason)
BATCH_ROWS_PER_THREAD = 16
BATCH_MIN_STEPS = 100
BATCH_MAX_HIDDEN = 256
#: a CPU call with lengths goes to the cpp engine when it keeps gradients, or without them up to this width
LENGTHS_NO_GRAD_MAX_HIDDEN = 256
#: float32 calls whose threads get rnnkit.engines.cpp.lstm.FUSED_INPUT_MIN_ROWS rows each (the cpp loop with
#: the input projection inside its steps, on the panel kernels) go to the cpp engine from FUSED_MIN_STEPS
#: steps: trained up to FUSED_MAX_HIDDEN units (past FUSED_NARROW_HIDDEN from FUSED_WIDE_MIN_STEPS steps),
#: without gradients up to FUSED_NO_GRAD_MAX_HIDDEN (see _fused_loop_reason)
FUSED_MIN_STEPS = 10
FUSED_MAX_HIDDEN = 512
FUSED_NARROW_HIDDEN = 256
FUSED_WIDE_MIN_STEPS = 50
FUSED_NO_GRAD_MAX_HIDDEN = 256
_CELL_FN = {"gru": torch.gru_cell, "tanh": torch.rnn_tanh_cell, "relu": torch.rnn_relu_cell}
_CUDNN_MODE = {"RNN_RELU": 0, "RNN_TANH": 1, "LSTM": 2, "GRU": 3}


def _config_reason(cell) -> Optional[str]:
    cfg = cell.config
    if cell.family == "lstm":
        if cfg.peephole:
            return "torch has no peephole LSTM"
        if cfg.layer_norm:
            return "torch has no layer-normalised LSTM"
    elif cell.family == "gru":
        if not cfg.reset_after:
            return "torch's GRU applies the reset gate after the matmul; this cell applies it before (Cho et al.)"
        if cfg.layer_norm:
            return "torch has no layer-normalised GRU"
    elif cell.family == "elman":
        if cfg.activation not in ("tanh", "relu"):
            return f"torch's RNN supports tanh and relu only, not {cfg.activation!r}"
        if cfg.output_size:
            return "torch's RNN has no per-step output layer"
    else:
        return f"torch.nn has no {cell.family} cell"
    return None


def _onednn_low_precision_reason(cell) -> Optional[str]:
    """Under CPU autocast to bfloat16 or float16, torch's fused LSTM (without projection) runs oneDNN's
    LSTM in that precision, and on a CPU without oneDNN's instructions for it (AVX-512 BF16 / FP16:
    ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` false, as on AMD Zen 3) oneDNN cannot create the
    primitive and torch.nn.LSTM itself raises. Such calls go to the engines that compute in the
    parameters' dtype instead."""
    if cell.family != "lstm" or cell.config.proj_size or not torch.backends.mkldnn.is_available():
        return None
    if not torch.backends.mkldnn.enabled:
        return None  # torch then runs its own loop, which takes any precision
    dtype = cpu_autocast_dtype()
    checks = {torch.bfloat16: "_is_mkldnn_bf16_supported", torch.float16: "_is_mkldnn_fp16_supported"}
    if dtype not in checks:
        return None
    check = getattr(torch.ops.mkldnn, checks[dtype], None)
    if check is None or check():
        return None
    return (f"torch's fused CPU LSTM runs oneDNN in {dtype} under autocast, which this CPU cannot "
            f"(torch.ops.mkldnn.{checks[dtype]}() is False; torch.nn.LSTM raises here)")


def _fused_loop_reason(req: Request, B: int, T: int, H: int) -> Optional[str]:
    """Why a float32 call runs faster on the cpp loop that folds the input projection into each step's
    product (``rnnkit.engines.cpp.lstm.fuses_input``), or None. Measured on a 2-core Zen 3 (AVX2 panel
    kernel; bench/RESULTS.md run K, paired steps, same weights), cpp against native:

    * trained, 8+ rows per thread: 1.06-1.41x at B = 16-128, T = 10-200, H = 128-256 (two threads) and
      1.13-1.27x on one thread; at H = 512 1.02-1.21x from T = 50, but 0.88x at (8, 35, 512) on one
      thread; at H = 768 1.10x, at H = 1024 0.82x, so up to FUSED_MAX_HIDDEN;
    * without gradients, 8+ rows per thread: 1.09-1.27x at H = 128-256, T = 10-100; at H = 512 0.95-1.11x
      and at 1024 0.79x, so up to FUSED_NO_GRAD_MAX_HIDDEN;
    * fewer rows per thread (the loop without the fusion) was 0.88-1.21x: native keeps those (the batch rule
      below and the B = 1 rule take their own measured regions)."""
    if req.dtype != torch.float32 or T < FUSED_MIN_STEPS:
        return None
    if req.needs_grad:
        if H > FUSED_MAX_HIDDEN or (H > FUSED_NARROW_HIDDEN and T < FUSED_WIDE_MIN_STEPS):
            return None
    elif H > FUSED_NO_GRAD_MAX_HIDDEN:
        return None
    from .cpp import lstm as cpp_lstm
    from .cpp.build import build_error

    if build_error() is not None or not cpp_lstm.fuses_input(B, 4 * H, req.dtype):
        return None
    rows = cpp_lstm.rows_per_block(B, 4 * H)
    kind = "trains" if req.needs_grad else "runs without gradients"
    return (f"a float32 batch with {rows} rows per thread (>= {cpp_lstm.FUSED_INPUT_MIN_ROWS}), T = {T}, H = {H} "
            f"{kind} faster on the cpp engine's time loop, which takes the input projection into each step's "
            f"product on its panel kernel, than on oneDNN's (1.06-1.41x trained, 1.09-1.27x without gradients)")


def _cpp_runs_faster_reason(req: Request) -> Optional[str]:
    """Plain LSTMs on the CPU in four measured regions where the cpp engine's time loop beats torch's fused
    LSTM (bench/RESULTS.md, paired steps, same weights):

    * with lengths (``lengths=`` or a PackedSequence): torch runs the packed sequence through ATen's
      per-step loop, not oneDNN; the cpp loop (every step of every row, frozen past each length) trained
      1.6-7.4x faster at B = 2-64, T = 20-200, H = 64-1024, and ran forward passes without gradients
      1.4-2.1x faster at H <= LENGTHS_NO_GRAD_MAX_HIDDEN (0.87-1.12x at H = 512-1024, kept on native);
    * one sequence (B = 1) trained, T x H >= ONE_SEQUENCE_MIN_WORK: oneDNN re-packs its weights at every
      call and runs its matrix-vector products through its GEMM; cpp trained 1.13-1.40x faster at T = 100
      and H = 256-1024 (1 and 2 layers), 1.30-1.35x at T = 50-60 and H = 512-768, 1.00-1.08x at
      T = 200-400 and H = 64-128; below the line it was 0.76-1.13x (T = 35-100, H = 64-512);
    * a batch trained with at least BATCH_ROWS_PER_THREAD sequences per thread, T >= BATCH_MIN_STEPS,
      H <= BATCH_MAX_HIDDEN: 1.07-1.56x at B = 32-128, T = 100-200, H = 64-256, 1-2 layers, both
      directions, 2 threads (each thread runs its own rows through every step; oneDNN's per-call buffers
      grow with T x B, the cpp engine's come from its pool), level at the region's corner (32, 100, 128)
      and on one thread; outside it 0.73-1.06x (B = 2-16, T = 35-64, or H = 512), so native keeps those.

    * float32 batches with enough rows per thread for the fused loop (``_fused_loop_reason``), trained or not.

    Other forward passes without gradients (no lengths) stay on native (0.67-0.88x on cpp before the fused
    loop)."""
    cell = req.layer.first_cell
    if req.device.type != "cpu" or cell.family != "lstm" or cell.config.proj_size:
        return None
    if req.dtype not in (torch.float32, torch.float64) or cpu_autocast_dtype() is not None:
        return None  # (measured in float32 without autocast, where oneDNN would run in the lower precision)
    B, T, H = req.batch, req.steps, cell.hidden_size
    if req.has_lengths:
        if not req.needs_grad and H > LENGTHS_NO_GRAD_MAX_HIDDEN:
            return None
        why = ("with lengths, torch's CPU LSTM runs the packed sequence through ATen's per-step loop, not oneDNN; "
               "the cpp engine's time loop was 1.6-7.4x faster with gradients and 1.4-2.1x without (H <= "
               f"{LENGTHS_NO_GRAD_MAX_HIDDEN})")
    elif (fused := _fused_loop_reason(req, B, T, H)) is not None:
        return fused  # (the build was checked there)
    elif not req.needs_grad:
        return None
    elif B == 1 and T * H >= ONE_SEQUENCE_MIN_WORK:
        why = (f"one sequence with gradients (B = 1, T x H = {T * H} >= {ONE_SEQUENCE_MIN_WORK}) trains faster on "
               f"the cpp engine's time loop than on oneDNN's, which re-packs the weights at every call (1.13-1.40x "
               f"at T = 100, H = 256-1024)")
    elif (B >= BATCH_ROWS_PER_THREAD * torch.get_num_threads() and T >= BATCH_MIN_STEPS
          and H <= BATCH_MAX_HIDDEN):
        why = (f"a batch with gradients (B = {B} >= {BATCH_ROWS_PER_THREAD} per thread, T = {T} >= "
               f"{BATCH_MIN_STEPS}, H = {H} <= {BATCH_MAX_HIDDEN}) trains faster on the cpp engine's time loop "
               f"than on oneDNN's (1.07-1.56x at B = 32-128, T = 100-200, H = 64-256; level at (32, 100, 128))")
    else:
        return None
    from .cpp.build import build_error

    if build_error() is not None:  # the cpp engine cannot run: native stays the fastest that can
        return None
    return why


class NativeEngine(Engine):
    name = "native"
    scope = "stack"

    def supports(self, req: Request) -> Optional[str]:
        reason = _config_reason(req.layer.first_cell)
        if reason:
            return reason
        if req.device.type == "cpu":
            reason = _onednn_low_precision_reason(req.layer.first_cell)
            if reason:
                return reason
        reg = req.layer.regularization
        for name in ("variational_dropout", "recurrent_dropout", "zoneout"):
            if getattr(reg, name) and req.training:
                return f"torch's fused RNN has no {name.replace('_', ' ')}"
        if reg.zoneout:
            return "torch's fused RNN has no zoneout (it changes evaluation too)"
        if (reg.dropconnect and req.training and req.device.type == "cpu" and req.batch < DROPCONNECT_MIN_BATCH
                and req.steps > 1):
            return (f"DropConnect on a batch of fewer than {DROPCONNECT_MIN_BATCH} sequences runs faster on the cpp "
                    f"engine on the CPU (oneDNN re-packs the masked W_hh at every call: 0.78-0.82x torch.nn.LSTM "
                    f"at B = 1 against about 1.0x)")
        if req.all_states:
            return "torch's fused RNN returns only the last layer's outputs, not every step's full state"
        if getattr(req.layer, "engine", "auto") == "auto":
            reason = _cpp_runs_faster_reason(req)
            if reason:
                return reason
        faster = gru_kernel_serves(req)
        if faster:
            return faster
        if req.probe_grads or req.record_gates:
            return "gradient probes and gate traces need a step-by-step engine"
        if req.dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            return f"dtype {req.dtype} is not supported by torch's RNN kernels"
        return None

    @staticmethod
    def flat_weights(layer, masks: Optional[List[DirectionMasks]] = None) -> List[Tensor]:
        """Each cell's weights in torch's order; W_hh with the cell's DropConnect mask if it has one."""
        weights: List[Tensor] = []
        for i, cell in enumerate(layer.cells):
            mask = masks[i].dropconnect if masks is not None else None
            w_hh = cell.step_context(mask).weights["weight_hh"] if mask is not None else cell.weight_hh
            weights += [cell.weight_ih, w_hh]
            if cell.config.bias:
                weights += [cell.bias_ih, cell.bias_hh]
            if getattr(cell, "weight_hr", None) is not None:
                weights.append(cell.weight_hr)
        return weights

    @staticmethod
    def _cudnn_mode(cell) -> int:
        if cell.family == "elman":
            return _CUDNN_MODE["RNN_TANH" if cell.config.activation == "tanh" else "RNN_RELU"]
        return _CUDNN_MODE[cell.family.upper()]

    def flatten(self, layer) -> None:
        """Make the parameters views into one contiguous buffer, as cuDNN wants (what
        torch.nn's flatten_parameters does); the parameters stay the same objects."""
        weights = self.flat_weights(layer)
        if len({w.untyped_storage().data_ptr() for w in weights}) == 1:
            return  # already one chunk
        if not torch._use_cudnn_rnn_flatten_weight():
            return
        cell = layer.first_cell
        per_cell = len(weights) // len(layer.cells)
        with torch.no_grad():
            torch._cudnn_rnn_flatten_weight(weights, per_cell, layer.input_size, self._cudnn_mode(cell),
                                            cell.hidden_size, cell.config.proj_size if cell.family == "lstm" else 0,
                                            layer.num_layers, False, layer.bidirectional)

    def run_stack(self, layer, x: Tensor, state0: List[State], lengths: Optional[Tensor],
                  masks: List[DirectionMasks]):
        cell = layer.first_cell
        if x.is_cuda and torch.backends.cudnn.is_acceptable(x):
            self.flatten(layer)
        ncomp = len(cell.state_sizes)
        hx = [torch.stack([s[k] for s in state0]) for k in range(ncomp)]  # each (L*D, B, S_k)
        dropconnect = any(m.dropconnect is not None for m in masks)
        with warnings.catch_warnings():
            if dropconnect:  # the masked W_hh cannot live in the flat buffer: cuDNN's copy is expected
                warnings.filterwarnings("ignore", message=".*not part of single contiguous chunk.*")
            return self._run(layer, x, hx, state0, lengths, self.flat_weights(layer, masks))

    def _run(self, layer, x: Tensor, hx: List[Tensor], state0: List[State], lengths: Optional[Tensor],
             weights: List[Tensor]):
        cell = layer.first_cell
        ncomp = len(hx)
        if lengths is None and x.shape[0] == 1 and x.device.type == "cpu":
            return self.one_step(layer, x, hx, weights)
        args = (weights, cell.config.bias, layer.num_layers,
                float(layer.regularization.dropout), layer.training, layer.bidirectional)
        fn = self._function(cell)
        hx_arg = tuple(hx) if ncomp > 1 else hx[0]
        if lengths is None:
            out, *final = fn(x, hx_arg, *args, False)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
            hx_sorted = tuple(h.index_select(1, packed.sorted_indices) for h in hx)
            hx_arg = hx_sorted if ncomp > 1 else hx_sorted[0]
            data, *final = fn(packed.data, packed.batch_sizes, hx_arg, *args)
            out_packed = torch.nn.utils.rnn.PackedSequence(data, packed.batch_sizes,
                                                           packed.sorted_indices, packed.unsorted_indices)
            out, _ = pad_packed_sequence(out_packed, total_length=x.shape[0])
            final = [f.index_select(1, packed.unsorted_indices) for f in final]
        final_states = [tuple(f[i] for f in final) for i in range(len(state0))]
        return out, final_states

    @staticmethod
    def one_step(layer, x: Tensor, hx: List[Tensor], weights: List[Tensor]):
        """A call of one time step, x (1, B, I), through torch's cell functions layer by layer (the
        equations of torch.nn's layers: same weights, same gate order), dropout between layers in
        training as torch.nn applies it. hx: per state component (L*D, B, S_k)."""
        cell = layer.first_cell
        per = len(weights) // len(layer.cells)
        D, reg = layer.num_directions, layer.regularization
        inp = x[0]  # (B, I)
        finals = []
        for k in range(layer.num_layers):
            if k > 0 and reg.dropout and layer.training:
                inp = F.dropout(inp, reg.dropout, True)
            outs = []
            for d in range(D):
                i = k * D + d
                w = weights[i * per:(i + 1) * per]
                biases = (w[2], w[3]) if cell.config.bias else (None, None)
                if cell.family == "lstm" and len(w) % 2:  # proj_size: h_t = W_hr (o * tanh(c_t)), as torch.nn.LSTM
                    gates = F.linear(inp, w[0], biases[0]) + F.linear(hx[0][i], w[1], biases[1])  # (B, 4H)
                    g_i, g_f, g_g, g_o = gates.chunk(4, 1)
                    c = torch.sigmoid(g_f) * hx[1][i] + torch.sigmoid(g_i) * torch.tanh(g_g)  # (B, H)
                    h = F.linear(torch.sigmoid(g_o) * torch.tanh(c), w[-1])  # (B, P)
                    finals.append((h, c))
                elif cell.family == "lstm":
                    h, c = torch.lstm_cell(inp, (hx[0][i], hx[1][i]), w[0], w[1], *biases)  # (B, H) each
                    finals.append((h, c))
                else:
                    fn = _CELL_FN["gru" if cell.family == "gru" else cell.config.activation]
                    h = fn(inp, hx[0][i], w[0], w[1], *biases)  # (B, H)
                    finals.append((h,))
                outs.append(h)
            inp = outs[0] if D == 1 else torch.cat(outs, dim=-1)  # (B, D*O)
        return inp.unsqueeze(0), finals

    @staticmethod
    def _function(cell):
        if cell.family == "elman":
            return torch.rnn_tanh if cell.config.activation == "tanh" else torch.rnn_relu
        return _TORCH_FN[cell.family]
