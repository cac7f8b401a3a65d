"""A request checked against its route's JSON schema (``jsonschema``), with an error that names the field
and says what it takes; multipart form fields converted to the types the schema asks for first."""
from __future__ import annotations

import json
from typing import Any, Mapping

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from rnnkit.serve.errors import ApiError
from rnnkit.tasks.serving import Route

_VALIDATORS: dict[int, Draft202012Validator] = {}


def describe(schema: Mapping) -> str:
    """What a schema accepts, in words: ``an integer >= 0 (tokens to generate)``."""
    kind = schema.get("type", "any value")
    if schema.get("format") == "binary":
        return schema.get("description", "an uploaded file")
    words = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
             "array": "a list", "object": "an object"}
    text = " or ".join(words.get(k, k) for k in kind) if isinstance(kind, list) else words.get(kind, kind)
    bits = [f"{op} {schema[key]}" for key, op in (("minimum", ">="), ("maximum", "<="), ("exclusiveMinimum", ">"),
                                                  ("exclusiveMaximum", "<")) if key in schema]
    if schema.get("minLength"):
        bits.append("not empty")
    if "maxLength" in schema:
        bits.append(f"at most {schema['maxLength']} characters")
    if "minItems" in schema:
        bits.append(f"at least {schema['minItems']} item(s)")
    if "maxItems" in schema:
        bits.append(f"at most {schema['maxItems']} items")
    if kind == "array" and isinstance(schema.get("items"), Mapping) and schema["items"]:
        bits.append(f"each {describe(schema['items'])}")
    if kind == "object" and schema.get("properties"):
        required = set(schema.get("required", ()))
        bits.append("with fields " + ", ".join(f"{k}{' (required)' if k in required else ''}"
                                          for k in schema["properties"]))
    text += (" " + ", ".join(bits)) if bits else ""
    return text + (f" ({schema['description']})" if schema.get("description") and kind != "array" else "")


def check_request(body: Any, route: Route, max_length: int) -> dict:
    """``body`` if it matches the route's input schema and the server's generation limit, else a 422."""
    schema = route.input
    if not isinstance(body, dict):
        raise ApiError(422, f"the request must be a JSON object, got {type(body).__name__}", None, describe(schema))
    validator = _VALIDATORS.setdefault(id(schema), Draft202012Validator(schema))
    err = best_match(validator.iter_errors(body))
    if err is not None:
        path = ".".join(str(p) for p in err.absolute_path)
        if err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else ""
            field = path + ("." if path else "") + missing
            raise ApiError(422, f"{field}: missing", field, describe(schema["properties"].get(missing, {})))
        if err.validator == "additionalProperties":
            raise ApiError(422, err.message, path or None, describe(err.schema))
        shown = err.message if len(err.message) < 200 else err.message[:200] + "..."
        if err.validator in ("minLength", "pattern") and err.instance is not None:
            shown = "empty text"
        raise ApiError(422, f"{path or 'request'}: {shown}", path or None, describe(err.schema))
    if route.length_field and body.get(route.length_field, 0) > max_length:
        f = route.length_field
        raise ApiError(422, f"{f}: {body[f]} is over the server's limit", f, f"at most {max_length} (--max-length)")
    return body


def form_fields(form: Mapping[str, Any], route: Route) -> dict:
    """Non-file fields of a multipart / urlencoded form converted to the schema's types (a form sends text)."""
    props = route.input.get("properties", {})
    out: dict[str, Any] = {}
    for name, value in form.items():
        if name in route.uploads:
            continue
        if not isinstance(value, str):
            raise ApiError(422, f"{name}: a file was sent for a field that is not an upload", name,
                           describe(props.get(name, {})))
        kind = props.get(name, {}).get("type")
        try:
            if kind == "integer":
                out[name] = int(value)
            elif kind == "number":
                out[name] = float(value)
            elif kind == "boolean":
                if value.lower() not in ("true", "false", "1", "0", "on", "off"):
                    raise ValueError(value)
                out[name] = value.lower() in ("true", "1", "on")
            elif kind in ("array", "object"):
                out[name] = json.loads(value)
            else:
                out[name] = value
        except ValueError:
            raise ApiError(422, f"{name}: {value[:50]!r} is not {describe(props[name])}", name,
                           describe(props[name])) from None
    return out
