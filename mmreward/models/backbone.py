"""Load a VLM backbone and its processor: dtype, attention kernel, LoRA, frozen vision tower, checkpointing.

Per-family differences live in the family table (`models/families.py`, re-exported here as `FAMILIES`) so that
the rest of the code never branches on model names. Works for a hub id or a local directory (including the tiny
checkpoints of `models/tiny.py`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from mmreward.errors import CheckpointError, DependencyError
from mmreward.models.families import (  # noqa: F401 - the table is re-exported: callers import it from here
    DEFAULT_FAMILY,
    DEFAULT_LORA_TARGETS,
    FAMILIES,
    HYBRID_LORA_TARGETS,
    Family,
    family_of,
)

logger = logging.getLogger(__name__)


@dataclass
class LoraSpec:
    """LoRA settings (peft)."""

    # Rank of the update matrices.
    r: int = 16
    # Scaling numerator: the update is scaled by alpha / r.
    alpha: int = 32
    # Dropout on the LoRA input.
    dropout: float = 0.05
    # peft target_modules: a regex over module names, or a list of module-name suffixes; None: the family's
    # `lora_targets` (which include the linear-attention projections of hybrid models).
    target_modules: str | list[str] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """Map "auto" to bfloat16 on a CUDA GPU that supports it, float32 otherwise; pass explicit dtypes through."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    names = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
             "fp32": torch.float32, "float32": torch.float32}
    if dtype not in names:
        raise ValueError(f"dtype {dtype!r} not understood; use auto, {', '.join(names)}")
    return names[dtype]


def resolve_attn_implementation(requested: str = "auto") -> str:
    """flash_attention_2 when it is installed and a GPU is present, else sdpa; explicit choices pass through.

    Raises:
        DependencyError: flash_attention_2 / _3 asked for explicitly without the flash-attn package.
    """
    if requested in ("flash_attention_2", "flash_attention_3"):
        module = "flash_attn" if requested == "flash_attention_2" else "flash_attn_interface"
        if importlib.util.find_spec(module) is None:
            raise DependencyError(f"attn_implementation {requested!r} needs flash-attn, which is not installed: "
                                  "pip install 'mmreward[gpu]' (CUDA only), or use attn_implementation sdpa")
    if requested != "auto":
        return requested
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def lora_targets(config, requested: str | list[str] | None = None) -> str | list[str]:
    """The peft `target_modules` for a model: what was asked for, else its family's default.

    Args:
        config: the model's transformers config.
        requested: explicit targets (a regex or a list of module-name suffixes), or None.

    Returns:
        `requested` when given, else `family_of(config).lora_targets`.
    """
    return requested if requested else family_of(config).lora_targets


def vision_tower(model) -> torch.nn.Module:
    """The vision encoder + merger / projector of a (possibly peft-wrapped) model, as one module.

    Which attributes of the inner model make it up is the family's `vision_modules` (Qwen: `visual`; InternVL:
    `vision_tower` and `multi_modal_projector`); several are returned as a `ModuleList` (for freezing and
    parameter listing; it is not a forward path).
    """
    inner = inner_model(model)
    names = family_of(inner.config).vision_modules
    if len(names) == 1:
        return getattr(inner, names[0])
    return torch.nn.ModuleList([getattr(inner, name) for name in names])


def inner_model(model) -> torch.nn.Module:
    """The HF `Qwen*VLModel` (vision + language model, no LM head) inside a generation model or a peft wrapper."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model = model.get_base_model()
    return model.model


def enable_checkpointing(model, kwargs: dict | None = None, **options) -> None:
    """Activation (gradient) checkpointing on a (possibly peft-wrapped) backbone, non-reentrant by default.

    Args:
        model: the backbone.
        kwargs: checkpoint-function kwargs (default {"use_reentrant": False}).
        **options: further options of transformers' `activation_checkpointing_enable` (every_n_layers, offload).
    """
    kwargs = kwargs or {"use_reentrant": False}
    # transformers >= 5.2x renamed the API; older 5.x releases only have gradient_checkpointing_enable.
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if hasattr(base, "activation_checkpointing_enable"):
        base.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs, **options)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    # Needed with frozen embeddings (LoRA) so checkpointed segments still receive gradients.
    model.enable_input_require_grads()


def checkpoint_backbone(scorer, *args, activation_checkpointing_kwargs: dict | None = None,
                        gradient_checkpointing_kwargs: dict | None = None, **options) -> None:
    """Gradient checkpointing of a scorer's backbone layers, under either name transformers calls it by."""
    kwargs = activation_checkpointing_kwargs or gradient_checkpointing_kwargs or (args[0] if args else None)
    enable_checkpointing(scorer.backbone, kwargs, **options)


