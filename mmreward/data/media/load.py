"""`load_image` and `load_video`: the one decode path (training, scoring and tools all call it).

Frame choice and pixel budgets follow qwen-vl-utils exactly on constant-frame-rate videos and use real
presentation times on variable-frame-rate ones (see ``sampling``); one demux pass indexes the stream
(``index``); decoding reads only the sampled frames (``backends``: decord, falling back to PyAV; PyAV first
above 1440p) and resizes each frame as it is decoded (``resize``, bit-identical to torchvision), so memory does
not grow with the source resolution times the frame count; decoded videos are kept in an in-process LRU cache
(``cache``); URL / bytes / base64 sources are bounded in size and download time (``fetch``). Every failure raises
``MediaError`` naming the source and reason.

Frames returned from the cache are shared: do not modify ``Video.frames`` in place (clone first).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from mmreward.data.media.arrays import (
    VideoArray,
    array_key,
    host_array,
    image_array,
    is_array,
    to_uint8,
    video_array,
)
from mmreward.data.media.backends import READERS, VideoSource
from mmreward.data.media.cache import CACHE, clear_media_cache, media_cache_info, set_media_cache_bytes
from mmreward.data.media.fetch import MediaLimits, download, limits, read_base64, set_media_limits
from mmreward.data.media.index import FrameIndex, probe_index
from mmreward.data.media.resize import resize_frame
from mmreward.data.media.sampling import (
    BACKENDS,
    DEFAULT_MAX_SOURCE_PIXELS,
    FramePlan,
    MediaError,
    VideoSampling,
    plan_frames,
    smart_resize,
    video_frame_size,
)

__all__ = [
    "DEFAULT_MAX_SOURCE_PIXELS",
    "MediaError",
    "MediaLimits",
    "Video",
    "VideoArray",
    "VideoSampling",
    "clear_media_cache",
    "load_image",
    "load_video",
    "media_cache_info",
    "set_media_cache_bytes",
    "set_media_limits",
    "smart_resize",
]

log = logging.getLogger(__name__)

ImageSource = str | Path | bytes | Image.Image | np.ndarray | torch.Tensor
# Above this many pixels per frame the default order is PyAV first: decord keeps decoded full-size RGB
# frames in internal buffers (peak +560 MB loading 16 frames of a 4K clip, against +175 MB with PyAV).
DECORD_MAX_DEFAULT_PIXELS = 2560 * 1440
_BASE64 = re.compile(r"^[A-Za-z0-9+/=_\-\s]+$")


# ---------------------------------------------------------------------------------------------- sources
def _resolve(source: str | Path | bytes) -> tuple[str, Path | None, bytes | None]:
    """(label for messages, path or None, bytes or None) for a path / URL / data URI / base64 / bytes.

    In-memory sources (bytes, base64, data URIs, downloads) are held to ``limits().max_bytes``; base64
    is measured before it is decoded.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = f"<{len(data)} bytes>"
        if len(data) > limits().max_bytes:
            raise MediaError(f"{label}: media larger than the {limits().max_bytes}-byte limit")
        return label, None, data
    if isinstance(source, Path):
        return _existing_file(str(source), source)
    if not isinstance(source, str):
        raise MediaError(f"unsupported media source of type {type(source).__name__}")
    if source.startswith("data:"):
        _, _, payload = source.partition("base64,")
        return f"<data URI, {len(source)} chars>", None, read_base64(payload, "<data URI>")
    if source.startswith(("http://", "https://")):
        return source, None, download(source)
    if source.startswith("file://"):
        return _existing_file(source, Path(source[7:]))
    if len(source) < 4096 and _exists(source):
        return _existing_file(source, Path(source).expanduser())
    if len(source) >= 64 and _BASE64.match(source[:4096]):
        return f"<base64, {len(source)} chars>", None, read_base64(source, "<base64>")
    raise MediaError(f"{source}: file not found")


def _exists(path: str) -> bool:
    try:
        return Path(path).expanduser().exists()
    except (OSError, ValueError):  # e.g. embedded NUL, name too long
        return False


