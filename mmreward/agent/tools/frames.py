"""``select_frames``: look at chosen frames of one of the episode's videos (VR-Thinker's frame workspace).

    with use_context(ToolContext(videos=["clip.mp4"], workspace_frames=96)):
        select_frames(target_frames=[1, 48, 96])        # by number in the workspace
        select_frames(timestamps=[0.5, 2.0])             # nearest workspace frame to each time
        select_frames(start=1.0, end=3.0)                # up to max_frames_per_call frames spread over a window

Each video has a *workspace* of N = ``workspace_frames`` frames sampled uniformly over it (qwen-vl-utils'
``linspace`` sampling, N clamped to the video's even frame count) and numbered 1..N, as in VR-Thinker. Frames
are decoded through ``load_video`` at the context's pixel budget, so the media cache serves repeated calls.
Times are seconds from the start of the video as the model sees it (a clipped item's ``start`` is time 0).
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from mmreward.agent.tools.context import (
    ToolContext,
    ToolError,
    ToolResult,
    check_image_budget,
    current_context,
)
from mmreward.agent.untrusted import shown
from mmreward.data.media import Video, VideoSampling, load_video
from mmreward.data.schema import MediaItem

__all__ = ["select_frames"]

# Times within this fraction of a frame interval of the video's ends still count as inside it.
_EDGE = 0.5


@dataclass
class _Workspace:
    """The N uniformly sampled frames of one video, with times relative to what the model sees."""

    video: Video
    times: list[float]  # seconds from the start of the (clipped) video
    length: float  # seconds shown to the model
    slack: float  # tolerance at the ends, seconds

    @property
    def n(self) -> int:
        return len(self.times)


def select_frames(
    target_frames: list[int] | None = None,
    timestamps: list[float] | None = None,
    start: float | None = None,
    end: float | None = None,
    video: int = 1,
) -> ToolResult:
    """Select frames from a video to inspect them in detail.

    Each video has a workspace of N frames sampled uniformly over it and numbered from 1 to N (N is 96 unless
    the prompt says otherwise). Select frames in exactly one way: by frame number (target_frames), by time
    (timestamps: the nearest frame to each), or by a time window (start and/or end: frames spread evenly over
    it). At most 8 frames per call unless the prompt says otherwise. The returned frames can then be zoomed
    into with the crop tool, using the image numbers given in the reply.

    Args:
        target_frames: Frame numbers, each from 1 to N, no more than 8 frames in total.
        timestamps: Times in seconds from the start of the video; the nearest frame to each is returned.
        start: Start of a time window in seconds (default: the start of the video).
        end: End of the time window in seconds (default: the end of the video).
        video: Which video to look at, numbered from 1 in the order they were shown.

    Returns:
        The frames as images and one line per frame with its number, time and image number.
    """
    ctx = current_context()
    ways = [target_frames is not None, timestamps is not None, start is not None or end is not None]
    if sum(ways) != 1:
        raise ToolError("Select frames in exactly one way: target_frames, timestamps, or a window (start/end).")
    check_image_budget(ctx, 1)  # before decoding anything
    ws = _workspace(ctx, video)
    if target_frames is not None:
        positions = _by_number(ctx, ws, target_frames)
    elif timestamps is not None:
        positions = _by_time(ctx, ws, timestamps)
    else:
        positions = _by_window(ctx, ws, start, end)
    return _reply(ctx, ws, video, positions)


# ------------------------------------------------------------------------------------------- workspace
def _request(item: Any) -> tuple[Any, float | None, float | None, dict]:
    """(load_video source, clip start, clip end, extra load_video kwargs) of one context video."""
    if isinstance(item, MediaItem):
        from mmreward.data.collate import media_source

        kwargs = {"frames_fps": item.fps} if item.type == "frames" and item.fps else {}
        return media_source(item), item.start, item.end, kwargs
    return item, None, None, {}


def _workspace(ctx: ToolContext, video: int) -> _Workspace:
    """Decode (or fetch from the media cache) the workspace of video number ``video``."""
    if not ctx.videos:
        raise ToolError("This episode has no videos.")
    if isinstance(video, bool) or not isinstance(video, int) or not 1 <= video <= len(ctx.videos):
        raise ToolError(f"There are {len(ctx.videos)} videos numbered in range [1,{len(ctx.videos)}].")
    source, start, end, kwargs = _request(ctx.videos[video - 1])
    sampling = VideoSampling(nframes=2, min_pixels=ctx.min_pixels, max_pixels=ctx.max_pixels, factor=ctx.factor)
    # A 2-frame probe (cached too) gives the first and last frame of the clip, hence its frame count, so N can
    # be clamped before asking for N frames (load_video refuses more frames than the clip has).
    probe = load_video(source, sampling=sampling, start=start, end=end, **kwargs)
    count = probe.indices[-1] - probe.indices[0] + 1
    n = max(2, min(ctx.workspace_frames, count - count % 2))
    full = load_video(source, sampling=dataclasses.replace(sampling, nframes=n), start=start, end=end, **kwargs)
    offset = probe.timestamps[0]
    clip_end = full.duration if end is None else min(end, full.duration)
    length = max(clip_end - (start or 0.0), full.timestamps[-1] - offset)
    return _Workspace(full, [t - offset for t in full.timestamps], length, _EDGE / full.native_fps)


# --------------------------------------------------------------------------------------------- choices
def _too_many(ctx: ToolContext, n: int) -> None:
    if n > ctx.max_frames_per_call:
        raise ToolError(
            f"You have selected {n} frames in total. Think again which frames you need to check in details "
            f"(no more than {ctx.max_frames_per_call} frames)"
        )
    if n == 0:
        raise ToolError("You have selected no frames. Select at least one frame.")


def _unique(values: list[int]) -> list[int]:
    """Drop repeats, keeping the order: a frame asked for twice is shown once."""
    return list(dict.fromkeys(values))


def _by_number(ctx: ToolContext, ws: _Workspace, target_frames: list[int]) -> list[int]:
    _too_many(ctx, len(target_frames))
    for k in target_frames:
        whole = (isinstance(k, int) and not isinstance(k, bool)) or (isinstance(k, float) and k.is_integer())
        if not whole or not 1 <= k <= ws.n:
            raise ToolError(f"There are {ws.n} frames numbered in range [1,{ws.n}]. Your selection is out of range.")
    return _unique([int(k) - 1 for k in target_frames])


def _check_time(ws: _Workspace, t: Any, what: str) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float)) or (isinstance(t, float) and not math.isfinite(t)):
        raise ToolError(f"{what} must be a number of seconds, got {shown(t)}.")
    if not -ws.slack <= t <= ws.length + ws.slack:
        raise ToolError(f"{what} {t:g}s is outside the video, which lasts {ws.length:.2f}s (from 0s).")
    return float(t)


def _by_time(ctx: ToolContext, ws: _Workspace, timestamps: list[float]) -> list[int]:
    _too_many(ctx, len(timestamps))
    positions = []
    for t in timestamps:
        t = _check_time(ws, t, "Timestamp")
        positions.append(min(range(ws.n), key=lambda i, t=t: abs(ws.times[i] - t)))
    return _unique(positions)


def _by_window(ctx: ToolContext, ws: _Workspace, start: float | None, end: float | None) -> list[int]:
    lo = 0.0 if start is None else _check_time(ws, start, "Window start")
    hi = ws.length if end is None else _check_time(ws, end, "Window end")
    if lo >= hi:
        raise ToolError(f"The window [{lo:g}, {hi:g}]s is empty: start must be before end.")
    inside = [i for i, t in enumerate(ws.times) if lo - 1e-6 <= t <= hi + 1e-6]
    if not inside:
        spacing = ws.length / max(ws.n - 1, 1)
        raise ToolError(
            f"No frame lies in [{lo:g}, {hi:g}]s (frames are about {spacing:.2f}s apart); "
            "widen the window or use timestamps."
        )
    m = min(len(inside), ctx.max_frames_per_call)
    if m == 1:
        return [inside[len(inside) // 2]]
    # Spread evenly over the frames inside, both ends included (as the workspace spreads over the video).
    return _unique([inside[round(j * (len(inside) - 1) / (m - 1))] for j in range(m)])


# ----------------------------------------------------------------------------------------------- reply
def _to_pil(frame: torch.Tensor) -> Image.Image:
    """(3, H, W) uint8 -> PIL RGB (a copy: cached frames are shared and must not be touched)."""
    return Image.fromarray(frame.permute(1, 2, 0).contiguous().numpy())


def _reply(ctx: ToolContext, ws: _Workspace, video: int, positions: list[int]) -> ToolResult:
    check_image_budget(ctx, len(positions))
    first_image = len(ctx.images) + len(ctx.returned) + 1
    lines = [f"Video {video}: {len(positions)} of its {ws.n} frames ({ws.length:.2f}s)."]
    images = []
    for j, i in enumerate(positions):
        lines.append(f"Frame {i + 1} (t={ws.times[i]:.2f}s), image {first_image + j}")
        images.append(_to_pil(ws.video.frames[i]))
    ctx.returned.extend(images)
    return ToolResult("\n".join(lines), images)


# The line the judge's prompt gives this tool ("call select_frames to ..."; `agent.tools.tool_use_prompt`).
select_frames.hint = "see other frames of a video"
