"""The record types of the one record format, and `parse_record`, the one parser of record dicts.

``PreferencePair`` (two candidates and which is better) and ``PointwiseRecord`` (one item to score) are the
records; ``MediaItem`` is an image, video or frame list and ``Candidate`` one side of a pair. `parse_record`
validates a canonical dict, a TRL row (normalised by `records.trl`) or a pointwise dict and builds the record;
``from_dict`` on each type goes through it. JSONL and ``datasets`` I/O live in ``mmreward.data.schema``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmreward.data.records.fields import (
    RecordError,
    check_keys,
    check_label,
    check_mapping,
    check_number,
    check_string,
    fail,
    required,
    show,
)
from mmreward.data.records.trl import from_trl

MEDIA_TYPES = ("image", "video", "frames")
_SOURCES = ("path", "url", "bytes", "frames")
MEDIA_KEYS = ("type", *_SOURCES, "start", "end", "fps", "meta")
_PAIR_KEYS = ("id", "prompt", "system", "media", "a", "b", "label", "dimensions", "margin", "meta")
_POINTWISE_KEYS = ("id", "prompt", "system", "media", "response", "scores", "meta")
_FLIP = {"A": "B", "B": "A", "tie": "tie"}


@dataclasses.dataclass
class MediaItem:
    """One image, video or frame list, from exactly one source: ``path``, ``url``, ``bytes`` or ``frames``.

    ``path`` and ``frames`` entries are relative to ``base_dir`` (the JSONL file's folder) unless absolute;
    ``bytes`` is base64 text. ``start``/``end`` (seconds) clip a video; ``fps`` is the capture rate of a
    frame list (or a video's declared rate). ``base_dir`` is not serialised and not compared.

    In code (never in JSON), ``array`` may be the source instead: a PIL image, numpy array or torch tensor
    (``mmreward.data.media.arrays`` validates it; a video array needs ``fps``). It is not serialised, and
    not compared (its ``cache_key`` is a content hash).
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
    array: Any = dataclasses.field(default=None, compare=False, repr=False)

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
        """Return a hashable identity: absolute path, url, ``"sha1:<hex>"``, array content hash or frame paths.

        The clip range and fps are not part of it: the media cache combines this with its sampling contract.
        """
        if self.path is not None:
            return str(self.local_path())
        if self.url is not None:
            return self.url
        if self.bytes is not None:
            return "sha1:" + hashlib.sha1(self.data() or b"").hexdigest()
        if self.array is not None:
            from mmreward.data.media.arrays import array_key  # content hash: a reused buffer is a new key

            return array_key(self.array)
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
        if self.array is not None:
            raise RecordError("in-memory array media cannot be written as JSON; save it to a file (PNG, or a "
                              "lossless video) and give its path", field="array", sep=": ")
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
        return _expect(cls, parse_record(obj, base_dir=base_dir))

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
        return _expect(cls, parse_record(obj, base_dir=base_dir))

    def all_media(self) -> Iterator[MediaItem]:
        """Yield every MediaItem of the record."""
        yield from self.media


Record = PreferencePair | PointwiseRecord
_KIND_NAMES = {PreferencePair: "pair", PointwiseRecord: "pointwise"}


def record_kind(record: Record) -> str:
    """Return "pair" or "pointwise", the kind names that ``read_jsonl(kind=...)`` and datasets I/O use."""
    return _KIND_NAMES[type(record)]


def _expect(cls: type, record: Record) -> Any:
    if not isinstance(record, cls):
        raise RecordError(f"expected a {_KIND_NAMES[cls]} record, got a {record_kind(record)} record")
    return record


def parse_record(obj: Any, *, base_dir: str | Path | None = None, where: str = "",
                 default_id: str | None = None) -> Record:
    """Validate one record dict and build a PreferencePair or PointwiseRecord.

    Args:
        obj: a canonical pair (``a``/``b``), a TRL pair (``chosen``/``rejected``) or a pointwise record
            (``scores`` and/or ``response``).
        base_dir: folder that relative media paths are relative to (the JSONL file's folder).
        where: location prefixed to error messages, e.g. ``"pairs.jsonl:17"``.
        default_id: id for TRL rows that have none (read_jsonl passes ``"<file stem>-<line>"``).

    Returns:
        The record. Raises RecordError naming the field when ``obj`` breaks the schema.
    """
    try:
        if not isinstance(obj, dict):
            raise RecordError(f"expected a JSON object, got {show(obj)}")
        base = None if base_dir is None else Path(base_dir)
        if "a" in obj or "b" in obj:
            return _parse_pair(obj, base)
        if "chosen" in obj or "rejected" in obj:
            return _parse_pair(from_trl(obj, default_id), base)
        if "scores" in obj or "response" in obj:
            return _parse_pointwise(obj, base)
        raise RecordError('unknown record shape: expected "a" and "b" or "chosen" and "rejected" (pair), '
                          f'or "scores" or "response" (pointwise); got keys {", ".join(obj) or "none"}')
    except RecordError as err:
        if not where:
            raise
        raise err.at(where, err.path, err.line) from None


# ---- canonical dicts -> records: each helper raises RecordError naming the field ----

def _parse_media(obj: Any, field: str, base_dir: Path | None) -> MediaItem:
    if not isinstance(obj, dict):
        fail(field, f"must be an object, got {show(obj)}")
    check_keys(obj, MEDIA_KEYS, field)
    kind = obj.get("type")
    if kind not in MEDIA_TYPES or not isinstance(kind, str):
        fail(f"{field}.type", f"must be one of {', '.join(MEDIA_TYPES)}, got {show(kind)}")
    # None counts as absent so that Arrow rows (every struct key present, unset ones null) parse back.
    given = [k for k in _SOURCES if obj.get(k) is not None]
    if len(given) != 1:
        got = f", got {', '.join(given)}" if given else ""
        fail(field, f"exactly one of {', '.join(_SOURCES)} is required{got}", sep=": ")
    source = given[0]
    if (source == "frames") != (kind == "frames"):
        fail(field, f'type "frames" goes with a "frames" list, got type "{kind}" with {source}', sep=": ")
    item = MediaItem(type=kind, base_dir=base_dir, meta=dict(check_mapping(obj.get("meta"), f"{field}.meta")))
    if source == "frames":
        frames = obj["frames"]
        if not isinstance(frames, list) or not frames or not all(isinstance(p, str) and p for p in frames):
            fail(f"{field}.frames", f"must be a non-empty list of paths, got {show(frames)}")
        item.frames = list(frames)
    else:
        setattr(item, source, check_string(obj[source], f"{field}.{source}", nonempty=True))
    if source == "bytes":
        try:
            base64.b64decode(item.bytes or "", validate=True)
        except (binascii.Error, ValueError):  # ValueError: non-ASCII text
            fail(f"{field}.bytes", f"must be base64 text, got {show(item.bytes)}")
    _parse_timing(obj, item, field)
    return item


def _parse_timing(obj: dict[str, Any], item: MediaItem, field: str) -> None:
    start, end, fps = (obj.get(k) for k in ("start", "end", "fps"))
    if (start is not None or end is not None) and item.type != "video":
        fail(field, f'start and end are only valid for type "video", got "{item.type}"', sep=": ")
    if fps is not None and item.type == "image":
        fail(field, 'fps is not valid for type "image"', sep=": ")
    item.start = None if start is None else check_number(start, f"{field}.start", low=0)
    item.end = None if end is None else check_number(end, f"{field}.end", low=0)
    item.fps = None if fps is None else check_number(fps, f"{field}.fps", low=0, strict=True)
    if item.start is not None and item.end is not None and item.start >= item.end:
        fail(field, f"start must be < end, got start={item.start:g}, end={item.end:g}", sep=": ")


def _parse_media_list(value: Any, field: str, base_dir: Path | None) -> list[MediaItem]:
    if value is None:
        return []
    if not isinstance(value, list):
        fail(field, f"must be a list, got {show(value)}")
    return [_parse_media(v, f"{field}[{i}]", base_dir) for i, v in enumerate(value)]


def _parse_candidate(value: Any, field: str, base_dir: Path | None) -> Candidate:
    if value is None:
        fail(field, "is required")
    if not isinstance(value, dict):
        fail(field, f"must be an object, got {show(value)}")
    check_keys(value, ("text", "media"), field)
    text = check_string(value.get("text"), f"{field}.text", optional=True)
    media = _parse_media_list(value.get("media"), f"{field}.media", base_dir)
    if text is None and not media:
        fail(field, "needs text or media, got neither", sep=": ")
    return Candidate(text=text, media=media)


def _parse_id(obj: dict[str, Any]) -> str:
    value = required(obj, "id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return check_string(value, "id", nonempty=True)


def _parse_pair(obj: dict[str, Any], base_dir: Path | None) -> PreferencePair:
    check_keys(obj, _PAIR_KEYS, "")
    dims = check_mapping(obj.get("dimensions"), "dimensions")
    return PreferencePair(
        id=_parse_id(obj),
        prompt=check_string(required(obj, "prompt"), "prompt"),
        system=check_string(obj.get("system"), "system", optional=True),
        media=_parse_media_list(obj.get("media"), "media", base_dir),
        a=_parse_candidate(obj.get("a"), "a", base_dir),
        b=_parse_candidate(obj.get("b"), "b", base_dir),
        label=check_label(required(obj, "label"), "label"),
        dimensions={k: check_label(v, f"dimensions.{k}") for k, v in dims.items()},
        margin=None if obj.get("margin") is None else check_number(obj["margin"], "margin", low=0),
        meta=dict(check_mapping(obj.get("meta"), "meta")),
    )


def _parse_pointwise(obj: dict[str, Any], base_dir: Path | None) -> PointwiseRecord:
    check_keys(obj, _POINTWISE_KEYS, "")
    scores = check_mapping(obj.get("scores"), "scores")
    return PointwiseRecord(
        id=_parse_id(obj),
        prompt=check_string(required(obj, "prompt"), "prompt"),
        system=check_string(obj.get("system"), "system", optional=True),
        media=_parse_media_list(obj.get("media"), "media", base_dir),
        response=check_string(obj.get("response"), "response", optional=True),
        scores={k: check_number(v, f"scores.{k}") for k, v in scores.items()},
        meta=dict(check_mapping(obj.get("meta"), "meta")),
    )
