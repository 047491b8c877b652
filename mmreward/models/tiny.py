"""Tiny random-weight Qwen-VL checkpoints that behave like the real ones, built offline in seconds.

Tests, the demo and CPU smoke runs use these instead of hub downloads. Each checkpoint directory is complete
(config, safetensors weights, generation config, a byte-level BPE tokenizer trained locally that carries the
real Qwen special tokens, the family's shipped chat template byte for byte, image and video processor configs
with the family's real patch size and small pixel budgets), so `AutoProcessor.from_pretrained(dir)` and
`AutoModelForImageTextToText.from_pretrained(dir)` load it exactly as they load `Qwen/Qwen2.5-VL-7B-Instruct`.

    python tools/make_tiny_vlm.py --family qwen2_5_vl --out /tmp/tiny-qwen25vl
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# The Qwen2.5 / Qwen3 added tokens, in the real vocabulary order (ids 151643…151668 in the real models).
# Only the first group is "special" (skipped when decoding); tool and think markers stay visible in text,
# exactly as in the shipped tokenizers.
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)
TEXT_ADDED_TOKENS = (
    "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
)

# Words a reward model's prompts and verdicts use; repeated in the BPE corpus so that each becomes one token
# (with and without a leading space), as in the real vocabulary.
_CORE_WORDS = (
    "yes no Yes No A B tie Tie better worse first second image video frame frames prompt answer response "
    "Answer Response Image Video Is Does the a an of to in on and or with is are it this that which "
    "match matches quality motion visual text alignment overall score reward judge verdict think "
    "red green blue yellow white black circle square triangle left right up down moving static "
    "Output your final <answer> </answer> assistant user system You helpful"
).split()


@dataclass(frozen=True)
class TinySpec:
    """Per-family sizes of a tiny checkpoint. The factor patch_size * 2 is the pixel grid of the family."""

    model_type: str
    patch_size: int
    # Which shipped chat template the family uses (file name in trl/chat_templates/).
    chat_template: str


FAMILIES: dict[str, TinySpec] = {
    "qwen2_vl": TinySpec("qwen2_vl", 14, "qwen2_5_vl.jinja"),
    "qwen2_5_vl": TinySpec("qwen2_5_vl", 14, "qwen2_5_vl.jinja"),
    "qwen3_vl": TinySpec("qwen3_vl", 16, "qwen3_vl.jinja"),
}

@dataclass(frozen=True)
class TinySize:
    """Model dimensions shared by all families. Every code path (GQA, M-RoPE, vision merger, window attention,
    deepstack) is exercised at any size."""

    hidden: int
    heads: int
    kv_heads: int
    layers: int
    intermediate: int
    vision_hidden: int
    vision_heads: int
    vision_depth: int
    # M-RoPE sections (temporal, height, width); they sum to head_dim / 2.
    mrope_section: tuple[int, int, int]


SIZES: dict[str, TinySize] = {
    # Tests: a forward pass in milliseconds.
    "tiny": TinySize(64, 4, 2, 2, 128, 32, 2, 2, (2, 3, 3)),
    # The demo: still seconds per epoch on a 2-core CPU, but enough capacity to learn the synthetic task.
    "small": TinySize(128, 4, 2, 4, 256, 64, 2, 4, (4, 6, 6)),
}


def shipped_chat_template(name: str) -> str:
    """Return the text of a chat template that TRL ships offline (`trl/chat_templates/<name>`).

    Args:
        name: file name, e.g. "qwen2_5_vl.jinja".

    Returns:
        The template text, byte-identical to the one in the real model repository.
    """
    import trl

    path = Path(trl.__file__).parent / "chat_templates" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: chat template not shipped by this trl version; upgrade trl")
    return path.read_text(encoding="utf-8")


def _corpus() -> list[str]:
    """A small deterministic corpus: core words many times, then sentences in the shapes prompts take."""
    words = list(_CORE_WORDS)
    lines = [" ".join(words)] * 50
    lines += [f"{w} {w.lower()} {w.upper()}" for w in words for _ in range(5)]
    lines += [
        'Is the first video better than the second? Answer yes or no.',
        'Does the image match the prompt "a red circle on the left"? Answer yes or no.',
        '{"name": "select_frames", "arguments": {"start": 0.5, "end": 2.0}}',
        '{"name": "crop", "arguments": {"box": [0.1, 0.2, 0.5, 0.6]}}',
        "Overall: A. Visual quality: B. Motion quality: tie. Text alignment: A.",
        "0 1 2 3 4 5 6 7 8 9 10 100 3.14 + - * / ( ) [ ] { } : , . ! ? ' \" \n\t",
    ] * 20
    return lines


def build_tokenizer(seed_vocab_size: int = 1024):
    """Train a byte-level BPE tokenizer with Qwen2's pre-tokenizer and add the real Qwen special tokens.

    Args:
        seed_vocab_size: BPE vocabulary size before the added tokens.

    Returns:
        A `transformers.Qwen2Tokenizer` (the class the real Qwen-VL checkpoints load).
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=seed_vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        special_tokens=[],
    )
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    vocab = bpe.get_vocab()
    # Read merges back from the serialised model: the Python BPE object does not expose them directly.
    state = json.loads(bpe.to_str())
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in state["model"]["merges"]]
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, errors="replace", model_max_length=32768)
    tok.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]}
    )
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TEXT_ADDED_TOKENS])
    tok.eos_token = "<|im_end|>"
    tok.pad_token = "<|endoftext|>"
    return tok


