"""Speech synthesis data: (text, audio) pairs from manifests, LJSpeech folders or the embedded eSpeak NG
corpus; text becomes symbol ids, audio becomes log-mel frames.

Text: :func:`rnnkit.data.speech_text.normalize_text` (numbers, abbreviations, punctuation, lower case),
then characters, or eSpeak NG IPA phonemes (``symbols: phonemes``), through a character
:class:`~rnnkit.data.vocab.Vocabulary` (``<pad>`` 0 pads, ``</s>`` ends every input).

Audio: :func:`rnnkit.data.audio.read_waves` (one file at a time, at the run's rate) -> the log-mel frames of
:class:`~rnnkit.modules.audio_features.FeatureExtractor` -> leading and trailing frames more than
``trim_db`` below the loudest frame dropped.

Batch layout (a dict of tensors, batch-first)::

    text          (B, N)     symbol ids, ``</s>`` last, zero-padded
    text_lengths  (B,)
    mels          (B, T, M)  log-mel frames, zero-padded to T = a multiple of the reduction factor
    mel_lengths   (B,)       real frames
    index         (B,)       position of each utterance in its split
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.data.audio import read_waves
from rnnkit.data.phrase_grammar import grammar_pairs, sentence_key
from rnnkit.data.readers import DataError
from rnnkit.data.speech_manifest import read_speech_manifest
from rnnkit.data.speech_synth import WORDS, sentence_text, texts_dataset
from rnnkit.data.speech_text import normalize_text, phonemes
from rnnkit.data.vocab import Vocabulary
from rnnkit.modules.audio_features import FeatureConfig, FeatureExtractor
from rnnkit.tasks.tts.config import TTSDataConfig

#: a decibel difference as a difference of natural-log power
DB_TO_LOG_POWER = math.log(10.0) / 10.0
THINGS = {"en": ["apples", "books", "tickets", "chairs", "days", "minutes", "euros", "people"],
          "fr": ["pommes", "livres", "billets", "chaises", "jours", "minutes", "euros", "personnes"]}
TEMPLATES = {"en": ["I need {n} {thing}.", "We have {n} {thing} left.", "Please {verb} {subject}.",
                    "Can you {verb} {subject}?", "It takes {n} {thing}, not {m}."],
             "fr": ["J'ai besoin de {n} {thing}.", "Il reste {n} {thing}.", "{verb} {subject}, s'il te plaît.",
                    "Peux-tu {verb_inf} {subject} ?", "Il faut {n} {thing}, pas {m}."]}
FR_INFINITIVES = {"allume": "allumer", "éteins": "éteindre", "ouvre": "ouvrir", "ferme": "fermer",
                  "vérifie": "vérifier", "arrête": "arrêter"}


@dataclass
class Corpus:
    """A split: texts as written, their normalised form, the audio files and where each entry came from."""
    texts: list[str]
    normalised: list[str]
    audio: list[Path]
    wheres: list[str]
    source: str
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: Sequence[int]) -> "Corpus":
        return Corpus([self.texts[i] for i in idx], [self.normalised[i] for i in idx], [self.audio[i] for i in idx],
                      [self.wheres[i] for i in idx], self.source)

    def joined(self, other: "Corpus") -> "Corpus":
        """This split followed by ``other``'s utterances (the source stays this split's)."""
        return Corpus(self.texts + other.texts, self.normalised + other.normalised, self.audio + other.audio,
                      self.wheres + other.wheres, self.source, self.skipped + other.skipped)

    def to_manifest(self, path: Path) -> Path:
        """The split as a JSONL manifest with absolute audio paths (``rnnkit evaluate RUN --data``)."""
        rows = [{"audio_filepath": str(Path(a).resolve()), "text": t} for a, t in zip(self.audio, self.texts)]
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return path


# ------------------------------------------------------------------------ text sources

def phrasebook_sentences(lang: str) -> list[str]:
    """The embedded English-French phrase book's sentences in ``lang``, each once, in file order."""
    text = resources.files("rnnkit.data").joinpath("sets/phrasebook_en_fr.tsv").read_text(encoding="utf-8")
    column = 0 if lang == "en" else 1
    seen: dict[str, None] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[column].strip():
            seen.setdefault(parts[column].strip(), None)
    return list(seen)


def generated_sentences(lang: str, count: int, seed: int, exclude: set[str]) -> list[str]:
    """``count`` distinct sentences from templates with numbers, commands and digit strings."""
    rng = random.Random(seed)
    w = WORDS[lang]
    out: dict[str, None] = {}
    for _ in range(50 * count):
        if len(out) >= count:
            break
        kind = rng.random()
        if kind < 0.2:
            s = sentence_text("digit_strings", lang, rng).capitalize() + "."
        else:
            verb = rng.choice(w["verbs"])
            s = rng.choice(TEMPLATES[lang]).format(n=rng.randint(2, 2000), m=rng.randint(2, 99),
                                                   thing=rng.choice(THINGS[lang]), verb=verb,
                                                   verb_inf=FR_INFINITIVES.get(verb, verb),
                                                   subject=rng.choice(w["subjects"]))
            s = s[0].upper() + s[1:]
        if s not in exclude:
            out.setdefault(s, None)
    return list(out)


