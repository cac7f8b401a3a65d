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
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .base import DirectionMasks, Engine, Request, State, cpu_autocast_dtype

_TORCH_FN = {"lstm": torch.lstm, "gru": torch.gru}
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


class NativeEngine(Engine):
    name = "native"
    scope = "stack"

    def supports(self, req: Request) -> Optional[str]:
        reason = _config_reason(req.cell)
        if reason:
            return reason
        if req.device.type == "cpu":
            reason = _onednn_low_precision_reason(req.cell)
            if reason:
                return reason
        reg = req.regularization
        for name in ("variational_dropout", "recurrent_dropout", "zoneout"):
            if getattr(reg, name) and req.training:
                return f"torch's fused RNN has no {name.replace('_', ' ')}"
        if reg.zoneout:
            return "torch's fused RNN has no zoneout (it changes evaluation too)"
        if req.all_states:
            return "torch's fused RNN returns only the last layer's outputs, not every step's full state"
        if req.probe_grads or req.record_gates:
            return "gradient probes and gate traces need a step-by-step engine"
        if req.dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            return f"dtype {req.dtype} is not supported by torch's RNN kernels"
        return None

    @staticmethod
    def flat_weights(cells: Sequence, masks: Optional[List[DirectionMasks]] = None) -> List[Tensor]:
        """Each cell's weights in torch's order; W_hh with the cell's DropConnect mask if it has one."""
        weights: List[Tensor] = []
        for i, cell in enumerate(cells):
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

    def flatten(self, cells: Sequence, num_layers: int, bidirectional: bool) -> None:
        """Make the stack's parameters (``cells``, index layer * D + direction) views into one contiguous
        buffer, as cuDNN wants (what torch.nn's flatten_parameters does); the parameters stay the same
        objects."""
        weights = self.flat_weights(cells)
        if len({w.untyped_storage().data_ptr() for w in weights}) == 1:
            return  # already one chunk
        if not torch._use_cudnn_rnn_flatten_weight():
            return
        cell = cells[0]
        per_cell = len(weights) // len(cells)
        with torch.no_grad():
            torch._cudnn_rnn_flatten_weight(weights, per_cell, cell.input_size, self._cudnn_mode(cell),
                                            cell.hidden_size, cell.config.proj_size if cell.family == "lstm" else 0,
                                            num_layers, False, bidirectional)

    def run_stack(self, req: Request, x: Tensor, state0: List[State], lengths: Optional[Tensor],
                  masks: List[DirectionMasks]):
        cell = req.cell
        if x.is_cuda and torch.backends.cudnn.is_acceptable(x):
            self.flatten(req.cells, req.num_layers, req.bidirectional)
        ncomp = len(cell.state_sizes)
        hx = [torch.stack([s[k] for s in state0]) for k in range(ncomp)]  # each (L*D, B, S_k)
        dropconnect = any(m.dropconnect is not None for m in masks)
        with warnings.catch_warnings():
            if dropconnect:  # the masked W_hh cannot live in the flat buffer: cuDNN's copy is expected
                warnings.filterwarnings("ignore", message=".*not part of single contiguous chunk.*")
            return self._run(req, x, hx, state0, lengths, self.flat_weights(req.cells, masks))

    def _run(self, req: Request, x: Tensor, hx: List[Tensor], state0: List[State], lengths: Optional[Tensor],
             weights: List[Tensor]):
        cell = req.cell
        ncomp = len(hx)
        if lengths is None and x.shape[0] == 1 and x.device.type == "cpu":
            return self.one_step(req, x, hx, weights)
        args = (weights, cell.config.bias, req.num_layers,
                float(req.regularization.dropout), req.training, req.bidirectional)
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
    def one_step(req: Request, x: Tensor, hx: List[Tensor], weights: List[Tensor]):
        """A call of one time step, x (1, B, I), through torch's cell functions layer by layer (the
        equations of torch.nn's layers: same weights, same gate order), dropout between layers in
        training as torch.nn applies it. hx: per state component (L*D, B, S_k)."""
        cell = req.cell
        per = len(weights) // len(req.cells)
        D, reg = req.num_directions, req.regularization
        inp = x[0]  # (B, I)
        finals = []
        for k in range(req.num_layers):
            if k > 0 and reg.dropout and req.training:
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
