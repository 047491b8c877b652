"""JSON schemas of the server's request bodies, as published in `/openapi.json`.

They describe the record schema (`data/schema.py`) and the raw ``npy`` media form closely enough for clients and
for schema-driven fuzzing (schemathesis generates bodies from them) to build valid requests; the server still
validates every body itself (`serving/inputs.py`), so a schema that allows too much is never a hole.
"""

from __future__ import annotations

_TEXT = {"type": "string"}
_NONEMPTY = {"type": "string", "minLength": 1}
_NUMBER_GE0 = {"type": "number", "minimum": 0}
_SOURCES = ("path", "url", "bytes", "npy", "frames")
_LABEL = {"type": "string", "enum": ["A", "B", "tie"]}

MEDIA_ITEM = {
    "type": "object",
    "description": "one image / video / frame list from exactly one source: path (under the server's media "
                   "root), url (when enabled), bytes (base64), npy (base64 .npy array; a video needs fps) or "
                   "frames (paths, type 'frames')",
    "required": ["type"],
    "oneOf": [{"required": [source]} for source in _SOURCES],
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string", "enum": ["image", "video", "frames"]},
        "path": _NONEMPTY, "url": _NONEMPTY, "bytes": _NONEMPTY, "npy": _NONEMPTY,
        "frames": {"type": "array", "items": _NONEMPTY, "minItems": 1},
        "fps": {"type": "number", "exclusiveMinimum": 0}, "start": _NUMBER_GE0, "end": _NUMBER_GE0,
        "meta": {"type": "object"},
    },
}
_MEDIA = {"type": "array", "items": MEDIA_ITEM}
_CANDIDATE = {"type": "object", "additionalProperties": False,
              "properties": {"text": _NONEMPTY, "media": {**_MEDIA, "minItems": 1}},
              "anyOf": [{"required": ["text"]}, {"required": ["media"]}]}
PAIR = {
    "type": "object", "title": "pair", "additionalProperties": False,
    "required": ["id", "prompt", "a", "b", "label"],
    "properties": {"id": _NONEMPTY, "prompt": _TEXT, "system": _TEXT, "media": _MEDIA, "a": _CANDIDATE,
                   "b": _CANDIDATE, "label": _LABEL,
                   "dimensions": {"type": "object", "additionalProperties": _LABEL},
                   "margin": _NUMBER_GE0, "meta": {"type": "object"}},
}
POINTWISE = {
    "type": "object", "title": "pointwise", "additionalProperties": False,
    "required": ["id", "prompt", "response"],
    "properties": {"id": _NONEMPTY, "prompt": _TEXT, "system": _TEXT, "media": _MEDIA,
                   "response": {"type": ["string", "null"]}, "meta": {"type": "object"}},
}
OPENRLHF_BODY = {"type": "object", "required": ["query"], "properties": {
    "query": {"type": "array", "items": _TEXT}, "prompts": {"type": "array", "items": _TEXT},
    "labels": {"type": "array"}}}


def score_body(max_records: int) -> dict:
    """The `POST /score` body: 1 to ``max_records`` records, each a pair or a pointwise record."""
    return {"type": "object", "required": ["records"], "properties": {"records": {
        "type": "array", "minItems": 1, "maxItems": max_records, "items": {"anyOf": [PAIR, POINTWISE]}}}}


def body_doc(schema: dict) -> dict:
    """The ``openapi_extra`` of a route whose JSON body is read by hand (not by a pydantic model)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
