"""Hostile request bodies to records: schema validation, the media policy, and raw `.npy` frames.

Every problem is a `RequestError` naming the record (index and id) and the field, which the app answers with a
4xx JSON body; nothing here touches the model. The media policy:

- ``path`` / ``frames`` entries only under ``media_root`` (relative paths are relative to it): ``..`` segments,
  ``file://`` and other URL-looking paths, and symlinks whose target leaves the root are refused; without a root,
  server-side paths are refused altogether;
- ``url`` only when URLs are enabled, and only ``http(s)://`` (the media loader would read ``file://`` URLs and
  bare paths); downloads keep the loader's deadline and size limits;
- ``bytes`` (base64) always, held to the loader's size limit;
- ``npy``: base64 of a ``.npy`` file (``numpy.save``), an image ``(H, W, 3)`` / ``(3, H, W)`` or a video
  ``(T, H, W, 3)`` / ``(T, 3, H, W)`` with ``fps``; uint8, or float in [0, 1]. The header is read and checked
  before any array is allocated (a forged shape cannot allocate terabytes) and pickles are never loaded.

Raw frames are handed to the engine as they are: ``MediaItem(array=..., fps=...)`` (uint8, channels-last), with
no re-encoding and no disk round trip, so the checkpoint's sampling contract picks frames exactly as it does for
the same frames in files.
"""

from __future__ import annotations

import base64
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmreward.data.schema import MediaItem, PointwiseRecord, PreferencePair, RecordError, parse_record
from mmreward.errors import DataError

_NPY_DTYPES = {"uint8", "float16", "float32", "float64"}


class RequestError(DataError):
    """A request the server refuses; `status` is the HTTP status, `field` / `record` locate the problem."""

    def __init__(self, message: str, *, status: int = 422, field: str | None = None, record: int | None = None,
                 record_id: str | None = None):
        super().__init__(message)
        self.status, self.field, self.record, self.record_id = status, field, record, record_id

    def to_dict(self) -> dict:
        """The JSON body of the error response."""
        out: dict[str, Any] = {"error": str(self)}
        for key, value in (("field", self.field), ("record", self.record), ("id", self.record_id)):
            if value is not None:
                out[key] = value
        return out


@dataclass
class MediaPolicy:
    """Where a request's media may come from.

    Attributes:
        media_root: folder that server-side paths must stay inside (None: no paths).
        allow_urls: whether ``url`` media are fetched (http/https only).
        max_frames: most frames in one raw video.
        trusted: skip the path / URL checks (in-process callers, whose records are their own).
    """

    media_root: Path | None = None
    allow_urls: bool = False
    max_frames: int = 1024
    trusted: bool = False

    def __post_init__(self):
        if self.media_root is not None:
            self.media_root = Path(os.path.realpath(self.media_root))


def parse_records(raw: Any, policy: MediaPolicy, *, max_records: int) -> list:
    """Validate a request's ``records`` list into records, applying the media policy.

    Args:
        raw: the value of the request's ``records`` field.
        policy: the media policy.
        max_records: most records in one request.

    Returns:
        PreferencePair / PointwiseRecord objects in request order.

    Raises:
        RequestError: naming the record and field (422), or 413 for too many records.
    """
    if not isinstance(raw, list):
        raise RequestError(f"must be a list of records, got {type(raw).__name__}", field="records")
    if not raw:
        raise RequestError("must hold at least one record", field="records")
    if len(raw) > max_records:
        raise RequestError(f"{len(raw)} records exceed this server's limit of {max_records} per request; "
                           "split the request", status=413, field="records")
    records, seen = [], {}
    for i, obj in enumerate(raw):
        record_id = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None
        try:
            parsed, arrays = _with_raw_frames(obj, policy)
            record = parse_record(parsed, base_dir=policy.media_root, default_id=f"records[{i}]")
            _attach_arrays(record, arrays)
            check_media(record, policy)
        except RecordError as err:
            raise RequestError(err.reason, field=f"records[{i}]" + (f".{err.field}" if err.field else ""),
                               record=i, record_id=record_id) from None
        except RequestError as err:
            err.record, err.record_id = i, record_id
            err.field = f"records[{i}].{err.field}" if err.field else f"records[{i}]"
            raise
        if record.id in seen:  # results are matched to records by id: two with one id would be ambiguous
            raise RequestError(f"id {record.id!r} is also used by records[{seen[record.id]}]; ids must be unique "
                               "within a request", field=f"records[{i}].id", record=i, record_id=record.id)
        seen[record.id] = i
        records.append(record)
    return records


