"""The converter contract and the plumbing every converter of `SOURCES` shares.

A converter is `fn(spec: SourceSpec, media_dir: Path) -> Iterator[Record | Skip]`: it reads the dataset named by
`spec.path` (a local copy — HF dataset folder, parquet, JSON/JSONL, CSV — or a hub id when the network allows),
writes any embedded media (image bytes) under `media_dir/<spec.name>/`, and yields one record per preference pair
(or pointwise item), or a `Skip` with the reason for a row it cannot use. A bad row never stops the file.
Recipes (`mmreward.data.recipe`) call converters by name::

    spec = SourceSpec(name="rlaif", converter="rlaif_v", path="/data/RLAIF-V-Dataset")
    for item in SOURCES[spec.converter](spec, Path("out/media")):
        ...  # PreferencePair / PointwiseRecord, or Skip(row, reason)

Shared rules (the converters themselves live in `response.py`, `generation.py` and `synthetic.prefs`):

* Rows come from `read_rows`, which finds the table in the layouts the datasets are published in.
* Record ids are the dataset's id where it has an id column, else the row number; an id seen before in the
  same source gets `-<row>` appended, so ids are unique within a source. (The recipe prefixes `<spec.name>/`.)
* Relative media paths resolve against the dataset folder (`spec.path` when it is a folder, else the file's
  folder) or `options.media_root`. Records keep them relative with that folder as `MediaItem.base_dir`.
* Every option a converter does not know is an error. `check_media` (default true) turns a row whose media
  file is missing into a Skip; the media files are otherwise only opened at training time.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from mmreward.data.schema import MediaItem, PreferencePair, Record, RecordError, parse_record
from mmreward.data.sources.tables import find_tables, iter_tables
from mmreward.errors import DataError

# How to fetch a hub dataset for a local copy; converters fill in the repo id and any extra advice.
DOWNLOAD_HINT = "Download it with: huggingface-cli download --repo-type dataset {} --local-dir DIR{}"


@dataclass
class SourceSpec:
    """One source of a recipe."""

    # Name used in the manifest and in record ids.
    name: str
    # Key of SOURCES.
    converter: str
    # Local path (file or folder) or hub dataset id; None for generated sources.
    path: str | None = None
    # Dataset split to read.
    split: str = "train"
    # Converter-specific options (e.g. which rating decides VLFeedback pairs).
    options: dict = field(default_factory=dict)


@dataclass
class Skip:
    """A source row that produced no record, and why (reported in the manifest)."""

    row: int | str
    reason: str


Converter = Callable[[SourceSpec, Path], Iterator["Record | Skip"]]


class BadRow(DataError):
    """A row a converter cannot use; `convert_rows` turns it into a Skip carrying this message."""


# Options every file-based converter accepts (see the module docstring).
COMMON_OPTIONS = ("check_media", "media_root")


def check_options(spec: SourceSpec, *extra: str) -> None:
    """Raise ValueError for an option the converter does not know, so a typo cannot silently do nothing.

    Args:
        spec: the source.
        extra: converter-specific option names accepted besides `COMMON_OPTIONS`.
    """
    known = (*COMMON_OPTIONS, *extra)
    unknown = sorted(set(spec.options) - set(known))
    if unknown:
        raise ValueError(f"source {spec.name!r} ({spec.converter}): unknown option(s) {', '.join(unknown)}; "
                         f"known: {', '.join(known)}")


def read_rows(spec: SourceSpec, *, files: tuple[str, ...] = (), hint: str = "") -> Iterator[tuple[int, Any]]:
    """Open `spec.path` in whichever published layout it has and stream its rows.

    Layouts: a `.parquet`, `.jsonl`, `.json` (a list of objects) or `.csv` file; a folder holding a file that
    matches one of `files` (glob patterns) or `<split>.{jsonl,json,csv,parquet}`; a `datasets.save_to_disk`
    folder; parquet shards in the folder, in `data/` or in `<split>/` (HF repo layouts; `<split>-*-of-*`
    shards are filtered by split); a folder with a single table file. A path that does not exist locally and
    looks like `org/name` is loaded with `datasets.load_dataset(path, split=split)` (needs the network).

    The layout is resolved when this is called, so a wrong path fails before any row is read.

    Args:
        spec: the source (`path`, `split`).
        files: converter-specific glob patterns to try first inside a folder, e.g. `("dpo_pairs.jsonl",)`;
            `{split}` is replaced by the split.
        hint: how to obtain the dataset, appended to the error when nothing usable is found.

    Returns:
        An iterator of `(row, value)`: `row` is the 0-based position in reading order (shards in name order;
        for JSONL, line number - 1) and `value` the row dict, or a `Skip` for a row the reader cannot parse
        (a JSONL line that is not a JSON object, a CSV line with more fields than the header).
    """
    if spec.path is None:
        raise ValueError(f"source {spec.name!r} ({spec.converter}) needs a path. {hint}".strip())
    source = find_tables(spec.path, spec.split, files, hint)
    return _numbered(iter_tables(source))


def _numbered(values: Iterable[Any]) -> Iterator[tuple[int, Any]]:
    for row, value in enumerate(values):
        if value is None:  # a blank JSONL line: counted, so that row ids stay line numbers - 1
            continue
        yield row, (Skip(row, value) if isinstance(value, str) else value)


def dataset_root(spec: SourceSpec, option: str = "media_root") -> Path:
    """Return the absolute folder that relative media paths of the source are relative to.

    Args:
        spec: the source.
        option: the option that overrides it (POVID calls it `image_root`).

    Returns:
        `options[option]` if set, else `spec.path` when it is a folder, else the folder of the file.
    """
    given = spec.options.get(option)
    if given:
        return Path(given).expanduser().absolute()
    path = Path(spec.path or ".").expanduser().absolute()
    return path if path.is_dir() else path.parent


def record_id(native: Any, row: int) -> str:
    """Return the dataset's id of a row as text, or the row number when it has none."""
    return str(row if native is None or native == "" else native)


