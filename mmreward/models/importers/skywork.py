"""Skywork-VL-Reward (Skywork/Skywork-VL-Reward-7B): a VLM + TRL's value head read at the last token.

Published layout: a complete transformers model folder (Qwen2.5-VL-7B-Instruct architecture for the 7B release:
config.json, safetensors, processor and chat template) plus `value_head.safetensors` holding TRL's
`v_head.summary.weight` (1, H) and `v_head.summary.bias` (1,). (The issue named it InternVL-based; the model card
and its config say Qwen2.5-VL. The importer takes any supported family, so an InternVL one loads the same way.)

The model card's forward, reproduced: messages [user: image(s), question; assistant: response] through the
processor's chat template without a generation prompt; `AutoModelForCausalLMWithValueHead` applies
`summary` (a Linear with bias; dropout is off in eval) to the last hidden state, and the reward is the value at
`attention_mask.sum() - 1`: the last real token (the "\\n" after `<|im_end|>`), with right padding. That is a stock
head `RewardModel` (pooling "last", head "linear", template "plain": the question as the user text, media
first, the response as the assistant turn), so the import is one: it scores, evaluates, saves and fine-tunes as
ours. Images use the processor's own pixel budget, as the card's `process_vision_info` defaults do.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mmreward.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

VALUE_HEAD = "value_head.safetensors"
_KEYS = ("v_head.summary.weight", "v_head.summary.bias")


def detect(path: Path) -> bool:
    """Whether `path` is a model folder with TRL's value head beside it (file names only)."""
    return (path / "config.json").is_file() and (path / VALUE_HEAD).is_file()


def _value_head_file(source: str) -> Path:
    """value_head.safetensors of a local folder or of a hub model in the local cache (or downloadable)."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        file = folder / VALUE_HEAD
        if not file.is_file():
            raise CheckpointError(f"{folder}: no {VALUE_HEAD}; a Skywork-VL-Reward folder holds TRL's value head "
                                  "beside the model (without it this is a plain VLM: --scorer yes_token or judge)")
        return file
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(source, VALUE_HEAD))
    except Exception as err:  # noqa: BLE001 - offline, gated, missing: each means the file is not available
        raise CheckpointError(f"{source}: cannot get {VALUE_HEAD} ({type(err).__name__}); download the model "
                              "folder where the hub is reachable and pass the folder") from None


class SkyworkVLReward:
    """Registry entry for kind "skywork_vl": loads the published folder as a head `RewardModel`."""

    kind = "skywork_vl"

    @classmethod
    def from_source(cls, path_or_id: str | Path, *, mode: str | None = None, **kwargs):
        """`load_scorer(path, kind="skywork_vl")`; see `import_skywork_vl`."""
        if mode is not None:
            raise ConfigError(f"{path_or_id}: a value-head reward model has no scoring mode; drop --mode")
        return import_skywork_vl(path_or_id, **kwargs)

    # A published folder has no mmreward config; a saved import records kind "head" and loads as one.
    from_pretrained = from_source


def import_skywork_vl(path_or_id: str | Path, *, dtype="auto", attn_implementation: str = "auto", device=None,
                      media=None):
    """Load Skywork-VL-Reward (or any supported VLM with TRL's value head) as a head `RewardModel`.

    Args:
        path_or_id: the model folder (or a hub id in the local cache).
        dtype, attn_implementation, device: as in `load_vlm`.
        media: a media contract to score with instead of the processor's own budgets.

    Returns:
        A `RewardModel` (kind "head", one dimension "overall"); `save_pretrained` writes a mmreward checkpoint.

    Raises:
        CheckpointError: no value head, a value head of the wrong shape, or a model that cannot be loaded.
    """
    import torch

    from mmreward.models.backbone import family_of, inner_model, load_vlm
    from mmreward.models.checkpoint import load_safetensors
    from mmreward.models.heads import LinearHead
    from mmreward.models.reward_model import RewardModel, RewardModelConfig

    source = str(path_or_id)
    file = _value_head_file(source)
    state = load_safetensors(file)
    backbone, processor = load_vlm(source, dtype=dtype, attn_implementation=attn_implementation, device=device)
    hidden = inner_model(backbone).config.text_config.hidden_size
    shapes = {k: tuple(state[k].shape) for k in _KEYS if k in state}
    if shapes != {_KEYS[0]: (1, hidden), _KEYS[1]: (1,)}:
        raise CheckpointError(f"{file}: expected {_KEYS[0]} (1, {hidden}) and {_KEYS[1]} (1,), got {shapes or 'neither'}")
    head = LinearHead(hidden, 1)
    with torch.no_grad():
        head.fc.weight.copy_(state[_KEYS[0]].float())
        head.fc.bias.copy_(state[_KEYS[1]].float())
    config = RewardModelConfig(backbone=source, model_type=family_of(backbone.config).model_type, head="linear",
                               pooling="last", dimensions=["overall"], prompt_template="plain",
                               media=media.to_dict() if media is not None else {})
    model = RewardModel(backbone, processor, config, head=head)
    logger.info("imported %s (value head %s) as a head reward model", source, file.name)
    return model.to(next(backbone.parameters()).device)
