"""What ``rnnkit serve`` offers for a captioning run: the caption of an uploaded image (beam size per
request), with the attention of each word over the image's feature grid for the page's caption panel.

Answer: ``caption``, ``score``, ``log_prob``, ``words`` (the caption's words) and, for a run with soft
attention, ``attention`` (one row per word over the grid cells, row-major) and ``grid`` (``[rows, columns]``).
"""
from __future__ import annotations

import math


from rnnkit.tasks.serving import Route, file, integer, obj
from rnnkit.tasks.vision import LoadedImageRun, image_pixels

from .pipeline import caption_pixels, decode_settings

MAX_BEAM = 32


def caption_upload(loaded: LoadedImageRun, request: dict) -> dict:
    """The checked request (``image``: the path of the uploaded copy, ``beam``, ``max_len``) -> the answer."""
    pixels = image_pixels(loaded, [request["image"]])                         # (1, 3, S, S)
    how = decode_settings(loaded, beam=request.get("beam"), max_len=request.get("max_len"))
    (cap,) = caption_pixels(loaded, pixels, how)
    words = cap.words[:-1]                                                    # "</s>" left out
    out = {"caption": cap.text, "score": round(float(cap.score), 4), "log_prob": round(float(cap.log_prob), 4),
           "words": words}
    if cap.attention is not None:
        S = cap.attention.shape[1]
        side = math.isqrt(S)                                                  # the encoders' grids are square
        if side * side != S:
            raise ValueError(f"attention over {S} grid cells is not a square grid")
        out["grid"] = [side, side]
        out["attention"] = [[round(float(a), 4) for a in row] for row in cap.attention[:len(words)]]  # (words, S)
    return out


def routes(loaded: LoadedImageRun) -> list[Route]:
    d = loaded.config.decode
    schema = obj(("image",), image=file("image", "the picture to caption: PNG, JPEG, GIF, BMP or WebP"),
                 beam=integer(f"beam size, 1 = greedy (default {d.beam})", 1, MAX_BEAM),
                 max_len=integer(f"longest caption in words, </s> included (default {d.max_len})", 1))
    output = obj(("caption",), caption={"type": "string"}, score={"type": "number"}, log_prob={"type": "number"},
                 words={"type": "array", "items": {"type": "string"}},
                 attention={"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                 grid={"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2})
    return [Route("caption", "the caption of an uploaded image, with each word's attention over it", schema,
                  lambda r: caption_upload(loaded, r), uploads={"image": "image"}, length_field="max_len",
                  panel="caption", output=output)]
