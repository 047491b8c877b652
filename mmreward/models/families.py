"""The family table: everything model-specific about each supported VLM family, in one place.

    family = family_of(model.config)          # FAMILIES[config.model_type], or a CheckpointError listing them
    family.turn_end, family.tool_format, family.lora_targets, family.vision_modules, family.chat_template

Turn markers, tool-call format, chat template (and its tool-capable replacement), vision-tower accessor, LoRA
targets and the media interface are read from here by collate, protocol, generation, rewards, LoRA and the tiny
builders, so the rest of the code never branches on model names. A new family is one entry in `FAMILIES` plus its
tiny builder in `models/tiny_families.py`. Light to import (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass

from mmreward.errors import CheckpointError

# LoRA on the language model's linear layers only (the vision tower is trained fully or frozen, by config).
DEFAULT_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
# Hybrid models (Qwen3.5) add the gated-DeltaNet projections of their linear-attention layers: the q/k/v stream
# (`in_proj_qkv`), the output gate (`in_proj_z`) and `out_proj` carry as much of the layer as q/k/v/o do in full
# attention. The per-head decay/step gates (`in_proj_a`, `in_proj_b`: hidden -> n_heads) are too narrow for a
# low-rank update to matter, and the MoE router (`mlp.gate`) stays fixed so that routing does not drift; the
# experts are fused 3-D parameters (not `nn.Linear`), so only the shared expert's MLP takes adapters.
HYBRID_LORA_TARGETS = (r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj"
                       r"|in_proj_qkv|in_proj_z|out_proj)")


@dataclass(frozen=True)
class Family:
    """Everything model-specific about one supported VLM family; the rest of the code reads it from here.

    A new family is one entry in `FAMILIES` plus its tiny builder in `models/tiny.py`.
    """

    model_type: str
    # ViT patch size; the pixel grid is patch_size * merge_size (2): 28 for Qwen2/2.5-VL, 32 for Qwen3-VL.
    patch_size: int
    # Qwen3-VL writes frame timestamps into the prompt, so the processor needs per-video metadata
    # (fps and sampled indices) when we hand it frames we sampled ourselves.
    video_metadata: bool
    # Qwen2.5-VL aligns M-RoPE time with seconds and takes the sampling fps (second_per_grid_ts).
    video_fps_kwarg: bool
    # The chat template the family's checkpoints ship: a file in trl/chat_templates/, or in
    # mmreward/agent/templates/ when TRL does not ship it.
    chat_template: str
    # Our tool-capable replacement (mmreward/agent/templates/) when the shipped template cannot render tools;
    # without tools it renders byte for byte what the shipped one renders.
    tools_template: str | None = None
    # Tool-call format inside `<tool_call>` blocks: "hermes" (a JSON object) or "xml" (Qwen3.5's
    # `<function=name><parameter=p>…` blocks); `agent/protocol.py` parses and renders both.
    tool_format: str = "hermes"
    # Turn markers: a turn is `turn_start + role + "\n" … turn_end`.
    turn_start: str = "<|im_start|>"
    turn_end: str = "<|im_end|>"
    # Attribute(s) of the inner HF model that make up the vision encoder (+ merger / projector).
    vision_modules: tuple[str, ...] = ("visual",)
    # peft target_modules regex for LoRA on the language model.
    lora_targets: str = DEFAULT_LORA_TARGETS
    # How media reach the processor: "qwen" (pixel budgets, grid_thw, M-RoPE), "internvl" (448-pixel tiles) or
    # "llava_onevision" (anyres tiles per image, a fixed number of 384-pixel frames per video).
    media_kind: str = "qwen"
    # Whether the shipped template renders a message whose content is a plain string. LLaVA-OneVision's renders
    # only content parts (a string system prompt or reply becomes an empty turn), so `load_processor` gives such a
    # processor the family's `tools_template` (identical on content parts) to render everything with.
    string_content: bool = True

    @property
    def factor(self) -> int:
        return self.patch_size * 2

    @property
    def assistant_header(self) -> str:
        """The text that opens an assistant turn (what a generation prompt ends with, before any prefill)."""
        return f"{self.turn_start}assistant\n"


FAMILIES: dict[str, Family] = {
    "qwen2_vl": Family("qwen2_vl", 14, video_metadata=False, video_fps_kwarg=False,
                       chat_template="qwen2_5_vl.jinja", tools_template="qwen2_vl_tools.jinja"),
    "qwen2_5_vl": Family("qwen2_5_vl", 14, video_metadata=False, video_fps_kwarg=True,
                         chat_template="qwen2_5_vl.jinja", tools_template="qwen2_vl_tools.jinja"),
    "qwen3_vl": Family("qwen3_vl", 16, video_metadata=True, video_fps_kwarg=False, chat_template="qwen3_vl.jinja"),
    # Qwen3.5 / Qwen3.6 (same architectures): hybrid gated-DeltaNet + full attention, natively multimodal, XML tool
    # calls; 4B and larger ship the thinking template (2B and smaller qwen3_5_nothink.jinja, Qwen3.6 qwen3_6.jinja,
    # all read through the same table entry: the template text decides, not the name).
    "qwen3_5": Family("qwen3_5", 16, video_metadata=True, video_fps_kwarg=False,
                      chat_template="qwen3_5_think.jinja", tool_format="xml", lora_targets=HYBRID_LORA_TARGETS),
    "qwen3_5_moe": Family("qwen3_5_moe", 16, video_metadata=True, video_fps_kwarg=False,
                          chat_template="qwen3_5_think.jinja", tool_format="xml", lora_targets=HYBRID_LORA_TARGETS),
    # InternVL3-style (InternViT + pixel-shuffle MLP projector + a Qwen2.5 language model), as transformers'
    # converter writes the "-hf" checkpoints: 448-pixel tiles, 14-pixel patches; its template (the converter's, kept
    # in agent/templates/ as TRL does not ship it) has no tools, so calls use Qwen2.5's Hermes format.
    "internvl": Family("internvl", 14, video_metadata=False, video_fps_kwarg=False, chat_template="internvl3.jinja",
                       tools_template="internvl_tools.jinja", vision_modules=("vision_tower", "multi_modal_projector"),
                       media_kind="internvl"),
    # LLaVA-OneVision (SigLIP + MLP projector + a Qwen2 language model; LLaVA-Critic is this architecture), as
    # transformers' converter writes the "-hf" checkpoints (llava-hf/llava-onevision-qwen2-*-ov-hf): anyres image
    # tiles of 384 plus the base image, video frames as one pooled tile each. Its template (the converter's, kept
    # in agent/templates/ as TRL does not ship it) has no tools and drops string content, so the processor renders
    # with our tool template (identical on content parts; `string_content`) and calls use Qwen2.5's Hermes format.
    # Its `image_newline` (one learned vector after each row of image features) is a parameter, not a module: it is
    # not part of the frozen tower; LoRA leaves it fixed, full fine-tuning trains it with the language model.
    "llava_onevision": Family("llava_onevision", 14, video_metadata=False, video_fps_kwarg=False,
                              chat_template="llava_onevision.jinja", tools_template="llava_onevision_tools.jinja",
                              vision_modules=("vision_tower", "multi_modal_projector"),
                              media_kind="llava_onevision", string_content=False),
}

# The family of text that names none (a bare tokenizer, a completion): every supported family uses these markers.
DEFAULT_FAMILY = FAMILIES["qwen2_5_vl"]


def family_of(config) -> Family:
    """The `Family` entry for a transformers config.

    Args:
        config: a `PretrainedConfig` (or anything with `model_type`).

    Returns:
        The family; an unsupported model type is a `CheckpointError` listing the supported ones.
    """
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        source = getattr(config, "_name_or_path", "") or "the model"
        raise CheckpointError(f"{source}: model type {model_type!r} is not supported; supported: "
                              f"{', '.join(FAMILIES)}")
    return FAMILIES[model_type]
