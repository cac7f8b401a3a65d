"""What ``rnnkit serve`` offers for an image-tagging run: the tags of an uploaded image, with a score per
tag (the rnn head: a tag's highest probability over the decoded steps; the sigmoid head: its probability).

Answer: ``tags`` (the predicted set, most frequent tag first) and ``scores`` (every tag the run knows ->
its score, highest first)."""
from __future__ import annotations


from rnnkit.tasks.serving import Route, file, obj
from rnnkit.tasks.vision import LoadedImageRun, image_pixels

from .model import tag_index
from .pipeline import predict_pixels


def tag_upload(loaded: LoadedImageRun, request: dict) -> dict:
    pixels = image_pixels(loaded, [request["image"]])                         # (1, 3, S, S)
    pred = predict_pixels(loaded, pixels)
    tags = tag_index(loaded.vocab)
    scores = sorted(zip(tags, pred.scores[0].tolist()), key=lambda ts: -ts[1])
    return {"tags": [t for t, on in zip(tags, pred.predicted[0].tolist()) if on],
            "scores": {t: round(float(s), 4) for t, s in scores}}


def routes(loaded: LoadedImageRun) -> list[Route]:
    schema = obj(("image",), image=file("image", "the picture to tag: PNG, JPEG, GIF, BMP or WebP"))
    output = obj(("tags", "scores"), tags={"type": "array", "items": {"type": "string"}},
                 scores={"type": "object", "additionalProperties": {"type": "number"}})
    return [Route("tag-image", "the tags of an uploaded image, with a score per tag", schema,
                  lambda r: tag_upload(loaded, r), uploads={"image": "image"}, output=output)]
