"""What ``rnnkit serve`` offers for a direct speech-translation run: the French text of an uploaded English
audio file (any rate, resampled to the run's).

Answer: ``text`` (the translation; the page's transcribe panel shows it) and ``seconds`` (the input's)."""
from __future__ import annotations

from rnnkit.data.audio import read_audio
from rnnkit.tasks.serving import Route, file, obj

from .pipeline import LoadedSpeechTranslator


def translate_upload(loaded: LoadedSpeechTranslator, request: dict) -> dict:
    rate = loaded.model.features.sample_rate
    wave = read_audio(request["audio"], rate)
    (text,) = loaded.translate_waves([wave])
    return {"text": text, "seconds": round(len(wave) / rate, 3)}


def routes(loaded: LoadedSpeechTranslator) -> list[Route]:
    schema = obj(("audio",), audio=file("audio", "English speech: a WAV, FLAC or OGG file, any sample rate"))
    return [Route("speech-translate", "the French translation of an uploaded English audio file", schema,
                  lambda r: translate_upload(loaded, r), uploads={"audio": "audio"}, panel="transcribe",
                  output=obj(("text",), text={"type": "string"}, seconds={"type": "number"}))]
