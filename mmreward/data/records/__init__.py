"""The one record format: record types, the label set and its encoding, and the one parser of record dicts.

- `core`: ``PreferencePair``, ``PointwiseRecord``, ``MediaItem``, ``Candidate`` and `parse_record` (canonical
  dicts, TRL rows, pointwise dicts);
- `trl`: TRL rows to canonical pair dicts;
- `fields`: ``RecordError``, ``LABELS``, ``LABEL_SIGN`` (A = 1, B = -1, tie = 0) and the field checks.

JSONL and ``datasets`` I/O are in ``mmreward.data.schema``, which re-exports these names.
"""

from __future__ import annotations

from mmreward.data.records.core import (
    MEDIA_KEYS,
    MEDIA_TYPES,
    Candidate,
    MediaItem,
    PointwiseRecord,
    PreferencePair,
    Record,
    parse_record,
    record_kind,
)
from mmreward.data.records.fields import FLOAT32_MAX, LABEL_SIGN, LABELS, RecordError, show

__all__ = ["FLOAT32_MAX", "LABELS", "LABEL_SIGN", "MEDIA_KEYS", "MEDIA_TYPES", "Candidate", "MediaItem",
           "PointwiseRecord", "PreferencePair", "Record", "RecordError", "parse_record", "record_kind", "show"]
