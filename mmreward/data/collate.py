"""From records to model inputs: scoring units, media loading under the sampling contract, the processor call,
the token-budget guard, and padding units into a batch.

A *unit* is one sequence the model reads (e.g. "the prompt and candidate A"). Units carry a key that identifies
everything that determines the sequence, so a video that appears in three pairs is decoded and encoded once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field

import torch

from mmreward.data.media import MediaError, VideoArray, VideoSampling, load_image, load_video
from mmreward.data.schema import MediaItem
from mmreward.errors import DataError

logger = logging.getLogger(__name__)


class TokenBudgetError(DataError):
    """A sequence does not fit `max_length` even after the allowed resampling."""


# Frames per video for LLaVA-OneVision when neither the caller nor the processor names a count: the 32 its
# evaluations (lmms-eval) sample uniformly.
LLAVA_ONEVISION_FRAMES = 32


@dataclass
class MediaContract:
    """How images and videos become pixels; saved in checkpoints so scoring matches training.

    The video part is the *video sampling contract* (fps or frame count, pixel budgets, decoder).
    """

    # Frame sampling and per-frame / total pixel budgets for videos (qwen-vl-utils semantics).
    video: VideoSampling = field(default_factory=VideoSampling)
    # Per-image pixel budget; images are resized with smart_resize to a multiple of `video.factor`.
    image_min_pixels: int = 4 * 28 * 28
    image_max_pixels: int = 1280 * 28 * 28

    def to_dict(self) -> dict:
        return {"video": self.video.to_dict(), "image_min_pixels": self.image_min_pixels,
                "image_max_pixels": self.image_max_pixels}

    @classmethod
    def from_dict(cls, obj: dict) -> MediaContract:
        return cls(video=VideoSampling.from_dict(obj["video"]), image_min_pixels=obj["image_min_pixels"],
                   image_max_pixels=obj["image_max_pixels"])

    @classmethod
    def from_processor(cls, processor, factor: int, *, fps: float | None = 2.0,
                       nframes: int | None = None) -> MediaContract:
        """The processor's own pixel budgets, with the given frame sampling."""
        image = processor.image_processor.size
        video = processor.video_processor.size
        vp = processor.video_processor
        if "height" in image:
            return cls._from_tiles(processor, factor, fps=fps, nframes=nframes)
        sampling = VideoSampling.qwen_defaults(
            factor, fps=None if nframes else fps, nframes=nframes, min_frames=vp.min_frames,
            max_frames=vp.max_frames, min_pixels=video["shortest_edge"], max_pixels=video["longest_edge"],
        )
        return cls(video=sampling, image_min_pixels=image["shortest_edge"], image_max_pixels=image["longest_edge"])

    @classmethod
    def _from_tiles(cls, processor, factor: int, *, fps: float | None, nframes: int | None) -> MediaContract:
        """Budgets of a tiling processor (InternVL: fixed square tiles): an image keeps up to `max_patches` tiles
        of detail, a video frame one tile (the processor resizes every frame to it)."""
        tile = processor.image_processor.size["height"] * processor.image_processor.size["width"]
        frame = processor.video_processor.size["height"] * processor.video_processor.size["width"]
        max_tiles = getattr(processor.image_processor, "max_patches", None) or 1
        pinpoints = getattr(processor.image_processor, "image_grid_pinpoints", None)
        if pinpoints:
            # LLaVA-OneVision (anyres): an image keeps detail up to the largest grid resolution; every video has
            # the same number of frames, as the model stacks a batch's videos into one tensor.
            max_tiles = max(h * w for h, w in pinpoints) // tile
            if nframes is None:
                nframes = getattr(processor.video_processor, "num_frames", None) or LLAVA_ONEVISION_FRAMES
                logger.info("LLaVA-OneVision samples a fixed %d frames per video (not %s fps)", nframes, fps)
        sampling = VideoSampling.qwen_defaults(factor, fps=None if nframes else fps, nframes=nframes,
                                               min_pixels=frame, max_pixels=frame)
        return cls(video=sampling, image_min_pixels=tile, image_max_pixels=max_tiles * tile)


