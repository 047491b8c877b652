"""Did an episode's tool calls show the deciding evidence? Read from the tools' replies, checked against the oracle.

    seen = tool_views(["Video 1: 1 of its 32 frames (4.00s).\\nFrame 13 (t=1.50s), image 9", …])
    evidence_seen(record.meta["evidence"], seen, n_videos=2, n_images=0)     # True / False

A record may carry where its deciding detail is (`meta["evidence"]`, as the tool-necessity set of
`data.synthetic.tool_task` does): `{"window": [t0, t1]}` (seconds, the same window in every video under
judgment) or `{"box": [x0, y0, x1, y1], "max_area": 0.3}` (fractions, the same box in every image). What the
judge looked at is read from the tools' own replies, which state each returned frame's time and each crop's
region, so a call counts by what it returned, not by what it asked for. The evidence was seen when *every*
video (image) under judgment returned at least one frame inside the window (one crop that contains the box and
covers at most `max_area` of the image, i.e. enlarges it): comparing candidates needs the detail of each.
Replies are model-influenced text: anything that does not parse is ignored, never an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_VIDEO = re.compile(r"^Video (\d{1,4}): ")
_FRAME = re.compile(r"Frame \d{1,6} \(t=(\d{1,6}(?:\.\d{1,6})?)s\)")
_CROP = re.compile(r"^Crop of image (\d{1,4}) \(\d{1,6}x\d{1,6}\): x (\d(?:\.\d{1,4})?)-(\d(?:\.\d{1,4})?), "
                   r"y (\d(?:\.\d{1,4})?)-(\d(?:\.\d{1,4})?)")
# Crop replies print fractions with 2 decimals: a box edge may be off by half of 0.01.
_ROUND = 0.006
# Frame replies print times with 2 decimals.
_TIME_ROUND = 0.006


@dataclass
class ToolViews:
    """What an episode's tool replies showed: frame times per video number, crop boxes per image number."""

    frames: dict[int, list[float]] = field(default_factory=dict)
    crops: dict[int, list[tuple[float, float, float, float]]] = field(default_factory=dict)


def tool_views(texts: Iterable[str]) -> ToolViews:
    """Parse tool reply texts (`select_frames` and `crop` replies; others and errors are skipped).

    Args:
        texts: the text of each tool message of an episode.

    Returns:
        A `ToolViews`.
    """
    views = ToolViews()
    for text in texts:
        if not isinstance(text, str):
            continue
        text = text[:20_000]  # replies are a few lines; a huge one is not a reply of ours
        video = _VIDEO.match(text)
        if video:
            times = views.frames.setdefault(int(video.group(1)), [])
            times.extend(float(t) for t in _FRAME.findall(text))
            continue
        crop = _CROP.match(text)
        if crop:
            x0, x1, y0, y1 = (float(v) for v in crop.groups()[1:])
            views.crops.setdefault(int(crop.group(1)), []).append((x0, y0, x1, y1))
    return views


def _frame_hit(times: list[float], window) -> bool:
    t0, t1 = float(window[0]), float(window[1])
    return any(t0 - _TIME_ROUND <= t <= t1 + _TIME_ROUND for t in times)


def _crop_hit(boxes, box, max_area: float) -> bool:
    bx0, by0, bx1, by1 = (float(v) for v in box)
    for x0, y0, x1, y1 in boxes:
        inside = x0 - _ROUND <= bx0 and y0 - _ROUND <= by0 and bx1 <= x1 + _ROUND and by1 <= y1 + _ROUND
        if inside and (x1 - x0) * (y1 - y0) <= max_area + 1e-9:
            return True
    return False


def evidence_seen(evidence: dict | None, views: ToolViews, *, n_videos: int, n_images: int) -> bool | None:
    """Whether the tool replies showed the evidence in every video / image under judgment.

    Args:
        evidence: the record's `meta["evidence"]` (`{"window": [t0, t1]}` or `{"box": [...], "max_area": a}`).
        views: what the episode's tool replies showed (`tool_views`).
        n_videos, n_images: videos / images under judgment, numbered 1.. as the tools number them.

    Returns:
        True or False; None when the record has no usable evidence (nothing to check).
    """
    if not isinstance(evidence, dict):
        return None
    window, box = evidence.get("window"), evidence.get("box")
    if _numbers(window, 2) and n_videos:
        return all(_frame_hit(views.frames.get(v, []), window) for v in range(1, n_videos + 1))
    if _numbers(box, 4) and n_images:
        max_area = evidence.get("max_area", 1.0)
        max_area = float(max_area) if isinstance(max_area, (int, float)) else 1.0
        return all(_crop_hit(views.crops.get(i, []), box, max_area) for i in range(1, n_images + 1))
    return None


def record_evidence_seen(record, texts: Iterable[str]) -> bool | None:
    """`evidence_seen` for a record (its `meta["evidence"]` and media counts) and an episode's tool reply texts."""
    meta = record.meta if isinstance(getattr(record, "meta", None), dict) else {}
    videos = sum(1 for item in record.all_media() if item.type in ("video", "frames"))
    images = sum(1 for item in record.all_media() if item.type == "image")
    return evidence_seen(meta.get("evidence"), tool_views(texts), n_videos=videos, n_images=images)


def _numbers(value, n: int) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == n
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
