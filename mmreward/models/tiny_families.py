"""How each family's tiny checkpoint is built: its config class at tiny sizes and its processor.

`BUILDERS[model_type]` pairs with the family's entry in `models.families.FAMILIES`; `models.tiny.make_tiny_vlm`
does the rest (tokenizer, seeded weights, generation config, files). A new family is a table entry plus a
builder here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TinyBuilder:
    """The family-specific parts of a tiny checkpoint."""

    # (family, tokenizer, size) -> the transformers config at tiny dimensions.
    config: Callable
    # (family, tokenizer, chat_template) -> the processor (image + video processors, tokenizer, template).
    processor: Callable
    # Tokenizer class: "qwen2" or "qwen3_5" (see `models.tiny.build_tokenizer`).
    tokenizer: str = "qwen2"
    # Named special tokens beyond the Qwen ones (InternVL's image tokens, which its processor reads by name).
    extra_special: dict = field(default_factory=dict)


def _vision_ids(tokenizer) -> dict:
    """The Qwen vision token ids a Qwen-VL config names."""
    return {
        "image_token_id": tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tokenizer.convert_tokens_to_ids("<|vision_end|>"),
    }


def _text_config(tokenizer, size) -> dict:
    """The language model's tiny dimensions and the tokenizer's special ids (shared by every family)."""
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return dict(
        vocab_size=len(tokenizer), hidden_size=size.hidden, intermediate_size=size.intermediate,
        num_hidden_layers=size.layers, num_attention_heads=size.heads, num_key_value_heads=size.kv_heads,
        max_position_embeddings=4096, bos_token_id=pad, eos_token_id=eos, pad_token_id=pad,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": list(size.mrope_section)},
    )


def _qwen_vl_config(spec, tokenizer, size):
    """Qwen2-VL / Qwen2.5-VL / Qwen3-VL configs, filled with tiny dimensions and the tokenizer's special ids."""
    from transformers import Qwen2_5_VLConfig, Qwen2VLConfig, Qwen3VLConfig

    ids = _vision_ids(tokenizer)
    text = _text_config(tokenizer, size)
    if spec.model_type == "qwen2_vl":
        vision = dict(depth=size.vision_depth, embed_dim=size.vision_hidden, hidden_size=size.hidden, mlp_ratio=2,
                      num_heads=size.vision_heads, patch_size=spec.patch_size)
        return Qwen2VLConfig(text_config=text, vision_config=vision, **ids)
    if spec.model_type == "qwen2_5_vl":
        vision = dict(depth=size.vision_depth, hidden_size=size.vision_hidden,
                      intermediate_size=2 * size.vision_hidden, num_heads=size.vision_heads,
                      out_hidden_size=size.hidden, patch_size=spec.patch_size, window_size=112,
                      fullatt_block_indexes=[size.vision_depth - 1])
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids)
    text["head_dim"] = size.hidden // size.heads
    text["rope_parameters"] = dict(text["rope_parameters"], mrope_interleaved=True, rope_theta=5000000.0)
    vision = dict(depth=size.vision_depth, hidden_size=size.vision_hidden, intermediate_size=2 * size.vision_hidden,
                  num_heads=size.vision_heads, out_hidden_size=size.hidden, patch_size=spec.patch_size,
                  num_position_embeddings=256, deepstack_visual_indexes=[size.vision_depth - 1])
    return Qwen3VLConfig(text_config=text, vision_config=vision, **ids)


# Families whose hub checkpoints load a `Qwen3VLProcessor` (frame timestamps in the prompt, patch size 16).
_QWEN3_PROCESSOR = {"qwen3_vl", "qwen3_5", "qwen3_5_moe"}


