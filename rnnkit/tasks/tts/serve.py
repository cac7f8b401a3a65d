"""What ``rnnkit serve`` offers for a text-to-speech run: a text read aloud, as a base64 16-bit WAV for the
page's speak panel (speed and pitch shift per request).

Answer: ``wav`` (base64 WAV, mono, the run's rate), ``sample_rate``, ``seconds``."""
from __future__ import annotations

import base64

import numpy as np

from rnnkit.data.audio import wav_bytes
from rnnkit.tasks.serving import Route, number, obj, text

from .pipeline import LoadedTTS, synthesize

MAX_CHARS = 1000


def wav_base64(wave: np.ndarray, rate: int) -> str:
    """A float waveform (N,) as a base64 16-bit PCM WAV file."""
    return base64.b64encode(wav_bytes(wave, rate)).decode("ascii")


def speak(loaded: LoadedTTS, request: dict) -> dict:
    wave, rate = synthesize(loaded, request["text"], speed=request.get("speed", 1.0),
                            pitch_shift=request.get("pitch_shift", 0.0))
    return {"wav": wav_base64(wave, rate), "sample_rate": rate, "seconds": round(len(wave) / rate, 3)}


def routes(loaded: LoadedTTS) -> list[Route]:
    schema = obj(("text",), text=text("what to say", MAX_CHARS),
                 speed=number("how fast: > 1 speaks faster (default 1)", 0.25, 4.0),
                 pitch_shift=number("pitch shift in semitones (default 0)", -12.0, 12.0))
    output = obj(("wav",), wav={"type": "string", "contentEncoding": "base64", "description": "16-bit PCM WAV"},
                 sample_rate={"type": "integer"}, seconds={"type": "number"})
    example = {"text": "Bonjour tout le monde." if loaded.lang == "fr" else "Hello world."}
    return [Route("speak", "the text read aloud (a WAV file)", schema, lambda r: speak(loaded, r), panel="speak",
                  output=output, example=example)]
