"""The video sampling contract and its pure maths (no IO): which frames, how many, at what size.

Semantics follow ``qwen_vl_utils.vision_process`` (0.0.14) exactly, so a model trained through mmreward
sees the same frames and pixel sizes as one fed by qwen-vl-utils:

- ``smart_nframes``: frame count from fps (clamped to [min_frames, max_frames] and to the frames available)
  or an explicit count, always a multiple of 2 (Qwen merges frame pairs);
- ``frame_range``: a [start, end] window in seconds -> inclusive source frame range;
- ``sample_indices``: ``torch.linspace(start_frame, end_frame, nframes).round()``;
- ``video_frame_size``: the per-frame pixel budget (``total_pixels`` shared by all frames) -> ``smart_resize``.

``plan_frames`` applies them to a stream's real frame times. ``VideoSampling.timing`` chooses the rule:

- ``"pts"`` (default): windows, fps-based counts and sample positions use each frame's presentation
  time. On a constant-frame-rate stream this *is* the qwen-vl-utils rule (same frames, bit for bit); on a
  variable-frame-rate stream it returns the frames actually shown at evenly spaced times, where the
  index rule can be off by more than a second. Default because a reward model judges what a viewer sees.
- ``"index"``: qwen-vl-utils' rule everywhere (times = index / average fps), for exact parity with a
  model trained on qwen-vl-utils' frames of VFR videos.

``MediaError`` lives here so that every media module (decoders, cache, public API) can raise it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import Any

import torch

from mmreward.errors import DataError

log = logging.getLogger(__name__)

# Constants of qwen-vl-utils (vision_process.py); the video pixel defaults scale with factor**2 there.
MAX_RATIO = 200
FRAME_FACTOR = 2
IMAGE_MIN_TOKENS, IMAGE_MAX_TOKENS = 4, 16384
VIDEO_MIN_TOKENS, VIDEO_MAX_TOKENS = 128, 768
MODEL_SEQ_LEN = 128000
VIDEO_TOTAL_PIXELS = int(MODEL_SEQ_LEN * 28 * 28 * 0.9)  # 90_316_800 for factor 28
BACKENDS = ("decord", "pyav")
TIMINGS = ("pts", "index")
# Largest source image/frame we agree to decode: PIL's own warning threshold (~9459 x 9459, ~268 MB RGB).
DEFAULT_MAX_SOURCE_PIXELS = 89_478_485


class MediaError(DataError, RuntimeError):
    """An image or video could not be loaded as requested; the message names the source and the reason."""


def _round_by(x: float, factor: int) -> int:
    return round(x / factor) * factor


def _ceil_by(x: float, factor: int) -> int:
    return math.ceil(x / factor) * factor


def _floor_by(x: float, factor: int) -> int:
    return math.floor(x / factor) * factor


def smart_resize(
    height: int, width: int, *, factor: int = 28, min_pixels: int | None = None, max_pixels: int | None = None
) -> tuple[int, int]:
    """Target size with both sides multiples of ``factor`` and area in [min_pixels, max_pixels].

    Same results as ``qwen_vl_utils.vision_process.smart_resize``: round each side to the factor, then if
    the area is out of range rescale both sides by the same ratio (floor when shrinking, ceil when growing),
    so the aspect ratio is kept as closely as the factor allows.

    Args:
        height: source height in pixels.
        width: source width in pixels.
        factor: patch size x spatial merge (28 for Qwen2/2.5-VL, 32 for Qwen3-VL).
        min_pixels: minimum area (default 4 tokens = 4 * factor**2).
        max_pixels: maximum area (default 16384 tokens).

    Returns:
        (h, w): the target height and width.

    Raises:
        ValueError: aspect ratio above 200, or min_pixels > max_pixels.
    """
    max_pixels = IMAGE_MAX_TOKENS * factor**2 if max_pixels is None else max_pixels
    min_pixels = IMAGE_MIN_TOKENS * factor**2 if min_pixels is None else min_pixels
    if max_pixels < min_pixels:
        raise ValueError(f"max_pixels ({max_pixels}) must be >= min_pixels ({min_pixels})")
    if min(height, width) <= 0 or max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(f"aspect ratio of {height}x{width} is outside 1:{MAX_RATIO}")
    h_bar = max(factor, _round_by(height, factor))
    w_bar = max(factor, _round_by(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = _floor_by(height / beta, factor)
        w_bar = _floor_by(width / beta, factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = _ceil_by(height * beta, factor)
        w_bar = _ceil_by(width * beta, factor)
    return h_bar, w_bar


@dataclass(frozen=True)
class VideoSampling:
    """How a video becomes model frames: the "video sampling contract" saved in checkpoint configs.

    Exactly one of ``fps`` / ``nframes``; ``fps`` defaults to 2.0 when ``nframes`` is not given.
    Pixel defaults are qwen-vl-utils' for factor 28; use :meth:`qwen_defaults` for another factor.
    """

    # Frames per second to sample (qwen-vl-utils FPS); the count is clamped to [min_frames, max_frames].
    fps: float | None = None
    # Exact number of frames (rounded to a multiple of 2); overrides fps-based sampling.
    nframes: int | None = None
    # Bounds on the fps-derived frame count (not applied to ``nframes``).
    min_frames: int = 4
    max_frames: int = 768
    # Per-frame pixel area bounds (128 and 768 tokens of 28x28).
    min_pixels: int = VIDEO_MIN_TOKENS * 28 * 28
    max_pixels: int = VIDEO_MAX_TOKENS * 28 * 28
    # Pixel budget shared by all frames of one video (qwen-vl-utils: 0.9 x 128k tokens).
    total_pixels: int = VIDEO_TOTAL_PIXELS
    # Sides are multiples of this: patch size x spatial merge (28 Qwen2/2.5-VL, 32 Qwen3-VL).
    factor: int = 28
    # "decord", "pyav", or None = decord with automatic fallback to PyAV.
    backend: str | None = None
    # "pts": real presentation times (default); "index": qwen-vl-utils' index / average-fps rule.
    timing: str = "pts"

    def __post_init__(self) -> None:
        if self.fps is None and self.nframes is None:
            object.__setattr__(self, "fps", 2.0)  # frozen: the documented default
        if self.fps is not None and self.nframes is not None:
            raise ValueError(f"give either fps ({self.fps}) or nframes ({self.nframes}), not both")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.nframes is not None and self.nframes < FRAME_FACTOR:
            raise ValueError(f"nframes must be >= {FRAME_FACTOR}, got {self.nframes}")
        if not 1 <= self.min_frames <= self.max_frames:
            raise ValueError(f"need 1 <= min_frames <= max_frames, got {self.min_frames}, {self.max_frames}")
        if not 0 < self.min_pixels <= self.max_pixels or self.total_pixels <= 0 or self.factor <= 0:
            raise ValueError(f"invalid pixel budget in {self}")
        if self.backend not in (None, *BACKENDS):
            raise ValueError(f"backend must be one of {BACKENDS} or None, got {self.backend!r}")
        if self.timing not in TIMINGS:
            raise ValueError(f"timing must be one of {TIMINGS}, got {self.timing!r}")

    @classmethod
    def qwen_defaults(cls, factor: int = 28, **overrides: Any) -> VideoSampling:
        """qwen-vl-utils' defaults for a given factor (e.g. 32 for Qwen3-VL: patch 16 x merge 2)."""
        pixels = dict(
            min_pixels=VIDEO_MIN_TOKENS * factor**2,
            max_pixels=VIDEO_MAX_TOKENS * factor**2,
            total_pixels=int(MODEL_SEQ_LEN * factor**2 * 0.9),
            factor=factor,
        )
        return cls(**{**pixels, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable) for checkpoint configs."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoSampling:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a typo must not fall back to a default)."""
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown VideoSampling keys: {sorted(unknown)}")
        return cls(**d)


def smart_nframes(s: VideoSampling, total_frames: int, native_fps: float) -> int:
    """Number of frames to sample (qwen-vl-utils ``smart_nframes``).

    Args:
        s: the sampling request.
        total_frames: frames available (in the window, if one was given).
        native_fps: the source frame rate.

    Returns:
        A multiple of 2 in [2, total_frames].

    Raises:
        ValueError: fewer frames available than requested (or than 2).
    """
    return _nframes(s, total_frames, total_frames / native_fps)


def _nframes(s: VideoSampling, total_frames: int, seconds: float) -> int:
    """``smart_nframes`` for ``total_frames`` frames spanning ``seconds`` (the same float operations)."""
    if s.nframes is not None:
        n = _round_by(s.nframes, FRAME_FACTOR)
    else:
        min_frames = _ceil_by(s.min_frames, FRAME_FACTOR)
        max_frames = _floor_by(s.max_frames, FRAME_FACTOR)
        n = seconds * s.fps
        n = _floor_by(min(max(n, min_frames), max_frames, total_frames), FRAME_FACTOR)
    if not FRAME_FACTOR <= n <= total_frames:
        raise ValueError(
            f"too few frames: the request needs {max(n, FRAME_FACTOR)}, only {total_frames} available"
        )
    return n


def frame_range(
    start: float | None, end: float | None, total_frames: int, native_fps: float
) -> tuple[int, int, int]:
    """Inclusive source frame range of a [start, end] window in seconds (qwen-vl-utils semantics).

    The window is clamped to the video; start rounds up and end rounds down to whole frames.

    Args:
        start: window start in seconds, None = beginning.
        end: window end in seconds, None = end of video.
        total_frames: frames in the source.
        native_fps: source frame rate.

    Returns:
        (start_frame, end_frame, count) with count = end_frame - start_frame + 1.

    Raises:
        ValueError: the window lies outside the video, or holds fewer than 2 frames.
    """
    duration = total_frames / native_fps
    if start is None and end is None:
        return 0, total_frames - 1, total_frames
    if start is not None and end is not None and start >= end:
        raise ValueError(f"window [{start}, {end}] s is empty (start >= end)")
    if (start is not None and start >= duration) or (end is not None and end <= 0):
        raise ValueError(
            f"window [{_fmt(start, 0.0)}, {_fmt(end, duration)}] s is outside the video "
            f"(duration {duration:.2f} s)"
        )
    start_frame = 0 if start is None else math.ceil(max(0.0, min(start, duration)) * native_fps)
    end_frame = total_frames - 1
    if end is not None:
        end_frame = min(math.floor(max(0.0, min(end, duration)) * native_fps), total_frames - 1)
    if start_frame >= end_frame:
        raise ValueError(
            f"window [{_fmt(start, 0.0)}, {_fmt(end, duration)}] s holds fewer than 2 frames "
            f"(frames {start_frame}..{end_frame} at {native_fps:g} fps)"
        )
    return start_frame, end_frame, end_frame - start_frame + 1


def _fmt(t: float | None, default: float) -> str:
    return f"{default if t is None else t:.1f}"


def sample_indices(start_frame: int, end_frame: int, nframes: int) -> list[int]:
    """Evenly spaced source frame indices, exactly as qwen-vl-utils picks them.

    Returns:
        ``nframes`` indices in [start_frame, end_frame] (non-decreasing).
    """
    return torch.linspace(start_frame, end_frame, nframes).round().long().tolist()


def video_frame_size(s: VideoSampling, nframes: int, height: int, width: int) -> tuple[int, int]:
    """Per-frame target size under the video pixel budget (qwen-vl-utils ``fetch_video``).

    Each frame may use at most ``total_pixels / nframes * 2`` pixels (frame pairs become one temporal
    patch), capped at 768 tokens and floored at 1.05 x ``min_pixels``; ``s.max_pixels`` caps it further.

    Args:
        s: the sampling request.
        nframes: number of sampled frames.
        height: decoded frame height.
        width: decoded frame width.

    Returns:
        (h, w): multiples of ``s.factor``.
    """
    cap = max(
        min(VIDEO_MAX_TOKENS * s.factor**2, s.total_pixels / nframes * FRAME_FACTOR), int(s.min_pixels * 1.05)
    )
    if s.max_pixels > cap:
        log.debug("max_pixels %d exceeds the per-frame budget %d; using the budget", s.max_pixels, cap)
    return smart_resize(
        height, width, factor=s.factor, min_pixels=s.min_pixels, max_pixels=min(s.max_pixels, cap)
    )


@dataclass(frozen=True)
class FramePlan:
    """Which source frames to decode, and what they stand for.

    Attributes:
        indices: source frame positions (display order), non-decreasing.
        timestamps: seconds of each sampled frame from the first frame of the video.
        fps: effective sampling rate (qwen-vl-utils ``sample_fps``: frames / seconds of the window).
        duration: seconds covered by the whole source.
    """

    indices: list[int]
    timestamps: list[float]
    fps: float
    duration: float


def plan_frames(
    s: VideoSampling, start: float | None, end: float | None, times: list[float], native_fps: float, cfr: bool
) -> FramePlan:
    """The frames a request samples from a stream whose frames show at ``times``.

    Index rule (``s.timing == "index"``, or any constant-frame-rate stream, where both rules agree):
    qwen-vl-utils' ``frame_range`` + ``smart_nframes`` + ``sample_indices``. Time rule (VFR streams
    with ``timing="pts"``): the window keeps the frames whose time lies in [start, end]; the fps-based
    count uses the seconds those frames cover; sample times are evenly spaced from the first to the
    last frame of the window, each mapped to the frame nearest in time.

    Args:
        s: the sampling request.
        start: window start in seconds (None = beginning).
        end: window end in seconds (None = end of video).
        times: display time of every source frame, seconds from the first frame (sorted).
        native_fps: the stream's average frame rate.
        cfr: whether the stream has a constant frame rate (times are i / native_fps).

    Returns:
        The FramePlan.

    Raises:
        ValueError: window empty or outside the video, fewer than 2 frames, too few frames for the count.
    """
    total = len(times)
    if s.timing == "index" or cfr:
        start_frame, end_frame, count = frame_range(start, end, total, native_fps)
        n = smart_nframes(s, count, native_fps)
        indices = sample_indices(start_frame, end_frame, n)
        stamps = [i / native_fps for i in indices] if s.timing == "index" else [times[i] for i in indices]
        return FramePlan(indices, stamps, n / max(count, 1e-6) * native_fps, total / native_fps)
    duration = times[-1] + (times[-1] - times[-2]) if total > 1 else 1 / native_fps
    first, last = _window(start, end, times, duration)
    after = times[last + 1] if last + 1 < total else duration  # the last frame shows until the next one
    seconds = after - times[first]
    n = _nframes(s, last - first + 1, seconds)
    targets = torch.linspace(times[first], times[last], n, dtype=torch.float64).tolist()
    indices = [nearest(times, t, first, last) for t in targets]
    return FramePlan(indices, [times[i] for i in indices], n / seconds, duration)


def _window(start: float | None, end: float | None, times: list[float], duration: float) -> tuple[int, int]:
    """First and last position of the frames shown in [start, end] seconds (errors as ``frame_range``)."""
    import bisect

    if start is not None and end is not None and start >= end:
        raise ValueError(f"window [{start}, {end}] s is empty (start >= end)")
    if (start is not None and start >= duration) or (end is not None and end <= 0):
        raise ValueError(
            f"window [{_fmt(start, 0.0)}, {_fmt(end, duration)}] s is outside the video "
            f"(duration {duration:.2f} s)"
        )
    eps = 1e-6  # a frame stamped 2.9999999 s belongs to a window ending at 3 s
    first = 0 if start is None else bisect.bisect_left(times, start - eps)
    last = len(times) - 1 if end is None else bisect.bisect_right(times, end + eps) - 1
    if first >= last:
        raise ValueError(
            f"window [{_fmt(start, 0.0)}, {_fmt(end, duration)}] s holds fewer than 2 frames "
            f"(frames {first}..{last} of a variable-frame-rate stream)"
        )
    return first, last


def nearest(times: list[float], t: float, lo: int, hi: int) -> int:
    """Position in ``times[lo:hi + 1]`` whose time is nearest to ``t`` (the earlier one on a tie).

    Args:
        times: sorted frame times in seconds.
        t: the wanted time.
        lo: first candidate position.
        hi: last candidate position (inclusive).

    Returns:
        A position in [lo, hi].
    """
    import bisect

    k = min(max(bisect.bisect_left(times, t, lo, hi + 1), lo), hi)
    if k > lo and abs(times[k - 1] - t) <= abs(times[k] - t):
        return k - 1
    return k
