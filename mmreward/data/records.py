"""Record types of the one record format, and the validators that build them from canonical dicts.

``PreferencePair`` (two candidates and which is better) and ``PointwiseRecord`` (one item to score) are the
records; ``MediaItem`` is an image, video or frame list and ``Candidate`` one side of a pair. ``RecordError``
names the field a dict breaks. The ``_parse_*`` helpers turn a canonical dict into a record; TRL rows,
``parse_record`` and JSONL / datasets I/O live in ``mmreward.data.schema``, which re-exports everything here.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmreward.errors import DataError

__all__ = ["LABELS", "MEDIA_TYPES", "Candidate", "MediaItem", "PointwiseRecord", "PreferencePair", "Record",
           "RecordError"]

LABELS = ("A", "B", "tie")
MEDIA_TYPES = ("image", "video", "frames")
_SOURCES = ("path", "url", "bytes", "frames")
_MEDIA_KEYS = ("type", *_SOURCES, "start", "end", "fps", "meta")
_PAIR_KEYS = ("id", "prompt", "system", "media", "a", "b", "label", "dimensions", "margin", "meta")
_POINTWISE_KEYS = ("id", "prompt", "system", "media", "response", "scores", "meta")
_FLIP = {"A": "B", "B": "A", "tie": "tie"}
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


@dataclasses.dataclass
class MediaItem:
    """One image, video or frame list, from exactly one source: ``path``, ``url``, ``bytes`` or ``frames``.

    ``path`` and ``frames`` entries are relative to ``base_dir`` (the JSONL file's folder) unless absolute;
    ``bytes`` is base64 text. ``start``/``end`` (seconds) clip a video; ``fps`` is the capture rate of a
    frame list (or a video's declared rate). ``base_dir`` is not serialised and not compared.
    """

    type: str
    path: str | None = None
    url: str | None = None
    bytes: str | None = None
    frames: list[str] | None = None
    start: float | None = None
    end: float | None = None
    fps: float | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    base_dir: Path | None = dataclasses.field(default=None, compare=False, repr=False)

    def _resolve(self, p: str) -> Path:
        # Without a base_dir (records built in code) the only anchor left is the working directory.
        return Path(os.path.abspath(os.path.join(self.base_dir or os.getcwd(), p)))

    def local_path(self) -> Path | None:
        """Return the absolute file path of a ``path`` source, or None for other sources."""
        return None if self.path is None else self._resolve(self.path)

    def frame_paths(self) -> list[Path]:
        """Return the absolute paths of a ``frames`` item's images ([] for other sources)."""
        return [self._resolve(p) for p in self.frames or []]

    def data(self) -> bytes | None:
        """Return the decoded content of a ``bytes`` source, or None for other sources."""
        return None if self.bytes is None else base64.b64decode(self.bytes)

    def cache_key(self) -> str | tuple[str, ...]:
        """Return a hashable identity of the source: absolute path, url, ``"sha1:<hex>"`` or frame paths.

        The clip range and fps are not part of it: the media cache combines this with its sampling contract.
        """
        if self.path is not None:
            return str(self.local_path())
        if self.url is not None:
            return self.url
        if self.bytes is not None:
            return "sha1:" + hashlib.sha1(self.data() or b"").hexdigest()
        return tuple(str(p) for p in self.frame_paths())

    def _portable(self, p: str, relative_to: Path | None) -> str:
        # Records without a base_dir have no known anchor, so their relative paths are written unchanged.
        if relative_to is None or self.base_dir is None or os.path.isabs(p):
            return p
        target = self._resolve(p)
        try:
            return os.path.relpath(target, relative_to)
        except ValueError:  # another drive on Windows: no relative path exists
            return str(target)

    def to_dict(self, *, relative_to: Path | None = None) -> dict[str, Any]:
        """Return the JSON-ready dict, unset keys omitted.

        Args:
            relative_to: folder to re-express relative paths against (``write_jsonl`` passes the output folder).
        """
        frames = None if self.frames is None else [self._portable(p, relative_to) for p in self.frames]
        d = {"type": self.type, "path": None if self.path is None else self._portable(self.path, relative_to),
             "url": self.url, "bytes": self.bytes, "frames": frames, "start": self.start, "end": self.end,
             "fps": self.fps, "meta": dict(self.meta) or None}
        return {k: v for k, v in d.items() if v is not None}


@dataclasses.dataclass
class Candidate:
    """One side of a pair: a text response, generated media, or both."""

    text: str | None = None
    media: list[MediaItem] = dataclasses.field(default_factory=list)

    def to_dict(self, *, relative_to: Path | None = None) -> dict[str, Any]:
        """Return ``{"text": ..., "media": [...]}`` (see ``MediaItem.to_dict`` for ``relative_to``)."""
        return {"text": self.text, "media": [m.to_dict(relative_to=relative_to) for m in self.media]}


@dataclasses.dataclass(kw_only=True)
class PreferencePair:
    """Two candidates for one prompt and which is better: overall ``label`` and optional per-dimension labels.

    ``margin`` is a non-negative strength of preference (None when unknown).
    """

    id: str
    prompt: str
    system: str | None = None
    media: list[MediaItem] = dataclasses.field(default_factory=list)
    a: Candidate
    b: Candidate
    label: str
    dimensions: dict[str, str] = dataclasses.field(default_factory=dict)
    margin: float | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self, *, relative_to: Path | None = None) -> dict[str, Any]:
        """Return the JSON-ready dict in schema key order (see ``MediaItem.to_dict`` for ``relative_to``)."""
        return {
            "id": self.id, "prompt": self.prompt, "system": self.system,
            "media": [m.to_dict(relative_to=relative_to) for m in self.media],
            "a": self.a.to_dict(relative_to=relative_to), "b": self.b.to_dict(relative_to=relative_to),
            "label": self.label, "dimensions": dict(self.dimensions), "margin": self.margin,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any], *, base_dir: str | Path | None = None) -> PreferencePair:
        """Parse and validate a pair dict (canonical or TRL); raises RecordError for anything else."""
        return _expect(cls, _parse_any(obj, base_dir))

    def swapped(self) -> PreferencePair:
        """Return the pair with ``a``/``b`` exchanged and every label flipped (tie stays tie, margin kept)."""
        return dataclasses.replace(
            self, a=self.b, b=self.a, label=_FLIP[self.label],
            dimensions={k: _FLIP[v] for k, v in self.dimensions.items()}, meta=dict(self.meta),
        )

    def all_media(self) -> Iterator[MediaItem]:
        """Yield every MediaItem: shared media first, then candidate A's, then B's."""
        yield from self.media
        yield from self.a.media
        yield from self.b.media