def _qwen3_5_config(spec, tokenizer, size):
    """Qwen3.5 (dense or MoE): hybrid layers, gated-DeltaNet linear attention with every 4th layer (and the last)
    full attention, partial rotary embedding (M-RoPE on half of each head), and for MoE 4 experts, 2 per token,
    plus the shared expert."""
    from transformers import Qwen3_5Config, Qwen3_5MoeConfig

    text = _text_config(tokenizer, size)
    head_dim = 2 * size.hidden // size.heads
    rotary = 2 * sum(size.mrope_section)
    text.update(
        head_dim=head_dim, linear_num_key_heads=size.kv_heads, linear_num_value_heads=size.heads,
        linear_key_head_dim=size.hidden // size.heads, linear_value_head_dim=size.hidden // size.heads,
        layer_types=["full_attention" if (i + 1) % 4 == 0 or i == size.layers - 1 else "linear_attention"
                     for i in range(size.layers)],
        rope_parameters=dict(text["rope_parameters"], mrope_interleaved=True, rope_theta=10000000.0,
                             partial_rotary_factor=rotary / head_dim),
    )
    vision = dict(depth=size.vision_depth, hidden_size=size.vision_hidden, intermediate_size=2 * size.vision_hidden,
                  num_heads=size.vision_heads, out_hidden_size=size.hidden, patch_size=spec.patch_size,
                  num_position_embeddings=256)
    if spec.model_type == "qwen3_5":
        return Qwen3_5Config(text_config=text, vision_config=vision, **_vision_ids(tokenizer))
    text.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=size.intermediate // 2,
                shared_expert_intermediate_size=size.intermediate // 2)
    return Qwen3_5MoeConfig(text_config=text, vision_config=vision, **_vision_ids(tokenizer))


def _qwen_vl_processor(spec, tokenizer, chat_template: str):
    """Image and video processors with the family's patch size and small pixel budgets."""
    from transformers import Qwen2VLImageProcessor

    factor = spec.patch_size * 2
    qwen3 = spec.model_type in _QWEN3_PROCESSOR
    # Qwen3-VL and Qwen3.5 normalise with mean = std = 0.5; Qwen2/2.5-VL with the OpenAI CLIP statistics (default).
    norm = {"image_mean": [0.5] * 3, "image_std": [0.5] * 3} if qwen3 else {}
    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": 4 * factor * factor, "longest_edge": 64 * factor * factor},
        patch_size=spec.patch_size, temporal_patch_size=2, merge_size=2, **norm,
    )
    video_kwargs = dict(
        size={"shortest_edge": 4 * factor * factor, "longest_edge": 16 * factor * factor},
        patch_size=spec.patch_size, temporal_patch_size=2, merge_size=2, min_frames=4, max_frames=16,
        # The qwen-vl-utils total-pixel bound, so processor and our media path agree on video cost.
        cap_pixels_per_frame=True,
    )
    if qwen3:
        from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor

        video_processor = Qwen3VLVideoProcessor(**video_kwargs, fps=2)
        processor_cls = Qwen3VLProcessor
    else:
        from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

        video_processor = Qwen2VLVideoProcessor(**video_kwargs)
        processor_cls = Qwen2VLProcessor if spec.model_type == "qwen2_vl" else Qwen2_5_VLProcessor
    return processor_cls(
        image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor,
        chat_template=chat_template,
    )


