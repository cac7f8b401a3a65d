"""Parallel speech for speech translation: English audio, its transcript and its French translation.

**Embedded set.** :func:`parallel_speech_set` speaks the English side of the embedded phrase book
(``rnnkit/data/sets/phrasebook_en_fr.tsv``) and of generated command sentences (``turn on the light`` /
``allume la lumière``, from :data:`rnnkit.data.speech_synth.WORDS`) with eSpeak NG, in many voices, variants
(male and female), pitches and rates, and pairs each utterance with the French side::

    manifest.jsonl   {"audio_filepath", "text" (English), "translation" (French), "voice", "pitch", "rate",
                      "split": "train" | "test"}

The test split holds *held-out sentences* (``test_fraction`` of the distinct English sentences, never
spoken in training) in *held-out voices*: :data:`TEST_VOICES`, a low male and a high female voice whose
median F0 lie more than an octave apart (about 75 Hz and 255 Hz). The set is built once under the speech
cache, in a folder named after a hash of its :class:`ParallelConfig` (built under a temporary name and
renamed into place, as :func:`rnnkit.data.speech_synth.speech_dataset` does).

**A user's set.** :func:`read_translation_manifest` reads a CSV, TSV or JSONL manifest with ``audio``
(or ``audio_filepath``), ``text`` (the English transcript) and ``translation`` (the French) columns;
relative audio paths are taken from the manifest's folder; a bad row is an error naming file and line.
"""
from __future__ import annotations

import csv
import hashlib
import json
import random
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Optional, Tuple

from rnnkit.data.audio import write_wav
from rnnkit.data.phrase_grammar import grammar_pairs
from rnnkit.data.readers import DataError, jsonl_objects, text_lines
from rnnkit.data.speech_synth import WORDS, cached_speech_set, default_cache_dir, synthesize

