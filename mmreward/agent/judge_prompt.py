"""The judge's first turn: the media it is shown (images, a few labelled frames per video) and the question.

Videos are shown as `initial_frames` frames each (VR-Thinker shows 4 per video), as images labelled with their
timestamps, so the same prompt works for our loop and for TRL's image path in GRPO; the judge can ask for more
frames with `select_frames` (numbered 1..workspace_frames per video).
"""

from __future__ import annotations

from mmreward.agent.tools import tool_use_prompt
from mmreward.prompts import JUDGE_BARE_MEDIA, JUDGE_TEMPLATES, render


def _pil_frames(item, config) -> tuple[list, list[float]]:
    """A video's first-look frames as PIL images, with their timestamps."""
    from PIL import Image

    from mmreward.data.collate import media_source
    from mmreward.data.media import load_video

    kwargs = {"frames_fps": item.fps} if item.type == "frames" and item.fps else {}
    video = load_video(media_source(item), nframes=config.initial_frames, start=item.start, end=item.end,
                       max_pixels=config.image_max_pixels, min_pixels=min(config.image_max_pixels, 4 * 28 * 28),
                       **kwargs)
    frames = [Image.fromarray(f.permute(1, 2, 0).numpy()) for f in video.frames]
    return frames, list(video.timestamps)


def _show(item, label: str | None, config, parts: list, images: list) -> None:
    """Append one media item to the user turn (image parts + label text; no labels when `label` is None)."""
    from mmreward.data.collate import media_source
    from mmreward.data.media import load_image

    if item.type == "image":
        if label is not None:
            parts.append({"type": "text", "text": f"{label}:"})
        parts.append({"type": "image"})
        images.append(load_image(media_source(item), max_pixels=config.image_max_pixels))
        return
    frames, stamps = _pil_frames(item, config)
    if label is not None:
        parts.append({"type": "text", "text": f"{label} ({len(frames)} of its frames):"})
    for frame, t in zip(frames, stamps):
        if label is not None:
            parts.append({"type": "text", "text": f"t={t:.1f}s"})
        parts.append({"type": "image"})
        images.append(frame)


def build_conversation(record, template: str, config) -> tuple[list[dict], list]:
    """Messages and images for a record's first turn.

    Args:
        record: a `PreferencePair` or `PointwiseRecord`.
        template: a key of `prompts.JUDGE_TEMPLATES`.
        config: the judge's `JudgeConfig` (frame counts, pixel budgets, tools).

    Returns:
        (messages, images): the system (if any) and user message, and the PIL images of its placeholders.
    """
    from mmreward.data.schema import PreferencePair

    parts: list[dict] = []
    images: list = []
    # Videos are numbered in the order the tools see them (shared, then A's, then B's), so the label tells the
    # judge which `video` argument of select_frames shows which candidate.
    counter = {"video": 0}
    frames_tool = "select_frames" in config.tools

    def label(item, name: str) -> str | None:
        if template in JUDGE_BARE_MEDIA:  # the template numbers the media itself ("Image 1", "Video 2")
            return None
        if item.type == "image":
            return f"Image {name}"
        counter["video"] += 1
        return f"Video {name} (select_frames video={counter['video']})" if frames_tool else f"Video {name}"

    for item in record.media:
        _show(item, label(item, "shown with both"), config, parts, images)
    values = {"prompt": record.prompt}
    if isinstance(record, PreferencePair):
        for side, cand in (("A", record.a), ("B", record.b)):
            for item in cand.media:
                _show(item, label(item, side), config, parts, images)
        values.update(response_a=record.a.text or "", response_b=record.b.text or "")
    else:
        values["response"] = record.response or ""   # templates that judge an answer (llava_critic_pointwise)
    text = render(JUDGE_TEMPLATES[template], **values)
    if config.tools:
        text += "\n\n" + tool_use_prompt(config.tools, brief=getattr(config, "tool_schema", "full") == "brief")
    parts.append({"type": "text", "text": text})
    messages = [{"role": "system", "content": record.system}] if record.system else []
    messages.append({"role": "user", "content": parts})
    return messages, images
