"""Video decoders behind ``media.load_video``: decord and PyAV, each decoding only the requested frames.

A reader is opened per video on a ``FrameIndex`` (``index``: PyAV demuxes the file once, without
decoding, for the frame count, presentation times and keyframes). ``read(indices)`` returns exactly those
frames, upright (rotation metadata applied), as (T, H, W, 3) uint8, or raises ``MediaError`` - never a
duplicated, sideways or black frame. ``read(indices, convert)`` applies ``convert`` to each frame as soon
as it is decoded, so at most a few full-size frames are alive at once (bounded memory on 4K input).

- ``DecordReader``: ``decord.VideoReader(path, num_threads=n).get_batch(chunk)``. In-memory bytes go
  through a temporary file, because decord's own in-memory reader segfaults on some truncated inputs.
  decord seeks by its own timestamp table; that table is checked against the index before any frame is
  read, and a disagreement (e.g. MPEG-4 Part 2 AVI with B-frames, where decord's ``get_batch`` returned
  frame 3 for index 13) is an error, so the default path falls back to PyAV instead of returning wrong
  frames. A codec decord's FFmpeg lacks (AV1) is reported as unsupported, not as corrupt.
- ``PyAVReader``: decodes forward, seeking to the keyframe before the next wanted frame whenever that
  keyframe lies ahead of the decoder (so sparse sampling of a long video never decodes everything), maps
  each decoded frame to its position by its pts, and stops after the last wanted frame.

decord and av are imported inside the functions that use them: importing this module stays light.
"""

from __future__ import annotations

import bisect
import io
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmreward.data.media.index import FrameIndex, build_index, probe_index, reason, video_stream
from mmreward.data.media.sampling import MediaError

log = logging.getLogger(__name__)

# decord decodes this many bytes of full-size frames per get_batch call (at least one frame).
_DECORD_CHUNK_BYTES = 64 << 20
Convert = Callable[[np.ndarray], object]


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
            raise MediaError(f"{self.label}: not a readable video ({reason(e)})") from e


def _check_frames(label: str, frames: np.ndarray, n: int, backend: str) -> np.ndarray:
    if frames.ndim != 4 or frames.shape[0] != n or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise MediaError(
            f"{label}: {backend} returned frames of shape {frames.shape}, expected ({n}, H, W, 3)"
        )
    return frames


def _assemble(label: str, indices: list[int], got: dict, convert: Convert | None, backend: str):
    """Frames in request order: an (n, H, W, 3) array, or ``convert``'s tensors stacked."""
    if convert is None:
        return _check_frames(label, np.stack([got[i] for i in indices]), len(indices), backend)
    import torch

    return torch.stack([got[i] for i in indices])


