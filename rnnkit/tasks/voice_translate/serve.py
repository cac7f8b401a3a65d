"""What ``rnnkit serve`` offers for a voice-translation bundle: French speech, in the speaker's pitch and
voice depth, for an uploaded English audio file (optionally with its transcript), and the JSON report
``rnnkit voice-translate`` writes beside its WAV.

Answer: ``text`` (the French), ``wav`` (base64 WAV) and ``report`` (texts, stage times, F0 statistics,
warping factors, warnings; without the server's temporary file paths). The bundle's own voice matching
settings are not reachable from its loaded stages: the route matches with the defaults (warping on, 20 s
pieces, beam 5)."""
from __future__ import annotations

import base64
import tempfile
from pathlib import Path

from rnnkit.tasks.serving import Route, file, obj, text

from .cascade import Stages
from .commands import run_file
from .config import VoiceMatchConfig


def voice_translate(stages: Stages, match: VoiceMatchConfig, request: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="rnnkit-voice-") as tmp:
        out = Path(tmp) / "french.wav"
        report = run_file(stages, request["audio"], out, match, transcript=request.get("transcript"), plot=False)
        wav = base64.b64encode(out.read_bytes()).decode("ascii")
    report["input"].pop("path", None)                       # the server's temporary copy
    report["output"] = {k: v for k, v in report["output"].items() if k not in ("wav", "png")}
    return {"text": report["french"], "wav": wav, "report": report}


def routes(stages: Stages, match: VoiceMatchConfig | None = None) -> list[Route]:
    match = match or VoiceMatchConfig()
    schema = obj(("audio",), audio=file("audio", "English speech: a WAV, FLAC or OGG file, any rate and channels"),
                 transcript=text("what the audio says, when known (the recogniser then only checks it)", 2000))
    output = obj(("text", "wav", "report"), text={"type": "string"},
                 wav={"type": "string", "contentEncoding": "base64", "description": "16-bit PCM WAV"},
                 report={"type": "object"})
    return [Route("voice-translate", "French speech in the speaker's voice for an uploaded English audio file",
                  schema, lambda r: voice_translate(stages, match, r), uploads={"audio": "audio"}, panel="speak",
                  output=output)]
