"""The discriminative reward model: a VLM backbone + pooling + a reward head, composed (never a copied forward).

Checkpoint layout written by `save_pretrained(dir)`:

    mmreward_config.json   scorer kind, backbone, head, pooling, dimensions, prompt template, media contract
    head.safetensors       head weights
    backbone/ or adapter/  the backbone (see `mmreward.models.checkpoint`), processor files at the top level
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from mmreward.data.collate import MediaContract, candidate_unit, encode_unit, override_contract, pad_batch
from mmreward.errors import CheckpointError
from mmreward.models.backbone import (
    FAMILIES,
    LoraSpec,
    apply_lora,
    checkpoint_backbone,
    family_of,
    inner_model,
    load_vlm,
)
from mmreward.models.checkpoint import (
    CONFIG_NAME,
    check_media,
    check_safetensors,
    config_from_dict,
    load_backbone,
    load_state,
    read_config,
    save_backbone,
    split_state_dict,
    write_config,
)
from mmreward.models.heads import HEADS, POOLS, apply_head
from mmreward.prompts import HEAD_TEMPLATES
from mmreward.scoring_engine import score_records
from mmreward.scoring_media import ScoreMediaMixin
from mmreward.scoring_types import Plan

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class RewardModelConfig:
    """Everything needed to rebuild a reward model and feed it exactly as in training."""

    # Base backbone: hub id or local path (the LoRA base, or where the backbone came from).
    backbone: str
    # transformers model_type of the backbone (a key of backbone.FAMILIES).
    model_type: str
    # Head architecture: a key of heads.HEADS.
    head: str = "two_layer"
    # Inner width of the two-layer head (None: the backbone's hidden size).
    head_inner_size: int | None = None
    # Pooling: a key of heads.POOLS ("last", "mean", "special").
    pooling: str = "last"
    # Named reward dimensions, one head output each.
    dimensions: list[str] = field(default_factory=lambda: ["overall"])
    # Name of the user-turn template in prompts.HEAD_TEMPLATES, and its text (recorded for reproducibility).
    prompt_template: str = "generation"
    prompt_text: str = ""
    # Special reward tokens for pooling "special" (one per dimension), added to the tokenizer.
    reward_tokens: list[str] = field(default_factory=list)
    # The media contract: video sampling (fps / frames, pixel budgets, decoder) and image pixel budgets.
    media: dict = field(default_factory=dict)
    # Token budget per sequence, and what to do beyond it ("error" or "resample" videos to fewer frames).
    max_length: int | None = None
    on_overflow: str = "error"
    # LoRA settings when the backbone is adapted with LoRA (None: full weights saved).
    lora: dict | None = None
    freeze_vision: bool = False
    # Per-dimension (mean, std) applied to raw rewards at scoring time (VideoAlign-style); None: raw rewards.
    normalization: dict[str, list[float]] | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        if self.head not in HEADS:
            raise ValueError(f"head {self.head!r} unknown; choose one of {', '.join(HEADS)}")
        if self.pooling not in POOLS:
            raise ValueError(f"pooling {self.pooling!r} unknown; choose one of {', '.join(POOLS)}")
        if self.prompt_template not in HEAD_TEMPLATES:
            raise ValueError(f"prompt_template {self.prompt_template!r} unknown; "
                             f"choose one of {', '.join(HEAD_TEMPLATES)}")
        if self.pooling == "special" and len(self.reward_tokens) != len(self.dimensions):
            raise ValueError("pooling 'special' needs one reward token per dimension "
                             f"({len(self.dimensions)} dimensions, {len(self.reward_tokens)} tokens)")
        self.prompt_text = self.prompt_text or HEAD_TEMPLATES[self.prompt_template]


class RewardModel(nn.Module, ScoreMediaMixin):
    """backbone + pool + head: `forward(**processor_outputs) -> rewards (B, n_dims)`."""

    kind = "head"

    def __init__(self, backbone: nn.Module, processor, config: RewardModelConfig, head: nn.Module | None = None):
        super().__init__()
        self.backbone = backbone
        self.processor = processor
        self.config = config
        self.family = FAMILIES[config.model_type]
        self.contract = MediaContract.from_dict(config.media) if config.media else \
            MediaContract.from_processor(processor, self.family.factor)
        config.media = self.contract.to_dict()
        hidden = inner_model(backbone).config.text_config.hidden_size
        # The LM head is unused by a head reward model: freeze it (unless tied to the input embeddings) so
        # optimisers skip it and DDP does not wait for its gradients.
        lm_head = backbone.get_output_embeddings()
        if lm_head.weight is not backbone.get_input_embeddings().weight:
            lm_head.requires_grad_(False)
        self.head = head or HEADS[config.head](hidden, len(config.dimensions), config.head_inner_size)
        self.head.to(torch.float32)
        tok = processor.tokenizer
        self.reward_token_ids = [tok.convert_tokens_to_ids(t) for t in config.reward_tokens]

    @property
    def dimensions(self) -> list[str]:
        return self.config.dimensions

    @classmethod
    def build(cls, name_or_path: str | Path, *, head: str = "two_layer", pooling: str = "last",
              dimensions: list[str] | tuple[str, ...] = ("overall",), lora: LoraSpec | dict | None = None,
              freeze_vision: bool = False, gradient_checkpointing: bool = False, dtype="auto",
              attn_implementation: str = "auto", media: MediaContract | None = None,
              prompt_template: str = "generation", reward_tokens: list[str] | None = None,
              head_inner_size: int | None = None, max_length: int | None = None,
              on_overflow: str = "error", device: str | None = None) -> RewardModel:
        """A new reward model on a pretrained backbone, with a freshly initialised head.

        Args mirror `RewardModelConfig` and `load_vlm`; `media` defaults to the processor's budgets at 2 fps.
        """
        backbone, processor = load_vlm(name_or_path, dtype=dtype, attn_implementation=attn_implementation,
                                       freeze_vision=freeze_vision, gradient_checkpointing=gradient_checkpointing,
                                       device=device)
        tokens = list(reward_tokens or [])
        new_ids = []
        if tokens:
            processor.tokenizer.add_special_tokens({"additional_special_tokens": tokens})
            backbone.resize_token_embeddings(len(processor.tokenizer))
            new_ids = [processor.tokenizer.convert_tokens_to_ids(t) for t in tokens]
        spec = None
        if lora is not None:
            spec = lora if isinstance(lora, LoraSpec) else LoraSpec(**lora)
            backbone = apply_lora(backbone, spec, freeze_vision=freeze_vision, trainable_token_ids=new_ids)
        config = RewardModelConfig(
            backbone=str(name_or_path), model_type=family_of(backbone.config).model_type, head=head,
            head_inner_size=head_inner_size, pooling=pooling, dimensions=list(dimensions),
            prompt_template=prompt_template, reward_tokens=tokens, media=media.to_dict() if media else {},
            max_length=max_length, on_overflow=on_overflow, lora=spec.to_dict() if spec else None,
            freeze_vision=freeze_vision,
        )
        model = cls(backbone, processor, config)
        return model.to(next(backbone.parameters()).device)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                response_mask: torch.Tensor | None = None, **vision_inputs) -> torch.Tensor:
        """Rewards for a batch of sequences.

        Args:
            input_ids: (B, T)
            attention_mask: (B, T)
            response_mask: (B, T) candidate-response tokens, used by "mean" pooling.
            **vision_inputs: every other processor output (pixel_values, image_grid_thw, mm_token_type_ids, …),
                passed through untouched: dropping one silently ignores the images in transformers 5.

        Returns:
            rewards: (B, n_dims) float32.
        """
        hidden = inner_model(self.backbone)(input_ids=input_ids, attention_mask=attention_mask,
                                            **vision_inputs).last_hidden_state
        pooled = POOLS[self.config.pooling](hidden.float(), attention_mask=attention_mask, input_ids=input_ids,
                                            response_mask=response_mask, reward_token_ids=self.reward_token_ids)
        return apply_head(self.head, pooled)

    # Trainer calls one of these (the name depends on the transformers release) when checkpointing is on.
    activation_checkpointing_enable = checkpoint_backbone
    gradient_checkpointing_enable = checkpoint_backbone

    # --- Scorer protocol -------------------------------------------------------------------------------------
    def plan(self, record):
        """Units for a record: one per candidate (pairs) or one (pointwise)."""
        import dataclasses

        from mmreward.data.schema import Candidate, PreferencePair

        suffix = "".join(self.config.reward_tokens)
        key = f"head:{self.config.prompt_template}"
        if isinstance(record, PreferencePair):
            return Plan([candidate_unit(record, c, self.config.prompt_text, suffix=suffix, extra_key=key)
                         for c in (record.a, record.b)], "pair")
        cand = Candidate(text=record.response, media=[])
        if record.response is None and record.media:
            # Generated media scored on their own are the candidate ("this image"), worded as in generation
            # pairs; as shared media the template would call them a "response".
            record, cand = dataclasses.replace(record, media=[]), Candidate(media=list(record.media))
        return Plan([candidate_unit(record, cand, self.config.prompt_text, suffix=suffix, extra_key=key)],
                    "pointwise")

    def encoder(self):
        """A picklable unit -> processor-outputs function (runs in DataLoader workers)."""
        return UnitEncoder.for_scorer(self)

    def forward_batch(self, encodings: list[dict]) -> torch.Tensor:
        """Pad encoded units, run the model, apply the stored normalisation: (n, n_dims)."""
        rewards = forward_encodings(self, encodings)
        if self.config.normalization:
            stats = torch.tensor([self.config.normalization[d] for d in self.dimensions], device=rewards.device)
            rewards = (rewards - stats[:, 0]) / stats[:, 1]
        return rewards

    def score(self, records, **kwargs):
        """Score pairs / pointwise records (see `mmreward.scoring.score_records`)."""
        self.eval()
        return score_records(self, records, **kwargs)

    # --- persistence -------------------------------------------------------------------------------------------
    def save_pretrained(self, out_dir: str | Path, state_dict: dict | None = None) -> Path:
        """Write the checkpoint (layout in `mmreward.models.checkpoint`) plus the head weights.

        Args:
            out_dir: checkpoint directory.
            state_dict: this module's gathered full state dict when weights are sharded (ZeRO-3 / FSDP).
        """
        from safetensors.torch import save_file

        out = Path(out_dir)
        save_backbone(self.backbone, self.processor, out, split_state_dict(state_dict, "backbone"))
        head = split_state_dict(state_dict, "head") or self.head.state_dict()
        save_file({k: v.detach().cpu().contiguous() for k, v in head.items()}, out / "head.safetensors")
        write_config(out, {"scorer": self.kind, **asdict(self.config)})
        return out

    @classmethod
    def from_pretrained(cls, path: str | Path, *, dtype="auto", attn_implementation: str = "auto",
                        device: str | None = None, trainable: bool = False,
                        media: MediaContract | None = None) -> RewardModel:
        """Load a checkpoint written by `save_pretrained`; outputs are bit-identical to the saved model's.

        Args:
            path: checkpoint directory.
            dtype, attn_implementation, device: as in `load_vlm`.
            trainable: keep LoRA adapters trainable (to continue training).
            media: score with this media contract instead of the recorded one (logs a warning if it differs).

        Raises:
            CheckpointError: the folder is missing, incomplete (an interrupted save), or a file in it is edited,
                corrupt or from another model; the message names the file.
        """
        path = Path(path)
        raw = read_config(path)
        if raw.pop("scorer", cls.kind) != cls.kind:
            raise CheckpointError(f"{path}: holds a different scorer kind; use mmreward.scoring.load_scorer")
        config = config_from_dict(RewardModelConfig, raw, path / CONFIG_NAME)
        check_media(config.media, path / CONFIG_NAME)
        check_safetensors(path / "head.safetensors")  # before the (slow) backbone load
        backbone, processor = load_backbone(path, config.backbone, lora=config.lora is not None, dtype=dtype,
                                            attn_implementation=attn_implementation, device=device,
                                            trainable=trainable)
        model = cls(backbone, processor, config)
        load_state(model.head, path / "head.safetensors")
        model.contract = override_contract(model.contract, media, str(path))
        return model.to(next(backbone.parameters()).device)

    @classmethod
    def from_source(cls, path_or_id: str | Path, *, mode: str | None = None, **kwargs) -> RewardModel:
        """`load_scorer(path, kind="head")` for a path that is no checkpoint: a head model exists only as one.

        Raises:
            CheckpointError: always for a plain model or a missing folder, saying which it is and what to do.
        """
        path = Path(path_or_id).expanduser()
        read_config(path)  # raises: no such folder, a plain transformers model, or not a model at all
        return cls.from_pretrained(path, **kwargs)

    @classmethod
    def from_bt_config(cls, cfg) -> RewardModel:
        """A fresh head model for `mmreward train bt` (`train.bt.BTConfig`: backbone, head, pooling, LoRA, media)."""
        from mmreward.models.backbone import load_model_config, load_processor

        lora = cfg.lora_spec()
        # Through our loaders, so a wrong path or an uncached hub id offline is a clear CheckpointError.
        model_type = family_of(load_model_config(cfg.model)).model_type
        contract = cfg.media_contract(load_processor(cfg.model), model_type)
        return cls.build(
            cfg.model, head=cfg.head, pooling=cfg.pooling, dimensions=cfg.dimensions, lora=lora,
            freeze_vision=cfg.freeze_vision, gradient_checkpointing=cfg.gradient_checkpointing, media=contract,
            prompt_template=cfg.prompt_template, reward_tokens=cfg.reward_tokens,
            head_inner_size=cfg.head_inner_size, max_length=cfg.max_length, on_overflow=cfg.on_overflow,
            dtype=cfg.dtype, attn_implementation=cfg.attn_implementation,
        )


class UnitEncoder:
    """Picklable encoder of units for a reward model: media under the contract, processor, token guard."""

    def __init__(self, processor, model_type: str, contract: MediaContract, max_length, on_overflow: str):
        self.processor = processor
        self.model_type = model_type
        self.contract = contract
        self.max_length = max_length
        self.on_overflow = on_overflow

    def __call__(self, unit) -> dict:
        return encode_unit(unit, self.processor, FAMILIES[self.model_type], self.contract,
                           max_length=self.max_length, on_overflow=self.on_overflow)

    @classmethod
    def for_scorer(cls, scorer) -> UnitEncoder:
        """The encoder of a backbone scorer (head or yes-token): its processor, family, contract and token budget."""
        return cls(scorer.processor, scorer.family.model_type, scorer.contract, scorer.config.max_length,
                   scorer.config.on_overflow)


def forward_encodings(scorer, encodings: list[dict]) -> torch.Tensor:
    """Pad encoded units into one batch on the scorer's device and run its forward: (n, ...)."""
    device = next(scorer.parameters()).device
    batch = pad_batch(encodings, scorer.processor.tokenizer.pad_token_id)
    return scorer(**{k: v.to(device) for k, v in batch.items()})