def _existing_file(label: str, path: Path) -> tuple[str, Path, None]:
    try:
        if not path.is_file():
            raise MediaError(f"{label}: {'not a file' if path.exists() else 'file not found'}")
    except OSError as e:  # permission denied on a parent folder, name too long
        raise MediaError(f"{label}: cannot access file ({e})") from e
    return label, path, None


def _identity(path: Path | None, data: bytes | None) -> tuple:
    """Cache identity of a source: a touched or rewritten file gets a new identity."""
    if path is not None:
        try:
            st = path.stat()
            return ("file", str(path.resolve()), st.st_mtime_ns, st.st_size)
        except OSError as e:  # removed or made unreadable since it was resolved
            raise MediaError(f"{path}: cannot access file ({e})") from e
    return ("bytes", hashlib.sha1(data).hexdigest())


# ----------------------------------------------------------------------------------------------- images
def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB; transparent pixels are composited on white (as qwen-vl-utils does for RGBA); high-bit-depth
    grayscale is scaled to 8 bits (PIL's own conversion clips it, washing a 16-bit PNG out to white)."""
    if image.mode.startswith("I") or image.mode == "F":
        image = _to_8bit(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit ("I;16*", PNG "I") and 32-bit integer / float grayscale -> "L", by the range of the format.

    16-bit data maps 0..65535 to 0..255 (v / 257, the inverse of PNG's 8 -> 16 bit expansion). A 32-bit
    integer or float image has no declared range: values already within 0..255 (1.0 for floats) are
    kept, anything larger is scaled by its own maximum.
    """
    if image.mode.startswith("I;16") or (image.mode == "I" and image.format == "PNG"):
        # Integer maths (4 bytes a pixel, not 8): round(v / 257) == (v + 128) // 257 for integers.
        values = np.asarray(image).astype(np.uint32, copy=False)
        return Image.fromarray(((np.minimum(values, 65535) + 128) // 257).astype(np.uint8))  # 2-D uint8 -> mode "L"
    values = np.asarray(image, dtype=np.float32)
    if image.mode == "F" and values.size and np.nanmax(values) <= 1.0:
        scale = 255.0
    else:
        top = float(np.nanmax(values)) if values.size else 0.0
        scale = 1.0 if top <= 255 else 255 / top
    values = np.nan_to_num(values * scale, nan=0.0)
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))  # 2-D uint8 -> mode "L"


def load_image(
    source: ImageSource,
    *,
    max_pixels: int | None = None,
    min_pixels: int | None = None,
    factor: int = 28,
    max_source_pixels: int = DEFAULT_MAX_SOURCE_PIXELS,
) -> Image.Image:
    """Load an image as RGB, EXIF orientation applied, optionally resized to a pixel budget.

    Args:
        source: a path (str or Path), ``file://`` URL, http(s) URL, ``data:image/...;base64,`` URI, raw
            base64 string, encoded bytes, a PIL image, or an ``(H, W, 3)`` / ``(3, H, W)`` numpy array or
            torch tensor, uint8 or float in [0, 1] (see ``arrays``).
        max_pixels: if given (or ``min_pixels``), resize (bicubic) to ``smart_resize`` of the size.
        min_pixels: lower area bound for the resize.
        factor: sides become multiples of this (28 Qwen2/2.5-VL, 32 Qwen3-VL).
        max_source_pixels: refuse larger sources before decoding their pixels (decompression bombs).

    Returns:
        A PIL image in mode "RGB" (a new object; the input image is never modified).

    Raises:
        MediaError: missing/unreadable/corrupt source, decompression bomb, extreme aspect ratio.
    """
    if isinstance(source, Image.Image):
        label, image = "<PIL image>", source
    elif is_array(source):
        arr = image_array(source, max_source_pixels)
        label, image = f"<array {tuple(arr.shape)}>", Image.fromarray(arr)
    else:
        label, path, data = _resolve(source)
        try:
            image = Image.open(path if path is not None else io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise MediaError(f"{label}: image too large, refusing to decode (decompression bomb: {e})") from e
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise MediaError(f"{label}: not a readable image ({e})") from e
    width, height = image.size  # header only: pixels are not decoded yet
    if width * height > max_source_pixels:
        raise MediaError(
            f"{label}: image of {width}x{height} exceeds {max_source_pixels} pixels (decompression bomb?)"
        )
    try:
        image.load()
        image = _to_rgb(ImageOps.exif_transpose(image))
    except (OSError, ValueError, SyntaxError) as e:  # PIL raises SyntaxError for some broken headers
        raise MediaError(f"{label}: cannot decode image (truncated or corrupt: {e})") from e
    if max_pixels is not None or min_pixels is not None:
        try:
            h, w = smart_resize(
                image.height, image.width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels
            )
        except ValueError as e:
            raise MediaError(f"{label}: {e}") from e
        if (w, h) != image.size:
            image = image.resize((w, h), Image.Resampling.BICUBIC)
    return image


# ----------------------------------------------------------------------------------------------- videos
@dataclass
class Video:
    """Sampled, resized frames of a video plus where they came from.

    Attributes:
        frames: (T, 3, H, W) uint8; T is even, H and W multiples of the sampling factor. Shared with the
            cache: do not modify in place.
        timestamps: T floats, seconds of each frame from the first frame of the source: its presentation
            time (``timing="pts"``, default) or index / native_fps (``timing="index"``).
        indices: T ints, source frame indices.
        fps: the effective sampling rate (qwen-vl-utils ``sample_fps``: T / frames in window x native fps).
        duration: source duration in seconds (total_frames / native_fps; for variable-frame-rate
            streams the time of the last frame plus its interval).
        native_fps: source average frame rate.
        total_frames: frames in the source.
        source: the source as named in messages.
        backend: decoder that produced the frames ("decord", "pyav" or "frames" for a list of images).
    """

    frames: torch.Tensor
    timestamps: list[float]
    indices: list[int]
    fps: float
    duration: float
    native_fps: float
    total_frames: int
    source: str
    backend: str

    @property
    def nbytes(self) -> int:
        return self.frames.numel() * self.frames.element_size()


class _RequestError(MediaError):
    """The request does not fit the video (window, frame count): the same for every backend, no fallback."""


def plan(label: str, s: VideoSampling, start, end, index: FrameIndex) -> FramePlan:
    """The frames ``s`` samples from a video with this frame index (``sampling.plan_frames``).

    Args:
        label: names the source in error messages.
        s: the sampling request.
        start: window start in seconds (None = beginning).
        end: window end in seconds (None = end).
        index: the stream's FrameIndex.

    Returns:
        The FramePlan.

    Raises:
        MediaError: the request does not fit the video (window, frame count).
    """
    try:
        return plan_frames(s, start, end, index.times, index.native_fps, index.cfr)
    except ValueError as e:
        raise _RequestError(f"{label}: {e}") from e


class _Resizer:
    """Per-frame convert for the readers: each decoded frame goes straight to the pixel budget, planned
    from the first frame's (upright) size, so full-size frames never pile up."""

    def __init__(self, label: str, s: VideoSampling, nframes: int):
        self.label, self.s, self.nframes, self.size = label, s, nframes, None

    def __call__(self, frame: np.ndarray) -> torch.Tensor:
        if self.size is None:
            try:
                self.size = video_frame_size(self.s, self.nframes, frame.shape[0], frame.shape[1])
            except ValueError as e:
                raise MediaError(f"{self.label}: {e}") from e
        return resize_frame(frame, *self.size)


def _video(label: str, frames: torch.Tensor, p: FramePlan, index: FrameIndex, backend: str) -> Video:
    return Video(
        frames=frames,
        timestamps=list(p.timestamps),
        indices=list(p.indices),
        fps=p.fps,
        duration=p.duration,
        native_fps=index.native_fps,
        total_frames=index.total_frames,
        source=label,
        backend=backend,
    )


def _decode_with(name: str, src: VideoSource, s: VideoSampling, start, end, num_threads, index) -> Video:
    p = plan(src.label, s, start, end, index)
    reader = READERS[name](src, num_threads, index)
    try:
        frames = reader.read(p.indices, _Resizer(src.label, s, len(p.indices)))
    finally:
        reader.close()
    return _video(src.label, frames, p, index, name)


def _decode(src: VideoSource, s: VideoSampling, start, end, num_threads) -> Video:
    """Index the stream once, then decode with the requested backend, or decord then PyAV; a combined
    error if all fail."""
    index = probe_index(src)  # not a video / truncated: the same answer for every backend
    errors: list[tuple[str, MediaError]] = []
    order = BACKENDS
    if index.width * index.height > DECORD_MAX_DEFAULT_PIXELS:
        order = tuple(reversed(BACKENDS))  # decord's own frame buffers cost ~0.5 GB at 4K
    for name in [s.backend] if s.backend else order:
        try:
            return _decode_with(name, src, s, start, end, num_threads, index)
        except _RequestError:
            raise
        except MediaError as e:
            errors.append((name, e))
            if name != order[-1] and not s.backend:
                log.log(
                    logging.DEBUG if "not installed" in str(e) else logging.INFO,
                    "%s; falling back to the next backend",
                    e,
                )
    if len(errors) == 1:
        raise errors[0][1]
    prefix = f"{src.label}: "
    reasons = "; ".join(f"{name}: {str(e).removeprefix(prefix)}" for name, e in errors)
    raise MediaError(f"{src.label}: every backend failed ({reasons})") from errors[-1][1]


def _frames_video(items: Sequence, s: VideoSampling, start, end, frames_fps: float) -> Video:
    """A list of images as a video at ``frames_fps``; sampled like a decoded video. As in qwen-vl-utils,
    an odd-length list is padded by repeating its last frame."""
    label = f"<{len(items)} frames>"
    if not items:
        raise MediaError(f"{label}: empty frame list")
    padded = len(items) + len(items) % 2
    times = [i / frames_fps for i in range(padded)]
    index = FrameIndex(padded, frames_fps, times, None, [0], "images", "list", False, True)
    p = plan(label, s, start, end, index)
    positions = [min(i, len(items) - 1) for i in p.indices]
    resize = _Resizer(label, s, len(p.indices))
    # Frames may differ in size: each is resized straight to the size planned from the first one.
    resized: dict[int, torch.Tensor] = {}
    for pos in positions:
        if pos not in resized:
            resized[pos] = resize(np.array(load_image(items[pos])))  # writable, for torch
    video = _video(label, torch.stack([resized[pos] for pos in positions]), p, index, "frames")
    video.indices, video.total_frames = positions, len(items)
    return video


def _array_video(thwc: np.ndarray, fps: float, s: VideoSampling, start, end) -> Video:
    """A validated (T, H, W, 3) video sampled exactly like a constant-frame-rate file of the same frames at
    ``fps``: the same frame index, plan and per-frame resize; only the sampled frames are converted."""
    total = thwc.shape[0]
    label = f"<array video {tuple(thwc.shape)} @ {float(fps):g} fps>"
    native = float(fps)
    index = FrameIndex(total, native, [i / native for i in range(total)], None, [0], "array", "memory",
                       False, True, width=thwc.shape[2], height=thwc.shape[1])
    p = plan(label, s, start, end, index)
    resize = _Resizer(label, s, len(p.indices))
    resized: dict[int, torch.Tensor] = {}
    for i in p.indices:
        if i not in resized:
            frame = to_uint8(thwc[i])
            # torch warns on read-only memory (np.frombuffer, broadcast views); one sampled frame is cheap to copy.
            resized[i] = resize(frame if frame.flags.writeable else frame.copy())
    return _video(label, torch.stack([resized[i] for i in p.indices]), p, index, "array")


def _request(sampling: VideoSampling | None, fps, nframes, **overrides) -> VideoSampling:
    """``sampling`` (default VideoSampling()) with the non-None keyword overrides applied."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    if fps is not None and nframes is not None:
        raise ValueError("give either fps or nframes, not both")
    if fps is not None:
        changes.update(fps=fps, nframes=None)
    elif nframes is not None:
        changes.update(fps=None, nframes=nframes)
    return dataclasses.replace(sampling or VideoSampling(), **changes)


def load_video(
    source: str | Path | bytes | Sequence | VideoArray | np.ndarray | torch.Tensor,
    *,
    fps: float | None = None,
    nframes: int | None = None,
    start: float | None = None,
    end: float | None = None,
    sampling: VideoSampling | None = None,
    max_pixels: int | None = None,
    min_pixels: int | None = None,
    total_pixels: int | None = None,
    backend: str | None = None,
    num_threads: int | None = None,
    cache: bool = True,
    frames_fps: float | None = None,
) -> Video:
    """Decode the sampled frames of a video, resized to the pixel budget.

    Args:
        source: video path (str/Path/``file://``), http(s) URL, in-memory bytes, a list of images
            (paths / bytes / PIL / arrays) forming a video at ``frames_fps``, or in-memory frames: a
            ``VideoArray``, or a ``(T, H, W, 3)`` / ``(T, 3, H, W)`` array or tensor at ``frames_fps``
            (required for arrays), sampled exactly like a constant-frame-rate file (see ``arrays``).
        fps: sample this many frames per second (overrides ``sampling``).
        nframes: sample exactly this many frames, rounded to a multiple of 2 (overrides ``sampling``).
        start: window start in seconds (None = beginning).
        end: window end in seconds (None = end of video).
        sampling: the base request; default ``VideoSampling()`` (2 fps, qwen-vl-utils budgets).
        max_pixels: per-frame area cap (overrides ``sampling``).
        min_pixels: per-frame area floor (overrides ``sampling``).
        total_pixels: pixel budget of the whole video (overrides ``sampling``).
        backend: "decord", "pyav", or None = decord with fallback to PyAV (overrides ``sampling``).
        num_threads: decoder threads (default min(4, cpu count)).
        cache: look up / store the result in the process-wide media cache.
        frames_fps: frame rate of a list-of-images source (default 2.0) or of an array source (required).

    Returns:
        Video with frames (T, 3, H, W) uint8, T even; see :class:`Video`.

    Raises:
        MediaError: missing/corrupt/truncated source, window outside the video, too few frames.
        ValueError: an invalid request (both fps and nframes, unknown backend).
    """
    s = _request(
        sampling,
        fps=fps,
        nframes=nframes,
        max_pixels=max_pixels,
        min_pixels=min_pixels,
        total_pixels=total_pixels,
        backend=backend,
    )
    if isinstance(source, VideoArray) or is_array(source):
        rate = source.fps if isinstance(source, VideoArray) else frames_fps
        host = host_array(source.frames if isinstance(source, VideoArray) else source)  # GPU -> CPU once
        thwc = video_array(host, rate)
        # Content hash, never identity: a loop that refills one buffer must not hit the old frames.
        identity = ("array", array_key(host), float(rate))
        return _cached(identity, s, start, end, cache, lambda: _array_video(thwc, float(rate), s, start, end))
    frames_fps = 2.0 if frames_fps is None else frames_fps
    if isinstance(source, (list, tuple)):
        # Lists of paths are cached by the identity of every file; lists with PIL images are not.
        paths = source and all(isinstance(x, (str, Path)) for x in source)
        identity = (
            ("frames", tuple(_identity(*_resolve(x)[1:]) for x in source), frames_fps) if paths else None
        )
        return _cached(
            identity, s, start, end, cache, lambda: _frames_video(source, s, start, end, frames_fps)
        )
    label, path, data = _resolve(source)
    src = VideoSource(label, path, data)
    return _cached(
        _identity(path, data), s, start, end, cache, lambda: _decode(src, s, start, end, num_threads)
    )


def _cached(identity, s: VideoSampling, start, end, use_cache: bool, decode) -> Video:
    """Look the request up in the media cache, decoding and storing it on a miss."""
    if identity is None or not use_cache or CACHE.max_bytes <= 0:
        return decode()
    key = (identity, dataclasses.astuple(s), start, end)
    video = CACHE.get(key)
    if video is None:
        video = decode()
        CACHE.put(key, video, video.nbytes)
    return video
