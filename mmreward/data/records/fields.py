"""The building blocks of record validation: `RecordError`, the label set and its encoding, field checks.

Every check raises `RecordError` naming the field (``a.media[1].path must be ...``); `records.core` builds
records with them and `records.trl` normalises TRL rows. `LABEL_SIGN` is the one numeric encoding of a
preference label (A = 1, B = -1, tie = 0) that losses and metrics use.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mmreward.errors import DataError

LABELS = ("A", "B", "tie")
# A preferred = 1, B preferred = -1, tie = 0: the sign of score_A - score_B that a label asks for.
LABEL_SIGN = {"A": 1, "B": -1, "tie": 0}
FLOAT32_MAX = 3.4028234663852886e38


class RecordError(DataError):
    """A record that breaks the schema; the message names file, line and field (``pairs.jsonl:17: label ...``).

    Attributes:
        path: the JSONL file the record came from, or None.
        line: 1-based line number in that file, or None.
        field: dotted field path such as ``"a.media[1]"``, or ``""`` for whole-record errors.
        reason: what is wrong, without the location.
    """

    def __init__(self, reason: str, *, field: str = "", path: Path | None = None, line: int | None = None,
                 where: str = "", sep: str = " ") -> None:
        self.reason, self.field, self.path, self.line = reason, field, path, line
        # "label must be ..." reads as a sentence about the field; "a.media[1]: exactly one of ..." is about the
        # object at that path, so the separator is part of the error, not of the formatting.
        self._sep = sep
        body = f"{field}{sep}{reason}" if field else reason
        super().__init__(f"{where}: {body}" if where else body)

    def at(self, where: str, path: Path | None = None, line: int | None = None) -> RecordError:
        """Return the same error located at ``where`` (e.g. ``"pairs.jsonl:17"``)."""
        return RecordError(self.reason, field=self.field, path=path, line=line, where=where, sep=self._sep)


def show(value: Any) -> str:
    """A value as it appears in an error message: JSON, at most 60 characters, lone surrogates escaped."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = "<unprintable value>" if isinstance(value, (dict, list)) else repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    # A lone surrogate in a message would crash the log handler and the errors file, so it is escaped here.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def fail(field: str, reason: str, sep: str = " ") -> None:
    """Raise RecordError for `field` (`sep` joins field and reason: " " for a sentence, ": " for an object)."""
    raise RecordError(reason, field=field, sep=sep)


def check_keys(obj: dict[str, Any], allowed: tuple[str, ...], field: str) -> None:
    """Refuse a key outside `allowed` in the object at `field`."""
    # Unknown keys are errors so that a typo ("lable", "dimension") cannot silently drop data.
    extra = [k for k in obj if k not in allowed]
    if extra:
        fail(field, f"unknown key {show(extra[0])} (expected {', '.join(allowed)})", sep=": ")


def check_string(value: Any, field: str, *, optional: bool = False, nonempty: bool = False) -> str | None:
    """Return `value` if it is (valid Unicode) text; None allowed when `optional`, "" refused when `nonempty`."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or (nonempty and not value):
        fail(field, f"must be a {'non-empty ' if nonempty else ''}string, got {show(value)}")
    check_unicode(value, field)
    return value


def check_unicode(text: str, field: str) -> None:
    """Refuse text that UTF-8 cannot encode (a lone surrogate)."""
    # JSON's "\ud800" escape decodes to a lone surrogate, which no UTF-8 writer accepts: caught here, at read
    # time, instead of crashing the output writer after every score was computed.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        fail(field, f"must be valid Unicode text, got a lone surrogate U+{ord(text[err.start]):04X} "
                     f"at character {err.start}")


def check_unicode_tree(value: Any, field: str) -> None:
    """Check every key and string inside a free-form JSON value (meta); iterative, so depth cannot overflow."""
    stack = [(value, field)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            check_unicode(item, where)
        elif isinstance(item, dict):
            for key, sub in item.items():
                check_unicode(str(key), f"{where} key")
                stack.append((sub, f"{where}.{key}"))
        elif isinstance(item, list):
            stack.extend((sub, f"{where}[{i}]") for i, sub in enumerate(item))


def required(obj: dict[str, Any], key: str) -> Any:
    """Return `obj[key]`; a missing or null key is an error."""
    if obj.get(key) is None:
        fail(key, "is required")
    return obj[key]


def check_number(value: Any, field: str, *, low: float | None = None, strict: bool = False) -> float:
    """Return a finite number within float32 range as float, at least (or above, `strict`) `low`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if strict else value >= low
    if not ok:
        need = "a finite number" if low is None else f"a number {'>' if strict else '>='} {low:g}"
        fail(field, f"must be {need}, got {show(value)}")
    if abs(value) > FLOAT32_MAX:
        # Training runs in float32 or lower: a larger value becomes inf there, and an infinite loss.
        fail(field, f"must be within the float32 range (|x| <= {FLOAT32_MAX:.4g}), got {show(value)}")
    return float(value)


def check_label(value: Any, field: str) -> str:
    """Return a preference label: "A", "B" or "tie"."""
    if value not in LABELS or not isinstance(value, str):
        fail(field, f'must be "A", "B" or "tie", got {show(value)}')
    return value


def check_mapping(value: Any, field: str) -> dict[str, Any]:
    """Return a free-form object ({} for None), every key and string in it checked for valid Unicode."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        fail(field, f"must be an object, got {show(value)}")
    check_unicode_tree(value, field)
    return value
