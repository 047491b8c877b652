"""In-memory media: images and videos given as numpy arrays, torch tensors or PIL images.

Generator RL loops hold their samples in memory; they reach the models through the same decode path as
files (``media.load_image`` / ``media.load_video`` accept what this module validates), with no disk round
trip and no re-encoding:

- image: ``(H, W, 3)`` or ``(3, H, W)``; video: ``(T, H, W, 3)`` or ``(T, 3, H, W)`` plus its frame rate
  (``VideoArray``, or ``MediaItem(type="video", array=..., fps=...)``): the sampling contract needs it.
- dtype uint8 (0..255), or float16 / bfloat16 / float32 / float64 in [0, 1] (converted to uint8 as
  ``rint(x * 255)``, so ``frames / 255`` scores exactly like ``frames``).
- A shape whose last axis is 3 is channels-last, else one whose channel axis (0 for images, 1 for videos)
  is 3 is channels-first: a ``(3, H, 3)`` array is read as channels-last.

Validation raises ``MediaError`` (a ``DataError``, so the scoring engine skips the record under
``on_error="skip"``) naming the shape, dtype or value at fault. Only the sampled frames are converted; a
uint8 channels-last array is read without a copy. ``host_array`` moves a GPU tensor to the CPU once.

``array_key`` is the identity used for deduplication and the media cache: a content hash (xxh3-128 when
the optional ``xxhash`` package is installed, blake2b otherwise) of the bytes plus dtype and shape, so a
loop that reuses one buffer with new contents never gets a stale hit. Cost, measured on the 2-core dev
machine for a 16 x 480 x 832 x 3 uint8 video (19 MB): ``array_key`` 1.2 ms with xxh3 (blake2b alone: 21 ms);
the same frames as float32 (77 MB) 4.6 ms; a channels-first view is hashed through a contiguous copy (10 ms).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmreward.data.media.sampling import DEFAULT_MAX_SOURCE_PIXELS, MediaError

__all__ = ["VideoArray", "array_key", "host_array", "image_array", "is_array", "video_array"]

_FLOATS = (np.float16, np.float32, np.float64)


@dataclass
class VideoArray:
    """A video held in memory: frames and the rate they were captured at.

    Attributes:
        frames: ``(T, H, W, 3)`` or ``(T, 3, H, W)`` numpy array or torch tensor, uint8 or float in [0, 1].
        fps: frames per second of ``frames`` (required: fps-based sampling reads it as the native rate).
    """

    frames: Any
    fps: float | None


def is_array(obj: Any) -> bool:
    """Whether ``obj`` is an in-memory array source (numpy array or torch tensor; not PIL)."""
    if isinstance(obj, np.ndarray):
        return True
    torch = _torch_if_loaded()
    return torch is not None and isinstance(obj, torch.Tensor)


def _torch_if_loaded():
    import sys

    return sys.modules.get("torch")  # a tensor can only exist once torch is imported


def host_array(obj: Any) -> Any:
    """A numpy array sharing memory with ``obj`` where possible; a GPU tensor is copied to the CPU once.

    bfloat16 (no numpy dtype) becomes float32 after the transfer. Anything else (PIL images, numpy arrays,
    unsupported objects, which validation rejects later) is returned unchanged.

    Args:
        obj: a torch tensor, numpy array or other media source.

    Returns:
        A numpy array for tensors, otherwise ``obj``.
    """
    torch = _torch_if_loaded()
    if torch is None or not isinstance(obj, torch.Tensor):
        return obj
    try:
        tensor = obj.detach()
        if tensor.device.type != "cpu":
            tensor = tensor.cpu()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        return tensor.numpy()  # no copy for a CPU tensor
    except (TypeError, RuntimeError, NotImplementedError) as e:  # sparse, quantized, "meta" device, ...
        raise MediaError(f"<tensor {tuple(obj.shape)} {obj.dtype}>: unsupported tensor ({e})") from e


def _label(arr: np.ndarray) -> str:
    return f"<array {tuple(arr.shape)} {arr.dtype}>"


def _check_dtype(arr: np.ndarray) -> None:
    if arr.dtype != np.uint8 and arr.dtype.type not in _FLOATS:
        raise MediaError(f"{_label(arr)}: dtype {arr.dtype} is not supported; give uint8 (0-255) or float in "
                         f"[0, 1]")


def _channels_last(arr: np.ndarray, kind: str, channel_axis: int) -> np.ndarray:
    """The array as channels-last (a view), checking the channel count."""
    if arr.shape[-1] == 3:
        out = arr
    elif arr.shape[channel_axis] == 3:
        out = np.moveaxis(arr, channel_axis, -1)
    else:
        layouts = "(H, W, 3) or (3, H, W)" if kind == "image" else "(T, H, W, 3) or (T, 3, H, W)"
        article = "an" if kind == "image" else "a"
        raise MediaError(f"{_label(arr)}: {article} {kind} array needs 3 (RGB) channels, {layouts}; got shape "
                         f"{tuple(arr.shape)}")
    if 0 in out.shape:
        raise MediaError(f"{_label(arr)}: empty {kind} (a zero-length axis)")
    return out


def _check_values(arr: np.ndarray) -> None:
    """Float values must lie in [0, 1]: two reductions, no temporary the size of the array."""
    if arr.dtype == np.uint8:
        return
    low, high = float(arr.min()), float(arr.max())  # NaN propagates through min / max
    if np.isnan(low) or np.isnan(high):
        raise MediaError(f"{_label(arr)}: contains NaN")
    if low < 0.0 or high > 1.0:
        raise MediaError(f"{_label(arr)}: float values must lie in [0, 1], got min {low:.4g}, max {high:.4g}; "
                         f"scale to [0, 1] or give uint8")


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """A channels-last uint8 frame from a validated one: unchanged if uint8, else ``rint(x * 255)``.

    Args:
        frame: ``(H, W, 3)`` uint8 or float array with values in [0, 1].

    Returns:
        ``(H, W, 3)`` uint8 array.
    """
    if frame.dtype == np.uint8:
        return frame
    return np.rint(frame.astype(np.float32) * 255.0).astype(np.uint8)


def image_array(obj: Any, max_source_pixels: int = DEFAULT_MAX_SOURCE_PIXELS) -> np.ndarray:
    """Validate an image array and return it as ``(H, W, 3)`` uint8.

    Args:
        obj: ``(H, W, 3)`` / ``(3, H, W)`` numpy array or torch tensor, uint8 or float in [0, 1].
        max_source_pixels: refuse larger images.

    Returns:
        The image as a channels-last uint8 array (a view of the input when it is already one).

    Raises:
        MediaError: wrong ndim, channel count, dtype, size; NaN or float values outside [0, 1].
    """
    arr = _as_numpy(obj)
    if arr.ndim != 3:
        hint = "; a 4-D array is a video (type 'video' with fps)" if arr.ndim == 4 else ""
        raise MediaError(f"{_label(arr)}: an image array must be 3-D, (H, W, 3) or (3, H, W){hint}")
    _check_dtype(arr)
    hwc = _channels_last(arr, "image", 0)
    if hwc.shape[0] * hwc.shape[1] > max_source_pixels:
        raise MediaError(f"{_label(arr)}: image exceeds {max_source_pixels} pixels")
    _check_values(hwc)
    return to_uint8(hwc)


def video_array(obj: Any, fps: Any, max_source_pixels: int = DEFAULT_MAX_SOURCE_PIXELS) -> np.ndarray:
    """Validate a video array and its frame rate; return it as ``(T, H, W, 3)`` (dtype unchanged).

    Frames are converted to uint8 one at a time, after sampling (``to_uint8``): only they are copied.

    Args:
        obj: ``(T, H, W, 3)`` / ``(T, 3, H, W)`` numpy array or torch tensor, uint8 or float in [0, 1].
        fps: the frame rate the frames were captured at (> 0).
        max_source_pixels: refuse larger frames.

    Returns:
        A channels-last view of the video.

    Raises:
        MediaError: missing or invalid fps, wrong ndim, channels, dtype, T = 0; NaN or out-of-range floats.
    """
    arr = _as_numpy(obj)
    if arr.ndim != 4:
        hint = "; a 3-D array is an image (type 'image')" if arr.ndim == 3 else ""
        raise MediaError(f"{_label(arr)}: a video array must be 4-D, (T, H, W, 3) or (T, 3, H, W){hint}")
    _check_dtype(arr)
    ok = isinstance(fps, (int, float, np.number)) and not isinstance(fps, bool) and 0 < float(fps) < float("inf")
    if not ok:
        need = "is required" if fps is None else f"must be a number > 0, got {fps!r}"
        raise MediaError(f"{_label(arr)}: fps of a video array {need} (the sampling contract reads it); pass "
                         f"the rate the frames were generated at")
    if arr.shape[0] == 0:
        raise MediaError(f"{_label(arr)}: video with no frames (T = 0)")
    thwc = _channels_last(arr, "video", 1)
    if thwc.shape[1] * thwc.shape[2] > max_source_pixels:
        raise MediaError(f"{_label(arr)}: frames exceed {max_source_pixels} pixels")
    _check_values(thwc)
    return thwc


def _as_numpy(obj: Any) -> np.ndarray:
    arr = host_array(obj)
    if not isinstance(arr, np.ndarray):
        raise MediaError(f"unsupported in-memory media of type {type(obj).__name__}; give a numpy array, "
                         f"torch tensor or PIL image")
    _check_overlap(arr)
    return arr


def _check_overlap(arr: np.ndarray) -> None:
    """Refuse a large view whose elements share memory (``broadcast_to``, ``expand``, ``as_strided``).

    Such a view can claim terabytes over a few bytes: hashing or converting it would allocate its full size.
    Up to ``limits().max_bytes`` (a static video from one broadcast frame) it is accepted.
    """
    from mmreward.data.media.fetch import limits

    if arr.size == 0 or arr.nbytes <= limits().max_bytes:
        return
    extent = arr.itemsize + sum((n - 1) * abs(step) for n, step in zip(arr.shape, arr.strides))
    if extent < arr.nbytes:
        raise MediaError(f"{_label(arr)}: a view of {arr.nbytes} bytes over {extent} bytes of memory (broadcast "
                         f"or overlapping strides); materialise it with np.ascontiguousarray if it is meant")


def array_key(obj: Any) -> str:
    """Content identity of in-memory media: hash of the bytes, dtype and shape (or a PIL image's pixels).

    Args:
        obj: numpy array, torch tensor, PIL image or ``VideoArray``.

    Returns:
        ``"array:<algo>:<hex>:<dtype>:<shape>"`` (``"pil:..."`` for PIL images; a ``VideoArray`` adds
        ``@<fps>``).

    Raises:
        MediaError: an object that is none of these, or an array of another dtype than uint8 / float.
    """
    if isinstance(obj, VideoArray):
        return f"{array_key(obj.frames)}@{obj.fps!r}"
    from PIL import Image

    if isinstance(obj, Image.Image):
        return f"pil:{_digest(obj.tobytes())}:{obj.mode}:{obj.size}"
    arr = _as_numpy(obj)
    _check_dtype(arr)  # also keeps object / datetime arrays, which expose no buffer, away from the hash
    # A strided view (channels-first permute, a slice) is hashed through one contiguous copy.
    buffer = memoryview(np.ascontiguousarray(arr)).cast("B")
    return f"array:{_digest(buffer)}:{arr.dtype.str}:{tuple(arr.shape)}"


def _digest(buffer) -> str:
    try:
        import xxhash
    except ImportError:
        return "blake2b:" + hashlib.blake2b(buffer, digest_size=16).hexdigest()
    return "xxh3:" + xxhash.xxh3_128_hexdigest(buffer)