# ---------------------------------------------------------------------------------------------- policy
def _media_fields(record) -> list[tuple[str, MediaItem]]:
    out = [(f"media[{j}]", m) for j, m in enumerate(record.media)]
    if isinstance(record, PreferencePair):
        for side in ("a", "b"):
            out += [(f"{side}.media[{j}]", m) for j, m in enumerate(getattr(record, side).media)]
    return out


def check_media(record: PreferencePair | PointwiseRecord, policy: MediaPolicy) -> None:
    """Refuse media sources the policy does not allow; raises `RequestError` naming the field."""
    if policy.trusted:
        return
    for where, item in _media_fields(record):
        if item.url is not None:
            _check_url(item.url, policy, f"{where}.url")
        if item.path is not None:
            _check_path(item.path, policy, f"{where}.path")
        for k, frame in enumerate(item.frames or []):
            _check_path(frame, policy, f"{where}.frames[{k}]")


def _check_url(url: str, policy: MediaPolicy, where: str) -> None:
    if not policy.allow_urls:
        raise RequestError("URL media are disabled on this server; send the media as base64 `bytes` or `npy`, "
                           "or start the server with --allow-urls", status=403, field=where)
    if not url.lower().startswith(("http://", "https://")):
        raise RequestError(f"only http(s) URLs are fetched, got {url[:60]!r}", status=403, field=where)


def _check_path(path: str, policy: MediaPolicy, where: str) -> None:
    if policy.media_root is None:
        raise RequestError("server-side paths are disabled on this server; send the media as base64 `bytes` or "
                           "`npy`, or start the server with --media-root DIR", status=403, field=where)
    if "://" in path or path.lower().startswith("file:"):
        raise RequestError(f"must be a path under the media root, not a URL: {path[:60]!r}", status=403,
                           field=where)
    if "\x00" in path or ".." in Path(path).parts:
        raise RequestError(f"'..' and NUL are not allowed in media paths: {path[:60]!r}", status=403, field=where)
    root = str(policy.media_root)
    real = os.path.realpath(os.path.join(root, path))  # follows symlinks: a link out of the root is refused
    if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
        raise RequestError(f"{path[:60]!r} is outside the server's media root", status=403, field=where)


# ------------------------------------------------------------------------------------------ raw frames
# A raw item is parsed as this stand-in source (so that type, fps, start, end and meta are validated, and
# errors name the same fields), then its array replaces the stand-in.
_STAND_IN = "AA=="


def _with_raw_frames(obj: Any, policy: MediaPolicy) -> tuple[Any, dict]:
    """The record dict with every ``npy`` item replaced by a stand-in, and the arrays by (media list, index).

    Returns:
        (record dict, {("media" | "a" | "b", index): (T, H, W, 3) uint8 array, or (H, W, 3) for an image}).
    """
    arrays: dict[tuple[str, int], np.ndarray] = {}
    if not isinstance(obj, dict):
        return obj, arrays
    out = dict(obj)
    for where, holder in (("media", out), ("a.media", out.get("a")), ("b.media", out.get("b"))):
        if not isinstance(holder, dict) or not isinstance(holder.get("media"), list):
            continue
        items = holder["media"]
        if not any(isinstance(m, dict) and "npy" in m for m in items):
            continue
        converted = []
        for j, item in enumerate(items):
            if isinstance(item, dict) and "npy" in item:
                arrays[where.split(".")[0], j], item = _npy_item(item, policy, f"{where}[{j}]")
            converted.append(item)
        if holder is out:
            out["media"] = converted
        else:
            out[where[0]] = {**holder, "media": converted}
    return out, arrays


def _attach_arrays(record: PreferencePair | PointwiseRecord, arrays: dict) -> None:
    """Put each decoded array in place of its stand-in source."""
    for (holder, j), array in arrays.items():
        item = (record if holder == "media" else getattr(record, holder)).media[j]
        item.bytes, item.array = None, array