def embedded_texts(lang: str, count: int, seed: int = 0) -> list[str]:
    """The embedded corpus's sentences: the phrase book's first, then generated ones up to ``count``."""
    book = phrasebook_sentences(lang)[:count]
    return book + generated_sentences(lang, count - len(book), seed, set(book))


def embedded_manifest(d: TTSDataConfig, cache_dir: Path | None = None) -> Path:
    """The embedded corpus of ``d.lang`` spoken by one eSpeak NG voice, synthesised once and cached."""
    return texts_dataset(embedded_texts(d.lang, d.count), d.resolved_voice, sample_rate=d.sample_rate,
                         cache_dir=cache_dir)


#: seed of the phrase-grammar sentences added to the embedded corpus's training split
GRAMMAR_SEED = 0


def grammar_texts(lang: str, count: int, held_out: Sequence[str], known: Sequence[str]) -> list[str]:
    """Up to ``count`` phrase-grammar sentences in ``lang`` (:func:`rnnkit.data.phrase_grammar.grammar_pairs`),
    none a held-out sentence (nor its contracted form or its translation: compared by ``sentence_key``) and
    none already ``known`` (the corpus's own sentences)."""
    side = 0 if lang == "en" else 1
    known_keys = {sentence_key(t) for t in known}
    pairs = grammar_pairs(count, seed=GRAMMAR_SEED, exclude=held_out)
    return [p[side] for p in pairs if sentence_key(p[side]) not in known_keys]


def grammar_corpus(d: TTSDataConfig, held_out: Sequence[str], known: Sequence[str],
                   cache_dir: Path | None = None) -> Corpus:
    """``d.grammar`` phrase-grammar sentences read by the embedded corpus's voice (synthesised once, cached)."""
    texts = grammar_texts(d.lang, d.grammar, held_out, known)
    manifest = texts_dataset(texts, d.resolved_voice, sample_rate=d.sample_rate, cache_dir=cache_dir)
    return read_corpus(manifest, d.lang, d.skip_bad)


def check_held_out(train: Corpus, held: Sequence[Corpus], key: Callable[[str], str] = str) -> None:
    """A DataError naming the first validation or test sentence that is also a training sentence (compared by
    ``key``: the text itself, or ``sentence_key`` for sentences that must not even be a contracted form)."""
    seen = {key(t) for t in train.texts}
    for corpus in held:
        for text, where in zip(corpus.texts, corpus.wheres):
            if key(text) in seen:
                raise DataError(f"{where}: the held-out sentence {text!r} is also in the training split")


def read_corpus(path: str | Path, lang: str, skip_bad: bool = False) -> Corpus:
    """The utterances of a manifest or LJSpeech folder, texts normalised for ``lang``."""
    manifest = read_speech_manifest(path, skip_bad=skip_bad)
    utts = manifest.utterances
    normalised = [normalize_text(u.text, lang) for u in utts]
    empty = [u.source for u, t in zip(utts, normalised) if not t]
    if empty:
        raise DataError(f"{empty[0]}: the text is empty after normalisation")
    return Corpus([u.text for u in utts], normalised, [u.audio for u in utts], [u.source for u in utts], str(path),
                  list(manifest.problems))


@dataclass
class Splits:
    train: Corpus
    val: Corpus
    test: Corpus
    source: str


