"""Synthetic media whose content is known: frames that encode their own index, and a tiny video writer.

Used by the media tests (to check that the *right* frames and timestamps come back from a decoder), by
``tools/bench_decode.py`` and by the synthetic demo data. Library code: no prints.

A frame made by :func:`index_frame` carries its index (0..4095) as a 2 x 7 grid of large black/white cells
under a coloured band. Cells are big and binary, so :func:`decode_index` still reads the index after lossy
codecs (h264, mpeg4, yuv420p chroma subsampling) and after downscaling to a quarter of the size.
"""

from __future__ import annotations

import colorsys
import logging
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

MAX_INDEX = 4095  # 12 bits
_COLS = 7  # per row: one reference cell + 6 data bits
_BAND = 0.25  # top fraction of the frame: coloured band (chroma content, ignored by the decoder)


def _cell_box(row: int, col: int, height: int, width: int) -> tuple[int, int, int, int]:
    """Pixel box (y0, y1, x0, x1) of grid cell (row, col); float edges so any size works."""
    top = int(round(height * _BAND))
    row_h = (height - top) / 2
    y0, y1 = top + round(row * row_h), top + round((row + 1) * row_h)
    x0, x1 = round(col * width / _COLS), round((col + 1) * width / _COLS)
    return y0, y1, x0, x1


def _cell_values(index: int) -> list[list[bool]]:
    """White/black per cell. Row 0 starts with a white reference cell, row 1 with a black one."""
    bits = [(index >> k) & 1 == 1 for k in range(12)]
    return [[True] + bits[:6], [False] + bits[6:]]


def index_frame(i: int, height: int = 64, width: int = 96) -> np.ndarray:
    """Make a frame that encodes its index ``i`` in its pixels.

    Args:
        i: frame index, 0..4095.
        height: frame height in pixels (>= 16).
        width: frame width in pixels (>= 28).

    Returns:
        frame: (H, W, 3) uint8. Top quarter: a band whose colour cycles with ``i``; below: 2 x 7 cells,
        column 0 holds the white/black references, the other 12 cells the bits of ``i`` (LSB first).
    """
    if not 0 <= i <= MAX_INDEX:
        raise ValueError(f"index {i} outside 0..{MAX_INDEX}")
    if height < 16 or width < 28:
        raise ValueError(f"frame {height}x{width} too small to encode an index (min 16x28)")
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    r, g, b = colorsys.hsv_to_rgb((i * 0.07) % 1.0, 0.8, 0.9)
    frame[: int(round(height * _BAND))] = (int(r * 255), int(g * 255), int(b * 255))
    for row, values in enumerate(_cell_values(i)):
        for col, white in enumerate(values):
            y0, y1, x0, x1 = _cell_box(row, col, height, width)
            frame[y0:y1, x0:x1] = 255 if white else 0
    return frame


def decode_index(frame: np.ndarray | torch.Tensor) -> int:
    """Read back the index written by :func:`index_frame`, after any resize or lossy compression.

    Args:
        frame: (H, W, 3) or (3, H, W), uint8 or float in [0, 255].

    Returns:
        The encoded index (0..4095).
    """
    # A torch tensor (duck-typed, so that this module does not import torch).
    arr = frame.detach().cpu().numpy() if hasattr(frame, "detach") else np.asarray(frame)
    if arr.ndim != 3:
        raise ValueError(f"expected one frame (H, W, 3) or (3, H, W), got shape {arr.shape}")
    if arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(1, 2, 0)
    luma = arr.astype(np.float32).mean(axis=-1)
    height, width = luma.shape

    def cell_mean(row: int, col: int) -> float:
        # Central half of the cell only: edges are blurred by resizing and by the codec.
        y0, y1, x0, x1 = _cell_box(row, col, height, width)
        dy, dx = (y1 - y0) // 4, (x1 - x0) // 4
        return float(luma[y0 + dy : max(y1 - dy, y0 + dy + 1), x0 + dx : max(x1 - dx, x0 + dx + 1)].mean())

    # Threshold halfway between the two reference cells, so brightness/contrast shifts do not matter.
    threshold = (cell_mean(0, 0) + cell_mean(1, 0)) / 2
    index = 0
    for row in range(2):
        for col in range(1, _COLS):
            if cell_mean(row, col) > threshold:
                index |= 1 << (row * 6 + col - 1)
    return index


def _pick_codec(codec: str) -> str:
    """Fall back to mpeg4 when this FFmpeg build has no libx264 (LGPL builds)."""
    import av

    if codec in av.codecs_available:
        return codec
    if codec == "libx264" and "mpeg4" in av.codecs_available:
        log.info("libx264 unavailable in this PyAV build; writing mpeg4 instead")
        return "mpeg4"
    raise ValueError(f"codec {codec!r} is not available in this PyAV/FFmpeg build")


def write_video(
    path: str | Path,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float,
    *,
    codec: str = "libx264",
    gop: int | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode frames to a video file with PyAV (yuv420p, constant frame rate).

    Args:
        path: output file; the container is picked from the suffix (.mp4, .mkv, .avi, ...).
        frames: (T, H, W, 3) uint8 array, or an iterable of (H, W, 3) uint8 frames (so long videos need
            not sit in memory). H and W must be even (yuv420p).
        fps: frame rate; non-integer rates (29.97) are kept exactly as a fraction.
        codec: encoder name; "libx264" falls back to "mpeg4" if unavailable.
        gop: keyframe interval in frames (None = encoder default, 250 for x264).
        options: extra encoder options, e.g. ``{"preset": "veryfast", "crf": "23"}``.

    Returns:
        The path written.
    """
    import av

    path = Path(path)
    codec = _pick_codec(codec)
    rate = Fraction(fps).limit_denominator(1001)
    n_written = 0
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.pix_fmt = "yuv420p"
        if options:
            stream.options = dict(options)
        for frame in frames:
            frame = np.ascontiguousarray(frame, dtype=np.uint8)
            if n_written == 0:
                height, width = frame.shape[:2]
                if height % 2 or width % 2:
                    raise ValueError(f"yuv420p needs even dimensions, got {height}x{width}")
                stream.height, stream.width = height, width
                if gop is not None:
                    stream.codec_context.gop_size = gop
            av_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            container.mux(stream.encode(av_frame))
            n_written += 1
        if n_written == 0:
            raise ValueError("write_video: no frames given")
        container.mux(stream.encode(None))  # flush delayed (B-)frames
    return path


def write_index_video(
    path: str | Path, n_frames: int, fps: float = 10, height: int = 64, width: int = 96, **kw
) -> Path:
    """Write a video whose frame ``i`` is :func:`index_frame` ``(i)``.

    Args:
        path: output file.
        n_frames: number of frames (<= 4096).
        fps: frame rate.
        height: frame height (even).
        width: frame width (even).
        **kw: passed to :func:`write_video` (codec, gop, options).

    Returns:
        The path written.
    """
    frames = (index_frame(i, height, width) for i in range(n_frames))
    return write_video(path, frames, fps, **kw)
