"""What ``rnnkit serve`` offers for a speech-recognition run: the transcript of an uploaded audio file (any
rate, resampled), with word timings on request. Decoding is the run's own (its ``decode`` section, the
language model it names loaded once), the beam width may be set per request."""
from __future__ import annotations

import dataclasses

from rnnkit.tasks.asr.data import audio_inputs
from rnnkit.tasks.asr.pipeline import LMLoader, LoadedRecognizer, decoding, transcribe
from rnnkit.tasks.serving import Route, file, integer, obj

MAX_BEAM = 64


def routes(rec: LoadedRecognizer, lm_loader: LMLoader | None) -> list[Route]:
    default = decoding(rec, {}, lm_loader)

    def call(request: dict) -> dict:
        how = default
        if "beam" in request:
            beam = request["beam"]
            how = dataclasses.replace(default, beam=beam, lm=default.lm if beam >= 2 else None)
        (r,), _ = transcribe(rec, audio_inputs([request["audio"]]), how, timings=bool(request.get("timings")))
        out = {"text": r.text, "seconds": round(r.seconds, 3)}
        if r.words is not None:
            out["words"] = [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3)} for w in r.words]
        return out

    schema = obj(("audio",), audio=file("audio", "speech: a WAV, FLAC or OGG file, any sample rate"),
                 beam=integer("beam width (1 = greedy)", 1, MAX_BEAM),
                 timings={"type": "boolean", "description": "also the start and end of each word (seconds)"})
    return [Route("transcribe", "the transcript of an uploaded audio file", schema, call, uploads={"audio": "audio"},
                  panel="transcribe", output=obj(("text",), text={"type": "string"}, seconds={"type": "number"},
                                                 words={"type": "array", "items": {"type": "object"}}))]