def apply_lora(model, lora: LoraSpec, *, freeze_vision: bool, trainable_token_ids: list[int] | None = None):
    """Wrap `model` with peft LoRA; the vision tower stays fully trainable unless `freeze_vision`.

    Args:
        model: the HF generation model.
        lora: LoRA settings.
        freeze_vision: keep the vision tower fixed (otherwise it trains fully, as in VideoAlign).
        trainable_token_ids: embedding rows to train (new special reward tokens); all other rows stay fixed.

    Returns:
        The `PeftModel`.
    """
    from peft import LoraConfig, get_peft_model

    extra = {"trainable_token_indices": {"embed_tokens": list(trainable_token_ids)}} if trainable_token_ids else {}
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=lora_targets(model.config, lora.target_modules), bias="none", **extra)
    model = get_peft_model(model, config)
    # peft froze everything but the adapters; VideoAlign-style training keeps the vision tower trainable.
    if not freeze_vision:
        for param in vision_tower(model).parameters():
            param.requires_grad_(True)
    return model


# A Hugging Face repo id: "name" or "namespace/name" (letters, digits, "-", "_", "."; not starting with "." or "-").
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")


def hub_offline() -> bool:
    """Whether Hugging Face downloads are switched off (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE)."""
    from huggingface_hub import constants

    flags = (os.environ.get(name, "").strip().lower() for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return bool(constants.HF_HUB_OFFLINE) or any(flag in ("1", "true", "yes", "on") for flag in flags)


def resolve_model(name_or_path: str | Path) -> str:
    """Check a model reference before transformers sees it, so a mistake gets a message that says what is wrong.

    Args:
        name_or_path: a local model folder, or a hub id ("Qwen/Qwen2.5-VL-7B-Instruct").

    Returns:
        The folder (as given) or the hub id, which is in the local cache or may be downloaded.

    Raises:
        CheckpointError: the folder does not exist (or is a file); a hub id that is not cached while offline.
    """
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise CheckpointError(f"{text}: is a file; give the model folder (the one holding config.json)")
    parent = path.parent
    if not _REPO_ID.match(text) or ".." in text or (str(parent) != "." and parent.is_dir()):
        raise CheckpointError(f"{text}: no such folder")
    if _in_hub_cache(text) or not hub_offline():
        return text
    raise CheckpointError(f"{text}: no such folder, and not a model in the local Hugging Face cache; HF_HUB_OFFLINE "
                          "is set, so it was not downloaded. Give a local model folder, or download it where the "
                          "network is reachable (unset HF_HUB_OFFLINE)")


def _in_hub_cache(repo_id: str) -> bool:
    """Whether the hub model's config.json is in the local Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # not a valid repo id after all
        return False


def load_model_config(name_or_path: str | Path):
    """The transformers config of a model folder or hub id, with a clear CheckpointError for any mistake."""
    from transformers import AutoConfig

    source = resolve_model(name_or_path)
    if Path(source).is_dir() and not (Path(source) / "config.json").is_file():
        raise CheckpointError(_not_a_vlm(Path(source)))
    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError, KeyError) as err:
        raise _load_error(source, "config.json", err) from err
    config._name_or_path = source
    return config


def load_processor(name_or_path: str | Path):
    """The `AutoProcessor` of a model folder, checkpoint folder or hub id, with a clear CheckpointError."""
    from transformers import AutoProcessor

    source = resolve_model(name_or_path)
    try:
        processor = AutoProcessor.from_pretrained(source)
    except (OSError, ValueError, KeyError) as err:
        raise _load_error(source, "processor and tokenizer", err) from err
    _render_strings(processor)
    return processor


def _render_strings(processor) -> None:
    """Give a processor whose shipped template drops string content (LLaVA-OneVision's renders content parts only,
    so a string system prompt or reply would vanish) its family's tool template, which renders content parts byte
    for byte alike and strings as well. Keyed on the template text, like `agent.protocol.chat_template_for`."""
    from mmreward.models.tiny import shipped_chat_template

    template = getattr(processor, "chat_template", None)
    for family in FAMILIES.values():
        if not family.string_content and template == shipped_chat_template(family.chat_template):
            processor.chat_template = shipped_chat_template(family.tools_template)
            if getattr(processor, "tokenizer", None) is not None:
                processor.tokenizer.chat_template = processor.chat_template


def _not_a_vlm(folder: Path) -> str:
    """Why a local folder without config.json is not a VLM, and what it is instead."""
    from mmreward.models.checkpoint_files import CONFIG_NAME, missing_config_message

    if (folder / CONFIG_NAME).is_file():
        return (f"{folder}: a mmreward checkpoint, not a plain VLM folder; load it with "
                "mmreward.scoring.load_scorer (mmreward score --model DIR), or give its backbone/ folder")
    return missing_config_message(folder)


def _load_error(source: str, what: str, err: BaseException) -> CheckpointError:
    """One clear CheckpointError for a failed transformers / safetensors load of `source`."""
    lines = str(err).strip().splitlines()
    detail = lines[0][:300] if lines else type(err).__name__
    if not Path(source).is_dir():
        return CheckpointError(f"{source}: no such folder, and the Hugging Face hub could not provide it ({detail})")
    return CheckpointError(f"{source}: cannot load the {what} ({detail})")


def load_vlm(
    name_or_path: str | Path,
    *,
    dtype: str | torch.dtype = "auto",
    attn_implementation: str = "auto",
    lora: LoraSpec | dict | None = None,
    freeze_vision: bool = False,
    gradient_checkpointing: bool = False,
    device: str | torch.device | None = None,
    processor_from: str | Path | None = None,
):
    """Load a Qwen2-VL / Qwen2.5-VL / Qwen3-VL generation model and its processor.

    Args:
        name_or_path: hub id (e.g. "Qwen/Qwen2.5-VL-7B-Instruct") or local checkpoint directory.
        dtype: "auto" (bf16 on a capable GPU, else fp32), "bf16", "fp16", "fp32" or a torch dtype.
        attn_implementation: "auto" (flash_attention_2 if installed on CUDA, else sdpa), or any HF value.
        lora: a `LoraSpec` (or its dict) to wrap the model with peft LoRA; None trains/uses all weights.
        freeze_vision: keep the vision tower's weights fixed.
        gradient_checkpointing: trade compute for activation memory during training.
        device: where to put the model (default: CUDA if available, else CPU).
        processor_from: load the processor from here instead (checkpoints keep it beside the weights).

    Returns:
        (model, processor): the HF (or peft-wrapped) model and its `AutoProcessor`.

    Raises:
        CheckpointError: a missing folder, a hub id not available offline, a folder that is not a supported model,
            corrupt weights (the message names the file).
        DependencyError: flash-attn asked for but not installed.
    """
    from safetensors import SafetensorError
    from transformers import AutoModelForImageTextToText

    from mmreward.models.checkpoint_files import check_weights

    source = resolve_model(name_or_path)
    attn = resolve_attn_implementation(attn_implementation)
    config = load_model_config(source)
    family_of(config)  # fail early, with the list of supported families
    if Path(source).is_dir():
        check_weights(Path(source))
    try:
        model = AutoModelForImageTextToText.from_pretrained(source, dtype=resolve_dtype(dtype),
                                                            attn_implementation=attn)
    except (OSError, SafetensorError) as err:
        raise _load_error(source, "weights", err) from err
    processor = load_processor(processor_from or source)
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if freeze_vision:
        for param in vision_tower(model).parameters():
            param.requires_grad_(False)
    if gradient_checkpointing:
        enable_checkpointing(model)
    if lora is not None:
        spec = lora if isinstance(lora, LoraSpec) else LoraSpec(**lora)
        model = apply_lora(model, spec, freeze_vision=freeze_vision)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info("loaded %s (%s): %d / %d parameters trainable", source, config.model_type, trainable, total)
    return model, processor
