"""The frame index of a video, read once by demuxing with PyAV (no decoding): the ground truth every
decoder is planned and checked against.

    index = probe_index(VideoSource("clip.mp4", Path("clip.mp4")))
    index.total_frames, index.times[:3], index.cfr        # 90, [0.0, 0.1, 0.2], False

What it gives:
- ``times``: each frame's presentation time in seconds, in display order, relative to the first frame.
  Variable-frame-rate streams (phone recordings, screen captures) get their real times here, not
  ``index / average_fps``;
- ``pts`` / ``keyframes``: raw timestamps and keyframe positions, for PyAV's keyframe-aware seeking;
- ``cfr``: whether every frame sits within half a frame interval of ``i / native_fps``; then the
  qwen-vl-utils index arithmetic is exact and is used as is;
- truncation checks: a header that promises more frames, or a declared duration (MP4 ``mdhd``, Matroska /
  WebM ``DURATION`` tag) that the packets do not cover, means a truncated file. WebM has no frame count
  in its header, so the duration check is what catches a cut WebM.

Demuxing reads the file but decodes nothing: about a millisecond per hundred packets.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from fractions import Fraction

from mmreward.data.media.sampling import DEFAULT_MAX_SOURCE_PIXELS, MediaError

log = logging.getLogger(__name__)

_DECORD_NOISE = re.compile(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ")  # "[16:02:09] src/video/x.cc:218: "
_HMS = re.compile(r"^(\d+):(\d\d):(\d\d(?:\.\d+)?)$")


def reason(e: BaseException) -> str:
    """Short, single-line reason for an error message (FFmpeg errors carry errno, decord source paths)."""
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return " ".join(_DECORD_NOISE.sub("", str(text)).split())[:160]


@dataclass
class FrameIndex:
    """What demuxing told us about the first video stream; see the module docstring.

    Attributes:
        total_frames: frames (packets) in the stream.
        native_fps: the stream's average frame rate.
        times: ``total_frames`` display times in seconds, relative to the first frame.
        pts: display-order raw timestamps (stream time base), or None when the stream has none.
        keyframes: display positions of keyframes (``[0]`` without timestamps).
        codec: decoder name ("h264", "av1", "mpeg4", ...).
        container: demuxer name ("mov,mp4,m4a,3gp,3g2,mj2", "avi", "matroska,webm", ...).
        has_b_frames: whether the stream reorders frames (decode order differs from display order).
        cfr: constant frame rate: every time within half a frame interval of ``i / native_fps``.
        width: coded frame width (before any rotation).
        height: coded frame height.
    """

    total_frames: int
    native_fps: float
    times: list[float]
    pts: list[int] | None
    keyframes: list[int]
    codec: str
    container: str
    has_b_frames: bool
    cfr: bool
    width: int = 0
    height: int = 0

    @property
    def duration(self) -> float:
        """Seconds covered by the frames: total / fps for CFR; last time + last interval otherwise."""
        if self.cfr or self.total_frames < 2:
            return self.total_frames / self.native_fps
        return self.times[-1] + (self.times[-1] - self.times[-2])


def video_stream(container, label: str):
    """First video stream; refuses frames too large to decode safely (decompression bombs)."""
    if not container.streams.video:
        raise MediaError(f"{label}: no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None:  # a codec id FFmpeg has no decoder for (or a mangled header)
        raise MediaError(f"{label}: no decoder for the video codec (unsupported or corrupt header)")
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > DEFAULT_MAX_SOURCE_PIXELS:
        raise MediaError(
            f"{label}: frames of {width}x{height} exceed {DEFAULT_MAX_SOURCE_PIXELS} pixels (decompression bomb?)"
        )
    return stream


def stream_fps(stream, label: str) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or float(rate) <= 0:
        raise MediaError(f"{label}: unknown frame rate")
    return float(rate)


def check_frame_count(label: str, counted: int, header_frames: int) -> None:
    """A container header promising more frames than the file holds means a truncated file.

    A small slack tolerates headers that count a frame or two differently (edit lists, dropped frames).
    """
    if header_frames > 0 and counted + max(2, header_frames // 50) < header_frames:
        raise MediaError(
            f"{label}: truncated or corrupt stream (header says {header_frames} frames, found {counted})"
        )


def _declared_duration(container, stream) -> float | None:
    """The video stream's duration as the container declares it, in seconds, or None when unknown.

    The container-wide duration is used only for a file with a single stream: an audio track may
    legitimately run longer than the video.
    """
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = _HMS.match((stream.metadata or {}).get("DURATION", "").strip())  # Matroska / WebM per-track tag
    if tag:
        return int(tag[1]) * 3600 + int(tag[2]) * 60 + float(tag[3])
    if len(container.streams) == 1 and container.duration:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _check_duration(label: str, covered: float, declared: float | None, fps: float) -> None:
    """Packets covering much less time than the container declares mean a truncated file."""
    if declared is None or not declared > 0:
        return
    slack = max(2.0 / fps, 0.05 * declared)
    if covered + slack < declared:
        raise MediaError(
            f"{label}: truncated or corrupt stream (container says {declared:.2f} s, "
            f"frames cover {covered:.2f} s)"
        )


def _demux(container, stream, label: str) -> tuple[list, list[bool], int | None]:
    """Timestamps (pts, or dts when pts is missing) and keyframe flags of every packet in decode order,
    and the latest packet end (pts + duration) when the container gives packet durations."""
    import av

    stamps, keys, end = [], [], None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # flush packet at EOF
                continue
            t = packet.pts if packet.pts is not None else packet.dts
            stamps.append(t)
            keys.append(packet.is_keyframe)
            if t is not None and packet.duration:
                end = t + packet.duration if end is None else max(end, t + packet.duration)
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"{label}: truncated or corrupt stream ({reason(e)})") from e
    return stamps, keys, end


def build_index(container, stream, label: str) -> FrameIndex:
    """Demux ``stream`` of an open PyAV ``container`` (from its current position) into a FrameIndex.

    Args:
        container: an open PyAV input container.
        stream: its video stream (``video_stream``).
        label: names the source in error messages.

    Returns:
        The FrameIndex.

    Raises:
        MediaError: zero frames, unknown frame rate, or a truncated stream.
    """
    fps = stream_fps(stream, label)
    stamps, keys, packets_end = _demux(container, stream, label)
    total = len(stamps)
    if total == 0:
        raise MediaError(f"{label}: zero frames in the video stream")
    check_frame_count(label, total, stream.frames)
    if any(t is None for t in stamps):
        # No timestamps: frames are counted from the start of the file and never seeked.
        pts, keyframes, times = None, [0], [i / fps for i in range(total)]
    else:
        order = sorted(range(total), key=stamps.__getitem__)  # decode order -> display order
        pts = [stamps[i] for i in order]
        keyframes = [pos for pos, i in enumerate(order) if keys[i]] or [0]
        base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 1)
        times = [float((t - pts[0]) * base) for t in pts]
    cfr = all(abs(t - i / fps) <= 0.5 / fps for i, t in enumerate(times))
    index = FrameIndex(
        total_frames=total,
        native_fps=fps,
        times=times,
        pts=pts,
        keyframes=keyframes,
        codec=getattr(stream.codec_context.codec, "canonical_name", None) or stream.codec_context.name,
        container=container.format.name,
        has_b_frames=bool(stream.codec_context.has_b_frames),
        cfr=cfr,
        width=stream.codec_context.width,
        height=stream.codec_context.height,
    )
    covered = index.duration
    if pts is not None and packets_end is not None:
        # Packet durations know how long the last frame is held (a still at the end of a slideshow).
        covered = max(covered, float((packets_end - pts[0]) * base))
    _check_duration(label, covered, _declared_duration(container, stream), fps)
    if not cfr:
        log.debug("%s: variable frame rate (%d frames over %.2f s)", label, total, index.duration)
    return index


def probe_index(src) -> FrameIndex:
    """Open ``src`` with PyAV and build its FrameIndex.

    Args:
        src: a ``backends.VideoSource`` (path or bytes, and the label for messages).

    Returns:
        The FrameIndex.

    Raises:
        MediaError: not a readable video, no video stream, too large frames, truncated stream.
    """
    with src.open_av() as container:
        return build_index(container, video_stream(container, src.label), src.label)