class DecordReader:
    """decord-backed reader; see module docstring for the safety checks around it."""

    name = "decord"

    def __init__(self, src: VideoSource, num_threads: int | None = None, index: FrameIndex | None = None):
        try:
            import decord
        except ImportError as e:
            raise MediaError(f"{src.label}: decord is not installed") from e
        self.label, self._vr, self._tmp = src.label, None, None
        self.index = index if index is not None else probe_index(src)
        self.total_frames, self.native_fps = self.index.total_frames, self.index.native_fps
        try:
            self._refuse_unreliable()
            path = src.path if src.path is not None else self._spill(src.data)
            try:
                self._vr = decord.VideoReader(str(path), num_threads=num_threads or default_num_threads())
            except Exception as e:  # decord raises RuntimeError / DECORDError / AssertionError
                if "cannot find video stream" in str(e):  # its FFmpeg has no decoder for this codec
                    raise MediaError(
                        f"{self.label}: decord cannot decode {self.index.codec} video "
                        "(codec unsupported by this backend)"
                    ) from e
                raise MediaError(
                    f"{self.label}: decord cannot read it (truncated or corrupt? {reason(e)})"
                ) from e
            self._verify_seek_table()
        except BaseException:
            self.close()
            raise

    def _refuse_unreliable(self) -> None:
        """Inputs where decord's random access is known to return wrong frames."""
        if self.index.pts is None:
            raise MediaError(f"{self.label}: no timestamps in the stream; decord's seeking cannot be verified")
        if self.index.container == "avi" and self.index.has_b_frames:
            # Packed B-frames in AVI: decord's get_batch returned frame 3 for index 13.
            raise MediaError(f"{self.label}: decord's seeking is unreliable on AVI with B-frames")

    def _verify_seek_table(self) -> None:
        """decord seeks by its own frame table: it must match the demuxed index frame for frame."""
        n = len(self._vr)
        if n != self.total_frames:
            raise MediaError(
                f"{self.label}: decord counts {n} frames, the container holds {self.total_frames} "
                "(truncated or corrupt?)"
            )
        stamps = self._vr.get_frame_timestamp(list(range(n)))[:, 0]
        stamps = stamps - stamps[0]
        off = ~(np.abs(stamps - np.asarray(self.index.times)) <= 0.5 / self.native_fps)  # NaN counts as off
        if off.any():
            k = int(np.argmax(off))
            raise MediaError(
                f"{self.label}: decord's frame table disagrees with the container "
                f"(frame {k} at {stamps[k]:.3f} s, expected {self.index.times[k]:.3f} s); its random "
                "access would return wrong frames"
            )

    def _spill(self, data: bytes) -> Path:
        """In-memory video -> temporary file (in RAM when /dev/shm exists). decord's own bytes reader
        (custom AVIO) segfaulted on a truncated AVI, where reading the same file from disk did not."""
        self._tmp = tempfile.NamedTemporaryFile(
            suffix=".video", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
        )
        self._tmp.write(data)
        self._tmp.flush()
        return Path(self._tmp.name)

    def read(self, indices: list[int], convert: Convert | None = None):
        """Decode the given source frames, a few at a time.

        Args:
            indices: source frame indices (any order, repeats allowed), all < total_frames.
            convert: applied to each decoded (H, W, 3) uint8 frame right away (e.g. resize); must
                return a torch tensor. None: return the frames themselves.

        Returns:
            (len(indices), H, W, 3) uint8 array, or the stacked outputs of ``convert``.
        """
        _check_indices(self.label, indices, self.total_frames)
        wanted = sorted(set(indices))
        got: dict[int, object] = {}
        frame_bytes = max(1, self.index.width * self.index.height * 3)
        chunk = max(1, _DECORD_CHUNK_BYTES // frame_bytes) if convert else len(wanted)
        try:
            for k in range(0, len(wanted), chunk):
                part = wanted[k : k + chunk]
                frames = _check_frames(self.label, self._vr.get_batch(part).asnumpy(), len(part), self.name)
                for i, frame in zip(part, frames):
                    got[i] = frame if convert is None else convert(frame)
                del frames
        except MediaError:
            raise
        except Exception as e:
            raise MediaError(
                f"{self.label}: cannot decode frames with decord (corrupt stream: {reason(e)})"
            ) from e
        return _assemble(self.label, indices, got, convert, self.name)

    def close(self) -> None:
        self._vr = None
        if self._tmp is not None:
            self._tmp.close()
            self._tmp = None


class PyAVReader:
    """PyAV-backed reader with a packet index for exact frame indices and keyframe-aware seeking."""

    name = "pyav"

    def __init__(self, src: VideoSource, num_threads: int | None = None, index: FrameIndex | None = None):
        self.label, self._src = src.label, src
        self.frames_decoded = 0  # decoder output frames, wanted or not: shows what seeking saves
        self._num_threads = num_threads or default_num_threads()
        self._container = None
        try:
            self._open()
            if index is None:
                index = build_index(self._container, self._stream, self.label)
                self._open()  # back to the start: demuxing consumed the packets
            self.index = index
        except BaseException:
            self.close()
            raise
        self.total_frames, self.native_fps = index.total_frames, index.native_fps
        self._pts = index.pts
        self._pts_index = None if index.pts is None else {t: i for i, t in enumerate(index.pts)}
        self._keyframes = index.keyframes
        self._seekable = index.pts is not None

    def _open(self) -> None:
        self.close()
        self._container = self._src.open_av()
        self._stream = video_stream(self._container, self.label)
        ctx = self._stream.codec_context
        ctx.thread_type = "AUTO"  # frame + slice threads; must be set before the first decode
        ctx.thread_count = self._num_threads

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

    def read(self, indices: list[int], convert: Convert | None = None):
        """Decode the given source frames, seeking over the gaps between them.

        Args:
            indices: source frame indices (any order, repeats allowed), all < total_frames.
            convert: applied to each decoded (H, W, 3) uint8 frame right away (e.g. resize); must
                return a torch tensor. None: return the frames themselves.

        Returns:
            (len(indices), H, W, 3) uint8 array (upright), or the stacked outputs of ``convert``.
        """
        _check_indices(self.label, indices, self.total_frames)
        wanted = sorted(set(indices))
        got: dict[int, object] = {}
        try:
            self._decode_into(wanted, got, convert)
        except MediaError:
            raise
        except Exception as e:
            missing = next((i for i in wanted if i not in got), wanted[-1])
            raise MediaError(f"{self.label}: cannot decode frame {missing} ({reason(e)})") from e
        return _assemble(self.label, indices, got, convert, self.name)

    def _decode_into(self, wanted: list[int], got: dict, convert: Convert | None) -> None:
        """Runs of forward decoding; each run starts at the keyframe before its first target."""
        k, at_start = 0, True
        while k < len(wanted):
            keyframe = self._keyframe_before(wanted[k]) if self._seekable else 0
            if keyframe > 0:
                self._container.seek(self._pts[keyframe], stream=self._stream, backward=True, any_frame=False)
            elif not at_start:
                self._rewind()
            at_start = False
            k, landed_late = self._decode_run(wanted, k, got, convert)
            if landed_late:
                if not self._seekable:
                    raise MediaError(f"{self.label}: cannot decode frame {wanted[k]} (missing from stream)")
                # The container seeked past the keyframe (bad index): decode from the start instead.
                log.debug("%s: seek to frame %d overshot; decoding sequentially", self.label, keyframe)
                self._seekable = False

    def _decode_run(self, wanted: list[int], k: int, got: dict, convert: Convert | None) -> tuple[int, bool]:
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
            array = upright(frame)
            got[target] = array if convert is None else convert(array)
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


def upright(frame) -> np.ndarray:
    """A decoded PyAV frame as (H, W, 3) uint8 RGB, turned as its display matrix says (phone videos).

    ``frame.rotation`` is the counterclockwise angle of the display matrix (FFmpeg's convention); a
    portrait phone clip stores landscape pixels with -90, i.e. show them turned 90 degrees clockwise.
    """
    array = frame.to_ndarray(format="rgb24")
    turns = round(getattr(frame, "rotation", 0) or 0) // 90 % 4
    return np.ascontiguousarray(np.rot90(array, k=turns)) if turns else array


READERS = {"decord": DecordReader, "pyav": PyAVReader}
