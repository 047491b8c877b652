"""Saving and loading the backbone part of a scorer checkpoint (full weights, or a LoRA adapter on a base id).

Shared by the head reward model and the yes-token scorer, so a fix to checkpoint handling lands once.

    backbone/              full backbone weights (HF format)            -- or, with LoRA --
    adapter/               the peft adapter; the base model is the recorded base id or path
    trainable.safetensors  non-LoRA weights trained alongside the adapter (vision tower, new token rows)
    tokenizer/processor files at the top level; mmreward_config.json says which scorer this is
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from mmreward.models.backbone import load_vlm

logger = logging.getLogger(__name__)

CONFIG_NAME = "mmreward_config.json"


def split_state_dict(state_dict: dict | None, prefix: str) -> dict | None:
    """The entries under `prefix.` with the prefix removed (None passes through)."""
    if state_dict is None:
        return None
    return {k[len(prefix) + 1:]: v for k, v in state_dict.items() if k.startswith(prefix + ".")}


def save_backbone(backbone, processor, out: Path, state_dict: dict | None = None) -> None:
    """Write the backbone (adapter + trained extras under LoRA, else full weights) and the processor.

    Args:
        backbone: the HF or peft-wrapped model.
        processor: its processor.
        out: checkpoint directory.
        state_dict: the backbone's full state dict when the live weights are sharded (DeepSpeed ZeRO-3, FSDP):
            Trainer gathers it and it is written instead of the live parameters.
    """
    from peft import PeftModel
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    if isinstance(backbone, PeftModel):
        backbone.save_pretrained(out / "adapter", state_dict=state_dict)
        live = dict(backbone.named_parameters())
        names = [n for n, p in live.items() if p.requires_grad and "lora_" not in n and "trainable_tokens" not in n]
        source = state_dict if state_dict is not None else live
        extra = {n: source[n].detach().cpu().contiguous() for n in names if n in source}
        if extra:
            save_file(extra, out / "trainable.safetensors")
    else:
        backbone.save_pretrained(out / "backbone", state_dict=state_dict)
    processor.save_pretrained(out)


def load_backbone(path: Path, base: str, *, lora: bool, dtype="auto", attn_implementation: str = "auto",
                  device=None, trainable: bool = False):
    """Load what `save_backbone` wrote.

    Args:
        path: checkpoint directory.
        base: the LoRA base model (hub id or path); ignored for full checkpoints.
        lora: whether the checkpoint holds an adapter.
        dtype, attn_implementation, device: as in `load_vlm`.
        trainable: keep LoRA adapters trainable (to continue training).

    Returns:
        (backbone, processor)
    """
    from peft import PeftModel
    from safetensors.torch import load_file

    if not lora:
        return load_vlm(path / "backbone", dtype=dtype, attn_implementation=attn_implementation, device=device,
                        processor_from=path)
    backbone, processor = load_vlm(base, dtype=dtype, attn_implementation=attn_implementation, device=device,
                                   processor_from=path)
    if len(processor.tokenizer) != backbone.get_input_embeddings().num_embeddings:
        backbone.resize_token_embeddings(len(processor.tokenizer))
    backbone = PeftModel.from_pretrained(backbone, path / "adapter", is_trainable=trainable)
    if (path / "trainable.safetensors").is_file():
        result = backbone.load_state_dict(load_file(path / "trainable.safetensors"), strict=False)
        if result.unexpected_keys:
            raise RuntimeError(f"{path}/trainable.safetensors: unexpected keys {result.unexpected_keys[:5]}")
    return backbone, processor


def read_config(path: str | Path) -> dict:
    """The `mmreward_config.json` of a checkpoint directory, with a clear error when it is not one."""
    file = Path(path) / CONFIG_NAME
    if not file.is_file():
        raise FileNotFoundError(f"{path}: not a mmreward checkpoint (no {CONFIG_NAME})")
    return json.loads(file.read_text())


def write_config(path: Path, config: dict) -> None:
    """Write `mmreward_config.json`."""
    (path / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
