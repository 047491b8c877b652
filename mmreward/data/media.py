"""Images and videos for the models: the one decode path (training, scoring and tools all call this).

    from mmreward.data.media import load_image, load_video, VideoSampling
    image = load_image("cat.jpg", max_pixels=1024 * 28 * 28)        # PIL RGB, EXIF-rotated, resized
    video = load_video("clip.mp4", fps=2.0, start=1.0, end=5.0)     # Video: frames (T, 3, H, W) uint8
    video = load_video(clip_bytes, sampling=VideoSampling(nframes=16, backend="pyav"))

Frame choice and pixel budgets follow qwen-vl-utils exactly (see ``media_sampling``); decoding reads only
the sampled frames (``video_backends``: decord, falling back to PyAV); decoded videos are kept in an
in-process LRU cache (``media_cache``). Every failure raises ``MediaError`` naming the source and reason.

Frames returned from the cache are shared: do not modify ``Video.frames`` in place (clone first).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import io
import logging
import re
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from mmreward.data.media_cache import CACHE, clear_media_cache, media_cache_info, set_media_cache_bytes
from mmreward.data.media_sampling import (
    BACKENDS,
    DEFAULT_MAX_SOURCE_PIXELS,
    MediaError,
    VideoSampling,
    frame_range,
    sample_indices,
    smart_nframes,
    smart_resize,
    video_frame_size,
)
from mmreward.data.video_backends import READERS, VideoSource

__all__ = [
    "DEFAULT_MAX_SOURCE_PIXELS",
    "MediaError",
    "Video",
    "VideoSampling",
    "clear_media_cache",
    "load_image",
    "load_video",
    "media_cache_info",
    "set_media_cache_bytes",
    "smart_resize",
]

log = logging.getLogger(__name__)

ImageSource = str | Path | bytes | Image.Image
URL_TIMEOUT_S = 30
_BASE64 = re.compile(r"^[A-Za-z0-9+/=_\-\s]+$")
_RESIZE_CHUNK = 32  # frames resized at once: bounds the float32 intermediate of a long 1080p video


# ---------------------------------------------------------------------------------------------- sources
def _resolve(source: str | Path | bytes) -> tuple[str, Path | None, bytes | None]:
    """(label for messages, path or None, bytes or None) for a path / URL / data URI / base64 / bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return f"<{len(data)} bytes>", None, data
    if isinstance(source, Path):
        return _existing_file(str(source), source)
    if not isinstance(source, str):
        raise MediaError(f"unsupported media source of type {type(source).__name__}")
    if source.startswith("data:"):
        _, _, payload = source.partition("base64,")
        return f"<data URI, {len(source)} chars>", None, _b64decode(payload, "<data URI>")
    if source.startswith(("http://", "https://")):
        return source, None, _download(source)
    if source.startswith("file://"):
        return _existing_file(source, Path(source[7:]))
    if len(source) < 4096 and _exists(source):
        return _existing_file(source, Path(source).expanduser())
    if len(source) >= 64 and _BASE64.match(source[:4096]):
        return f"<base64, {len(source)} chars>", None, _b64decode(source, "<base64>")
    raise MediaError(f"{source}: file not found")


def _exists(path: str) -> bool:
    try:
        return Path(path).expanduser().exists()
    except (OSError, ValueError):  # e.g. embedded NUL, name too long
        return False


def _existing_file(label: str, path: Path) -> tuple[str, Path, None]:
    if not path.is_file():
        raise MediaError(f"{label}: {'not a file' if path.exists() else 'file not found'}")
    return label, path, None


def _b64decode(payload: str, label: str) -> bytes:
    try:
        text = "".join(payload.split())
        return base64.b64decode(
            text + "=" * (-len(text) % 4), altchars=b"-_" if "-" in text or "_" in text else None
        )
    except (binascii.Error, ValueError) as e:
        raise MediaError(f"{label}: invalid base64 ({e})") from e


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:
            return response.read()
    except OSError as e:  # URLError, HTTPError and timeouts are all OSErrors
        raise MediaError(f"{url}: download failed ({e})") from e


def _identity(path: Path | None, data: bytes | None) -> tuple:
    """Cache identity of a source: a touched or rewritten file gets a new identity."""
    if path is not None:
        st = path.stat()
        return ("file", str(path.resolve()), st.st_mtime_ns, st.st_size)
    return ("bytes", hashlib.sha1(data).hexdigest())


