"""Translating and scoring with a trained sequence-to-sequence model.

    tr = Translator.load("runs/translate")                 # best checkpoint of a run
    [[best, second, ...]] = tr.translate(["I am cold."], beam=5, nbest=2)
    best.text, best.score, best.attention                  # attention: (output steps, source tokens)
    tr.evaluate(pairs)                                     # BLEU, chrF and the hypotheses
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import torch
from torch import Tensor

from rnnkit.config import from_dict
from rnnkit.train.checkpoint import CheckpointError, find_run_checkpoint, load_checkpoint

from .config import DecodeConfig, TranslateRunConfig
from .data import Pair, pad
from rnnkit.metrics.translation import corpus_scores
from .model import Seq2SeqModel
from rnnkit.data.vocab import Vocabulary
from rnnkit.modules.search import beam_search, greedy_search, max_lengths
from rnnkit.data.tokenizers import MARK
from .vocab import load_vocab, normalize_text, special_ids

TASK = "translate"


@dataclass
class Translation:
    text: str                        # detokenised output
    score: float                     # ranking score (log-probability / length penalty)
    log_prob: float
    source_tokens: List[str]         # pieces of the source, for display
    tokens: List[str]                # output pieces, "</s>" last when emitted
    attention: Optional[Tensor]      # (len(tokens), len(source_tokens)) or None (attention=none)


def checkpoint_path(run: str | Path, which: str = "best") -> Path:
    """A run directory's ``checkpoints/{which}.safetensors``, or a checkpoint file given directly."""
    run = Path(run)
    if run.is_file() or not (run / "checkpoints").is_dir():
        return find_run_checkpoint(run, which)  # a checkpoint file, or an error saying what is expected
    path = run / "checkpoints" / f"{which}.safetensors"
    if not path.is_file():
        other = run / "checkpoints" / ("last" if which == "best" else "best")
        hint = f" (there is {other.name}: use --checkpoint {other.stem})" if other.is_file() else \
            "; is this a run directory of `rnnkit train translate`?"
        raise CheckpointError(f"{run}: no checkpoint {path}{hint}")
    return path


class Translator:
    def __init__(self, model: Seq2SeqModel, src_vocab: Vocabulary, tgt_vocab: Vocabulary,
                 config: TranslateRunConfig, device: str | torch.device = "cpu"):
        self.model = model.to(device).eval()
        self.src_vocab, self.tgt_vocab, self.config = src_vocab, tgt_vocab, config
        self.device = torch.device(device)

    @classmethod
    def load(cls, run: str | Path, which: str = "best", device: str = "cpu") -> "Translator":
        ck = load_checkpoint(checkpoint_path(run, which))
        meta = ck.meta.get("metadata", {})
        if meta.get("task") != TASK:
            raise CheckpointError(f"{run}: checkpoint of task {meta.get('task')!r}, not a translation run")
        cfg = from_dict(TranslateRunConfig, ck.meta["config"])
        src, tgt = load_vocab(meta["source_tokenizer"]), load_vocab(meta["target_tokenizer"])
        model = Seq2SeqModel(cfg.model, src.size, tgt.size, pad_id=tgt.pad_id)
        model.load_state_dict(ck.group("model"))
        return cls(model, src, tgt, cfg, device)

    def normalize(self, text: str) -> str:
        d = self.config.data
        return normalize_text(text, d.lowercase, d.normalize)

    @torch.no_grad()
    def translate(self, sentences: Sequence[str], decode: Optional[DecodeConfig] = None,
                  **overrides) -> List[List[Translation]]:
        """The n-best translations of each sentence (``decode`` fields may be overridden by name)."""
        d = decode or self.config.decode
        if overrides:
            d = DecodeConfig(**{**vars(d), **{k: v for k, v in overrides.items() if v is not None}})
        encoded = []
        for i, s in enumerate(sentences):
            ids = self.src_vocab.encode(self.normalize(s))
            if not ids:
                raise ValueError(f"sentence {i + 1} is empty after normalisation: {s!r}")
            encoded.append(ids)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        results: List[Optional[List[Translation]]] = [None] * len(encoded)
        for k in range(0, len(order), d.batch_size):
            idx = order[k:k + d.batch_size]
            src, lengths = pad([encoded[i] for i in idx], self.src_vocab.pad_id)
            src = src.to(self.device)
            limits = max_lengths(lengths, d.max_len_a, d.max_len_b)
            if d.beam == 1:
                hyps = greedy_search(self.model, src, lengths, limits, special=special_ids(self.tgt_vocab))
            else:
                hyps = beam_search(self.model, src, lengths, limits, d.beam, d.nbest, d.length_penalty,
                                   special=special_ids(self.tgt_vocab))
            for i, hs in zip(idx, hyps):
                results[i] = [self._translation(encoded[i], h, d.replace_unk) for h in hs]
        return results

    def _translation(self, src_ids: List[int], h, replace_unk: bool = False) -> Translation:
        ended = h.attention is None or h.attention.shape[0] == len(h.tokens) + 1
        out = self.tgt_vocab.pieces(h.tokens + ([self.tgt_vocab.eos_id] if ended else []))
        text = self.tgt_vocab.decode(h.tokens)
        if replace_unk and h.attention is not None:
            text = self._replace_unknown(src_ids, h)
        return Translation(text, h.score, h.log_prob, self.src_vocab.pieces(src_ids), out, h.attention)

    def _replace_unknown(self, src_ids: List[int], h) -> str:
        """Each unknown output token becomes the source token it attends to most (Luong et al. 2015b)."""
        unknown_tgt, unknown_src = self.tgt_vocab.unknown_ids(), self.src_vocab.unknown_ids()
        pieces = self.tgt_vocab.raw_pieces(h.tokens)
        for k, token in enumerate(h.tokens):
            if token not in unknown_tgt:
                continue
            j = int(h.attention[k].argmax())
            if src_ids[j] in unknown_src:
                continue
            src_piece = self.src_vocab.raw_pieces([src_ids[j]])[0].lstrip(MARK)
            pieces[k] = (MARK if pieces[k].startswith(MARK) else "") + src_piece
        return self.tgt_vocab.join(pieces)

    def evaluate(self, pairs: Sequence[Pair], decode: Optional[DecodeConfig] = None, **overrides) -> dict:
        """Corpus BLEU / chrF / exact match of the best hypotheses against the pairs' targets.

        Returns the scores plus ``hypotheses`` (detokenised, in input order).
        """
        best = [t[0].text for t in self.translate([p.source for p in pairs], decode, **overrides)]
        refs = [self.normalize(p.target) for p in pairs]
        return {**corpus_scores(best, refs), "hypotheses": best}