@dataclasses.dataclass(kw_only=True)
class PointwiseRecord:
    """One item to score on its own: media and/or a response, with optional known scores per dimension."""

    id: str
    prompt: str
    system: str | None = None
    media: list[MediaItem] = dataclasses.field(default_factory=list)
    response: str | None = None
    scores: dict[str, float] = dataclasses.field(default_factory=dict)
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self, *, relative_to: Path | None = None) -> dict[str, Any]:
        """Return the JSON-ready dict in schema key order (see ``MediaItem.to_dict`` for ``relative_to``)."""
        return {
            "id": self.id, "prompt": self.prompt, "system": self.system,
            "media": [m.to_dict(relative_to=relative_to) for m in self.media],
            "response": self.response, "scores": dict(self.scores), "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any], *, base_dir: str | Path | None = None) -> PointwiseRecord:
        """Parse and validate a pointwise dict; raises RecordError for anything else."""
        return _expect(cls, _parse_any(obj, base_dir))

    def all_media(self) -> Iterator[MediaItem]:
        """Yield every MediaItem of the record."""
        yield from self.media


Record = PreferencePair | PointwiseRecord
_KIND_NAMES = {PreferencePair: "pair", PointwiseRecord: "pointwise"}


def _parse_any(obj: Any, base_dir: str | Path | None) -> Record:
    # Canonical or TRL, so from_dict accepts what parse_record does; schema imports this module at load time,
    # so its import waits until a call.
    from mmreward.data.schema import parse_record

    return parse_record(obj, base_dir=base_dir)


def _expect(cls: type, record: Record) -> Any:
    if not isinstance(record, cls):
        raise RecordError(f"expected a {_KIND_NAMES[cls]} record, got a {_KIND_NAMES[type(record)]} record")
    return record


# ---- validation helpers: each raises RecordError naming the field ----

def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = "<unprintable value>" if isinstance(value, (dict, list)) else repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    # A lone surrogate in a message would crash the log handler and the errors file, so it is escaped here.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _fail(field: str, reason: str, sep: str = " ") -> None:
    raise RecordError(reason, field=field, sep=sep)


def _check_keys(obj: dict[str, Any], allowed: tuple[str, ...], field: str) -> None:
    # Unknown keys are errors so that a typo ("lable", "dimension") cannot silently drop data.
    extra = [k for k in obj if k not in allowed]
    if extra:
        _fail(field, f"unknown key {_show(extra[0])} (expected {', '.join(allowed)})", sep=": ")


def _string(value: Any, field: str, *, optional: bool = False, nonempty: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or (nonempty and not value):
        _fail(field, f"must be a {'non-empty ' if nonempty else ''}string, got {_show(value)}")
    _unicode(value, field)
    return value


def _unicode(text: str, field: str) -> None:
    # JSON's "\ud800" escape decodes to a lone surrogate, which no UTF-8 writer accepts: caught here, at read
    # time, instead of crashing the output writer after every score was computed.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        _fail(field, f"must be valid Unicode text, got a lone surrogate U+{ord(text[err.start]):04X} "
                     f"at character {err.start}")


def _unicode_tree(value: Any, field: str) -> None:
    """Check every key and string inside a free-form JSON value (meta); iterative, so depth cannot overflow."""
    stack = [(value, field)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            _unicode(item, where)
        elif isinstance(item, dict):
            for key, sub in item.items():
                _unicode(str(key), f"{where} key")
                stack.append((sub, f"{where}.{key}"))
        elif isinstance(item, list):
            stack.extend((sub, f"{where}[{i}]") for i, sub in enumerate(item))


def _required(obj: dict[str, Any], key: str) -> Any:
    if obj.get(key) is None:
        _fail(key, "is required")
    return obj[key]


def _number(value: Any, field: str, *, low: float | None = None, strict: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if strict else value >= low
    if not ok:
        need = "a finite number" if low is None else f"a number {'>' if strict else '>='} {low:g}"
        _fail(field, f"must be {need}, got {_show(value)}")
    if abs(value) > FLOAT32_MAX:
        # Training runs in float32 or lower: a larger value becomes inf there, and an infinite loss.
        _fail(field, f"must be within the float32 range (|x| <= {FLOAT32_MAX:.4g}), got {_show(value)}")
    return float(value)


def _label(value: Any, field: str) -> str:
    if value not in LABELS or not isinstance(value, str):
        _fail(field, f'must be "A", "B" or "tie", got {_show(value)}')
    return value


def _object(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(field, f"must be an object, got {_show(value)}")
    _unicode_tree(value, field)
    return value


def _parse_media(obj: Any, field: str, base_dir: Path | None) -> MediaItem:
    if not isinstance(obj, dict):
        _fail(field, f"must be an object, got {_show(obj)}")
    _check_keys(obj, _MEDIA_KEYS, field)
    kind = obj.get("type")
    if kind not in MEDIA_TYPES or not isinstance(kind, str):
        _fail(f"{field}.type", f"must be one of {', '.join(MEDIA_TYPES)}, got {_show(kind)}")
    # None counts as absent so that Arrow rows (every struct key present, unset ones null) parse back.
    given = [k for k in _SOURCES if obj.get(k) is not None]
    if len(given) != 1:
        got = f", got {', '.join(given)}" if given else ""
        _fail(field, f"exactly one of {', '.join(_SOURCES)} is required{got}", sep=": ")
    source = given[0]
    if (source == "frames") != (kind == "frames"):
        _fail(field, f'type "frames" goes with a "frames" list, got type "{kind}" with {source}', sep=": ")
    item = MediaItem(type=kind, base_dir=base_dir, meta=dict(_object(obj.get("meta"), f"{field}.meta")))
    if source == "frames":
        frames = obj["frames"]
        if not isinstance(frames, list) or not frames or not all(isinstance(p, str) and p for p in frames):
            _fail(f"{field}.frames", f"must be a non-empty list of paths, got {_show(frames)}")
        item.frames = list(frames)
    else:
        setattr(item, source, _string(obj[source], f"{field}.{source}", nonempty=True))
    if source == "bytes":
        try:
            base64.b64decode(item.bytes or "", validate=True)
        except binascii.Error:
            _fail(f"{field}.bytes", f"must be base64 text, got {_show(item.bytes)}")
    _parse_timing(obj, item, field)
    return item


def _parse_timing(obj: dict[str, Any], item: MediaItem, field: str) -> None:
    start, end, fps = (obj.get(k) for k in ("start", "end", "fps"))
    if (start is not None or end is not None) and item.type != "video":
        _fail(field, f'start and end are only valid for type "video", got "{item.type}"', sep=": ")
    if fps is not None and item.type == "image":
        _fail(field, 'fps is not valid for type "image"', sep=": ")
    item.start = None if start is None else _number(start, f"{field}.start", low=0)
    item.end = None if end is None else _number(end, f"{field}.end", low=0)
    item.fps = None if fps is None else _number(fps, f"{field}.fps", low=0, strict=True)
    if item.start is not None and item.end is not None and item.start >= item.end:
        _fail(field, f"start must be < end, got start={item.start:g}, end={item.end:g}", sep=": ")


def _parse_media_list(value: Any, field: str, base_dir: Path | None) -> list[MediaItem]:
    if value is None:
        return []
    if not isinstance(value, list):
        _fail(field, f"must be a list, got {_show(value)}")
    return [_parse_media(v, f"{field}[{i}]", base_dir) for i, v in enumerate(value)]


def _parse_candidate(value: Any, field: str, base_dir: Path | None) -> Candidate:
    if value is None:
        _fail(field, "is required")
    if not isinstance(value, dict):
        _fail(field, f"must be an object, got {_show(value)}")
    _check_keys(value, ("text", "media"), field)
    text = _string(value.get("text"), f"{field}.text", optional=True)
    media = _parse_media_list(value.get("media"), f"{field}.media", base_dir)
    if text is None and not media:
        _fail(field, "needs text or media, got neither", sep=": ")
    return Candidate(text=text, media=media)


def _parse_id(obj: dict[str, Any]) -> str:
    value = _required(obj, "id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _string(value, "id", nonempty=True)


def _parse_pair(obj: dict[str, Any], base_dir: Path | None) -> PreferencePair:
    _check_keys(obj, _PAIR_KEYS, "")
    dims = _object(obj.get("dimensions"), "dimensions")
    return PreferencePair(
        id=_parse_id(obj),
        prompt=_string(_required(obj, "prompt"), "prompt"),
        system=_string(obj.get("system"), "system", optional=True),
        media=_parse_media_list(obj.get("media"), "media", base_dir),
        a=_parse_candidate(obj.get("a"), "a", base_dir),
        b=_parse_candidate(obj.get("b"), "b", base_dir),
        label=_label(_required(obj, "label"), "label"),
        dimensions={k: _label(v, f"dimensions.{k}") for k, v in dims.items()},
        margin=None if obj.get("margin") is None else _number(obj["margin"], "margin", low=0),
        meta=dict(_object(obj.get("meta"), "meta")),
    )


def _parse_pointwise(obj: dict[str, Any], base_dir: Path | None) -> PointwiseRecord:
    _check_keys(obj, _POINTWISE_KEYS, "")
    scores = _object(obj.get("scores"), "scores")
    return PointwiseRecord(
        id=_parse_id(obj),
        prompt=_string(_required(obj, "prompt"), "prompt"),
        system=_string(obj.get("system"), "system", optional=True),
        media=_parse_media_list(obj.get("media"), "media", base_dir),
        response=_string(obj.get("response"), "response", optional=True),
        scores={k: _number(v, f"scores.{k}") for k, v in scores.items()},
        meta=dict(_object(obj.get("meta"), "meta")),
    )