def _model_config(spec: TinySpec, tokenizer, size: TinySize):
    """The family's config class, filled with tiny dimensions and the tokenizer's special token ids."""
    from transformers import Qwen2_5_VLConfig, Qwen2VLConfig, Qwen3VLConfig

    ids = {
        "image_token_id": tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tokenizer.convert_tokens_to_ids("<|vision_end|>"),
    }
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    text = dict(
        vocab_size=len(tokenizer), hidden_size=size.hidden, intermediate_size=size.intermediate,
        num_hidden_layers=size.layers, num_attention_heads=size.heads, num_key_value_heads=size.kv_heads,
        max_position_embeddings=4096, bos_token_id=pad, eos_token_id=eos, pad_token_id=pad,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": list(size.mrope_section)},
    )
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


def _processor(spec: TinySpec, tokenizer, chat_template: str):
    """Image and video processors with the family's patch size and small pixel budgets."""
    from transformers import Qwen2VLImageProcessor

    factor = spec.patch_size * 2
    # Qwen3-VL normalises with mean = std = 0.5; Qwen2/2.5-VL with the OpenAI CLIP statistics (the default).
    norm = {"image_mean": [0.5] * 3, "image_std": [0.5] * 3} if spec.model_type == "qwen3_vl" else {}
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
    if spec.model_type == "qwen3_vl":
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


def make_tiny_vlm(out_dir: str | Path, family: str = "qwen2_5_vl", seed: int = 0, size: str = "tiny") -> Path:
    """Write a complete tiny random-weight checkpoint directory for one Qwen-VL family.

    Args:
        out_dir: directory to write (created; existing files are overwritten).
        family: one of `FAMILIES` ("qwen2_vl", "qwen2_5_vl", "qwen3_vl").
        seed: seed for the random weights; the same seed gives byte-identical weights.
        size: "tiny" (tests) or "small" (the demo), see `SIZES`.

    Returns:
        The checkpoint directory, loadable with `AutoModelForImageTextToText.from_pretrained`.
    """
    import torch
    from transformers import AutoModelForImageTextToText, GenerationConfig

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    spec = FAMILIES[family]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    template = shipped_chat_template(spec.chat_template)

    tokenizer = build_tokenizer()
    tokenizer.chat_template = template
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    config = _model_config(spec, tokenizer, SIZES[size])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tokenizer.pad_token_id, do_sample=False,
    )
    model.save_pretrained(out)
    _processor(spec, tokenizer, template).save_pretrained(out)
    logger.info("wrote tiny %s checkpoint (%d parameters) to %s", family, model.num_parameters(), out)
    return out
