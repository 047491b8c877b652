"""Reading model output, which is hostile input: bounded JSON, clean text, and short echoes of bad values.

    obj, reason = load_json(body)          # (object, None) or (None, "why it is not usable JSON"); never raises
    text = clean_text(generated)           # lone surrogates replaced, so tokenizers and writers accept it
    message = f"got {shown(value)}"        # a repr of at most 200 characters, whatever the value

A generated string can be anything: megabytes long, 100,000 nested brackets (`json.loads` recurses and raises
`RecursionError` at about 1,000), integers with more digits than Python converts (`ValueError`), escapes of lone
surrogates (strings that no UTF-8 encoder or tokenizer accepts). Every parser of model text (tool calls,
verdicts, format checks, rewards) goes through `load_json`, which checks size and nesting depth *before*
parsing, so a bad sample is a parse failure with a reason and never takes down a batch.
"""

from __future__ import annotations

import json
import re
import reprlib
from typing import Any

__all__ = ["MAX_JSON_CHARS", "MAX_JSON_DEPTH", "MAX_SHOWN_CHARS", "clean_text", "json_too_deep", "load_json",
           "shown"]

# A tool call or a verdict is a few hundred characters and 2-3 levels deep; these leave a wide margin while
# keeping the parse of any one block cheap and far from the interpreter's recursion limit.
MAX_JSON_CHARS = 100_000
MAX_JSON_DEPTH = 32
# Longest echo of a model-supplied value in an error message (the model reads it; it must not flood the context).
MAX_SHOWN_CHARS = 200

# One JSON string (escapes included; an unterminated one runs to the end) or one bracket. The possessive `*+`
# and the closing alternatives make every string token match where it starts, so the scan is linear.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)

_SURROGATE = re.compile("[\ud800-\udfff]")

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = MAX_SHOWN_CHARS
_REPR.maxother = MAX_SHOWN_CHARS
_REPR.maxlong = 60
for _attr in ("maxlist", "maxtuple", "maxdict", "maxset", "maxfrozenset", "maxdeque", "maxarray"):
    setattr(_REPR, _attr, 12)


def json_too_deep(text: str, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether the brackets of a JSON text (outside its strings) nest deeper than `max_depth`.

    Cheap and linear: when the text holds at most `max_depth` opening brackets no scan is needed at all.

    Args:
        text: the JSON text (not necessarily valid).
        max_depth: the deepest nesting allowed.

    Returns:
        True if some bracket opens at a depth above `max_depth`.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return False
    depth = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > max_depth:
                return True
        elif token in ("]", "}"):
            depth -= 1
    return False


def _encodable(obj: Any) -> bool:
    """Whether every string in a parsed JSON value encodes as UTF-8 (no lone surrogates from `\\ud800` escapes)."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def load_json(text: str, *, max_chars: int = MAX_JSON_CHARS, max_depth: int = MAX_JSON_DEPTH,
              **json_kwargs) -> tuple[Any, str | None]:
    """Parse model-written JSON, or say why it cannot be used; never raises on any string.

    Args:
        text: the JSON text as generated.
        max_chars: longer texts are refused before parsing.
        max_depth: deeper bracket nesting is refused before parsing (no `RecursionError`).
        **json_kwargs: passed to `json.loads` (hooks may raise `ValueError` to reject a value).

    Returns:
        (value, None) on success, else (None, reason): the reason is short and names the problem, e.g.
        "is not valid JSON (Expecting value at character 0)" or "nests deeper than 32 levels".
    """
    if not isinstance(text, str):
        return None, f"is not text ({type(text).__name__})"
    if len(text) > max_chars:
        return None, f"is too long ({len(text)} characters; at most {max_chars})"
    if json_too_deep(text, max_depth):
        return None, f"nests deeper than {max_depth} levels"
    try:
        obj = json.loads(text, **json_kwargs)
    except json.JSONDecodeError as err:
        return None, f"is not valid JSON ({err.msg} at character {err.pos})"
    except RecursionError:  # only reachable with a caller-raised max_depth; still a parse failure
        return None, f"nests too deeply to parse (max_depth={max_depth})"
    except ValueError as err:  # hooks, and integers longer than Python converts
        return None, f"is not acceptable JSON ({str(err)[:MAX_SHOWN_CHARS]})"
    if not _encodable(obj):
        return None, "holds an invalid unicode escape (a lone surrogate)"
    return obj, None


def clean_text(text: Any) -> str:
    """Generated text made safe for tokenizers and UTF-8 writers: lone surrogates become U+FFFD.

    Args:
        text: what a generate function returned (a non-string becomes "").

    Returns:
        The text unchanged when it is valid (the usual case), else a repaired copy.
    """
    if not isinstance(text, str):
        return ""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def shown(value: Any, limit: int = MAX_SHOWN_CHARS) -> str:
    """A repr of `value` for an error message, at most `limit` characters, whatever its size or depth.

    Args:
        value: anything a model supplied (a 10^6-item list, a megabyte string, a deeply nested structure).
        limit: the most characters returned.

    Returns:
        The repr, with long containers and strings elided by `reprlib` and the whole cut to `limit`.
    """
    try:
        text = _REPR.repr(value)
    except (ValueError, RecursionError, OverflowError):  # e.g. an int beyond the digit limit of str()
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:max(0, limit - 3)] + "..."
