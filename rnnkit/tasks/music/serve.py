"""What ``rnnkit serve`` offers for a music run: a generated piece (optionally after an uploaded MIDI primer)
as MIDI and as a WAV rendering to play, with its piano roll (sounding pitches per frame) to draw."""
from __future__ import annotations

import base64
import tempfile
from pathlib import Path

import numpy as np

from rnnkit.tasks.music.model import LoadedMusic, generate_piece
from rnnkit.tasks.serving import Route, file, integer, number, obj

DEFAULTS = {"length": 64, "temperature": 1.0, "bpm": 120.0}


def generate(loaded: LoadedMusic, request: dict) -> dict:
    opt = {**DEFAULTS, **request}
    with tempfile.TemporaryDirectory(prefix="rnnkit-music-") as tmp:
        out = Path(tmp) / "piece.mid"
        g = generate_piece(loaded, out, length=opt["length"], temperature=opt["temperature"],
                           primer=request.get("primer"), seed=request.get("seed"), wav=True, bpm=opt["bpm"])
        files = {kind: base64.b64encode(Path(path).read_bytes()).decode("ascii")
                 for kind, path in g.files.items() if kind in ("midi", "wav")}
    frames = np.asarray(g.frames, dtype=bool)                          # (T, P)
    lowest = loaded.roll_config.lowest
    s = g.stats
    return {"midi": files["midi"], "wav": files["wav"], "frames": int(frames.shape[0]),
            "primer_frames": int(g.primer_frames), "lowest": lowest,
            "roll": [[int(lowest + p) for p in np.flatnonzero(f)] for f in frames],  # sounding pitches per frame
            "stats": {"polyphony": float(s.polyphony), "note_density": float(s.note_density),
                      "empty_frame_ratio": float(s.empty_frame_ratio)}}


def routes(loaded: LoadedMusic) -> list[Route]:
    schema = obj(length=integer("frames to generate after the primer", 1),
                 temperature=number("sampling temperature; 0 = the most likely frame", 0),
                 bpm=number("tempo of the MIDI and WAV", 1, 400),
                 seed=integer("random seed for sampling"),
                 primer=file("midi", "a MIDI file the piece starts with"))
    return [Route("music", "a generated piece: MIDI and WAV (base64) and its piano roll", schema,
                  lambda r: generate(loaded, r), uploads={"primer": "midi"}, length_field="length", panel="music",
                  example={"length": 64, "temperature": 1.0},
                  output=obj(midi={"type": "string", "contentEncoding": "base64"},
                             wav={"type": "string", "contentEncoding": "base64"}, frames={"type": "integer"}))]
