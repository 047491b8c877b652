"""Saving and loading the backbone part of a scorer checkpoint (full weights, or a LoRA adapter on a base id).

Shared by the head reward model, the yes-token scorer and the judge, so a fix to checkpoint handling lands once.

    backbone/              full backbone weights (HF format)            -- or, with LoRA --
    adapter/               the peft adapter; the base model is the recorded base id or path
    trainable.safetensors  non-LoRA weights trained alongside the adapter (vision tower, new token rows)
    tokenizer/processor files at the top level; mmreward_config.json says which scorer this is

Completeness: `mmreward_config.json` is the completion marker. Every save removes it first (`begin_save`) and
writes it last, atomically (`write_config`), so a save killed half-way leaves a folder without it, which
`read_config` refuses as an interrupted save instead of loading new weights beside an old head and config.
Every load problem (missing folder, edited config, corrupt or mismatched weights) is one `CheckpointError`
naming the file and what is wrong.
"""

from __future__ import annotations

from pathlib import Path

from mmreward.errors import CheckpointError
from mmreward.models.backbone import load_vlm
from mmreward.models.checkpoint_files import (
    CONFIG_NAME,
    SAVED_PARTS,
    begin_save,
    check_folder,
    check_media,
    check_safetensors,
    check_settings,
    check_weights,
    config_from_dict,
    first_line,
    load_safetensors,
    load_state,
    missing_config_message,
    plain_model_source,
    read_config,
    require_part,
    split_state_dict,
    write_config,
)

__all__ = [
    "CONFIG_NAME", "SAVED_PARTS", "begin_save", "check_folder", "check_media", "check_safetensors",
    "check_settings", "check_weights", "config_from_dict", "first_line", "load_backbone", "load_safetensors",
    "load_state", "missing_config_message", "plain_model_source", "read_config", "require_part",
    "save_backbone", "split_state_dict", "write_config"
]


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

    begin_save(out)
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

    Raises:
        CheckpointError: a part is missing, corrupt, or does not fit the base model (the message names it).
    """
    from peft import PeftModel

    if not lora:
        weights = require_part(path, "backbone")
        check_weights(weights)
        return load_vlm(weights, dtype=dtype, attn_implementation=attn_implementation, device=device,
                        processor_from=path)
    adapter = require_part(path, "adapter")
    check_weights(adapter)
    try:
        backbone, processor = load_vlm(base, dtype=dtype, attn_implementation=attn_implementation, device=device,
                                       processor_from=path)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: holds a LoRA adapter whose base model cannot be loaded: {err}") from err
    if len(processor.tokenizer) != backbone.get_input_embeddings().num_embeddings:
        backbone.resize_token_embeddings(len(processor.tokenizer))
    try:
        backbone = PeftModel.from_pretrained(backbone, adapter, is_trainable=trainable)
    except (RuntimeError, ValueError, KeyError, OSError) as err:
        raise CheckpointError(f"{adapter}: the adapter does not fit its base model {base!r} "
                              f"({first_line(err)})") from err
    if (path / "trainable.safetensors").exists():
        file = path / "trainable.safetensors"
        result = load_state(backbone, file, strict=False)
        if result.unexpected_keys:
            raise CheckpointError(f"{file}: weights for parameters the model does not have "
                                  f"({', '.join(result.unexpected_keys[:3])}, …); was it copied from another checkpoint?")
    return backbone, processor
