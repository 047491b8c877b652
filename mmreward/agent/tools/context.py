"""What a tool may see and what it returns: the episode's media (`ToolContext`), `ToolResult` and `ToolError`.

    ctx = ToolContext(videos=[item_a, item_b], workspace_frames=96, max_frames_per_call=8)
    with use_context(ctx):
        result = call_tool("select_frames", {"target_frames": [1, 48], "video": 2})

Tools are sandboxed: they never take a path, URL or code from the model. Media tools read the active context
(a `contextvars.ContextVar`, so concurrent episodes in threads or asyncio tasks each see their own media), and
context-free tools (calculator) ignore it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image

if TYPE_CHECKING:
    from mmreward.agent.tools.search import SearchBackend

__all__ = ["ToolContext", "ToolError", "ToolResult", "check_image_budget", "current_context", "use_context"]


from mmreward.errors import ToolError  # noqa: F401  (re-exported)


@dataclass
class ToolResult:
    """What a tool call gives back to the model.

    Attributes:
        text: the text part of the tool message.
        images: images shown to the model after the text (frames, crops), in order.
    """

    text: str
    images: list[Image.Image] = field(default_factory=list)


@dataclass
class ToolContext:
    """The media of one episode that tools may look at, plus the tools' budgets.

    Attributes:
        videos: the episode's videos, numbered from 1 for ``select_frames(video=...)``. Each is a
            ``mmreward.data.schema.MediaItem`` (path / bytes / url / frames, with optional start/end clip), or
            a plain source that ``load_video`` accepts (path, bytes, list of frame images).
        images: the episode's images (paths, bytes or PIL images, or image ``MediaItem``s), numbered from 1 for
            ``crop(image=...)``; images returned by tool calls are numbered after them.
        workspace_frames: N, the frames per video that ``select_frames`` indexes 1..N (VR-Thinker: 96),
            sampled uniformly over the video; clamped to the video's frame count.
        max_frames_per_call: most frames one ``select_frames`` call may return (VR-Thinker: 8).
        min_pixels: lower area bound of returned frames and crops.
        max_pixels: upper area bound of returned frames and crops (crops are upsampled to it).
        factor: sides of returned images are multiples of this (28 Qwen2/2.5-VL, 32 Qwen3-VL).
        max_returned_images: most images the tools may return in one episode (frames and crops together),
            checked before a call decodes or renders anything, whatever drives the episode (our loop or TRL's).
        search_backend: what ``search`` queries (an object with ``.search(query, k)``); None disables search.
        returned: images returned by earlier tool calls of this episode, so ``crop`` can address them.
    """

    videos: list[Any] = field(default_factory=list)
    images: list[Any] = field(default_factory=list)
    workspace_frames: int = 96
    max_frames_per_call: int = 8
    # Small by default: tool images are extra context on top of the initial frames (VR-Thinker trains with
    # at most 400 * 28 * 28 per tool frame).
    min_pixels: int = 4 * 28 * 28
    max_pixels: int = 256 * 28 * 28
    factor: int = 28
    max_returned_images: int = 128
    search_backend: SearchBackend | None = None
    returned: list[Image.Image] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Own copies: crop replaces an image by its decoded pixels, which must not touch the caller's list.
        self.videos, self.images = list(self.videos), list(self.images)
        if self.workspace_frames < 2:
            raise ValueError(f"workspace_frames must be >= 2, got {self.workspace_frames}")
        if self.max_frames_per_call < 1:
            raise ValueError(f"max_frames_per_call must be >= 1, got {self.max_frames_per_call}")
        if self.max_returned_images < 1:
            raise ValueError(f"max_returned_images must be >= 1, got {self.max_returned_images}")
        if not 0 < self.min_pixels <= self.max_pixels or self.factor <= 0:
            raise ValueError(
                f"need 0 < min_pixels <= max_pixels and factor > 0, got {self.min_pixels}, "
                f"{self.max_pixels}, {self.factor}"
            )


_ACTIVE: contextvars.ContextVar[ToolContext | None] = contextvars.ContextVar("mmreward_tool_context", default=None)


@contextlib.contextmanager
def use_context(ctx: ToolContext) -> Iterator[ToolContext]:
    """Make ``ctx`` the media that tools see inside the ``with`` block (restored on exit, also on errors)."""
    token = _ACTIVE.set(ctx)
    try:
        yield ctx
    finally:
        _ACTIVE.reset(token)


def check_image_budget(ctx: ToolContext, more: int) -> None:
    """Refuse a call that would make the episode's tools return more than ``ctx.max_returned_images`` images.

    Raises:
        ToolError: the budget would be exceeded (the message says how many images are left).
    """
    left = ctx.max_returned_images - len(ctx.returned)
    if more > left:
        raise ToolError(
            f"This episode's tools have returned {len(ctx.returned)} images, the limit is "
            f"{ctx.max_returned_images}; {max(left, 0)} more can be shown. Look again at the images you have, "
            "or give your answer."
        )


def current_context() -> ToolContext:
    """The active episode's context.

    Raises:
        ToolError: no context is active (a media tool was called outside ``use_context``).
    """
    ctx = _ACTIVE.get()
    if ctx is None:
        raise ToolError("this tool needs an episode's media; none is active")
    return ctx
