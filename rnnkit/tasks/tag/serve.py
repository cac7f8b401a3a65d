"""What ``rnnkit serve`` offers for a tag run: a tag per token and the entities of raw sentences."""
from __future__ import annotations

from rnnkit.tasks.serving import Route, obj, texts
from rnnkit.tasks.tag.pipeline import LoadedTagger, tag_texts

MAX_SENTENCES = 64

TAGGED = {"type": "array", "items": obj(
    input={"type": "string"}, tokens={"type": "array", "items": {"type": "string"}},
    tags={"type": "array", "items": {"type": "string"}},
    entities={"type": "array", "items": obj(type={"type": "string"}, text={"type": "string"},
                                            start={"type": "integer"}, end={"type": "integer"})})}


def routes(loaded: LoadedTagger) -> list[Route]:
    return [Route("tag", "a tag per token and the entities found in each sentence",
                  obj(("inputs",), inputs=texts("a sentence to tag", MAX_SENTENCES)),
                  lambda r: tag_texts(loaded, r["inputs"]), panel="tag", output=TAGGED)]
