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

from mmreward.models.families import FAMILIES as BACKBONE_FAMILIES

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


# The family table (model type, patch size, shipped chat template, …) is `models.families.FAMILIES`; how each
# family's tiny config and processor are built is `models.tiny_families.BUILDERS`.
FAMILIES = BACKBONE_FAMILIES

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
    """Return the text of a family's shipped chat template, offline.

    TRL ships most of them (`trl/chat_templates/<name>`); the ones it does not (InternVL) are kept in
    `mmreward/agent/templates/`, copied from the converter that wrote the hub checkpoints.

    Args:
        name: file name, e.g. "qwen2_5_vl.jinja".

    Returns:
        The template text, byte-identical to the one in the real model repository.
    """
    import trl

    for folder in (Path(trl.__file__).parent / "chat_templates", Path(__file__).parents[1] / "agent" / "templates"):
        if (folder / name).is_file():
            return (folder / name).read_text(encoding="utf-8")
    raise FileNotFoundError(f"chat template {name} is shipped neither by this trl version nor by mmreward; "
                            "upgrade trl")


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


def build_tokenizer(seed_vocab_size: int = 1024, kind: str = "qwen2", extra_special: dict | None = None,
                    corpus: tuple[str, ...] = (), words: tuple[str, ...] = ()):
    """Train a byte-level BPE tokenizer with the family's pre-tokenizer and add the real Qwen special tokens.

    Args:
        seed_vocab_size: BPE vocabulary size before the added tokens.
        kind: "qwen2" (`Qwen2Tokenizer`: Qwen2/2.5/3-VL, InternVL) or "qwen3_5" (`Qwen3_5Tokenizer`, its own
            pre-tokenizer regex).
        extra_special: named special tokens added after the Qwen ones, as the family's hub tokenizer carries
            them (InternVL: `{"start_image_token": "<img>", …}`); the processor reads them by name.
        corpus: more training text (e.g. the tool schemas and prompts a demo shows), so that its words are
            single tokens as in a real vocabulary rather than a few bytes each.
        words: strings added as whole tokens (matched anywhere in the text), e.g. a demo's time values.

    Returns:
        The tokenizer class the real checkpoints of the family load.
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
    if kind == "qwen3_5":
        from transformers.models.qwen3_5.tokenization_qwen3_5 import PRETOKENIZE_REGEX
        from transformers.models.qwen3_5.tokenization_qwen3_5 import Qwen3_5Tokenizer as TokenizerClass
    else:
        from transformers import Qwen2Tokenizer as TokenizerClass
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
    bpe.train_from_iterator(_corpus() + list(corpus), trainer=trainer)
    vocab = bpe.get_vocab()
    # Read merges back from the serialised model: the Python BPE object does not expose them directly.
    state = json.loads(bpe.to_str())
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in state["model"]["merges"]]
    tok = TokenizerClass(vocab=vocab, merges=merges, errors="replace", model_max_length=32768)
    tok.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]}
    )
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TEXT_ADDED_TOKENS])
    if words:
        tok.add_tokens([AddedToken(w, special=False, normalized=False) for w in dict.fromkeys(words)])
    if extra_special:
        # Named tokens (tokenizer.start_image_token, …), saved in tokenizer_config.json as the hub tokenizer has
        # them; transformers 5 registers names only through this (the from_pretrained path calls it too).
        tok._set_model_specific_special_tokens(dict(extra_special))
        tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in dict.fromkeys(extra_special.values())],
                       special_tokens=True)
    tok.eos_token = "<|im_end|>"
    tok.pad_token = "<|endoftext|>"
    return tok


def make_tiny_vlm(out_dir: str | Path, family: str = "qwen2_5_vl", seed: int = 0, size: str = "tiny",
                  vocab_size: int = 1024, corpus: tuple[str, ...] = (), words: tuple[str, ...] = (),
                  tie_embeddings: bool = False) -> Path:
    """Write a complete tiny random-weight checkpoint directory for one Qwen-VL family.

    Args:
        out_dir: directory to write (created; existing files are overwritten).
        family: one of `FAMILIES` ("qwen2_vl", "qwen2_5_vl", "qwen3_vl").
        seed: seed for the random weights; the same seed gives byte-identical weights.
        size: "tiny" (tests) or "small" (the demo), see `SIZES`.
        vocab_size, corpus, words: BPE vocabulary size, extra training text and whole-string tokens of the
            tokenizer (`build_tokenizer`); the judge demo trains it on its prompts and tool schemas, so sequences
            are as short as with the real vocabulary.
        tie_embeddings: share the input embedding and the LM head (as Qwen2-VL-2B and Qwen2.5-VL-3B do). A model
            trained from scratch then copies a token from its context by attending to it, since the head already
            scores the token it reads (the judge demo needs that to copy the prompt's time or place into its calls).

    Returns:
        The checkpoint directory, loadable with `AutoModelForImageTextToText.from_pretrained`.
    """
    import torch
    from transformers import AutoModelForImageTextToText, GenerationConfig

    from mmreward.models.tiny_families import BUILDERS

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    spec, builder = FAMILIES[family], BUILDERS[family]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    template = shipped_chat_template(spec.chat_template)

    tokenizer = build_tokenizer(vocab_size, kind=builder.tokenizer, extra_special=builder.extra_special,
                                corpus=tuple(corpus), words=tuple(words))
    tokenizer.chat_template = template
    config = builder.config(spec, tokenizer, SIZES[size])
    if tie_embeddings:
        config.tie_word_embeddings = True
        if getattr(config, "text_config", None) is not None:
            config.text_config.tie_word_embeddings = True
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tokenizer.pad_token_id, do_sample=False,
    )
    model.save_pretrained(out)
    builder.processor(spec, tokenizer, template).save_pretrained(out)
    logger.info("wrote tiny %s checkpoint (%d parameters) to %s", family, model.num_parameters(), out)
    return out
