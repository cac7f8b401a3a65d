"""The embedded speech data: utterances synthesised with eSpeak NG, no download.

eSpeak NG comes with the PyPI package ``espeakng-loader`` (``pip install 'rnnkit[speech]'``), which
ships ``libespeak-ng`` and its voice data.  :class:`ESpeak` drives the C library through ctypes:
``espeak_Initialize`` in synchronous mode with a synth callback that collects the 22,050 Hz int16
samples, ``espeak_SetVoiceByName`` (a language voice such as ``en-us`` with an optional variant,
``en-us+f3``), and ``espeak_SetParameter`` for the rate (words per minute) and pitch (0-100).

:func:`speech_dataset` builds a set once and caches it: a folder under ``cache_dir`` named after a
hash of the :class:`SynthConfig` (so other parameters give another folder), holding WAV files and
a NeMo-style ``manifest.jsonl`` (read it with ``rnnkit.data.speech_manifest``); the folder is built
under a temporary name and renamed into place, so a half-built set is never used.

:func:`texts_dataset` caches given texts read once each by one voice the same way (the single-speaker
corpora of speech synthesis); :meth:`ESpeak.phonemes` gives eSpeak NG's IPA phonemes of a text.

Sets (``SET_NAMES``): ``digits`` (isolated digits), ``commands`` (isolated command words),
``digit_strings`` (connected strings of 3-7 digits) and ``sentences`` (short sentences), in English,
and in French for French voices.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import random
import shutil
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from rnnkit.atomic import atomic_write_text
from rnnkit.data.audio import resample, write_wav
from rnnkit.data.cache import data_cache_dir

ESPEAK_RATE = 22050
INSTALL_HINT = "install it with: pip install 'rnnkit[speech]' (or pip install espeakng-loader)"

WORDS: Dict[str, Dict[str, List[str]]] = {
    "en": {
        "digits": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
        "commands": ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"],
        "subjects": ["the light", "the door", "the music", "the radio", "the window", "the heating"],
        "verbs": ["turn on", "turn off", "open", "close", "check", "stop"],
    },
    "fr": {
        "digits": ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"],
        "commands": ["oui", "non", "haut", "bas", "gauche", "droite", "marche", "arrêt", "stop", "va"],
        "subjects": ["la lumière", "la porte", "la musique", "la radio", "la fenêtre", "le chauffage"],
        "verbs": ["allume", "éteins", "ouvre", "ferme", "vérifie", "arrête"],
    },
}
SET_NAMES = ("digits", "commands", "digit_strings", "sentences")
ENGLISH_VOICES = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc")
VARIANTS = ("", "m1", "m3", "m5", "f1", "f2", "f4")


def language_of(voice: str) -> str:
    """'fr-be+f2' -> 'fr'; every voice whose language is not French reads the English words."""
    return "fr" if voice.split("+")[0].lower().startswith("fr") else "en"


def sentence_text(set_name: str, lang: str, rng: random.Random) -> str:
    """One transcript of the named set in language ``lang``."""
    w = WORDS[lang]
    if set_name == "digits":
        return rng.choice(w["digits"])
    if set_name == "commands":
        return rng.choice(w["commands"])
    if set_name == "digit_strings":
        return " ".join(rng.choice(w["digits"]) for _ in range(rng.randint(3, 7)))
    if set_name == "sentences":
        return f"{rng.choice(w['verbs'])} {rng.choice(w['subjects'])}"
    raise ValueError(f"set must be one of {SET_NAMES}, got {set_name!r}")


class ESpeak:
    """eSpeak NG through ctypes, synchronous synthesis into memory (one instance per process)."""

    _instance: Optional["ESpeak"] = None
    _lock = threading.Lock()
    _CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
    AUDIO_OUTPUT_SYNCHRONOUS = 2
    POS_CHARACTER = 1
    CHARS_UTF8 = 1
    RATE, PITCH = 1, 3
    PHONEMES_IPA = 0x02

    @classmethod
    def get(cls) -> "ESpeak":
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError as err:
            raise ImportError(f"speech synthesis needs eSpeak NG from the 'espeakng-loader' package; "
                              f"{INSTALL_HINT}") from err
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as err:
            raise RuntimeError(f"cannot load libespeak-ng from espeakng-loader ({err}); {INSTALL_HINT}") from err
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        rate = lib.espeak_Initialize(self.AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), 0)
        if rate != ESPEAK_RATE:
            raise RuntimeError(f"espeak_Initialize failed (returned {rate}) with data path {data}; {INSTALL_HINT}")
        self._chunks: List[np.ndarray] = []
        self._callback = self._CALLBACK(self._collect)   # kept referenced while the library may call it
        lib.espeak_SetSynthCallback(self._callback)
        self.lib = lib
        self.sample_rate = rate

    def _collect(self, wav, n, events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0   # 0: continue synthesis

    def synth(self, text: str, voice: str = "en", rate: int = 175, pitch: int = 50) -> np.ndarray:
        """int16 samples (N,) at 22,050 Hz of ``text`` spoken by ``voice`` at ``rate`` wpm and ``pitch``."""
        if not 80 <= rate <= 450:
            raise ValueError(f"rate must be 80-450 words per minute, got {rate}")
        if not 0 <= pitch <= 100:
            raise ValueError(f"pitch must be 0-100, got {pitch}")
        with self._lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {voice!r}; use a language voice such as 'en', 'en-us', "
                                 f"'fr', optionally with a variant ('en-us+f3')")
            self.lib.espeak_SetParameter(self.RATE, int(rate), 0)
            self.lib.espeak_SetParameter(self.PITCH, int(pitch), 0)
            self._chunks = []
            raw = text.encode("utf-8") + b"\0"
            err = self.lib.espeak_Synth(raw, len(raw), 0, self.POS_CHARACTER, 0, self.CHARS_UTF8, None, None)
            if err != 0:
                raise RuntimeError(f"espeak_Synth failed with code {err} for {text!r}")
            self.lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)

    def phonemes(self, text: str, voice: str = "en") -> str:
        """IPA phonemes of ``text`` read by ``voice`` (espeak_TextToPhonemes, one clause per call), words
        separated by spaces."""
        with self._lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {voice!r}; use a language voice such as 'en' or 'fr'")
            buffer = ctypes.create_string_buffer(text.encode("utf-8"))
            pointer = ctypes.c_void_p(ctypes.addressof(buffer))
            out = []
            while pointer.value:   # the library advances the pointer past each clause, NULL at the end
                ipa = self.lib.espeak_TextToPhonemes(ctypes.byref(pointer), self.CHARS_UTF8, self.PHONEMES_IPA)
                if ipa:
                    out.append(ipa.decode("utf-8"))
        return " ".join(" ".join(out).split())


def synthesize(text: str, voice: str = "en", rate: int = 175, pitch: int = 50, sample_rate: int = 16000) -> np.ndarray:
    """float32 waveform (N,) in [-1, 1] at ``sample_rate`` Hz of ``text`` spoken by eSpeak NG."""
    samples = ESpeak.get().synth(text, voice, rate, pitch)
    if samples.size == 0:
        raise RuntimeError(f"eSpeak NG produced no audio for {text!r} with voice {voice!r}")
    return resample(samples.astype(np.float32) / 32768.0, ESPEAK_RATE, sample_rate)


@dataclass(frozen=True)
class SynthConfig:
    """What to generate: ``count`` utterances of ``set_name`` over every combination of the options."""

    set_name: str = "digits"
    count: int = 300
    voices: Tuple[str, ...] = ENGLISH_VOICES
    variants: Tuple[str, ...] = VARIANTS
    rates: Tuple[int, ...] = (130, 160, 190, 220)
    pitches: Tuple[int, ...] = (30, 45, 60, 75)
    noise_snr_db: Optional[float] = None
    sample_rate: int = 16000
    seed: int = 0

    def __post_init__(self):
        for name in ("voices", "variants", "rates", "pitches"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
            if not getattr(self, name):
                raise ValueError(f"SynthConfig.{name} must not be empty")
        if self.set_name not in SET_NAMES:
            raise ValueError(f"SynthConfig.set_name must be one of {SET_NAMES}, got {self.set_name!r}")
        if self.count < 1:
            raise ValueError(f"SynthConfig.count must be >= 1, got {self.count}")
        if any(not 80 <= r <= 450 for r in self.rates):
            raise ValueError(f"SynthConfig.rates must be 80-450 words per minute, got {self.rates}")
        if any(not 0 <= p <= 100 for p in self.pitches):
            raise ValueError(f"SynthConfig.pitches must be 0-100, got {self.pitches}")
        if self.sample_rate < 8000:
            raise ValueError(f"SynthConfig.sample_rate must be >= 8000 Hz, got {self.sample_rate}")

    def key(self) -> str:
        """A short hash of every parameter: the cache folder's name."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def default_cache_dir() -> Path:
    return data_cache_dir("speech")


