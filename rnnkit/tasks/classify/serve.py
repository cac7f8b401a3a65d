"""What ``rnnkit serve`` offers for a classify run: the label and class probabilities of texts, numeric
sequences or (an audio run) an uploaded sound file."""
from __future__ import annotations

from rnnkit.tasks.classify.pipeline import LoadedClassifier, classify_inputs
from rnnkit.tasks.serving import Route, file, obj, texts

MAX_INPUTS = 64

PROBABILITIES = {"type": "array", "items": obj(input={}, label={"type": "string"},
                                               probabilities={"type": "object",
                                                              "additionalProperties": {"type": "number"}})}


def routes(loaded: LoadedClassifier) -> list[Route]:
    kind = loaded.encoder.kind
    if kind == "audio":
        return [Route("classify", "the class of an uploaded sound file",
                      obj(("audio",), audio=file("audio", "a WAV, FLAC or OGG file")),
                      lambda r: classify_inputs(loaded, [r["audio"]]), uploads={"audio": "audio"},
                      panel="classify", output=PROBABILITIES)]
    if kind == "numeric":
        sequence = {"type": "array", "minItems": 1, "items": {"type": ["number", "array"]},
                    "description": "a sequence: numbers, or rows of numbers (T, F)"}
        schema = obj(("inputs",), inputs={"type": "array", "items": sequence, "minItems": 1, "maxItems": MAX_INPUTS})
    else:
        schema = obj(("inputs",), inputs=texts("a text to classify", MAX_INPUTS))
    return [Route("classify", "the label and class probabilities of each input", schema,
                  lambda r: classify_inputs(loaded, r["inputs"]), panel="classify", output=PROBABILITIES)]
