"""Video decoders behind ``media.load_video``: decord and PyAV, each decoding only the requested frames.

A reader is opened per video; it reports ``total_frames`` / ``native_fps`` and ``read(indices)`` returns
exactly those frames as (T, H, W, 3) uint8, or raises ``MediaError`` - never a duplicated or black frame.

- ``DecordReader``: ``decord.VideoReader(path, num_threads=n).get_batch(indices)``. In-memory bytes go
  through a temporary file, because decord's own in-memory reader segfaults on some truncated inputs.
  Before decord sees a file, a cheap PyAV header probe rejects non-videos, and decord's frame count is
  checked against the container header to catch truncated files (decord silently shortens those).
- ``PyAVReader``: demuxes all packets once (no decoding; cheap) to get the exact frame count and each
  frame's pts and keyframe flag, even when the header has no frame count. ``read`` then decodes forward,
  seeking to the keyframe before the next wanted frame whenever that keyframe lies ahead of the decoder
  (so sparse sampling of a long video never decodes everything), and stops after the last wanted frame.

decord and av are imported inside the functions that use them: importing this module stays light.
"""

from __future__ import annotations

import bisect
import io
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmreward.data.media_sampling import DEFAULT_MAX_SOURCE_PIXELS, MediaError

log = logging.getLogger(__name__)


def default_num_threads() -> int:
    """Decoder threads per video: a few, since DataLoader workers already parallelise across videos."""
    return min(4, os.cpu_count() or 1)


def _check_indices(label: str, indices: list[int], total: int) -> None:
    """Both readers refuse an empty request or an index past the end, with the same message."""
    if not indices:
        raise MediaError(f"{label}: no frames requested")
    if max(indices) >= total:
        raise MediaError(f"{label}: frame {max(indices)} requested, video has {total}")


@dataclass
class VideoSource:
    """Where the encoded video is: a file path or in-memory bytes; ``label`` names it in error messages."""

    label: str
    path: Path | None = None
    data: bytes | None = None

    def open_av(self):
        """Open with PyAV; raises MediaError for anything that is not a readable container."""
        import av

        try:
            return av.open(str(self.path) if self.path is not None else io.BytesIO(self.data), mode="r")
        except (av.FFmpegError, OSError, ValueError) as e:
            raise MediaError(f"{self.label}: not a readable video ({_reason(e)})") from e