def convert_rows(spec: SourceSpec, rows: Iterable[tuple[int, Any]],
                 convert: Callable[[int, dict[str, Any]], Iterable[Record]]) -> Iterator[Record | Skip]:
    """Run a per-row converter over `rows`, turning every row it cannot use into a Skip.

    After conversion each record is checked: meta made JSON-safe, identical candidates and missing media
    files (`options.check_media`) rejected, the schema validated, and a repeated id made unique.

    Args:
        spec: the source (for options).
        rows: `(row, value)` pairs from `read_rows`.
        convert: `(row, row dict) -> records`; raises BadRow (or RecordError) for a row it rejects. Other
            ValueError / KeyError / TypeError / IndexError / AttributeError are reported the same way, with
            the exception type, because the rows are untrusted data.

    Returns:
        An iterator of records and Skips, in row order.
    """
    check_media = bool(spec.options.get("check_media", True))
    seen: set[str] = set()
    for row, value in rows:
        if isinstance(value, Skip):
            yield value
            continue
        try:
            records = list(convert(row, value))
        except (BadRow, RecordError) as err:
            yield Skip(row, str(err))
            continue
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
            yield Skip(row, f"malformed row ({type(err).__name__}: {err})")
            continue
        for record in records:
            reason = _problem(record, check_media)
            if reason:
                yield Skip(row, reason)
                continue
            if record.id in seen:
                record.id = _fresh_id(f"{record.id}-{row}", seen)
            seen.add(record.id)
            yield record


def _fresh_id(base: str, seen: set[str]) -> str:
    candidate, n = base, 1
    while candidate in seen:
        n += 1
        candidate = f"{base}.{n}"
    return candidate


def _problem(record: Record, check_media: bool) -> str | None:
    """Return why a converted record cannot be kept, or None; fixes up meta in place."""
    record.meta = json_safe(record.meta)
    if isinstance(record, PreferencePair):
        if (record.a.text, record.a.media) == (record.b.text, record.b.media):
            return "the two candidates are identical (chosen == rejected)"
        for side, cand in (("a", record.a), ("b", record.b)):
            if not cand.media and not (cand.text or "").strip():
                return f"candidate {side} is empty"
    if check_media:
        for item in record.all_media():
            for path in ([item.local_path()] if item.path is not None else item.frame_paths()):
                if not path.is_file():
                    return f"media file not found: {path}"
    try:
        parse_record(record.to_dict())
    except RecordError as err:
        return f"invalid record: {err}"
    return None


