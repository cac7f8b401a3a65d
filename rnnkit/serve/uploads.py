"""Uploaded files: copied to a temporary file, then checked to be what the route takes (audio, image, MIDI)
and within the server's limits, before any model sees them. A file that is not of its kind is a 415 that
says which kinds are read; one over a limit is a 413 naming the limit."""
from __future__ import annotations

import importlib
import shutil
from pathlib import Path

from rnnkit.serve.config import ServeConfig
from rnnkit.serve.errors import ApiError

EXPECTED = {"audio": "a WAV, FLAC or OGG sound file", "image": "a PNG, JPEG, GIF, BMP or WebP image",
            "midi": "a standard MIDI file (.mid)"}
SUFFIXES = {"audio": (".wav", ".flac", ".ogg", ".oga", ".opus"), "image": (".png", ".jpg", ".jpeg", ".gif", ".bmp",
                                                                        ".webp"),
            "midi": (".mid", ".midi")}


def _module(name: str, package: str):
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise ApiError(501, f"reading this upload needs {package}, which is not installed", None,
                       f"pip install {package} on the server") from err


def save_upload(upload, folder: Path, field: str, kind: str) -> Path:
    """The upload (a Starlette ``UploadFile``) as a file in ``folder``, its suffix kept when it is one of the
    kind's (decoders look at it)."""
    suffix = Path(upload.filename or "").suffix.lower()
    path = folder / f"{field}{suffix if suffix in SUFFIXES[kind] else ''}"
    upload.file.seek(0)
    with open(path, "wb") as out:
        shutil.copyfileobj(upload.file, out)
    if path.stat().st_size == 0:
        raise ApiError(422, f"{field}: the uploaded file is empty", field, EXPECTED[kind])
    return path


def check_upload(path: Path, field: str, kind: str, cfg: ServeConfig) -> None:
    if kind == "audio":
        sf = _module("soundfile", "soundfile")
        try:
            info = sf.info(str(path))
        except RuntimeError as err:  # soundfile.LibsndfileError: not a format libsndfile reads
            raise ApiError(415, f"{field}: not a readable sound file ({err})", field, EXPECTED[kind]) from None
        if info.duration > cfg.max_audio_seconds:
            raise ApiError(413, f"{field}: {info.duration:.1f} s of audio, over the server's limit", field,
                           f"at most {cfg.max_audio_seconds:g} s (--max-audio-seconds)")
    elif kind == "image":
        image = _module("PIL.Image", "Pillow")
        try:
            with image.open(path) as im:
                pixels = im.size[0] * im.size[1]
                im.verify()
        except (OSError, SyntaxError, ValueError, image.DecompressionBombError) as err:
            raise ApiError(415, f"{field}: not a readable image ({err})", field, EXPECTED[kind]) from None
        if pixels > cfg.max_image_pixels:
            raise ApiError(413, f"{field}: {pixels} pixels, over the server's limit", field,
                           f"at most {cfg.max_image_pixels} pixels (--max-image-pixels)")
    elif kind == "midi":
        mido = _module("mido", "mido")
        try:
            mido.MidiFile(str(path))
        except (OSError, EOFError, ValueError, KeyError, IndexError) as err:
            raise ApiError(415, f"{field}: not a readable MIDI file ({err})", field, EXPECTED[kind]) from None
    else:
        raise ValueError(f"upload kind {kind!r}")
