"""Input handling shared by every layer: packed sequences, batch_first, unbatched input, lengths.

Everything inside rnnkit runs time-major: x is (T, B, F); ``lengths`` is a (B,) int64 CPU tensor or
None when every sequence fills the whole T.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence


@dataclass
class Prepared:
    x: Tensor                         # (T, B, F) time-major
    lengths: Optional[Tensor]         # (B,) int64 on CPU, or None (all full length)
    packed: Optional[PackedSequence]  # the original packed input, to pack the output alike
    unbatched: bool


def prepare_input(input, lengths, batch_first: bool, input_size: int) -> Prepared:
    """Validate the input and bring it to time-major (T, B, F) with lengths (or None)."""
    if isinstance(input, PackedSequence):
        if lengths is not None:
            raise ValueError("lengths= cannot be combined with a PackedSequence input: the packed "
                             "sequence already carries its lengths")
        padded, lens = pad_packed_sequence(input)  # original batch order
        _check_features(padded, input_size)
        return Prepared(padded, _drop_full(lens, padded.shape[0]), input, False)
    if not isinstance(input, Tensor):
        raise ValueError(f"input must be a Tensor or PackedSequence, got {type(input).__name__}")
    if input.dim() not in (2, 3):
        raise ValueError(f"input must be 3-D ({'B, T' if batch_first else 'T, B'}, {input_size}) or 2-D "
                         f"(T, {input_size}) for one unbatched sequence, got shape {tuple(input.shape)}")
    unbatched = input.dim() == 2
    x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if batch_first else input)
    _check_features(x, input_size)
    if x.shape[0] == 0:
        raise ValueError("input has zero time steps; expected at least one")
    if lengths is not None:
        lengths = check_lengths(lengths, x.shape[1], x.shape[0])
    return Prepared(x, lengths, None, unbatched)


def _check_features(x: Tensor, input_size: int) -> None:
    if x.shape[-1] != input_size:
        raise ValueError(f"input's last dimension must be input_size={input_size}, got {x.shape[-1]} "
                         f"(input shape {tuple(x.shape)})")


def check_lengths(lengths, batch: int, steps: int) -> Optional[Tensor]:
    """lengths must be B integers in [1, T]; returns int64 on CPU, or None if all equal T."""
    lengths = torch.as_tensor(lengths)
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must hold integers, got dtype {lengths.dtype}")
    lengths = lengths.to("cpu", torch.int64)
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise ValueError(f"lengths must have shape ({batch},) (one per sequence in the batch), "
                         f"got {tuple(lengths.shape)}")
    if torch.compiler.is_exporting():
        # an exported graph takes any lengths: the value checks below (and dropping lengths that all equal T)
        # would each bake one case into the graph; the graph masks by lengths, which must lie in [1, T]
        return lengths
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 1:
        raise ValueError(f"lengths must be >= 1, got a length of {lo}")
    if hi > steps:
        raise ValueError(f"lengths must be <= the number of time steps ({steps}), got a length of {hi}")
    return _drop_full(lengths, steps)


def _drop_full(lengths: Tensor, steps: int) -> Optional[Tensor]:
    return None if bool((lengths == steps).all()) else lengths


def valid_mask(lengths: Optional[Tensor], steps: int, device, dtype) -> Optional[Tensor]:
    """(T, B, 1) mask, True where step t lies inside sequence b."""
    if lengths is None:
        return None
    t = torch.arange(steps).unsqueeze(1)
    return (t < lengths.unsqueeze(0)).unsqueeze(-1).to(device)


def reverse_padded(x: Tensor, lengths: Optional[Tensor]) -> Tensor:
    """Reverse each sequence within its own length; padding stays at the end. (T, B, ...) -> same."""
    if lengths is None:
        return x.flip(0)
    T, B = x.shape[0], x.shape[1]
    t = torch.arange(T).unsqueeze(1)                      # (T, 1)
    lens = lengths.unsqueeze(0)                           # (1, B)
    idx = torch.where(t < lens, lens - 1 - t, t).to(x.device)  # (T, B)
    idx = idx.view(T, B, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, idx)


def finish_output(out: Tensor, prep: Prepared, batch_first: bool):
    """Undo prepare_input on the output: re-pack, batch_first, unbatched."""
    if prep.packed is not None:
        p = prep.packed
        lens = p.batch_sizes.new_tensor(_lengths_of(p))
        sorted_out = out.index_select(1, p.sorted_indices) if p.sorted_indices is not None else out
        data = pack_padded_sequence(sorted_out, lens[p.sorted_indices] if p.sorted_indices is not None else lens,
                                    enforce_sorted=True).data
        return PackedSequence(data, p.batch_sizes, p.sorted_indices, p.unsorted_indices)
    if prep.unbatched:
        return out.squeeze(1)
    return out.transpose(0, 1) if batch_first else out


def _lengths_of(p: PackedSequence):
    """Per-sequence lengths, in original batch order, from a PackedSequence's batch_sizes."""
    bs = p.batch_sizes.tolist()
    B = bs[0]
    sorted_lens = [sum(1 for b in bs if b > i) for i in range(B)]
    if p.unsorted_indices is None:
        return sorted_lens
    return [sorted_lens[i] for i in p.unsorted_indices.tolist()]
