"""``crop``: zoom into a region of an episode image or of an image returned by an earlier tool call.

    with use_context(ToolContext(images=["chart.png"])):
        crop(box=[0.5, 0.0, 1.0, 0.5])            # top-right quadrant of image 1, enlarged to the pixel budget
        crop(box=[0.2, 0.2, 0.4, 0.4], image=2)   # image 2 = the first image returned by a tool (if 1 image)

Images are numbered from 1: the episode's images first, then every image returned by a tool call this episode
(frames, crops) in order. The region is cut from the image at full resolution and resized with ``smart_resize``
semantics to fill the context's ``max_pixels`` (sides multiples of ``factor``), so small details get more pixels.
"""

import math
from typing import Any

from PIL import Image

from mmreward.agent.tools.context import (
    ToolContext,
    ToolError,
    ToolResult,
    check_image_budget,
    current_context,
)
from mmreward.agent.untrusted import shown
from mmreward.data.media import MediaError, load_image, smart_resize
from mmreward.data.schema import MediaItem

__all__ = ["MIN_BOX", "crop"]

# Smallest box side as a fraction of the image: below it the "zoom" is mostly interpolation blur.
MIN_BOX = 0.02


def crop(box: list[float], image: int = 1) -> ToolResult:
    """Zoom into a region of an image to see its details.

    Images are numbered from 1: first the images shown with the task, then every image returned by earlier
    tool calls (selected frames, earlier crops) in order; each tool reply gives the numbers of its images.
    The region is enlarged to the largest allowed image size.

    Args:
        box: The region as [x0, y0, x1, y1]: its left, top, right and bottom edges as fractions of the image's
            width and height, from 0 to 1, with x0 < x1 and y0 < y1 (at least 0.02 wide and high).
        image: Which image to crop, numbered as described above.

    Returns:
        The enlarged region as an image and a line describing it.
    """
    ctx = current_context()
    check_image_budget(ctx, 1)
    source = _image(ctx, image)
    x0, y0, x1, y1 = _check_box(box, source.size)
    width, height = source.size
    # Outward rounding: the crop always contains the requested region and is at least one pixel.
    left, top = min(math.floor(x0 * width), width - 1), min(math.floor(y0 * height), height - 1)
    right, bottom = max(left + 1, math.ceil(x1 * width)), max(top + 1, math.ceil(y1 * height))
    region = source.crop((left, top, right, bottom))
    out_h, out_w = _target_size(ctx, region.height, region.width)
    result = region.resize((out_w, out_h), Image.Resampling.BICUBIC)
    ctx.returned.append(result)
    number = len(ctx.images) + len(ctx.returned)
    text = (
        f"Crop of image {image} ({width}x{height}): x {x0:.2f}-{x1:.2f}, y {y0:.2f}-{y1:.2f} "
        f"(pixels {left},{top} to {right},{bottom}), resized {out_w / region.width:.1f}x to {out_w}x{out_h}; "
        f"image {number}"
    )
    return ToolResult(text, [result])


def _image(ctx: ToolContext, number: Any) -> Image.Image:
    """Image ``number`` (1-based) of the episode: its own images first, then the tool-returned ones."""
    total = len(ctx.images) + len(ctx.returned)
    if total == 0:
        raise ToolError("There are no images to crop yet; select some frames first.")
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= total:
        raise ToolError(f"There are {total} images numbered in range [1,{total}]. Your selection is out of range.")
    if number > len(ctx.images):
        return ctx.returned[number - len(ctx.images) - 1]
    item = ctx.images[number - 1]
    if isinstance(item, Image.Image):
        return item
    try:
        if isinstance(item, MediaItem):
            from mmreward.data.collate import media_source

            item = media_source(item)  # a URL stays a URL: load_image fetches it within the media limits
        # Full resolution: the point of a crop is the detail the model has not seen.
        image = load_image(item)
    except (MediaError, ValueError) as e:  # ValueError: base64 that does not decode
        raise ToolError(f"Execution error: image {number} could not be loaded ({e})") from e
    # Kept for the episode's later crops: a URL is downloaded (and any source decoded) once per episode.
    ctx.images[number - 1] = image
    return image


def _check_box(box: Any, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """The box as four floats, or a ToolError saying what is wrong with it."""
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise ToolError(f"box must be a list of 4 numbers [x0, y0, x1, y1], got {shown(box)}.")
    for v in box:
        # Ints are always finite (and math.isfinite overflows on huge ones): only floats need the check.
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
            raise ToolError(f"box must hold 4 numbers [x0, y0, x1, y1], got {shown(box)}.")
    if not all(0.0 <= v <= 1.0 for v in box):
        raise ToolError(
            f"box values must be fractions of the width and height from 0 to 1, got {shown(list(box))}; for pixel "
            f"coordinates divide x by the width and y by the height (this image is {size[0]}x{size[1]})."
        )
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x0 < x1 and y0 < y1):
        raise ToolError(f"box must have x0 < x1 and y0 < y1, got {shown(list(box))}.")
    if x1 - x0 < MIN_BOX or y1 - y0 < MIN_BOX:
        raise ToolError(f"box is too small: it must be at least {MIN_BOX} wide and high, got {shown(list(box))}.")
    return x0, y0, x1, y1


def _target_size(ctx: ToolContext, height: int, width: int) -> tuple[int, int]:
    """Scale (height, width) to fill ``max_pixels``, then round to the factor within the budget."""
    scale = math.sqrt(ctx.max_pixels / (height * width))
    try:
        return smart_resize(
            max(1, round(height * scale)),
            max(1, round(width * scale)),
            factor=ctx.factor,
            min_pixels=ctx.min_pixels,
            max_pixels=ctx.max_pixels,
        )
    except ValueError as e:  # e.g. an extreme aspect ratio
        raise ToolError(f"This region cannot be shown: {e}. Choose a less elongated box.") from e


# The line the judge's prompt gives this tool ("call crop to ..."; `agent.tools.tool_use_prompt`).
crop.hint = "zoom into a region of an image or frame"