def override_contract(saved: MediaContract, override: MediaContract | None, where: str) -> MediaContract:
    """Use `override` instead of a checkpoint's contract, warning about every field that differs.

    Args:
        saved: the contract recorded at training time.
        override: the one the caller asks for (None keeps `saved`).
        where: the checkpoint, for the message.

    Returns:
        The contract to score with.
    """
    if override is None:
        return saved
    a, b = saved.to_dict(), override.to_dict()
    diffs = [f"video.{k}: {a['video'][k]} -> {b['video'][k]}" for k in a["video"] if a["video"][k] != b["video"][k]]
    diffs += [f"{k}: {a[k]} -> {b[k]}" for k in a if k != "video" and a[k] != b[k]]
    if diffs:
        logger.warning("%s: scoring with a media contract that differs from the one it was trained with (%s); "
                       "scores may be miscalibrated", where, "; ".join(diffs))
    return override


@dataclass
class Unit:
    """One sequence to score: chat messages plus the media they reference, in placeholder order."""

    key: str
    record_id: str
    messages: list[dict]
    media: list[MediaItem]
    # Whether the last message is an assistant response (its tokens form the response mask).
    has_response: bool


def _media_identity(item: MediaItem) -> list:
    key = item.cache_key()
    return [item.type, list(key) if isinstance(key, tuple) else key, item.start, item.end, item.fps]


def build_unit(record_id: str, *, user_text: str, media: list[MediaItem], system: str | None = None,
               response: str | None = None, extra_key: str = "") -> Unit:
    """Chat messages for one sequence: [system] user(media…, text) [assistant(response)].

    Args:
        record_id: the record the unit comes from (for error messages).
        user_text: the rendered user text (placed after the media, as the Qwen cards do).
        media: images / videos / frame lists shown in the user turn, in order.
        system: optional system prompt.
        response: optional assistant text (the candidate response).
        extra_key: anything else that changes the sequence (e.g. the template name).

    Returns:
        The `Unit`, keyed by everything that determines its tokens.
    """
    content = [{"type": "image" if m.type == "image" else "video"} for m in media]
    content.append({"type": "text", "text": user_text})
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": content})
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    identity = [system, user_text, response, extra_key, [_media_identity(m) for m in media]]
    key = hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return Unit(key=key, record_id=record_id, messages=messages, media=list(media),
                has_response=response is not None)


def candidate_kind(media: list[MediaItem]) -> str:
    """"video", "image" or "response": what a candidate is, for prompt templates."""
    types = {m.type for m in media}
    if types & {"video", "frames"}:
        return "video"
    return "image" if "image" in types else "response"


def candidate_unit(record, candidate, template: str, *, suffix: str = "", extra_key: str = "") -> Unit:
    """The unit "record prompt + shared media + this candidate" (candidate media shown after shared media).

    Args:
        record: a `PreferencePair` or `PointwiseRecord`.
        candidate: a `Candidate` (its text becomes the assistant response, its media join the user turn).
        template: a `prompts.HEAD_TEMPLATES`-style template with {prompt} and {kind}.
        suffix: text appended to the user text (e.g. special reward tokens).
        extra_key: folded into the unit key.

    Returns:
        The `Unit`.
    """
    from mmreward.prompts import render

    kind = candidate_kind(candidate.media)
    user_text = render(template, prompt=record.prompt, kind=kind) + suffix
    return build_unit(record.id, user_text=user_text, media=[*record.media, *candidate.media],
                      system=record.system, response=candidate.text, extra_key=extra_key)


def media_source(item: MediaItem):
    """What `load_image` / `load_video` accept for a schema media item: a path, bytes, a frame list, a URL, or
    in-memory media (an image array / PIL image as is; a video array as a `VideoArray` carrying its fps)."""
    if item.array is not None:
        return item.array if item.type == "image" else VideoArray(item.array, item.fps)
    if item.frames is not None:
        return [str(p) for p in item.frame_paths()]
    if item.path is not None:
        return str(item.local_path())
    if item.bytes is not None:
        return item.data()
    return item.url


