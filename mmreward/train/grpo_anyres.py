"""TRL 1.16's GRPOTrainer on LLaVA-OneVision (anyres images): the fixes its image path needs.

LLaVA-OneVision's processor returns `pixel_values` (images x anyres tiles x C x H x W, padded to the batch's
most tiles), `image_sizes` and `batch_num_images` (images per sample). The last one decides the view: a sample with
one image gets anyres tiles, a sample with several gets one base tile per image ("multi-image mode"), and the text's
image tokens and the model's features both follow it. TRL 1.16.0 (`trl/trainer/grpo_trainer.py`) breaks on it:

1. **`batch_num_images`** reaches `_get_per_token_logps_and_entropies` among the processor's outputs
   (`_generate_and_score_completions` forwards every key as `**forward_kwargs`), and that method names the image
   inputs it slices per chunk; `batch_num_images` is not one of them: `TypeError: ... unexpected keyword argument
   'batch_num_images'`. This alone stops every image GRPO step, with or without tools.
2. **Grouping.** With tool-returned images TRL stops using the full processor: `_tool_call_loop` (next turn's
   generation) and `_generate_and_score_completions` (log-prob passes) call `image_processor(images=flat_list)`, a
   flat list that LLaVA-OneVision's image processor reads as one sample per image: anyres tiles for every image,
   while the prompt's tokens were counted per sample (a pair's two images: one base tile each) and each tool
   reply's tokens per reply. The features then do not match the image tokens, or (where the counts agree by
   chance) the model sees other pixels than the text was built for.
3. **`token_type_ids`.** With tool images and no `image_grid_thw`, `_generate_single_turn` adds `token_type_ids`
   (marking Qwen's `<|image_pad|>`), which LLaVA-OneVision's `generate` refuses as an unused model kwarg; it finds
   its images by `image_token_id`.
4. **Ragged tiles.** With `environment_factory`, `_tokenize_prompts` tokenizes each prompt alone and concatenates
   the per-prompt `pixel_values` as a list of per-image tensors whose tile counts differ between prompts, which
   `_generate_single_turn` cannot turn into one tensor.

The fix gives every pass one view, the judge's: each image on its own (anyres tiles), as the HF judge episodes
(`agent.generate.hf_generate_fn`) and the SFT trajectories (`train.sft`) show LLaVA-OneVision images, so a
GRPO-trained judge is evaluated on the tokens it was trained on. `single_image_processor` gives TRL a processor
whose image processor treats every image as a sample of its own (so the prompt, each tool reply and TRL's flat
calls count the same tiles), and `AnyresImagesGRPOTrainer` drops `batch_num_images` (then the model tiles every
image, as the text says) and `token_type_ids`, and pads the prompts' tiles into one tensor. The fixes are no-ops
for inputs that do not carry these keys; `tests/train/test_grpo_llava_onevision.py` has a sentinel that fails once
TRL's own trainer runs such a step, so this module can then be reconsidered.
"""

from __future__ import annotations

import copy

import torch
from trl import GRPOTrainer

# Keys of the processor outputs that LLaVA-OneVision's forward / generate must not get here (1. and 3. above).
_NOT_MODEL_INPUTS = ("batch_num_images", "token_type_ids")


def flat_images(images) -> list:
    """A processor's `images` argument as one flat list (nested per-sample lists and None entries flattened)."""
    if images is None or not isinstance(images, (list, tuple)):
        return images
    out = []
    for item in images:
        if isinstance(item, (list, tuple)):
            out.extend(image for image in item if image is not None)
        elif item is not None:
            out.append(item)
    return out


class _SingleImages:
    """Mixin for a LLaVA-OneVision image processor: every image is a sample of its own (anyres tiles)."""

    def preprocess(self, images, **kwargs):
        return super().preprocess(flat_images(images), **kwargs)


def single_image_processor(processor):
    """The processor to hand TRL for LLaVA-OneVision: a shallow copy whose image processor tiles every image alone.

    Args:
        processor: a loaded processor; one whose outputs carry no `batch_num_images` is returned as it is.

    Returns:
        `processor`, or a copy sharing its tokenizer and video processor whose image processor is a subclass (with
        the same class name, so checkpoints TRL writes reload as usual) that flattens nested image lists. The
        caller's processor is not changed.
    """
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is None or "batch_num_images" not in getattr(image_processor, "model_input_names", ()):
        return processor
    if isinstance(image_processor, _SingleImages):
        return processor
    cls = type(image_processor)
    single = copy.copy(image_processor)
    single.__class__ = type(cls.__name__, (_SingleImages, cls), {"__module__": cls.__module__})
    out = copy.copy(processor)
    out.image_processor = single
    return out


def stack_tiles(pixel_values) -> torch.Tensor:
    """Per-image tile tensors (tiles x C x H x W, tile counts may differ) -> one zero-padded images x tiles tensor.

    The model reads only each image's own tiles (`pix_val[:num_patch]`, the count from `image_sizes`), so the padding
    is never seen, as with the processor's own batch padding.
    """
    if isinstance(pixel_values, torch.Tensor):
        return pixel_values
    tiles = [torch.as_tensor(t) for t in pixel_values]
    most = max(t.shape[0] for t in tiles)
    return torch.stack([torch.cat([t, t.new_zeros((most - t.shape[0], *t.shape[1:]))]) for t in tiles])


def anyres_fields(fields: dict) -> dict:
    """Multimodal fields of a batch of prompts as the model takes them: without `batch_num_images` and
    `token_type_ids`, `pixel_values` one tensor (4. above), `image_sizes` one tensor."""
    out = {k: v for k, v in fields.items() if k not in _NOT_MODEL_INPUTS}
    if isinstance(out.get("pixel_values"), (list, tuple)) and out["pixel_values"]:
        out["pixel_values"] = stack_tiles(out["pixel_values"])
    if isinstance(out.get("image_sizes"), (list, tuple)) and out["image_sizes"]:
        out["image_sizes"] = torch.stack([torch.as_tensor(s) for s in out["image_sizes"]])
    return out


class AnyresImagesGRPOTrainer(GRPOTrainer):
    """TRL's GRPOTrainer for LLaVA-OneVision: one view per image in every pass; see the module docstring."""

    def __init__(self, *args, processing_class=None, **kwargs):
        super().__init__(*args, processing_class=single_image_processor(processing_class), **kwargs)

    def _tokenize_prompts(self, prompts: list):
        prompt_ids, images, fields = super()._tokenize_prompts(prompts)
        return prompt_ids, images, anyres_fields(fields)

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        # `has_tool_images` only makes TRL add token type ids (3. above).
        return super()._generate_single_turn(prompt_ids, images, anyres_fields(multimodal_fields), num_generations,
                                             has_tool_images=False)

    def _get_per_token_logps_and_entropies(self, *args, batch_num_images=None, token_type_ids=None, **kwargs):
        # Without `batch_num_images` the model tiles every image on its own: the view the text was built with.
        return super()._get_per_token_logps_and_entropies(*args, **kwargs)
