"""One vocabulary for every text task: a tokenizer of :mod:`rnnkit.data.tokenizers` behind the special tokens.

The convention of new runs (saved as ``{"format": 2, ...}``)::

    <pad> = 0   <s> = 1   </s> = 2   <unk> = 3   then the tokenizer's pieces (tokenizer id + 3)

Every tokenizer keeps its own ``<unk>`` at its id 0 (byte-level BPE reserves one it never emits), so the
vocabulary's ``<unk>`` is 3 whatever the kind. Code reads ``pad_id``, ``unk_id``, ``bos_id`` and ``eos_id``
from the vocabulary, never constants. The CTC blank of speech recognition is ``pad_id``.

:func:`vocabulary_from_dict` also reads every layout runs saved before (no ``"format"`` key):

* a bare tokenizer (language model, speech): tokenizer ids unshifted, ``<unk>`` = 0, no pad / bos / eos;
* the padded token table of classify and tag (``{"tokens": ["<pad>", "<unk>", ...]}``): ``<pad>`` 0, ``<unk>`` 1;
* translation's tokenizers: shifted by three behind ``<pad>``, ``<s>``, ``</s>`` (the convention above).

The saved run says which: a translation run's tokenizers load with ``layout="translate"``.
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Sequence

from rnnkit.data.tokenizers import (MARK, UNK, MarkedWordTokenizer, SentenceTokenizer, WordListTokenizer,
                                    bare_tokenizer_from_dict, build_tokenizer)

FORMAT = 2
SPECIALS = ("<pad>", "<s>", "</s>")                  # in front of the tokenizer's ids, in this order
CONVENTION = {"<pad>": 0, "<s>": 1, "</s>": 2, UNK: 3}
OLD_LAYOUTS = ("bare", "padded", "translate")


class Vocabulary:
    """A tokenizer with ``specials`` (names, in order) in front: id = tokenizer id + ``len(specials)``."""

    def __init__(self, tokenizer, specials: Sequence[str] = SPECIALS):
        if any(s not in SPECIALS for s in specials):
            raise ValueError(f"specials must be among {SPECIALS}, got {tuple(specials)}")
        self.tokenizer, self.specials = tokenizer, tuple(specials)
        self.offset = len(self.specials)
        ids = {name: i for i, name in enumerate(self.specials)}
        self.pad_id: Optional[int] = ids.get("<pad>")
        self.bos_id: Optional[int] = ids.get("<s>")
        self.eos_id: Optional[int] = ids.get("</s>")
        unk = getattr(tokenizer, "unk_id", -1)
        self.unk_id: Optional[int] = None if unk is None or unk < 0 else unk + self.offset

    @classmethod
    def build(cls, kind: str, texts: Sequence[str], vocab_size: int = 8000, min_freq: int = 1) -> "Vocabulary":
        """A new run's vocabulary: a ``kind`` tokenizer fitted on ``texts`` behind the convention's specials;
        ``vocab_size`` caps the tokenizer's own table (specials not counted)."""
        return cls(build_tokenizer(kind, list(texts), vocab_size, min_freq))

    @property
    def kind(self) -> str:
        return self.tokenizer.kind

    @property
    def size(self) -> int:
        return self.tokenizer.vocab_size + self.offset

    vocab_size = size  # the tokenizer interface's name

    @property
    def tokens(self) -> List[str]:
        """Every id's token (table tokenizers only): the specials, then the tokenizer's table."""
        return list(self.specials) + self.tokenizer.tokens

    @property
    def index(self) -> dict:
        """Token -> id (table tokenizers only), the specials included."""
        if not hasattr(self, "_index"):
            self._index = {t: i for i, t in enumerate(self.tokens)}
        return self._index

    def __len__(self) -> int:
        return self.size

    def encode(self, text: str) -> List[int]:
        return [i + self.offset for i in self.tokenizer.encode(text)]

    def encode_tokens(self, tokens: Sequence[str]) -> List[int]:
        """Ids of already split tokens (table tokenizers only): unknown tokens get ``unk_id``."""
        get, unk = self.tokenizer.index.get, self.unk_id
        return [get(t, unk - self.offset) + self.offset for t in tokens]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` up to the first ``</s>``; ``<pad>`` and ``<s>`` are skipped."""
        keep = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i >= self.offset:
                keep.append(i - self.offset)
        return self.tokenizer.decode(keep)

    def unknown_ids(self) -> set:
        """Ids that stand for an unknown piece of text (a marked word tokenizer has two: ``<unk>``, ``▁<unk>``)."""
        if self.unk_id is None:
            return set()
        return {self.unk_id, self.unk_id + 1} if isinstance(self.tokenizer, MarkedWordTokenizer) else {self.unk_id}

    def raw_pieces(self, ids: Iterable[int]) -> List[str]:
        """The tokenizer's own strings for ``ids`` (``▁`` marks kept); :meth:`join` inverts it."""
        tok = self.tokenizer
        if hasattr(tok, "tokens"):
            return [tok.tokens[int(i) - self.offset] for i in ids]
        return [tok.tok.id_to_token(int(i) - self.offset) for i in ids]

    def join(self, pieces: List[str]) -> str:
        text = "".join(pieces)
        return text if self.kind == "char" else text.replace(MARK, " ").strip()

    def pieces(self, ids: Iterable[int]) -> List[str]:
        """One display string per id (for attention heat maps)."""
        out = []
        for i in ids:
            i = int(i)
            out.append(self.specials[i] if i < self.offset else self.tokenizer.decode([i - self.offset]) or "▁")
        return out

    def to_dict(self) -> dict:
        """The versioned saved form: ``{"format": 2, "kind": ..., "specials": {...}, <tokenizer fields>}``."""
        if self.specials != SPECIALS:
            raise ValueError(f"only the convention's vocabularies are saved in format {FORMAT}; "
                             f"this one has specials {self.specials} (an old run's)")
        return {"format": FORMAT, **self.tokenizer.to_dict(), "specials": dict(CONVENTION)}


def vocabulary_from_dict(data: dict, layout: str = "bare") -> Vocabulary:
    """The vocabulary a run saved: format 2, or (no ``"format"`` key) the old ``layout`` the run's task wrote:
    ``bare`` (language model, speech), ``padded`` (classify, tag) or ``translate``."""
    if not isinstance(data, dict):
        raise ValueError(f"a saved vocabulary is a JSON object, got {type(data).__name__}")
    fmt = data.get("format")
    if fmt is not None:
        if fmt != FORMAT:
            raise ValueError(f"saved vocabulary has format {fmt!r}; this rnnkit reads format {FORMAT} "
                             "and the older unversioned layouts")
        if data.get("specials") != CONVENTION:
            raise ValueError(f"saved vocabulary's specials {data.get('specials')!r} differ from {CONVENTION}")
        fields = {k: v for k, v in data.items() if k not in ("format", "specials")}
        return Vocabulary(bare_tokenizer_from_dict(fields), SPECIALS)
    if layout not in OLD_LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(OLD_LAYOUTS)}, got {layout!r}")
    if "kind" not in data:                                       # classify / tag: ["<pad>", "<unk>", ...]
        tokens = list(data.get("tokens", []))
        if tokens[:2] != ["<pad>", UNK]:
            raise ValueError("an old padded vocabulary's tokens start with <pad>, <unk>; "
                             f"got {tokens[:2]!r}")
        return Vocabulary(WordListTokenizer(tokens[1:]), ("<pad>",))
    return Vocabulary(bare_tokenizer_from_dict(data), SPECIALS if layout == "translate" else ())


def tokenizer_from_dict(data: dict, layout: str = "bare"):
    """What a run saved as its tokenizer: a :class:`Vocabulary` for the versioned form (and for ``layout``
    ``padded`` / ``translate``), the bare tokenizer for an old ``bare`` layout (language model, speech), so
    old runs keep their ids and outputs."""
    if "format" in data or "kind" not in data or layout != "bare":
        return vocabulary_from_dict(data, layout)
    return bare_tokenizer_from_dict(data)


__all__ = ["Vocabulary", "vocabulary_from_dict", "tokenizer_from_dict", "CONVENTION", "SPECIALS", "FORMAT",
           "SentenceTokenizer", "WordListTokenizer"]