def load_unit_media(unit: Unit, contract: MediaContract, nframes: int | None = None):
    """Decode a unit's media under the contract (through the shared media cache).

    Args:
        unit: the unit.
        contract: pixel budgets and frame sampling.
        nframes: override the frame count (used by the token-budget guard's resampling).

    Returns:
        (images, videos): lists of PIL images and `Video`s in placeholder order.
    """
    images, videos = [], []
    for item in unit.media:
        source = media_source(item)
        if item.type == "image":
            images.append(load_image(source, min_pixels=contract.image_min_pixels,
                                     max_pixels=contract.image_max_pixels, factor=contract.video.factor))
            continue
        sampling = contract.video
        if nframes is not None:
            sampling = VideoSampling(**{**asdict(sampling), "fps": None, "nframes": nframes})
        kwargs = {"frames_fps": item.fps} if item.type == "frames" and item.fps else {}
        videos.append(load_video(source, sampling=sampling, start=item.start, end=item.end, **kwargs))
    return images, videos


def _processor_kwargs(processor, images, videos, family, contract: MediaContract) -> dict:
    kwargs: dict = {}
    if family.media_kind == "llava_onevision":
        # One sample: with several images the processor and the model both switch from anyres tiles to one base
        # tile per image (LLaVA-OneVision's multi-image mode), which a flat list would not tell them.
        if images:
            kwargs["images"] = [images]
        if videos:
            kwargs["videos"] = [v.frames for v in videos]
        return kwargs
    if family.media_kind == "internvl":
        # Tiling processors take the media as loaded (within the contract's budget) and cut their own tiles; the
        # frames were sampled by the media path, so the processor must not sample again.
        if images:
            kwargs["images"] = images
        if videos:
            kwargs["videos"] = [v.frames for v in videos]
            kwargs["videos_kwargs"] = {"do_sample_frames": False}
        return kwargs
    if images:
        kwargs["images"] = images
        kwargs["images_kwargs"] = {"size": {"shortest_edge": contract.image_min_pixels,
                                            "longest_edge": contract.image_max_pixels}}
    if videos:
        from transformers.video_utils import VideoMetadata

        kwargs["videos"] = [v.frames for v in videos]
        # The media path already sampled and resized the frames; the processor must not resample them.
        vk: dict = {"do_sample_frames": False,
                    "size": {"shortest_edge": contract.video.min_pixels, "longest_edge": contract.video.max_pixels}}
        # The media path already applied qwen-vl-utils' total-pixel cap; the processor must not cap again
        # (transformers 5.x versions that still take this switch warn when it is unset).
        if "cap_pixels_per_frame" in processor.video_processor.valid_kwargs.__annotations__:
            vk["cap_pixels_per_frame"] = False
        if family.video_fps_kwarg:
            # A scalar for the processor; per-video values are written into second_per_grid_ts afterwards.
            vk["fps"] = float(videos[0].fps)
        if family.video_metadata:
            vk["video_metadata"] = [
                VideoMetadata(total_num_frames=v.total_frames, fps=v.native_fps, duration=v.duration,
                              frames_indices=list(v.indices), height=v.frames.shape[-2], width=v.frames.shape[-1])
                for v in videos
            ]
        kwargs["videos_kwargs"] = vk
    return kwargs


def vision_token_count(encoding: dict, merge_size: int = 2) -> int:
    """Vision placeholder tokens implied by `image_grid_thw` / `video_grid_thw`: (t*h*w) / merge_size**2 each."""
    total = 0
    for key in ("image_grid_thw", "video_grid_thw"):
        if key in encoding:
            total += int(encoding[key].prod(dim=-1).sum()) // (merge_size * merge_size)
    return total


def _response_mask(input_ids: torch.Tensor, tokenizer, has_response: bool, family) -> torch.Tensor:
    """(1, T) mask of the assistant response's content tokens (between the last assistant header and the
    family's end-of-turn marker)."""
    mask = torch.zeros_like(input_ids)
    if not has_response:
        return mask
    ids = input_ids[0].tolist()
    start_id = tokenizer.convert_tokens_to_ids(family.turn_start)
    end_id = tokenizer.convert_tokens_to_ids(family.turn_end)
    header = len(tokenizer(family.assistant_header[len(family.turn_start):], add_special_tokens=False)["input_ids"])
    starts = [i for i, t in enumerate(ids) if t == start_id]
    begin = starts[-1] + 1 + header
    ends = [i for i, t in enumerate(ids) if t == end_id and i >= begin]
    mask[0, begin:ends[0] if ends else len(ids)] = 1
    return mask


