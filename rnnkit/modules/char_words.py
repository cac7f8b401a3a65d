"""Character-level features of words: ``(B, T, W)`` character ids (0 = padding) -> ``(B, T, F)``.

Two summaries of each word's characters, so that a word never seen in training (a new name, a
misspelling, a hashtag) still carries its spelling, affixes and shape:

* ``rnn`` - a bidirectional recurrent layer over the characters; the features are the forward state
  at the word's last character and the backward state at its first (Lample et al. 2016);
* ``cnn`` - a 1-D convolution over character windows, max-pooled over the word's real characters
  (Ma & Hovy 2016; Chiu & Nichols 2016).  Cheaper than the recurrent summary on a CPU.

Both run on the distinct words of the batch only (``torch.unique`` over the rows of character ids),
so a word that appears many times in a batch is summarised once; padding tokens (all-zero rows) get
zero features.
"""
from __future__ import annotations

import torch
from torch import nn

from rnnkit.modules.encoders import RecurrentEncoder

CHAR_MODELS = ("rnn", "cnn")


def pad_word_chars(words: list[list[list[int]]], steps: int) -> torch.Tensor:
    """The input of :class:`CharWordFeatures`: (B, T, W) character ids of each example's words (``words[b][t]``,
    a list of ids), zero-padded to ``steps`` words of W characters, W the longest word of the batch."""
    width = max((len(w) for ex in words for w in ex), default=1) or 1
    out = torch.zeros(len(words), steps, width, dtype=torch.int64)
    for b, ex in enumerate(words):
        for t, w in enumerate(ex[:steps]):
            out[b, t, :len(w)] = torch.tensor(w, dtype=torch.int64)
    return out


class CharWordFeatures(nn.Module):
    """``forward(chars (B, T, W)) -> (B, T, out_size)``; ``out_size = 2 * hidden`` for both models.

    rnn: ``hidden`` units per direction; cnn: ``2 * hidden`` filters of ``window`` characters.
    """

    def __init__(self, n_chars: int, hidden: int, model: str = "rnn", *, embedding: int = 25, window: int = 3,
                 cell: str = "lstm", engine: str = "auto"):
        super().__init__()
        if model not in CHAR_MODELS:
            raise ValueError(f"char model must be one of {', '.join(CHAR_MODELS)}, got {model!r}")
        if hidden < 1 or embedding < 1 or window < 1 or window % 2 == 0:
            raise ValueError(f"hidden and embedding must be positive and window odd, got hidden={hidden}, "
                             f"embedding={embedding}, window={window}")
        self.model = model
        self.embed = nn.Embedding(n_chars, embedding, padding_idx=0)
        self.out_size = 2 * hidden
        if model == "rnn":
            self.rnn = RecurrentEncoder(embedding, cell, hidden, 1, True, 0.0, engine)
        else:
            self.conv = nn.Conv1d(embedding, self.out_size, window, padding=window // 2)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        B, T, W = chars.shape
        flat = chars.reshape(B * T, W)
        if torch.compiler.is_exporting():  # an exported graph keeps static shapes: every token, no dedupe
            words, inverse = flat, None
        else:
            words, inverse = torch.unique(flat, dim=0, return_inverse=True)   # (U, W), (B*T,)
        lengths = (words > 0).sum(1)                                           # (U,)
        feats = self._summarise(words, lengths.clamp(min=1))                   # (U, 2H)
        feats = feats * (lengths > 0).unsqueeze(-1).to(feats.dtype)            # padding tokens: zeros
        if inverse is not None:
            feats = feats[inverse]
        return feats.reshape(B, T, self.out_size)

    def _summarise(self, words: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(N, W) ids (characters left-aligned), (N,) lengths >= 1 -> (N, 2H)."""
        x = self.embed(words)                                                  # (N, W, E)
        if self.model == "rnn":
            h = self.rnn(x, lengths)                                           # (N, W, 2H)
            half = h.shape[-1] // 2
            fwd = h[torch.arange(h.shape[0], device=h.device), lengths - 1, :half]
            return torch.cat([fwd, h[:, 0, half:]], -1)
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)                      # (N, W, 2H)
        pad = (torch.arange(words.shape[1], device=words.device)[None, :] >= lengths[:, None])
        return h.masked_fill(pad.unsqueeze(-1), float("-inf")).amax(1)         # max over real characters