def _add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(wave.shape).astype(np.float32)
    scale = np.sqrt(np.mean(wave ** 2) / (np.mean(noise ** 2) * 10 ** (snr_db / 10)))
    return wave + scale * noise


def speech_dataset(config: SynthConfig = SynthConfig(), cache_dir: Optional[Path] = None) -> Path:
    """Path to the ``manifest.jsonl`` of the set ``config`` describes, generating and caching it if needed."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    def build(work: Path) -> List[str]:
        rng = random.Random(config.seed)
        noise_rng = np.random.default_rng(config.seed)
        lines = []
        for i in range(config.count):
            voice = rng.choice(config.voices)
            variant = rng.choice(config.variants)
            full_voice = f"{voice}+{variant}" if variant else voice
            rate, pitch = rng.choice(config.rates), rng.choice(config.pitches)
            text = sentence_text(config.set_name, language_of(voice), rng)
            wave = synthesize(text, full_voice, rate, pitch, config.sample_rate)
            if config.noise_snr_db is not None:
                wave = _add_noise(wave, config.noise_snr_db, noise_rng)
            name = f"{i:05d}.wav"
            write_wav(work / name, wave, config.sample_rate)
            lines.append(json.dumps({"audio_filepath": name, "text": text,
                                     "duration": round(len(wave) / config.sample_rate, 4),
                                     "voice": full_voice, "rate": rate, "pitch": pitch}, ensure_ascii=False))
        return lines

    return cached_speech_set(root / f"{config.set_name}-{config.key()}", asdict(config), build)


def texts_dataset(texts: Sequence[str], voice: str, rate: int = 160, pitch: int = 50, sample_rate: int = 16000,
                  cache_dir: Optional[Path] = None) -> Path:
    """``manifest.jsonl`` of the given ``texts``, each spoken once by ``voice`` (a single-speaker corpus, as
    speech synthesis trains on), generated once and cached under a hash of the texts and settings."""
    if not texts:
        raise ValueError("texts_dataset needs at least one text")
    settings = {"texts": list(texts), "voice": voice, "rate": rate, "pitch": pitch, "sample_rate": sample_rate}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    def build(work: Path) -> List[str]:
        lines = []
        for i, text in enumerate(texts):
            wave = synthesize(text, voice, rate, pitch, sample_rate)
            name = f"{i:05d}.wav"
            write_wav(work / name, wave, sample_rate)
            lines.append(json.dumps({"audio_filepath": name, "text": text,
                                     "duration": round(len(wave) / sample_rate, 4),
                                     "voice": voice, "rate": rate, "pitch": pitch}, ensure_ascii=False))
        return lines

    return cached_speech_set(root / f"texts-{voice.replace('+', '_')}-{key}", settings, build)


def cached_speech_set(final: Path, settings: dict, build) -> Path:
    """``final/manifest.jsonl``, made by ``build(work_dir) -> manifest lines`` in a temporary folder renamed
    into place (a half-built set is never used; a concurrent builder's finished copy is kept)."""
    manifest = final / "manifest.jsonl"
    if manifest.is_file():
        return manifest
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
    try:
        lines = build(work)
        # on disk (fsync'd) before the folder is renamed into place: a crash cannot leave a set whose manifest
        # is cut short under its final name
        atomic_write_text(work / "manifest.jsonl", "\n".join(lines) + "\n")
        atomic_write_text(work / "config.json", json.dumps(settings, indent=1, ensure_ascii=False))
        try:
            os.replace(work, final)
        except OSError:
            if not manifest.is_file():   # not a concurrent builder's finished copy: a real failure
                raise
    finally:
        if work.exists():
            shutil.rmtree(work)
    return manifest


#: voices the embedded spoken-word classification sets train on, and the voices held out for their test split
TRAIN_VOICES = ("en", "en-us", "en-gb-x-rp", "en-029")
TEST_VOICES = ("en-gb-scotland", "en-us-nyc")


def held_out_voice_sets(set_name: str = "digits", train_count: int = 800, test_count: int = 200,
                        cache_dir: Optional[Path] = None) -> Tuple[Path, Path]:
    """Manifests of ``set_name`` spoken by TRAIN_VOICES (to train on) and by TEST_VOICES (to test on)."""
    train = speech_dataset(SynthConfig(set_name, train_count, voices=TRAIN_VOICES, seed=0), cache_dir)
    test = speech_dataset(SynthConfig(set_name, test_count, voices=TEST_VOICES, seed=1), cache_dir)
    return train, test