def encode_unit(unit: Unit, processor, family, contract: MediaContract, *, max_length: int | None = None,
                on_overflow: str = "error") -> dict:
    """Load a unit's media and run the processor, never truncating inside an image or video span.

    Args:
        unit: the unit to encode.
        processor: the backbone's `AutoProcessor`.
        family: the backbone's `Family` (video kwargs differ per family).
        contract: the media contract.
        max_length: token budget per sequence (None: no limit).
        on_overflow: "error" raises `TokenBudgetError`; "resample" halves the video frame count until it fits.

    Returns:
        Processor outputs for one row (`input_ids`: (1, T), …) plus `response_mask`: (1, T).
    """
    nframes = None
    while True:
        images, videos = load_unit_media(unit, contract, nframes)
        add_prompt = not unit.has_response
        text = processor.apply_chat_template(unit.messages, tokenize=False, add_generation_prompt=add_prompt)
        enc = dict(processor(text=[text], return_tensors="pt", **_processor_kwargs(processor, images, videos, family,
                                                                                     contract)))
        if family.video_fps_kwarg and videos:
            # M-RoPE time per temporal patch (2 frames) of each video, from its own sampling rate.
            temporal = processor.video_processor.temporal_patch_size
            enc["second_per_grid_ts"] = torch.tensor([temporal / v.fps for v in videos])
        length = enc["input_ids"].shape[1]
        if max_length is None or length <= max_length:
            break
        frames = max((v.frames.shape[0] for v in videos), default=0)
        if on_overflow != "resample" or frames <= 2:
            raise TokenBudgetError(
                f"{unit.record_id}: {length} tokens ({vision_token_count(enc)} vision) exceed max_length "
                f"{max_length}; lower the pixel budget or fps, raise max_length, or use on_overflow=resample")
        nframes = max(2, (frames // 2) // 2 * 2)
        logger.warning("%s: %d tokens > max_length %d; resampling videos to %d frames", unit.record_id, length,
                       max_length, nframes)
    enc["response_mask"] = _response_mask(enc["input_ids"], processor.tokenizer, unit.has_response, family)
    return enc


_ROW_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "response_mask")


def pad_batch(encodings: list[dict], pad_token_id: int) -> dict:
    """Right-pad one-row encodings into a batch; concatenate vision tensors in row order.

    Args:
        encodings: outputs of `encode_unit`.
        pad_token_id: the tokenizer's pad id.

    Returns:
        Batch dict: row tensors (B, T_max); `pixel_values*`, `*_grid_thw`, `second_per_grid_ts` concatenated.
    """
    width = max(e["input_ids"].shape[1] for e in encodings)
    batch: dict = {}
    for key in _ROW_KEYS:
        if key not in encodings[0]:
            continue
        fill = pad_token_id if key == "input_ids" else 0
        rows = [torch.nn.functional.pad(e[key], (0, width - e[key].shape[1]), value=fill) for e in encodings]
        batch[key] = torch.cat(rows, dim=0)
    others = {k for e in encodings for k in e} - set(_ROW_KEYS)
    for key in sorted(others):
        parts = [e[key] for e in encodings if key in e]
        batch[key] = torch.cat(_same_shape(key, parts), dim=0)
    return batch


def _same_shape(key: str, parts: list[torch.Tensor]) -> list[torch.Tensor]:
    """Make per-row vision tensors concatenable along the batch dimension.

    LLaVA-OneVision's images are (images, tiles, C, H, W) with as many tiles as the row's largest image needs; the
    model reads only each image's own tiles, so rows are zero-padded to the batch's largest tile count (what its
    processor does within a batch). Its videos are (videos, frames, C, H, W) and every frame becomes tokens, so rows
    with different frame counts cannot share a batch: a `DataError` says so instead of a shape error.
    """
    if len(parts) < 2 or parts[0].dim() != 5 or len({p.shape[1] for p in parts}) == 1:
        return parts
    if key == "pixel_values":
        tiles = max(p.shape[1] for p in parts)
        return [torch.nn.functional.pad(p, (0, 0, 0, 0, 0, 0, 0, tiles - p.shape[1])) for p in parts]
    raise DataError(f"{key}: rows with {sorted({p.shape[1] for p in parts})} frames per video cannot share a "
                    "batch for this model family; sample a fixed number of frames (nframes) for every video")


__all__ = ["MediaContract", "MediaError", "TokenBudgetError", "Unit", "build_unit", "candidate_kind",
           "candidate_unit", "encode_unit",
           "load_unit_media", "media_source", "pad_batch", "vision_token_count"]
