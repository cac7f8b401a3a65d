"""The tagger: word, case and character features -> encoder -> emissions -> softmax or CRF, and its meter."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.metrics import entity_scores, token_accuracy
from rnnkit.modules.char_words import CharWordFeatures
from rnnkit.modules.crf import CRF
from rnnkit.modules.encoders import build_encoder
from rnnkit.tasks.tag.config import TagModelConfig
from rnnkit.tasks.tag.data import TagEncoder
from rnnkit.train import ModelOutput


class Tagger(nn.Module):
    """``forward(batch) -> ModelOutput(logits = emissions (B, T, K), loss, n = tokens)``."""

    def __init__(self, cfg: TagModelConfig, enc: TagEncoder):
        super().__init__()
        self.cfg = cfg
        self.words = nn.Embedding(len(enc.words), cfg.embedding, padding_idx=enc.words.pad_id)
        self.unk_id = enc.words.unk_id  # what word dropout turns a word into: the id unseen words get
        if cfg.freeze_embeddings:
            # pretrained rows (set by load_word_vectors) are read from here, so no update or weight decay moves
            # them; saved with the weights, so a saved run needs no vector file
            self.register_buffer("fixed_vectors", torch.zeros(len(enc.words), cfg.embedding))
            self.register_buffer("fixed_rows", torch.zeros(len(enc.words), dtype=torch.bool))
        self.cases = nn.Embedding(6, 4, padding_idx=0)
        size = cfg.embedding + 4
        self.chars = None
        if cfg.char_hidden:
            self.chars = CharWordFeatures(len(enc.chars), cfg.char_hidden, cfg.char_model,
                                          cell=cfg.cell if cfg.model == "rnn" else "lstm", engine=cfg.engine)
            size += self.chars.out_size
        self.drop = nn.Dropout(cfg.dropout)
        self.encoder = build_encoder(cfg.model, size, cell=cfg.cell, hidden=cfg.hidden, layers=cfg.layers,
                                     bidirectional=True, dropout=cfg.dropout, window=cfg.window, engine=cfg.engine)
        self.head = nn.Linear(self.encoder.out_size, len(enc.tags))
        self.crf = CRF(len(enc.tags)) if cfg.output == "crf" else None
        # words seen once in training (rare_word_dropout); set by training, not saved with the weights
        self.register_buffer("rare", torch.zeros(len(enc.words), dtype=torch.bool), persistent=False)
        if self.crf is not None and enc.scheme in ("bio", "bioes"):
            self.crf.constrain(enc.tags, enc.scheme)

    def mark_rare(self, word_ids: list[int]) -> None:
        """The word ids that ``rare_word_dropout`` (rather than ``word_dropout``) applies to."""
        self.rare.zero_()
        self.rare[torch.as_tensor(word_ids, dtype=torch.int64)] = True

    @torch.no_grad()
    def load_word_vectors(self, ids: torch.Tensor, vectors: torch.Tensor) -> None:
        """Start the word embedding's rows ``ids`` (N,) at ``vectors`` (N, embedding); with
        ``freeze_embeddings`` those rows then stay fixed."""
        if vectors.shape != (len(ids), self.words.embedding_dim):
            raise ValueError(f"expected vectors of shape ({len(ids)}, {self.words.embedding_dim}), "
                             f"got {tuple(vectors.shape)}")
        self.words.weight[ids] = vectors
        if self.cfg.freeze_embeddings:
            self.fixed_vectors[ids] = vectors
            self.fixed_rows[ids] = True

    def embed_words(self, words: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, T, E); frozen pretrained rows come from the fixed copy."""
        e = self.words(words)                                                  # (B, T, E)
        if self.cfg.freeze_embeddings:
            e = torch.where(self.fixed_rows[words].unsqueeze(-1), self.fixed_vectors[words], e)
        return e

    def drop_words(self, words: torch.Tensor) -> torch.Tensor:
        """(B, T) ids with some words replaced by <unk> (the vocabulary's ``unk_id``, the id of every word never
        seen in training): training only; padding (0) is kept."""
        if not self.training or not (self.cfg.word_dropout or self.cfg.rare_word_dropout):
            return words
        p = torch.where(self.rare[words], max(self.cfg.word_dropout, self.cfg.rare_word_dropout),
                        self.cfg.word_dropout)                                 # (B, T)
        drop = (torch.rand(words.shape, device=words.device) < p) & (words > 0)
        return words.masked_fill(drop, self.unk_id)

    def emissions(self, batch: dict) -> torch.Tensor:
        words = self.drop_words(batch["words"])
        feats = [self.embed_words(words), self.cases(batch["cases"])]
        if self.chars is not None:
            feats.append(self.chars(batch["chars"]))
        h = self.encoder(self.drop(torch.cat(feats, -1)), batch["lengths"])    # (B, T, D)
        return self.head(self.drop(h))                                         # (B, T, K)

    def mask(self, batch: dict) -> torch.Tensor:
        T = batch["words"].shape[1]
        return torch.arange(T, device=batch["words"].device)[None, :] < batch["lengths"].to(batch["words"].device)[:, None]

    def forward(self, batch: dict) -> ModelOutput:
        em = self.emissions(batch)
        mask = self.mask(batch)
        n = int(mask.sum())
        loss = None
        if "targets" in batch:
            if self.crf is not None:
                loss = self.crf.nll(em, batch["targets"], mask).sum() / n
            else:
                loss = F.cross_entropy(em[mask], batch["targets"][mask])
        return ModelOutput(em, loss, n=n)

    @torch.no_grad()
    def decode(self, batch: dict, em: torch.Tensor | None = None) -> list[list[int]]:
        em = self.emissions(batch) if em is None else em
        mask = self.mask(batch)
        if self.crf is not None:
            return self.crf.decode(em, mask)
        best = em.argmax(-1).tolist()
        return [row[: int(n)] for row, n in zip(best, batch["lengths"].tolist())]


class TagMeter:
    def __init__(self, model: Tagger, tags: list[str], scheme: str):
        self.model, self.tags, self.scheme = model, tags, scheme
        self.loss, self.n = 0.0, 0
        self.true: list[list[str]] = []
        self.pred: list[list[str]] = []

    def update(self, out, batch) -> None:
        self.loss += float(out.loss) * out.n
        self.n += out.n
        paths = self.model.decode(batch, out.logits)
        for path, gold, n in zip(paths, batch["targets"].tolist(), batch["lengths"].tolist()):
            self.pred.append([self.tags[i] for i in path])
            self.true.append([self.tags[i] for i in gold[: int(n)]])

    def compute(self) -> dict:
        out = {"loss": self.loss / max(self.n, 1), "accuracy": token_accuracy(self.true, self.pred)}
        if self.scheme != "none":
            s = entity_scores(self.true, self.pred)
            out.update({"precision": s["precision"], "recall": s["recall"], "f1": s["f1"]})
        else:
            out["f1"] = 100.0 * out["accuracy"]  # so monitor=val_f1 works for POS-style tags too
        return out
