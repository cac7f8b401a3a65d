"""The native engine: configurations torch.nn implements go to torch's fused RNN kernels
(cuDNN on GPU, oneDNN or ATen's native loop on CPU): LSTM (with proj_size), GRU with the reset gate
after the matmul, Elman with tanh or relu, padded, with lengths (packed internally) or packed.

DropConnect runs here too, as AWD-LSTM's WeightDrop runs it: the layer's mask is applied to each
cell's W_hh (``cell.step_context``) and the masked weight goes to the fused kernel; autograd takes
the gradient back through the mask. On CUDA the masked weights are not one flat chunk, so cuDNN
copies them into one per call (its "not part of single contiguous chunk" warning is expected there).
"""
from __future__ import annotations

from typing import List, Optional

import torch
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import warnings

from .base import DirectionMasks, Engine, Request, State

_TORCH_FN = {"lstm": torch.lstm, "gru": torch.gru}
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


class NativeEngine(Engine):
    name = "native"
    scope = "stack"

    def supports(self, req: Request) -> Optional[str]:
        reason = _config_reason(req.layer.cells[0])
        if reason:
            return reason
        reg = req.layer.regularization
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
        cell = layer.cells[0]
        per_cell = len(weights) // len(layer.cells)
        with torch.no_grad():
            torch._cudnn_rnn_flatten_weight(weights, per_cell, layer.input_size, self._cudnn_mode(cell),
                                            cell.hidden_size, cell.config.proj_size if cell.family == "lstm" else 0,
                                            layer.num_layers, False, layer.bidirectional)

    def run_stack(self, layer, x: Tensor, state0: List[State], lengths: Optional[Tensor],
                  masks: List[DirectionMasks]):
        cell = layer.cells[0]
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
        cell = layer.cells[0]
        ncomp = len(hx)
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
    def _function(cell):
        if cell.family == "elman":
            return torch.rnn_tanh if cell.config.activation == "tanh" else torch.rnn_relu
        return _TORCH_FN[cell.family]
