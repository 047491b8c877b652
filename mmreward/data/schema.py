"""The one record format for preference pairs and pointwise scores, with validated JSONL and datasets I/O.

Every preference source, benchmark and training stage reads and writes these records. One JSONL line is one
record::

    {"id": "p1", "prompt": "a red circle", "system": null,
     "media": [{"type": "video", "path": "videos/x.mp4", "start": 0.0, "end": 4.0}],
     "a": {"text": "response A", "media": []}, "b": {"text": "response B", "media": []},
     "label": "A", "dimensions": {"VQ": "A", "MQ": "tie"}, "margin": null, "meta": {}}

Top-level ``media`` is context shared by both candidates (response pairs: which answer about this video is
better?); media inside ``a``/``b`` are the candidates themselves (generation pairs: which video is better?).
A line with ``scores`` or ``response`` instead of ``a``/``b`` is a PointwiseRecord. TRL rows
(``prompt``/``chosen``/``rejected``/``images``) are accepted and normalised to pairs with label "A".

Relative media paths are relative to the JSONL file's folder. Records read from a file remember that folder
(``MediaItem.base_dir``), and ``write_jsonl`` rewrites relative paths so they still reach the same files.

    records = read_jsonl("data/pairs.jsonl", on_error="skip")   # bad lines -> data/pairs.errors.jsonl

The record types and `parse_record` (canonical and TRL rows) live in ``mmreward.data.records``; they are
re-exported here. This module is the I/O: JSONL (streaming, errors files, duplicate ids) and ``datasets``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from mmreward.data.records import (
    LABEL_SIGN,
    LABELS,
    MEDIA_KEYS,
    MEDIA_TYPES,
    Candidate,
    MediaItem,
    PointwiseRecord,
    PreferencePair,
    Record,
    RecordError,
    parse_record,
    record_kind,
    show,
)
from mmreward.data.trajectory import Trajectory, read_trajectories, write_trajectories

__all__ = [
    "LABELS", "LABEL_SIGN", "MEDIA_TYPES", "Candidate", "MediaItem", "PointwiseRecord", "PreferencePair", "Record",
    "RecordError", "Trajectory", "from_hf_dataset", "iter_jsonl", "iter_jsonl_numbered", "parse_record", "read_jsonl",
    "read_trajectories", "to_hf_dataset", "write_jsonl", "write_trajectories",
]

log = logging.getLogger(__name__)

# ---- JSONL ----

def iter_jsonl(path: str | Path, *, on_error: str = "raise", kind: str | None = None,
               on_duplicate_id: str = "warn", on_bad: Callable[[RecordError, str], None] | None = None,
               ) -> Iterator[Record]:
    """Stream validated records from a JSONL file; blank lines are skipped.

    Args:
        path: the JSONL file; relative media paths in it are relative to its folder.
        on_error: "raise" stops at the first bad line with a RecordError; "skip" writes each bad line to
            ``<stem>.errors.jsonl`` next to the file (``{"line", "error", "raw"}``), logs a warning with
            the count and goes on. A stale errors file is removed when the file reads clean.
        kind: "pair" or "pointwise" to accept only that record kind; None accepts both.
        on_duplicate_id: "warn" logs each id used on more than one line (with the lines) once the file is read;
            "error" makes every repeat a bad line (raised or skipped per ``on_error``); "ignore" says nothing.
        on_bad: with ``on_error="skip"``, called with ``(error, raw line)`` for each bad line instead of writing
            the errors file (``mmreward score`` collects them in its own errors file).

    Returns:
        An iterator of PreferencePair / PointwiseRecord. A path that is missing, a directory or unreadable is a
        RecordError naming it (no line).
    """
    return (record for _, record in iter_jsonl_numbered(path, on_error=on_error, kind=kind,
                                                         on_duplicate_id=on_duplicate_id, on_bad=on_bad))


def iter_jsonl_numbered(path: str | Path, *, on_error: str = "raise", kind: str | None = None,
                        on_duplicate_id: str = "warn", on_bad: Callable[[RecordError, str], None] | None = None,
                        ) -> Iterator[tuple[int, Record]]:
    """Like ``iter_jsonl``, yielding ``(line number, record)`` so callers can name the line of a later failure."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f'on_error must be "raise" or "skip", got {on_error!r}')
    if kind not in (None, "pair", "pointwise"):
        raise ValueError(f'kind must be "pair", "pointwise" or None, got {kind!r}')
    if on_duplicate_id not in ("warn", "error", "ignore"):
        raise ValueError(f'on_duplicate_id must be "warn", "error" or "ignore", got {on_duplicate_id!r}')
    return _iter_jsonl(Path(path), on_error, kind, on_duplicate_id, on_bad)