# ----------------------------------------------------------------------------------------------- images
def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB; transparent pixels are composited on white (as qwen-vl-utils does for RGBA)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


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
            base64 string, encoded bytes, or a PIL image.
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
        timestamps: T floats, seconds of each frame in the source (frame_index / native_fps).
        indices: T ints, source frame indices.
        fps: the effective sampling rate (qwen-vl-utils ``sample_fps``: T / frames in window x native fps).
        duration: source duration in seconds (total_frames / native_fps).
        native_fps: source frame rate.
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


def _resize_frames(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(T, 3, H, W) uint8 -> (T, 3, height, width) uint8, bicubic + antialias, rounded and clamped
    (torchvision's uint8 path, so results equal qwen-vl-utils' before its ``.float()``)."""
    if frames.shape[-2:] == (height, width):
        return frames.contiguous()
    chunks = [
        TF.resize(chunk, [height, width], interpolation=InterpolationMode.BICUBIC, antialias=True)
        for chunk in frames.split(_RESIZE_CHUNK)
    ]
    return torch.cat(chunks).contiguous()


def _plan(label: str, s: VideoSampling, start, end, total: int, fps: float) -> tuple[list[int], int]:
    """Sampled indices and frames-in-window for a source of ``total`` frames at ``fps``."""
    try:
        start_frame, end_frame, count = frame_range(start, end, total, fps)
        n = smart_nframes(s, count, fps)
    except ValueError as e:
        raise _RequestError(f"{label}: {e}") from e
    return sample_indices(start_frame, end_frame, n), count


def _finish(
    label: str,
    s: VideoSampling,
    frames: torch.Tensor,
    indices: list[int],
    count: int,
    total: int,
    fps: float,
    backend: str,
) -> Video:
    """Resize decoded (T, 3, H, W) uint8 frames to the pixel budget and wrap them in a Video."""
    try:
        h, w = video_frame_size(s, len(indices), frames.shape[-2], frames.shape[-1])
    except ValueError as e:
        raise MediaError(f"{label}: {e}") from e
    return Video(
        frames=_resize_frames(frames, h, w),
        timestamps=[i / fps for i in indices],
        indices=list(indices),
        fps=len(indices) / max(count, 1e-6) * fps,
        duration=total / fps,
        native_fps=fps,
        total_frames=total,
        source=label,
        backend=backend,
    )


def _decode_with(name: str, src: VideoSource, s: VideoSampling, start, end, num_threads) -> Video:
    reader = READERS[name](src, num_threads)
    try:
        indices, count = _plan(src.label, s, start, end, reader.total_frames, reader.native_fps)
        array = reader.read(indices)
    finally:
        reader.close()
    frames = torch.from_numpy(array).permute(0, 3, 1, 2)
    return _finish(src.label, s, frames, indices, count, reader.total_frames, reader.native_fps, name)


def _decode(src: VideoSource, s: VideoSampling, start, end, num_threads) -> Video:
    """Decode with the requested backend, or decord then PyAV; a combined error if all fail."""
    errors: list[tuple[str, MediaError]] = []
    for name in [s.backend] if s.backend else BACKENDS:
        try:
            return _decode_with(name, src, s, start, end, num_threads)
        except _RequestError:
            raise
        except MediaError as e:
            errors.append((name, e))
            if name != BACKENDS[-1] and not s.backend:
                log.log(
                    logging.DEBUG if "not installed" in str(e) else logging.WARNING,
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
    indices, count = _plan(label, s, start, end, padded, frames_fps)
    positions = [min(i, len(items) - 1) for i in indices]
    loaded: dict[int, np.ndarray] = {}
    for p in positions:
        if p not in loaded:
            loaded[p] = np.array(load_image(items[p]))  # a writable copy for torch
    first = loaded[positions[0]]
    try:
        h, w = video_frame_size(s, len(indices), first.shape[0], first.shape[1])
    except ValueError as e:
        raise MediaError(f"{label}: {e}") from e
    # Frames may differ in size: each is resized straight to the size planned from the first one.
    resized = {
        p: _resize_frames(torch.from_numpy(a).permute(2, 0, 1)[None], h, w)[0] for p, a in loaded.items()
    }
    frames = torch.stack([resized[p] for p in positions])
    video = _finish(label, s, frames, indices, count, padded, frames_fps, "frames")
    video.indices, video.total_frames = positions, len(items)
    return video


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
    source: str | Path | bytes | Sequence,
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
    frames_fps: float = 2.0,
) -> Video:
    """Decode the sampled frames of a video, resized to the pixel budget.

    Args:
        source: video path (str/Path/``file://``), http(s) URL, in-memory bytes, or a list of images
            (paths / bytes / PIL) forming a video at ``frames_fps``.
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
        frames_fps: frame rate of a list-of-images source.

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