def split_indices(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(kept, held out): a seeded random ``fraction`` of ``range(n)`` held out (at least one when > 0)."""
    order = np.random.default_rng(seed).permutation(n).tolist()
    k = max(1, int(round(n * fraction))) if fraction > 0 and n > 2 else 0
    return order[k:], order[:k]


def load_splits(d: TTSDataConfig, seed: int, cache_dir: Path | None = None) -> Splits:
    source = d.data or str(embedded_manifest(d, cache_dir))
    full = read_corpus(source, d.lang, d.skip_bad)
    label = d.data or f"embedded:{d.lang} (eSpeak NG voice {d.resolved_voice}, {len(full)} sentences)"
    if d.test_data:
        test = read_corpus(d.test_data, d.lang, d.skip_bad)
    else:
        keep, held = split_indices(len(full), d.test_fraction, seed)
        full, test = full.subset(keep), full.subset(held)
    if d.val_data:
        train, val = full, read_corpus(d.val_data, d.lang, d.skip_bad)
    else:
        keep, held = split_indices(len(full), d.val_fraction, seed + 1)
        train, val = full.subset(keep), full.subset(held)
    if d.grammar and not d.data:  # training text only: the held-out splits stay those of the corpus without it
        extra = grammar_corpus(d, val.texts + test.texts, full.texts + test.texts, cache_dir)
        check_held_out(extra, (val, test), key=sentence_key)
        train = train.joined(extra)
        label += f" + {len(extra)} phrase-grammar sentences in training"
    if not d.data:
        check_held_out(train, (val, test))
    if len(train) == 0 or len(val) == 0:
        raise DataError(f"{label}: {len(train)} training and {len(val)} validation utterances; need at least one "
                        "of each (more data, or --val-fraction / --val-data)")
    return Splits(train, val, test, label)


# ------------------------------------------------------------------------ symbols

def text_symbols(normalised: str, symbols: str, voice: str) -> str:
    """The model's input string: the normalised text, or its IPA phonemes from eSpeak NG."""
    return phonemes(normalised, voice) if symbols == "phonemes" else normalised


def fit_vocabulary(strings: Sequence[str]) -> Vocabulary:
    return Vocabulary.build("char", strings)


def encode(vocab: Vocabulary, string: str, where: str) -> list[int]:
    """Ids of ``string`` with ``</s>`` appended; a symbol the vocabulary lacks is an error naming it."""
    ids = vocab.encode(string)
    if vocab.unk_id in ids:
        outside = sorted({c for c in string if c not in vocab.index})
        known = "".join(sorted(t for t in vocab.index if len(t) == 1))  # the specials are longer
        raise DataError(f"{where}: {string!r} has symbols this run cannot read {outside}; it reads {known!r}")
    return ids + [vocab.eos_id]


# ------------------------------------------------------------------------ audio

def trim_silence(mel: torch.Tensor, trim_db: float) -> torch.Tensor:
    """(T, M) log-mel without the leading and trailing frames more than ``trim_db`` below the loudest."""
    if trim_db <= 0:
        return mel
    energy = torch.logsumexp(mel, dim=1)                                        # (T,) log of the frame's power
    loud = torch.nonzero(energy > energy.max() - trim_db * DB_TO_LOG_POWER).squeeze(1)
    return mel[int(loud[0]): int(loud[-1]) + 1]


@torch.no_grad()
def mel_frames(extractor: FeatureExtractor, wave: np.ndarray, trim_db: float) -> torch.Tensor:
    feats, _ = extractor(torch.from_numpy(wave)[None])
    return trim_silence(feats[0], trim_db)


def load_mels(corpus: Corpus, features: FeatureConfig, d: TTSDataConfig, check_length: bool = True
              ) -> tuple[list[torch.Tensor], list[int]]:
    """Log-mel frames (T_i, M) of each readable utterance and the indices kept (unreadable, shorter than one
    frame or, for training, longer than ``max_seconds``: an error naming the manifest line, or skipped with
    ``skip_bad``)."""
    rate = features.sample_rate

    def too_long(wave: np.ndarray) -> str | None:
        seconds = len(wave) / rate
        if seconds > d.max_seconds:
            return (f"{seconds:.1f} s of audio, longer than max_seconds={d.max_seconds}; cut it into sentences "
                    "or raise --max-seconds")
        return None

    extractor = FeatureExtractor(features)
    mels, kept = [], []
    for i, wave in read_waves(corpus.audio, rate, wheres=corpus.wheres, problems=corpus.skipped if d.skip_bad else None,
                              min_samples=features.n_fft // 2 + 1, check=too_long if check_length else None):
        mels.append(mel_frames(extractor, wave, d.trim_db))
        kept.append(i)
    if not kept:
        raise DataError(f"{corpus.source}: no readable audio ({len(corpus.skipped)} skipped)")
    return mels, kept


# ------------------------------------------------------------------------ batches

def make_batch(ids: Sequence[list[int]], mels: Sequence[torch.Tensor], index: Sequence[int], reduction: int) -> dict:
    text = torch.nn.utils.rnn.pad_sequence([torch.tensor(x, dtype=torch.long) for x in ids], batch_first=True)
    T = max(len(m) for m in mels)
    T = -(-T // reduction) * reduction
    out = torch.zeros(len(mels), T, mels[0].shape[1])
    for b, m in enumerate(mels):
        out[b, : len(m)] = m
    return {"text": text, "text_lengths": torch.tensor([len(x) for x in ids]), "mels": out,
            "mel_lengths": torch.tensor([len(m) for m in mels]), "index": torch.tensor(list(index))}


def batches(ids: Sequence[list[int]], mels: Sequence[torch.Tensor], batch_size: int, reduction: int) -> list[dict]:
    """Batches of utterances of similar length (less padding), in length order."""
    order = sorted(range(len(mels)), key=lambda i: len(mels[i]))
    return [make_batch([ids[i] for i in g], [mels[i] for i in g], g, reduction)
            for g in (order[s:s + batch_size] for s in range(0, len(order), batch_size))]

