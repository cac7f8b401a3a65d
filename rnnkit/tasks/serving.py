"""What a task serves: the routes ``rnnkit serve`` makes for a loaded run of it.

A task joins the server by overriding :meth:`~rnnkit.tasks.task.Task.serve_routes`: given its loaded run
(what :meth:`~rnnkit.tasks.task.Task.load` returns) it answers a list of :class:`Route`. The server
(:mod:`rnnkit.serve`) names no task; for each route of each loaded run it makes

* ``POST /runs/<run>/<route.name>`` - the JSON body (or, for a route with uploads, a multipart form) is
  checked against ``route.input`` (a JSON schema) and handed to ``route.call``; its answer is the response;
* ``POST /runs/<run>/<route.name>/stream`` when ``route.stream`` is set - the same request, answered as
  server-sent events, one event per text piece.

The web page shows each route in the widget ``route.panel`` names (a route with an unknown panel gets a
generic form built from its schema), so a new task appears on the page without a change to the server.

Errors a call raises for bad input (``ConfigError``, ``DataError``, ``ValueError``) become a 422 answer
with their message, which should say what was expected.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

UPLOAD_KINDS = ("audio", "image", "midi")
PANELS = ("generate", "neurons", "classify", "tag", "forecast", "translate", "transcribe", "speak", "caption",
          "music", "form")


@dataclass(frozen=True)
class Route:
    """One served route of a loaded run.

    ``input``: JSON schema of the request (``{"type": "object", "properties": ..., "required": ...}``).
    ``call(request) -> answer``: the checked request (uploaded files as :class:`pathlib.Path` of a
    temporary copy, kept until the call returns) -> a JSON-ready answer.
    ``stream(request) -> pieces``: the same request answered piece by piece (server-sent events): text
    pieces (``data: {"text": piece}``) or JSON-ready dicts (sent as they are). Checks it can make before
    the first piece belong before the generator starts (in the function that returns it), so that they
    are answered with a status.
    ``uploads``: multipart file fields -> their kind (``audio``, ``image``, ``midi``), checked by the server
    before the call (readable as that kind, within the upload size and the audio duration limits).
    ``length_field``: the request field that sets how much is generated, capped by the server's
    ``--max-length``.
    ``panel``: the page widget (one of :data:`PANELS`).
    ``example``: a valid request, shown on the page (and in ``/docs``) to start from.
    """
    name: str
    summary: str
    input: dict
    call: Callable[[dict], Any]
    stream: Callable[[dict], Iterator[str | dict]] | None = None
    uploads: Mapping[str, str] = field(default_factory=dict)
    length_field: str = ""
    panel: str = "form"
    output: dict = field(default_factory=dict)
    example: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"route name {self.name!r}: letters, digits, '-' and '_' only")
        if self.input.get("type") != "object":
            raise ValueError(f"route {self.name}: input must be a JSON schema of type object")
        props = self.input.get("properties", {})
        for name, kind in self.uploads.items():
            if kind not in UPLOAD_KINDS:
                raise ValueError(f"route {self.name}: upload {name!r} kind {kind!r}; kinds: {', '.join(UPLOAD_KINDS)}")
            if name not in props:
                raise ValueError(f"route {self.name}: upload {name!r} is not a property of its input")
        if self.length_field and self.length_field not in props:
            raise ValueError(f"route {self.name}: length_field {self.length_field!r} is not a property of its input")
        if self.panel not in PANELS:
            raise ValueError(f"route {self.name}: panel {self.panel!r}; panels: {', '.join(PANELS)}")


def obj(required: tuple[str, ...] = (), **properties: dict) -> dict:
    """A JSON schema of an object with these properties (no others)."""
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def text(description: str, max_length: int | None = None) -> dict:
    """A non-empty string."""
    s = {"type": "string", "minLength": 1, "pattern": r"\S", "description": description}
    if max_length:
        s["maxLength"] = max_length
    return s


def texts(description: str, max_items: int = 64) -> dict:
    """A non-empty list of non-empty strings."""
    return {"type": "array", "items": text(description), "minItems": 1, "maxItems": max_items,
            "description": description}


def integer(description: str, minimum: int | None = None, maximum: int | None = None) -> dict:
    s: dict = {"type": "integer", "description": description}
    if minimum is not None:
        s["minimum"] = minimum
    if maximum is not None:
        s["maximum"] = maximum
    return s


def number(description: str, minimum: float | None = None, maximum: float | None = None) -> dict:
    s: dict = {"type": "number", "description": description}
    if minimum is not None:
        s["minimum"] = minimum
    if maximum is not None:
        s["maximum"] = maximum
    return s


def file(kind: str, description: str) -> dict:
    """An uploaded file field (multipart); list it in the route's ``uploads`` too."""
    return {"type": "string", "format": "binary", "description": f"{description} ({kind} file, multipart upload)"}