_DECORD_NOISE = re.compile(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ")  # "[16:02:09] src/video/x.cc:218: "


def _reason(e: BaseException) -> str:
    """Short, single-line reason for an error message (FFmpeg errors carry errno, decord source paths)."""
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return " ".join(_DECORD_NOISE.sub("", str(text)).split())[:160]


def _video_stream(container, label: str):
    """First video stream; refuses frames too large to decode safely (decompression bombs)."""
    if not container.streams.video:
        raise MediaError(f"{label}: no video stream")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > DEFAULT_MAX_SOURCE_PIXELS:
        raise MediaError(
            f"{label}: frames of {width}x{height} exceed {DEFAULT_MAX_SOURCE_PIXELS} pixels (decompression bomb?)"
        )
    return stream


def _stream_fps(stream, label: str) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or float(rate) <= 0:
        raise MediaError(f"{label}: unknown frame rate")
    return float(rate)


def _check_not_truncated(label: str, counted: int, header_frames: int) -> None:
    """A container header promising more frames than the file holds means a truncated file.

    A small slack tolerates headers that count a frame or two differently (edit lists, dropped frames).
    """
    if header_frames > 0 and counted + max(2, header_frames // 50) < header_frames:
        raise MediaError(
            f"{label}: truncated or corrupt stream (header says {header_frames} frames, found {counted})"
        )


def _check_frames(label: str, frames: np.ndarray, n: int, backend: str) -> np.ndarray:
    if frames.ndim != 4 or frames.shape[0] != n or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise MediaError(
            f"{label}: {backend} returned frames of shape {frames.shape}, expected ({n}, H, W, 3)"
        )
    return frames


class DecordReader:
    """decord-backed reader; see module docstring for the safety checks around it."""

    name = "decord"

    def __init__(self, src: VideoSource, num_threads: int | None = None):
        try:
            import decord
        except ImportError as e:
            raise MediaError(f"{src.label}: decord is not installed") from e
        self.label, self._vr, self._tmp = src.label, None, None
        header_frames = self._probe_header(src)
        try:
            path = src.path if src.path is not None else self._spill(src.data)
            try:
                self._vr = decord.VideoReader(str(path), num_threads=num_threads or default_num_threads())
                self.total_frames = len(self._vr)
                self.native_fps = float(self._vr.get_avg_fps())
            except Exception as e:  # decord raises RuntimeError / DECORDError / AssertionError
                raise MediaError(
                    f"{self.label}: decord cannot read it (truncated or corrupt? {_reason(e)})"
                ) from e
            _check_not_truncated(self.label, self.total_frames, header_frames)
            if self.total_frames <= 0 or not self.native_fps > 0:
                raise MediaError(f"{self.label}: zero frames or unknown frame rate")
        except BaseException:
            self.close()
            raise

    def _spill(self, data: bytes) -> Path:
        """In-memory video -> temporary file (in RAM when /dev/shm exists). decord's own bytes reader
        (custom AVIO) segfaulted on a truncated AVI, where reading the same file from disk did not."""
        self._tmp = tempfile.NamedTemporaryFile(
            suffix=".video", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
        )
        self._tmp.write(data)
        self._tmp.flush()
        return Path(self._tmp.name)

    def _probe_header(self, src: VideoSource) -> int:
        """Header-only PyAV probe: rejects non-videos before decord sees them; returns header frames."""
        with src.open_av() as container:
            return _video_stream(container, self.label).frames

    def read(self, indices: list[int]) -> np.ndarray:
        """Decode the given source frames.

        Args:
            indices: source frame indices (any order, repeats allowed), all < total_frames.

        Returns:
            frames: (len(indices), H, W, 3) uint8.
        """
        _check_indices(self.label, indices, self.total_frames)
        try:
            frames = self._vr.get_batch(list(indices)).asnumpy()
        except Exception as e:
            raise MediaError(
                f"{self.label}: cannot decode frames with decord (corrupt stream: {_reason(e)})"
            ) from e
        return _check_frames(self.label, frames, len(indices), self.name)

    def close(self) -> None:
        self._vr = None
        if self._tmp is not None:
            self._tmp.close()
            self._tmp = None


class PyAVReader:
    """PyAV-backed reader with a packet index for exact frame indices and keyframe-aware seeking."""

    name = "pyav"

    def __init__(self, src: VideoSource, num_threads: int | None = None):
        self.label, self._src = src.label, src
        self.frames_decoded = 0  # decoder output frames, wanted or not: shows what seeking saves
        self._num_threads = num_threads or default_num_threads()
        self._container = None
        try:
            self._open()
            self.native_fps = _stream_fps(self._stream, self.label)
            self._index_packets()
            self._rewind()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        self.close()
        self._container = self._src.open_av()
        self._stream = _video_stream(self._container, self.label)
        ctx = self._stream.codec_context
        ctx.thread_type = "AUTO"  # frame + slice threads; must be set before the first decode
        ctx.thread_count = self._num_threads

    def _index_packets(self) -> None:
        """Demux (without decoding) to count frames and map pts -> frame index; works when
        ``stream.frames == 0`` (mkv, webm, some avi) and catches truncated files."""
        import av

        stamps, keys = [], []
        try:
            for packet in self._container.demux(self._stream):
                if packet.size == 0:  # flush packet at EOF
                    continue
                stamps.append(packet.pts if packet.pts is not None else packet.dts)
                keys.append(packet.is_keyframe)
        except (av.FFmpegError, OSError) as e:
            raise MediaError(f"{self.label}: truncated or corrupt stream ({_reason(e)})") from e
        self.total_frames = len(stamps)
        if self.total_frames == 0:
            raise MediaError(f"{self.label}: zero frames in the video stream")
        _check_not_truncated(self.label, self.total_frames, self._stream.frames)
        if any(t is None for t in stamps):
            # No timestamps: frames are counted from the start of the file and we never seek.
            self._pts, self._pts_index, self._keyframes = None, None, [0]
        else:
            order = sorted(range(len(stamps)), key=stamps.__getitem__)  # decode order -> display order
            self._pts = [stamps[i] for i in order]
            self._pts_index = {t: i for i, t in enumerate(self._pts)}
            self._keyframes = [pos for pos, i in enumerate(order) if keys[i]] or [0]
        self._seekable = self._pts is not None

    def _rewind(self) -> None:
        """Back to the first frame: a timestamp seek, or reopening when the stream has no timestamps."""
        if self._pts is None:
            self._open()
        else:
            self._container.seek(self._pts[0], stream=self._stream, backward=True, any_frame=False)

    def _frame_index(self, frame, previous: int) -> int:
        if self._pts_index is None or frame.pts is None:
            return previous + 1
        idx = self._pts_index.get(frame.pts)
        if idx is None:  # decoder-adjusted pts: nearest packet
            idx = min(bisect.bisect_left(self._pts, frame.pts), self.total_frames - 1)
        return idx

    def _keyframe_before(self, target: int) -> int:
        return self._keyframes[max(0, bisect.bisect_right(self._keyframes, target) - 1)]

    def read(self, indices: list[int]) -> np.ndarray:
        """Decode the given source frames, seeking over the gaps between them.

        Args:
            indices: source frame indices (any order, repeats allowed), all < total_frames.

        Returns:
            frames: (len(indices), H, W, 3) uint8.
        """
        _check_indices(self.label, indices, self.total_frames)
        wanted = sorted(set(indices))
        got: dict[int, np.ndarray] = {}
        try:
            self._decode_into(wanted, got)
        except MediaError:
            raise
        except Exception as e:
            missing = next((i for i in wanted if i not in got), wanted[-1])
            raise MediaError(f"{self.label}: cannot decode frame {missing} ({_reason(e)})") from e
        return _check_frames(self.label, np.stack([got[i] for i in indices]), len(indices), self.name)

    def _decode_into(self, wanted: list[int], got: dict[int, np.ndarray]) -> None:
        """Runs of forward decoding; each run starts at the keyframe before its first target."""
        k, at_start = 0, True
        while k < len(wanted):
            keyframe = self._keyframe_before(wanted[k]) if self._seekable else 0
            if keyframe > 0:
                self._container.seek(self._pts[keyframe], stream=self._stream, backward=True, any_frame=False)
            elif not at_start:
                self._rewind()
            at_start = False
            k, landed_late = self._decode_run(wanted, k, got)
            if landed_late:
                if not self._seekable:
                    raise MediaError(f"{self.label}: cannot decode frame {wanted[k]} (missing from stream)")
                # The container seeked past the keyframe (bad index): decode from the start instead.
                log.debug("%s: seek to frame %d overshot; decoding sequentially", self.label, keyframe)
                self._seekable = False

    def _decode_run(self, wanted: list[int], k: int, got: dict[int, np.ndarray]) -> tuple[int, bool]:
        """Decode forward from the current position; returns (next k, landed after the target)."""
        idx, first, target = -1, True, wanted[k]
        for frame in self._container.decode(self._stream):
            self.frames_decoded += 1
            idx = self._frame_index(frame, idx)
            if first and idx > target:
                return k, True
            first = False
            if idx < target:
                continue
            if idx > target:
                raise MediaError(f"{self.label}: cannot decode frame {target} (missing from stream)")
            if frame.is_corrupt:
                raise MediaError(f"{self.label}: cannot decode frame {target} (corrupt stream)")
            got[target] = frame.to_ndarray(format="rgb24")
            k += 1
            if k == len(wanted):
                return k, False
            target = wanted[k]
            # Seek when a keyframe lies between here and the next target: decoding up to it is waste.
            if self._seekable and self._keyframe_before(target) > idx + 1:
                return k, False
        raise MediaError(f"{self.label}: cannot decode frame {target} (stream ended early)")

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


READERS = {"decord": DecordReader, "pyav": PyAVReader}