def json_safe(value: Any) -> Any:
    """Return `value` made JSON-writable: dates as ISO text, NaN as None, bytes and other objects as text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # write_jsonl refuses NaN
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"  # raw media never belongs in meta
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


# ---- field and media helpers for converters: each raises BadRow naming what is wrong ----

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# PIL format -> file extension (MPO is the multi-picture JPEG some cameras write).
_IMAGE_EXT = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp",
              "TIFF": "tiff"}


def require_text(row: dict[str, Any], key: str) -> str:
    """Return `row[key]` as a non-empty string (whitespace kept); BadRow when missing, empty or not text."""
    value = row.get(key)
    if value is None:
        raise BadRow(f"missing field {key!r}")
    if not isinstance(value, str):
        raise BadRow(f"field {key!r} must be text, got {type(value).__name__}")
    if not value.strip():
        raise BadRow(f"field {key!r} is empty")
    return value


def pick(row: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """Return the non-null `keys` of `row` (for meta)."""
    return {k: row[k] for k in keys if row.get(k) is not None}


def media_path(kind: str, path: Any, root: Path, meta: dict[str, Any] | None = None) -> MediaItem:
    """Return a MediaItem for a file path relative to `root` (or absolute), normalised ("./a" -> "a")."""
    if not isinstance(path, str) or not path.strip():
        raise BadRow(f"{kind} path must be a non-empty string, got {path!r}")
    return MediaItem(type=kind, path=os.path.normpath(path), base_dir=root, meta=dict(meta or {}))


def frames_dir(path: Any, root: Path) -> MediaItem:
    """Return a "frames" MediaItem of the image files in a folder, in natural order (frame_2 before frame_10).

    Args:
        path: the folder, relative to `root` (or absolute).
        root: the dataset folder.

    Returns:
        The item, with frame paths relative to `root`. Raises BadRow when the folder is missing or has no images.
    """
    item = media_path("frames", path, root)
    folder = root / item.path
    if not folder.is_dir():
        raise BadRow(f"frame folder not found: {folder}")
    names = sorted((p.name for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES), key=_natural)
    if not names:
        raise BadRow(f"frame folder has no images: {folder}")
    item.frames, item.path = [os.path.join(item.path, n) for n in names], None
    return item


def _natural(name: str) -> list[Any]:
    # "frame_10" after "frame_9": numbered frames are often not zero-padded.
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def image_item(value: Any, *, spec: SourceSpec, media_dir: Path, root: Path, stem: str,
               reuse: bool = False) -> MediaItem:
    """Return a MediaItem for an image value as datasets store it: a path, raw bytes or a {bytes, path} struct.

    Args:
        value: the image value of the row.
        spec, media_dir, stem, reuse: where bytes are written (see `save_image`).
        root: folder that a path (or a struct without bytes) is relative to.

    Returns:
        An image MediaItem. Raises BadRow for a missing image or unreadable bytes.
    """
    if isinstance(value, dict):
        if value.get("bytes") is not None:
            return save_image(value["bytes"], spec=spec, media_dir=media_dir, stem=stem, reuse=reuse)
        value = value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return save_image(bytes(value), spec=spec, media_dir=media_dir, stem=stem, reuse=reuse)
    if value is None:
        raise BadRow("missing image")
    return media_path("image", value, root)


def save_image(data: Any, *, spec: SourceSpec, media_dir: Path, stem: str, reuse: bool = False) -> MediaItem:
    """Write image bytes to `media_dir/<spec.name>/<stem>.<ext>` (ext from the image header) and refer to it.

    Args:
        data: the encoded image.
        spec: the source (its name is the sub-folder).
        media_dir: the recipe's media folder.
        stem: file name without extension; characters other than letters, digits, ".", "_" and "-" become "_".
        reuse: keep an existing file of the same size instead of rewriting it (for stems that identify the
            image, such as Pick-a-Pic uids).

    Returns:
        An image MediaItem whose path is relative to `media_dir`.
    """
    from PIL import Image

    if not isinstance(data, (bytes, bytearray)) or not data:
        raise BadRow(f"image bytes missing or not bytes ({type(data).__name__})")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            img.verify()  # checks the structure (PNG CRCs); a truncated JPEG body shows only when decoded
    except Exception as err:  # PIL raises many types for bad data; all mean the same to us
        raise BadRow(f"unreadable image bytes ({type(err).__name__}: {err})") from err
    name = f"{re.sub(r'[^A-Za-z0-9._-]', '_', stem)}.{_IMAGE_EXT.get(fmt or '', (fmt or 'img').lower())}"
    dest = media_dir / spec.name / name
    if not (reuse and dest.is_file() and dest.stat().st_size == len(data)):
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tmp")  # rename last, so an interrupted run leaves no half image
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    return MediaItem(type="image", path=f"{spec.name}/{name}", base_dir=media_dir.absolute())
