"""Pretrained word vectors for the tagger (``--embeddings FILE``): read the file, size the vocabulary, start the
word embedding.

The tagger's words are lower-cased, so a vocabulary word takes the file's vector of the same word, else of
the file's most frequent word that is the same once lower-cased (``Paris`` for ``paris`` in a cased file):
:meth:`rnnkit.data.word_vectors.WordVectors.lookup`. Rows without a vector (and ``<unk>``) start at random,
at the pretrained vectors' scale, so neither kind drowns the other at the start. Only training reads the
file: the weights (and, frozen, the fixed copy) are saved in the run.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rnnkit.config import ConfigError
from rnnkit.data.tabular import TaggedSentence
from rnnkit.data.word_vectors import WordVectors, read_word_vectors, vector_dim
from rnnkit.tasks.tag.config import TagModelConfig
from rnnkit.tasks.tag.data import TagEncoder
from rnnkit.tasks.tag.model import Tagger


def check_dimension(cfg: TagModelConfig) -> None:
    """A clear error when the word embedding's size is not the file's."""
    dim = vector_dim(cfg.embeddings)
    if dim != cfg.embedding:
        raise ConfigError(f"--embedding {cfg.embedding} but {cfg.embeddings} holds {dim}-dimensional vectors: "
                          f"give --embedding {dim} (or leave --embedding out: it then follows the file)")


def read_tag_vectors(cfg: TagModelConfig, train: list[TaggedSentence]) -> WordVectors | None:
    """The vectors of ``cfg.embeddings`` the run can use (none without a file): with ``embeddings_vocab=train``
    only those of training words, with ``file`` every one (up to ``embeddings_limit``)."""
    if not cfg.embeddings:
        return None
    check_dimension(cfg)
    wanted = None if cfg.embeddings_vocab == "file" else {t for s in train for t in s.tokens}
    return read_word_vectors(cfg.embeddings, wanted, cfg.embeddings_limit)


@dataclass
class VectorStart:
    """What ``--embeddings`` gave the run: vocabulary words that start from a vector, of how many."""
    file: str
    found: int
    words: int

    def to_dict(self) -> dict:
        return {"file": self.file, "found": self.found, "words": self.words}


def start_from_vectors(model: Tagger, enc: TagEncoder, vectors: WordVectors) -> VectorStart:
    """Copy a vector into each vocabulary row that has one; the others restart at the vectors' scale."""
    special = {enc.words.pad_id, enc.words.bos_id, enc.words.eos_id, enc.words.unk_id}
    ids, rows = [], []
    for pos, row in zip(*vectors.rows_for(enc.words.tokens)):
        if pos not in special:
            ids.append(pos)
            rows.append(row)
    words = len(enc.words) - len(special)
    if not ids:
        return VectorStart(vectors.source, 0, words)
    found = torch.from_numpy(vectors.vectors[rows])                          # (N, E)
    with torch.no_grad():
        w = model.words.weight                                               # (V, E)
        w.normal_(0.0, float(found.std()))
        w[enc.words.pad_id] = 0.0
    model.load_word_vectors(torch.tensor(ids), found)
    return VectorStart(vectors.source, len(ids), words)
