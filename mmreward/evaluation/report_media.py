"""Thumbnails for the HTML report: small JPEGs written once per unique content, and candidate media as the model saw it.

    thumbs = Thumbs(run_dir)                       # files under run_dir/report_media/
    key = thumbs.add(pil_image)                    # "report_media/3f2a….jpg", written once
    shown = media_thumbs(item, contract, thumbs)   # {"kind", "path", "frames": [{"src", "t"}], ...}

Videos are shown as the frames the scorer was given: decoded under the run's sampling contract (same fps or
frame count, same window), so the timestamps under the thumbnails are the ones the model saw. A run with many
unique media stops thumbnailing after `max_items` (each video is one more decode) and says so in the log.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path

from mmreward.errors import DataError

logger = logging.getLogger(__name__)

MEDIA_DIR = "report_media"
# Longest side of a thumbnail in pixels, and the frames of one video shown (evenly over the sampled ones).
THUMB_SIDE = 160
MAX_FRAMES = 8


class Thumbs:
    """A content-addressed folder of JPEG thumbnails next to a report.

    Names are the hash of the thumbnail's pixels, so the same frame reached twice (a video shared by many pairs,
    a crop the judge asked for again) is one file; writes are atomic (several ranks may share the folder).
    """

    def __init__(self, root: str | Path, *, side: int = THUMB_SIDE, quality: int = 72, max_items: int = 4000):
        self.root = Path(root)
        self.side = side
        self.quality = quality
        # Unique media items (not frames) that `media_thumbs` decodes; each video costs a decode.
        self.max_items = max_items
        self._items: dict = {}
        self.skipped = 0

    def add(self, image) -> str:
        """Write a thumbnail of a PIL image (once per unique pixels); returns its path relative to `root`."""
        thumb = image.convert("RGB")
        thumb.thumbnail((self.side, self.side))
        digest = hashlib.blake2b(thumb.tobytes(), digest_size=10)
        digest.update(f"{thumb.width}x{thumb.height}".encode())
        rel = f"{MEDIA_DIR}/{digest.hexdigest()}.jpg"
        target = self.root / rel
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            thumb.save(buf, format="JPEG", quality=self.quality)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            tmp.write_bytes(buf.getvalue())
            os.replace(tmp, target)
        return rel

    def item(self, key, make):
        """The memoised result of `make()` for a media item; None once `max_items` items were thumbnailed."""
        if key in self._items:
            return self._items[key]
        if len(self._items) >= self.max_items:
            self.skipped += 1
            return None
        self._items[key] = make()
        return self._items[key]


def _label(item) -> str:
    """How the record names a media item (a path, a URL, or the kind of in-memory source)."""
    if item.path is not None:
        return str(item.path)
    if item.url is not None:
        return str(item.url)
    if item.frames:
        return f"{len(item.frames)} frames: {item.frames[0]} …"
    return f"<{item.type} from bytes>" if item.bytes is not None else f"<in-memory {item.type}>"


def _decode(item, contract, thumbs: Thumbs, max_frames: int) -> dict:
    """Thumbnails of one media item under the contract; a failure is recorded in the entry, never raised."""
    from mmreward.data.collate import MediaContract, media_source
    from mmreward.data.media import load_image, load_video

    contract = contract or MediaContract()
    entry: dict = {"kind": item.type, "path": _label(item), "frames": []}
    try:
        source = media_source(item)
        if item.type == "image":
            image = load_image(source, min_pixels=contract.image_min_pixels, max_pixels=contract.image_max_pixels,
                               factor=contract.video.factor)
            entry["frames"] = [{"src": thumbs.add(image)}]
            entry["size"] = [image.width, image.height]
            return entry
        kwargs = {"frames_fps": item.fps} if item.type == "frames" and item.fps else {}
        video = load_video(source, sampling=contract.video, start=item.start, end=item.end, **kwargs)
    except (DataError, ValueError, OSError) as err:
        entry["error"] = str(err)[:500]
        return entry
    from PIL import Image

    total = len(video.timestamps)
    shown = min(total, max_frames)
    picks = sorted({round(i * (total - 1) / max(1, shown - 1)) for i in range(shown)})
    for i in picks:
        frame = Image.fromarray(video.frames[i].permute(1, 2, 0).numpy())
        entry["frames"].append({"src": thumbs.add(frame), "t": round(float(video.timestamps[i]), 3)})
    entry.update(sampled=total, fps=round(float(video.fps), 4), duration=round(float(video.duration), 3),
                 size=[int(video.frames.shape[-1]), int(video.frames.shape[-2])])
    return entry


def media_thumbs(item, contract, thumbs: Thumbs, *, max_frames: int = MAX_FRAMES) -> dict:
    """What the report shows of one media item: thumbnails (images) or sampled frames with timestamps (videos).

    Args:
        item: a `MediaItem` of a record.
        contract: the scorer's `MediaContract` (None: the package defaults), so frames are the model's frames.
        thumbs: the thumbnail store (memoises per item and sampling window).
        max_frames: video frames shown, evenly spread over the sampled ones (all of them when fewer).

    Returns:
        {"kind", "path", "frames": [{"src", "t"?}], "sampled"?, "fps"?, "size"?, "error"?}; "frames" is empty
        (and "note" says why) past the store's `max_items`.
    """
    key = (item.type, _cache_key(item), item.start, item.end, item.fps)
    entry = thumbs.item(key, lambda: _decode(item, contract, thumbs, max_frames))
    if entry is None:
        return {"kind": item.type, "path": _label(item), "frames": [],
                "note": f"not thumbnailed (the report thumbnails at most {thumbs.max_items} unique media)"}
    return entry


def _cache_key(item):
    try:
        return item.cache_key()
    except (DataError, ValueError, TypeError):  # an undecodable bytes field: fall back to the label
        return _label(item)


def load_contract(summary: dict):
    """The run's `MediaContract` from results.json's "sampling_contract" (None when the scorer has none)."""
    from mmreward.data.collate import MediaContract

    raw = summary.get("sampling_contract")
    if not isinstance(raw, dict) or "video" not in raw:
        return None
    try:
        return MediaContract.from_dict(raw)
    except (KeyError, TypeError, ValueError) as err:
        logger.warning("report: sampling contract unreadable (%s); thumbnails use the default sampling", err)
        return None
