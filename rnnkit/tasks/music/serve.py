"""What ``rnnkit serve`` offers for a music run: a generated piece (optionally after an uploaded MIDI primer)
as MIDI and as a WAV rendering to play, with its piano roll (sounding pitches per frame) to draw; streamed,
each frame as it is sampled, then the whole piece."""
from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from rnnkit.config import ConfigError
from rnnkit.tasks.music.event_model import LoadedEvents, sample_events, write_events
from rnnkit.tasks.music.model import LoadedMusic, sample_piece, write_piece
from rnnkit.tasks.serving import Route, file, integer, number, obj

DEFAULTS = {"length": 64, "temperature": 1.0, "bpm": 120.0}


def _sample(loaded: LoadedMusic, request: dict):
    opt = {**DEFAULTS, **request}
    if opt["bpm"] <= 0:
        raise ConfigError(f"bpm must be positive, got {opt['bpm']}")
    start, sampled = sample_piece(loaded, length=opt["length"], temperature=opt["temperature"],
                                  primer=request.get("primer"), seed=request.get("seed"))
    return start, sampled, opt["bpm"]


def _piece(loaded: LoadedMusic, frames: np.ndarray, primer_frames: int, bpm: float) -> dict:
    """The answer for a whole piece (T, P): MIDI and WAV as base64, the roll, statistics."""
    with tempfile.TemporaryDirectory(prefix="rnnkit-music-") as tmp:
        g = write_piece(loaded, frames, primer_frames, Path(tmp) / "piece.mid", wav=True, bpm=bpm, png=False)
        return _answer(loaded, g, frames, primer_frames)


def _answer(loaded, g, frames: np.ndarray, primer_frames: int) -> dict:
    files = {kind: base64.b64encode(Path(path).read_bytes()).decode("ascii")
             for kind, path in g.files.items() if kind in ("midi", "wav")}
    s = g.stats
    return {"midi": files["midi"], "wav": files["wav"], "frames": int(frames.shape[0]),
            "primer_frames": primer_frames, "lowest": loaded.roll_config.lowest,
            "roll": [_pitches(loaded, f) for f in frames],
            "stats": {"polyphony": float(s.polyphony), "note_density": float(s.note_density),
                      "empty_frame_ratio": float(s.empty_frame_ratio)}}


def _pitches(loaded: LoadedMusic, frame: np.ndarray) -> list[int]:
    """MIDI pitches sounding in a frame (P,)."""
    return [int(loaded.roll_config.lowest + p) for p in np.flatnonzero(frame)]


def generate(loaded: LoadedMusic, request: dict) -> dict:
    start, sampled, bpm = _sample(loaded, request)
    return _piece(loaded, np.concatenate([start, *(f[None] for f in sampled)]), len(start), bpm)


def stream(loaded: LoadedMusic, request: dict) -> Iterator[dict]:
    """``{"frame": t, "pitches": [...]}`` per sampled frame as it comes, then ``{"piece": <the whole answer>}``."""
    start, sampled, bpm = _sample(loaded, request)  # bad settings and primers fail before the first event

    def events():
        frames = [start]
        for t, frame in enumerate(sampled, len(start)):
            frames.append(frame[None])
            yield {"frame": t, "pitches": _pitches(loaded, frame)}
        yield {"piece": _piece(loaded, np.concatenate(frames), len(start), bpm)}
    return events()


def generate_events(loaded: LoadedEvents, request: dict) -> dict:
    """An event run's piece: the answer of a roll run (its MIDI read back as a roll) plus its tokens."""
    opt = {**DEFAULTS, "top_k": 0, "top_p": 1.0, **request}
    if opt["bpm"] <= 0:
        raise ConfigError(f"bpm must be positive, got {opt['bpm']}")
    tokens = sample_events(loaded, length=opt["length"], temperature=opt["temperature"], top_k=opt["top_k"],
                           top_p=opt["top_p"], primer=request.get("primer"), seed=request.get("seed"))
    n0 = len(tokens) - opt["length"]
    with tempfile.TemporaryDirectory(prefix="rnnkit-music-") as tmp:
        g = write_events(loaded, tokens, n0, Path(tmp) / "piece.mid", wav=True, bpm=opt["bpm"], png=False)
        answer = _answer(loaded, g, g.frames, 0)
    return {**answer, "tokens": [int(t) for t in tokens], "primer_tokens": n0}


def routes(loaded: LoadedMusic | LoadedEvents) -> list[Route]:
    if isinstance(loaded, LoadedEvents):
        return event_routes(loaded)
    schema = obj(length=integer("frames to generate after the primer", 1),
                 temperature=number("sampling temperature; 0 = the most likely frame", 0),
                 bpm=number("tempo of the MIDI and WAV", 1, 400),
                 seed=integer("random seed for sampling"),
                 primer=file("midi", "a MIDI file the piece starts with"))
    return [Route("music", "a generated piece: MIDI and WAV (base64) and its piano roll (frame by frame at "
                  "/stream)", schema,
                  lambda r: generate(loaded, r), stream=lambda r: stream(loaded, r), uploads={"primer": "midi"}, length_field="length", panel="music",
                  example={"length": 64, "temperature": 1.0},
                  output=obj(midi={"type": "string", "contentEncoding": "base64"},
                             wav={"type": "string", "contentEncoding": "base64"}, frames={"type": "integer"}))]


def event_routes(loaded: LoadedEvents) -> list[Route]:
    mode = loaded.config.data.mode
    schema = obj(length=integer(f"{mode} tokens to generate after the primer", 1),
                 temperature=number("sampling temperature; 0 = the most likely token", 0),
                 top_k=integer("sample from the k most likely tokens (0 = off)", 0),
                 top_p=number("nucleus sampling mass (1 = off)", 0, 1),
                 bpm=number("tempo of the MIDI and WAV", 1, 400),
                 seed=integer("random seed for sampling"),
                 primer=file("midi", "a MIDI file the piece starts with"))
    return [Route("music", f"a generated piece ({mode} tokens): MIDI and WAV (base64), its piano roll and tokens",
                  schema, lambda r: generate_events(loaded, r), uploads={"primer": "midi"}, length_field="length",
                  panel="music", example={"length": 128, "temperature": 1.0},
                  output=obj(midi={"type": "string", "contentEncoding": "base64"},
                             wav={"type": "string", "contentEncoding": "base64"}, tokens={"type": "array"}))]