def _internvl_config(spec, tokenizer, size):
    """InternVL3-style: InternViT on 56-pixel tiles (4x4 patches of 14, pixel-shuffled 2x2 -> 4 tokens per tile), a
    two-layer MLP projector, and a Qwen2 language model (InternVL3's LLM is Qwen2.5)."""
    from transformers import InternVLConfig

    text = _text_config(tokenizer, size)
    text.update(model_type="qwen2", rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    vision = dict(hidden_size=size.vision_hidden, num_hidden_layers=size.vision_depth,
                  num_attention_heads=size.vision_heads, intermediate_size=2 * size.vision_hidden,
                  image_size=[_INTERNVL_TILE, _INTERNVL_TILE], patch_size=[spec.patch_size, spec.patch_size],
                  use_absolute_position_embeddings=True, use_mean_pooling=False)
    return InternVLConfig(text_config=text, vision_config=vision, downsample_ratio=0.5,
                          image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
                          image_seq_length=_internvl_tokens_per_tile(spec))


# InternVL3 tiles images into 448-pixel squares; the tiny checkpoint uses 56 (4x4 patches of 14).
_INTERNVL_TILE = 56


def _internvl_tokens_per_tile(spec) -> int:
    """Placeholder tokens per tile: (tile / patch)^2 patches, pixel-shuffled by 0.5 in each direction."""
    return (_INTERNVL_TILE // spec.patch_size) ** 2 // 4


def _internvl_processor(spec, tokenizer, chat_template: str):
    """GotOcr2 image processor (crop to up to 4 tiles + a thumbnail, as InternVL3's dynamic tiling does at 12),
    InternVL video processor (one tile per frame), ImageNet normalisation."""
    from transformers import GotOcr2ImageProcessor, InternVLProcessor, InternVLVideoProcessor

    tile = {"height": _INTERNVL_TILE, "width": _INTERNVL_TILE}
    norm = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
    image_processor = GotOcr2ImageProcessor(size=tile, crop_to_patches=True, min_patches=1, max_patches=4, **norm)
    video_processor = InternVLVideoProcessor(size=tile, **norm)
    return InternVLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor,
                             image_seq_length=_internvl_tokens_per_tile(spec), chat_template=chat_template)


def _llava_onevision_config(spec, tokenizer, size):
    """LLaVA-OneVision: a SigLIP vision tower (no pooling head) on 42-pixel tiles (3x3 patches of 14: odd, like the
    real 27x27, so video pooling rounds up as it does there), a two-layer GELU projector, a learned image-newline
    vector, anyres grid pinpoints of 1-4 tiles a side (so `anyres_max_9` downscales large grids, as on the real
    1-6), and a Qwen2 language model; "full" feature selection from the last layer, as the converter writes it."""
    from transformers import LlavaOnevisionConfig

    text = _text_config(tokenizer, size)
    text.update(model_type="qwen2", rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    vision = dict(model_type="siglip_vision_model", hidden_size=size.vision_hidden,
                  num_hidden_layers=size.vision_depth, num_attention_heads=size.vision_heads,
                  intermediate_size=2 * size.vision_hidden, image_size=_OV_TILE, patch_size=spec.patch_size,
                  vision_use_head=False)
    return LlavaOnevisionConfig(text_config=text, vision_config=vision, image_grid_pinpoints=_ov_pinpoints(),
                                image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                                video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
                                vision_feature_select_strategy="full", vision_feature_layer=-1)


# LLaVA-OneVision's SigLIP reads 384-pixel tiles; the tiny checkpoint uses 42 (3x3 patches of 14).
_OV_TILE = 42
# Frames per video when the caller names no count (the tiny video processor's `num_frames`).
_OV_FRAMES = 4


def _ov_pinpoints() -> list[list[int]]:
    """Anyres resolutions: every grid of 1-4 tiles a side (the real checkpoints: 1-6 tiles of 384)."""
    return [[_OV_TILE * h, _OV_TILE * w] for h in range(1, 5) for w in range(1, 5)]


def _llava_onevision_processor(spec, tokenizer, chat_template: str):
    """LLaVA-OneVision image processor (anyres tiles + the base image, padded to square; mean = std = 0.5, the
    SigLIP statistics the real processors carry), video processor (one tile per frame), 9 tokens per tile."""
    from transformers import (
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    tile = {"height": _OV_TILE, "width": _OV_TILE}
    norm = {"image_mean": [0.5] * 3, "image_std": [0.5] * 3}
    image_processor = LlavaOnevisionImageProcessor(size=tile, image_grid_pinpoints=_ov_pinpoints(), **norm)
    video_processor = LlavaOnevisionVideoProcessor(size=tile, num_frames=_OV_FRAMES, **norm)
    return LlavaOnevisionProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                   video_processor=video_processor,
                                   num_image_tokens=(_OV_TILE // spec.patch_size) ** 2,
                                   vision_feature_select_strategy="full", vision_aspect_ratio="anyres_max_9",
                                   chat_template=chat_template)


BUILDERS: dict[str, TinyBuilder] = {
    "qwen2_vl": TinyBuilder(_qwen_vl_config, _qwen_vl_processor),
    "qwen2_5_vl": TinyBuilder(_qwen_vl_config, _qwen_vl_processor),
    "qwen3_vl": TinyBuilder(_qwen_vl_config, _qwen_vl_processor),
    "qwen3_5": TinyBuilder(_qwen3_5_config, _qwen_vl_processor, tokenizer="qwen3_5"),
    "qwen3_5_moe": TinyBuilder(_qwen3_5_config, _qwen_vl_processor, tokenizer="qwen3_5"),
    "internvl": TinyBuilder(_internvl_config, _internvl_processor, extra_special={
        "start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
        "video_token": "<video>"}),
    "llava_onevision": TinyBuilder(_llava_onevision_config, _llava_onevision_processor, extra_special={
        "image_token": "<image>", "video_token": "<video>"}),
}