def _npy_item(item: dict, policy: MediaPolicy, where: str) -> tuple[np.ndarray, dict]:
    """(uint8 frames, stand-in media dict) of a raw ``npy`` item; `RequestError` naming the field if bad."""
    extra = set(item) - {"type", "npy", "fps", "start", "end", "meta"}
    if extra:
        raise RequestError(f"unknown key {sorted(extra)[0]!r} next to 'npy'", field=where)
    kind, payload = item.get("type"), item.get("npy")
    if kind not in ("image", "video"):
        raise RequestError(f"type must be 'image' or 'video' for npy media, got {str(kind)[:30]!r}",
                           field=f"{where}.type")
    if not isinstance(payload, str):
        raise RequestError("must be base64 text of a .npy file", field=f"{where}.npy")
    try:
        frames = to_uint8_frames(decode_npy(_b64(payload)), kind, max_frames=policy.max_frames)
    except DataError as err:
        raise RequestError(str(err), field=f"{where}.npy") from None
    rest = {k: item[k] for k in ("start", "end", "meta") if k in item}
    if kind == "image":
        return frames[0], {"type": "image", "bytes": _STAND_IN, **rest}
    fps = item.get("fps")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not (math.isfinite(fps) and fps > 0):
        raise RequestError("a raw video needs its frame rate: a number > 0 (the sampling contract needs it)",
                           field=f"{where}.fps")
    return frames, {"type": "video", "bytes": _STAND_IN, "fps": float(fps), **rest}


def _b64(payload: str) -> bytes:
    from mmreward.data.media.fetch import read_base64

    return read_base64(payload, "npy")


def decode_npy(data: bytes) -> np.ndarray:
    """A numeric array from ``.npy`` bytes, checking the header before allocating anything.

    Raises:
        DataError: not a .npy file, an object / unsupported dtype, or a size that does not match the header.
    """
    from numpy.lib import format as npy_format

    stream = io.BytesIO(data)
    try:
        version = npy_format.read_magic(stream)
        reader = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, fortran, dtype = reader(stream)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, KeyError) as err:
        raise DataError(f"not a .npy file ({str(err)[:120]})") from None
    if dtype.name not in _NPY_DTYPES:
        raise DataError(f"dtype {dtype.name} not supported; send uint8 or float in [0, 1]")
    count = math.prod(shape)
    body = memoryview(data)[stream.tell():]
    if count * dtype.itemsize != len(body):
        raise DataError(f"header says shape {shape} ({count * dtype.itemsize} bytes) but {len(body)} bytes follow")
    array = np.frombuffer(body, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")


def to_uint8_frames(array: np.ndarray, kind: str, *, max_frames: int = 1024) -> np.ndarray:
    """(T, H, W, 3) uint8 frames from an image or video array in either channel layout.

    Args:
        array: image (H, W, 3) / (3, H, W) or video (T, H, W, 3) / (T, 3, H, W); uint8, or float in [0, 1].
        kind: "image" or "video".
        max_frames: most frames accepted in a video.

    Returns:
        A (T, H, W, 3) uint8 array (T = 1 for an image). Floats are scaled by 255 and rounded.

    Raises:
        DataError: a wrong shape or value range.
    """
    want = 3 if kind == "image" else 4
    if array.ndim != want:
        layout = "(H, W, 3) or (3, H, W)" if kind == "image" else "(T, H, W, 3) or (T, 3, H, W)"
        raise DataError(f"{kind} arrays must be {layout}, got shape {tuple(array.shape)}")
    frames = array[None] if kind == "image" else array
    if frames.shape[-1] != 3 and frames.shape[1] == 3:
        frames = frames.transpose(0, 2, 3, 1)
    if frames.shape[-1] != 3 or min(frames.shape) == 0:
        raise DataError(f"expected 3 colour channels, got shape {tuple(array.shape)}")
    if frames.shape[0] > max_frames:
        raise DataError(f"{frames.shape[0]} frames exceed the limit of {max_frames}; sample fewer frames")
    if frames.dtype == np.uint8:
        return np.ascontiguousarray(frames)
    values = frames.astype(np.float32)
    if not np.isfinite(values).all() or values.min() < 0.0 or values.max() > 1.0:
        raise DataError("float arrays must hold finite values in [0, 1]")
    return np.rint(values * 255.0).astype(np.uint8)


def encode_npy(array) -> str:
    """Base64 text of an array (numpy or torch) as a .npy file: the ``npy`` field of a media item."""
    if hasattr(array, "detach"):
        import torch

        tensor = array.detach().cpu()
        array = (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode()