#: (voice, pitch 0-100) of the training utterances: English accents x male / female variants. The variants
#: and accents of TEST_VOICES (m3, f2, f3; Scottish, New York) are never trained on; the pitches reach past the
#: held-out voices' (20 and 80) on both sides, so a recogniser has heard voices as low and as high
TRAIN_VOICES = ("en", "en-us", "en-029", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
TRAIN_VARIANTS = ("", "m1", "m2", "m4", "m5", "m6", "m7", "f1", "f4", "f5")
#: held-out voices spanning more than an octave of median F0: (voice with variant, pitch)
TEST_VOICES = (("en-gb-scotland+m3", 20), ("en-us-nyc+f2", 80), ("en-gb-scotland+f3", 55))
RATES = (130, 150, 165, 180, 200)
PITCHES = (10, 20, 30, 40, 50, 60, 70, 80, 90)


def phrasebook_pairs() -> list[tuple[str, str]]:
    """(English, French) pairs of the embedded phrase book, in file order."""
    text = resources.files("rnnkit.data").joinpath("sets/phrasebook_en_fr.tsv").read_text(encoding="utf-8")
    pairs = []
    for n, line in enumerate(text_lines(text), start=1):
        if line.strip():
            cols = line.split("\t")
            if len(cols) < 2:
                raise DataError(f"phrasebook_en_fr.tsv:{n}: expected English<TAB>French")
            pairs.append((cols[0].strip(), cols[1].strip()))
    return pairs


def command_pairs() -> list[tuple[str, str]]:
    """Every generated command sentence, English and French (verb i and subject j in both languages)."""
    en, fr = WORDS["en"], WORDS["fr"]
    return [(f"{ve} {se}", f"{vf} {sf}") for ve, vf in zip(en["verbs"], fr["verbs"])
            for se, sf in zip(en["subjects"], fr["subjects"])]


def sentence_split(pairs: list[tuple[str, str]], test_fraction: float, seed: int
                   ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, test) pairs with no English sentence on both sides (a sentence with several translations
    goes wholly to one side)."""
    sentences = sorted({en for en, _ in pairs})
    random.Random(seed).shuffle(sentences)
    held = set(sentences[: max(1, round(test_fraction * len(sentences)))])
    return [p for p in pairs if p[0] not in held], [p for p in pairs if p[0] in held]


@dataclass(frozen=True)
class ParallelConfig:
    """``train_count`` training utterances (train voices, train sentences) and one test utterance per
    held-out sentence and held-out voice. ``grammar`` sentences of :mod:`rnnkit.data.phrase_grammar` join the
    training sentences (never a held-out sentence or translation); the test sentences are the phrase book's
    whatever ``grammar`` is."""
    train_count: int = 1200
    test_fraction: float = 0.1
    commands: bool = True              # add the generated command sentences to the phrase book
    sample_rate: int = 16000
    seed: int = 0
    grammar: int = 0
    voices: Tuple[str, ...] = TRAIN_VOICES
    variants: Tuple[str, ...] = TRAIN_VARIANTS
    rates: Tuple[int, ...] = RATES
    pitches: Tuple[int, ...] = PITCHES

    def __post_init__(self):
        if self.train_count < 1:
            raise ValueError(f"ParallelConfig.train_count must be >= 1, got {self.train_count}")
        if not 0 < self.test_fraction < 0.5:
            raise ValueError(f"ParallelConfig.test_fraction must be in (0, 0.5), got {self.test_fraction}")
        if self.sample_rate < 8000:
            raise ValueError(f"ParallelConfig.sample_rate must be >= 8000 Hz, got {self.sample_rate}")

        if self.grammar < 0:
            raise ValueError(f"ParallelConfig.grammar must be >= 0, got {self.grammar}")
        for name in ("voices", "rates", "pitches"):
            if not getattr(self, name):
                raise ValueError(f"ParallelConfig.{name} must not be empty")

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def pairs(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(train, test) sentence pairs: the phrase book (and commands) split by sentence, then ``grammar``
        generated pairs added to the training side."""
        pairs = phrasebook_pairs() + (command_pairs() if self.commands else [])
        train, test = sentence_split(pairs, self.test_fraction, self.seed)
        if self.grammar:
            train = train + grammar_pairs(self.grammar, self.seed, exclude=[t for p in test for t in p])
        return train, test


def parallel_speech_set(config: ParallelConfig = ParallelConfig(), cache_dir: Optional[Path] = None) -> Path:
    """The ``manifest.jsonl`` of the set ``config`` describes, synthesised and cached on first use."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    def build(work: Path) -> list:
        rng = random.Random(config.seed)
        train, test = config.pairs()
        jobs = []
        for _ in range(config.train_count):
            en, fr = rng.choice(train)
            variant = rng.choice(config.variants)
            voice = rng.choice(config.voices) + (f"+{variant}" if variant else "")
            jobs.append(("train", en, fr, voice, rng.choice(config.pitches), rng.choice(config.rates)))
        for en, fr in test:
            for voice, pitch in TEST_VOICES:
                jobs.append(("test", en, fr, voice, pitch, 165))
        lines = []
        for i, (split, en, fr, voice, pitch, rate) in enumerate(jobs):
            wave = synthesize(en, voice, rate, pitch, config.sample_rate)
            name = f"{i:05d}.wav"
            write_wav(work / name, wave, config.sample_rate)
            lines.append(json.dumps({"audio_filepath": name, "text": en, "translation": fr, "voice": voice,
                                     "pitch": pitch, "rate": rate, "split": split,
                                     "duration": round(len(wave) / config.sample_rate, 4)}, ensure_ascii=False))
        return lines

    return cached_speech_set(root / f"parallel-en-fr-{config.key()}", asdict(config), build)


# ------------------------------------------------------------------ a user's manifest

@dataclass(frozen=True)
class SpokenPair:
    """One utterance: audio file, English transcript, French translation, where it came from, its split
    ("" unless the manifest names one) and its voice ("" unless named)."""
    audio: Path
    text: str
    translation: str
    where: str
    split: str = ""
    voice: str = ""


def _rows(path: Path):
    """(line number, dict) of a JSONL, CSV or TSV manifest."""
    if path.suffix.lower() in (".jsonl", ".json"):
        yield from jsonl_objects(path, "a JSON object with audio, text and translation fields")
        return
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        for row in reader:
            yield reader.line_num, row


def read_translation_manifest(path: str | Path) -> list[SpokenPair]:
    """The utterances of a speech-translation manifest (JSONL, or CSV / TSV with a header)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such manifest (expected JSONL, CSV or TSV with audio, text and translation "
                        "columns)")
    out = []
    for n, row in _rows(path):
        where = f"{path}:{n}"
        audio = row.get("audio") or row.get("audio_filepath")
        missing = [k for k, v in (("audio", audio), ("text", row.get("text")),
                                  ("translation", row.get("translation"))) if not (v and str(v).strip())]
        if missing:
            raise DataError(f"{where}: no value in the {', '.join(missing)} field(s); every row needs audio "
                            "(or audio_filepath), text (English transcript) and translation (French)")
        file = Path(audio) if Path(audio).is_absolute() else path.parent / audio
        if not file.is_file():
            raise DataError(f"{where}: audio file {file} does not exist")
        out.append(SpokenPair(file, str(row["text"]).strip(), str(row["translation"]).strip(), where,
                              str(row.get("split") or ""), str(row.get("voice") or "")))
    if not out:
        raise DataError(f"{path}: the manifest has no rows")
    return out


def split_pairs(rows: list[SpokenPair], test_fraction: float, seed: int) -> Tuple[list[SpokenPair], list[SpokenPair]]:
    """(train, test): by the manifest's ``split`` column when it has one, else held-out English sentences."""
    if any(r.split for r in rows):
        bad = sorted({r.split for r in rows} - {"train", "test", "val"})
        if bad:
            raise DataError(f"{rows[0].where.rsplit(':', 1)[0]}: split must be train, val or test, got {bad}")
        return [r for r in rows if r.split != "test"], [r for r in rows if r.split == "test"]
    train, test = sentence_split([(r.text, r.translation) for r in rows], test_fraction, seed)
    held = {en for en, _ in test}
    return [r for r in rows if r.text not in held], [r for r in rows if r.text in held]