def _open_jsonl(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except IsADirectoryError:
        reason = "is a directory, not a JSONL file; give the .jsonl file inside it"
    except FileNotFoundError:
        reason = "no such file"
    except OSError as err:
        reason = f"cannot be read ({err.strerror or err})"
    raise RecordError(reason, path=path, where=str(path))


def _iter_jsonl(path: Path, on_error: str, kind: str | None, on_duplicate_id: str,
                on_bad: Callable[[RecordError, str], None] | None) -> Iterator[tuple[int, Record]]:
    errors_path = path.with_name(f"{path.stem}.errors.jsonl")
    base_dir = path.parent.absolute()  # absolute so records stay valid after a chdir
    n_bad, sink = 0, None
    seen: dict[str, list[int]] = {}
    f = _open_jsonl(path)
    if on_error == "skip" and on_bad is None:
        errors_path.unlink(missing_ok=True)  # a stale file would blame lines that are now fine
    try:
        # Binary lines split on b"\n" only: a stray "\r" inside a line must not split it (line numbers match
        # `wc -l`), and each line is decoded on its own so one invalid byte costs one line, not the file.
        with f:
            for lineno, raw in enumerate(f, 1):
                text, record = None, None
                try:
                    text = _decode_line(raw, path, lineno)
                    if not text.strip():
                        continue
                    record = _parse_line(text, path, lineno, base_dir, kind)
                    _note_id(record.id, seen, lineno, path, on_duplicate_id)
                except RecordError as err:
                    if on_error == "raise":
                        raise
                    n_bad += 1
                    shown = text if text is not None else raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
                    if on_bad is not None:
                        on_bad(err, shown)
                        continue
                    sink = sink or errors_path.open("w", encoding="utf-8")
                    sink.write(_json_line({"line": lineno, "error": str(err), "raw": shown}))
                    continue
                yield lineno, record
        if on_duplicate_id == "warn":
            _warn_duplicates(path, seen)
    finally:
        if sink is not None:
            sink.close()
        if n_bad:
            where = f"see {errors_path}" if on_bad is None else "see the errors file"
            log.warning("%s: skipped %d bad line(s); %s", path.name, n_bad, where)


def _decode_line(raw: bytes, path: Path, lineno: int) -> str:
    if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte order mark, as written by some editors
    try:
        return raw.rstrip(b"\r\n").decode("utf-8")
    except UnicodeDecodeError as err:
        raise RecordError(f"invalid UTF-8 (byte {err.object[err.start]:#04x} at byte offset {err.start}); "
                          "re-save the file as UTF-8", path=path, line=lineno, where=f"{path.name}:{lineno}") from None


def _note_id(record_id: str, seen: dict[str, list[int]], lineno: int, path: Path, on_duplicate_id: str) -> None:
    lines = seen.setdefault(record_id, [])
    if lines and on_duplicate_id == "error":
        raise RecordError(f"id {show(record_id)} is already used on line {lines[0]}; ids must be unique "
                          "(scores and resumed runs are keyed by id)", path=path, line=lineno,
                          where=f"{path.name}:{lineno}")
    lines.append(lineno)


def _warn_duplicates(path: Path, seen: dict[str, list[int]]) -> None:
    repeated = [(i, lines) for i, lines in seen.items() if len(lines) > 1]
    if not repeated:
        return
    shown = "; ".join(f"{show(i)} on lines {', '.join(map(str, lines[:10]))}{', ...' if len(lines) > 10 else ''}"
                      for i, lines in repeated[:5])
    more = f" (and {len(repeated) - 5} more)" if len(repeated) > 5 else ""
    log.warning("%s: %d id(s) used on more than one line: %s%s; scores and resumed runs are keyed by id, so make "
                "ids unique (or pass --on-duplicate-id error to refuse such files)", path.name, len(repeated),
                shown, more)


def _json_line(obj: dict[str, Any]) -> str:
    """One JSON line; readable text when possible, ASCII escapes when a string holds a lone surrogate."""
    text = json.dumps(obj, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(obj)
    return text + "\n"


def _parse_line(text: str, path: Path, lineno: int, base_dir: Path, kind: str | None) -> Record:
    where = f"{path.name}:{lineno}"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise RecordError(f"invalid JSON ({err.msg}: column {err.colno})", path=path, line=lineno,
                          where=where) from None
    except RecursionError:
        raise RecordError("invalid JSON (nested too deeply)", path=path, line=lineno, where=where) from None
    try:
        record = parse_record(obj, base_dir=base_dir, default_id=f"{path.stem}-{lineno}")
        if kind is not None and record_kind(record) != kind:
            raise RecordError(f"expected a {kind} record, got a {record_kind(record)} record")
    except RecordError as err:
        raise err.at(where, path, lineno) from None
    except RecursionError:  # a valid but absurdly deep value (in meta, say) overflows a validator
        raise RecordError("a value is nested too deeply", path=path, line=lineno, where=where) from None
    return record


def read_jsonl(path: str | Path, *, on_error: str = "raise", kind: str | None = None,
               on_duplicate_id: str = "warn") -> list[Record]:
    """Read and validate a whole JSONL file; see ``iter_jsonl`` for the arguments.

    Returns:
        The list of records (bad lines excluded when ``on_error="skip"``).
    """
    return list(iter_jsonl(path, on_error=on_error, kind=kind, on_duplicate_id=on_duplicate_id))


def write_jsonl(path: str | Path, records: Iterable[Record]) -> int:
    """Validate and write records, one JSON object per line (UTF-8), creating parent folders.

    Relative media paths of records read from a file are rewritten relative to the new file's folder, so they
    reach the same files. The file is written to ``<name>.tmp`` and renamed, so a failure leaves no half file.

    Args:
        path: output JSONL file.
        records: PreferencePair / PointwiseRecord objects.

    Returns:
        The number of records written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out_dir = path.parent.absolute()
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    try:
        with tmp.open("w", encoding="utf-8", newline="\n") as f:
            for n, record in enumerate(records, 1):
                d = record.to_dict(relative_to=out_dir)
                # Records built in code skipped validation; checking here means nothing unreadable is written.
                parse_record(d, base_dir=out_dir, where=f"record {n} (id {show(record.id)})")
                f.write(json.dumps(d, ensure_ascii=False, allow_nan=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n


# ---- Hugging Face datasets ----
# Arrow wants one type per column, so the free dicts (meta, dimensions, scores) travel as JSON strings and
# media as structs whose unset keys are null.

def _features(kind: str) -> Any:
    from datasets import Features, Value

    string, number = Value("string"), Value("float64")
    media = [{"type": string, "path": string, "url": string, "bytes": string, "frames": [string],
              "start": number, "end": number, "fps": number, "meta": string}]
    common = {"id": string, "prompt": string, "system": string, "media": media}
    if kind == "pair":
        candidate = {"text": string, "media": media}
        return Features({**common, "a": candidate, "b": candidate, "label": string, "dimensions": string,
                         "margin": number, "meta": string})
    return Features({**common, "response": string, "scores": string, "meta": string})


def _media_row(d: dict[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(d.get("meta", {})) if k == "meta" else d.get(k) for k in MEDIA_KEYS}


def _to_row(record: Record) -> dict[str, Any]:
    d = record.to_dict()
    d["media"] = [_media_row(m) for m in d["media"]]
    for key in ("a", "b"):
        if key in d:
            d[key]["media"] = [_media_row(m) for m in d[key]["media"]]
    for key in ("dimensions", "scores", "meta"):
        if key in d:
            d[key] = json.dumps(d[key], ensure_ascii=False)
    return d


def _from_row(row: dict[str, Any]) -> dict[str, Any]:
    def media(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        return [{k: json.loads(v) if k == "meta" else v for k, v in m.items() if v is not None}
                for m in items or []]

    d = dict(row, media=media(row["media"]))
    for key in ("a", "b"):
        if key in d:
            d[key] = dict(d[key], media=media(d[key]["media"]))
    for key in ("dimensions", "scores", "meta"):
        if key in d:
            d[key] = json.loads(d[key])
    return d


def to_hf_dataset(records: Iterable[Record]) -> Any:
    """Build a ``datasets.Dataset`` from records of one kind (an empty input gives an empty pair dataset).

    Args:
        records: PreferencePair or PointwiseRecord objects, not mixed.

    Returns:
        A Dataset with one row per record; ``meta``, ``dimensions`` and ``scores`` are JSON strings.
    """
    from datasets import Dataset

    records = list(records)
    kinds = {record_kind(r) for r in records} or {"pair"}
    if len(kinds) > 1:
        raise ValueError("to_hf_dataset needs records of one kind, got both pairs and pointwise records")
    return Dataset.from_list([_to_row(r) for r in records], features=_features(kinds.pop()))


def from_hf_dataset(ds: Any, base_dir: str | Path | None = None) -> list[Record]:
    """Turn a dataset made by ``to_hf_dataset`` back into validated records.

    Args:
        ds: the ``datasets.Dataset``.
        base_dir: folder that relative media paths are relative to (a dataset does not remember it).

    Returns:
        The records, in row order. Raises RecordError naming the row when one breaks the schema.
    """
    return [parse_record(_from_row(row), base_dir=base_dir, where=f"row {i}") for i, row in enumerate(ds)]
