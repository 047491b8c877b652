"""TRL 1.16's GRPOTrainer with tool-returned images on a tiling processor (InternVL): the three fixes it needs.

When a tool returns an image (`crop`, `select_frames`), TRL 1.16.0 stops using the full processor for the episode's
images and calls `processing_class.image_processor(images=...)` directly (`_tool_call_loop` for the next turn's
generation, `_generate_and_score_completions` for the log-prob passes). That path was written for Qwen-style
processors (`pixel_values` + `image_grid_thw`) and breaks InternVL's tile-indexed `pixel_values` in three ways:

1. **Tiles.** `InternVLProcessor` tiles every image (its `images_kwargs` default `crop_to_patches=True`), so the
   image tokens TRL writes into the prompt and into each tool reply count `num_patches` tiles per image. The
   direct image-processor call uses the image processor's own default instead, which is `crop_to_patches=False`
   in the checkpoints transformers' converter writes (OpenGVLab/InternVL3-*-hf): one tile per image, and the model
   refuses the batch ("Image features and image tokens do not match"). `tile_consistent_processor` gives TRL a
   copy of the processor whose image processor tiles as the processor does.
2. **`num_patches`.** The direct call returns `num_patches` beside `pixel_values`; TRL forwards every key, so
   `_get_per_token_logps_and_entropies` gets an unexpected `num_patches` (TypeError) and `generate` an unused
   model kwarg (ValueError). `TiledImagesGRPOTrainer` drops it (TRL recovers per-sample tile counts itself, as
   `num_tiles`, and slices `pixel_values` by them).
3. **`token_type_ids`.** With tool images and no `image_grid_thw`, TRL adds `token_type_ids` marking
   `<|image_pad|>` tokens, a Qwen token that InternVL's Qwen2.5 tokenizer also holds but InternVL never uses (its
   image token is `<IMG_CONTEXT>`): an all-zero tensor that `generate` rejects as an unused kwarg. InternVL finds
   its images by `image_token_id` and takes no token types, so the trainer drops them.

Everything else (tile-indexed slicing, shuffling and splitting by `num_tiles`) TRL 1.16 already does for InternVL.
The fixes are no-ops for a TRL that gets this right, and `tests/train/test_grpo_internvl.py` has a sentinel that
fails once TRL's own trainer runs such a step, so this module can then be dropped.
"""

from __future__ import annotations

import copy

from trl import GRPOTrainer

# Keys the direct image-processor call adds that InternVL's forward / generate do not take (see 2. and 3. above).
_NOT_MODEL_INPUTS = ("num_patches", "token_type_ids")


def processor_tiles(processor) -> bool:
    """Whether `processor` tiles images by default (InternVL's `images_kwargs` default `crop_to_patches=True`).

    transformers 5 reads processor-level image defaults from the class attribute `images_kwargs`, and (older
    processors) from `valid_processor_kwargs._defaults`, the latter taking precedence; both are read here.
    """
    images_kwargs = dict(getattr(processor, "images_kwargs", None) or {})
    legacy = getattr(getattr(type(processor), "valid_processor_kwargs", None), "_defaults", None) or {}
    images_kwargs.update(legacy.get("images_kwargs", {}))
    return bool(images_kwargs.get("crop_to_patches", False))


def tile_consistent_processor(processor):
    """The processor to hand TRL: a shallow copy whose image processor tiles as the full processor does.

    Args:
        processor: a loaded processor; one that does not tile by default is returned as it is.

    Returns:
        `processor`, or a copy sharing its tokenizer and video processor whose image processor defaults to
        `crop_to_patches=True` (the same tiles, hence the same number of image tokens, as the processor's
        output). The caller's processor is not changed, so the saved judge keeps its published config.
    """
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is None or not processor_tiles(processor) or getattr(image_processor, "crop_to_patches", True):
        return processor
    tiled = copy.copy(image_processor)
    tiled.crop_to_patches = True
    out = copy.copy(processor)
    out.image_processor = tiled
    return out


class TiledImagesGRPOTrainer(GRPOTrainer):
    """TRL's GRPOTrainer for InternVL-style tiling processors: drops the inputs TRL 1.16.0 adds for tool images
    that the model does not take (`num_patches`, `token_type_ids`); see the module docstring."""

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        fields = {k: v for k, v in multimodal_fields.items() if k not in _NOT_MODEL_INPUTS}
        # `has_tool_images` only makes TRL add token type ids (3. above); InternVL locates images by their token.
        return super()._generate_single_turn(prompt_ids, images, fields, num_generations, has_tool_images=False)

    def _get_per_token_logps_and_entropies(self, *args, num_patches=None, token_type_ids=None, **kwargs):
        return super()._get_per_token_logps_and_entropies(*args, **kwargs)
